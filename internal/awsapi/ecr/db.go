package ecr

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// This file is the ECR API's storage. Its own table, ecr_repositories,
// holds the ECR settings of repositories; images, tags and repositories
// are the registry's tables (internal/store/registry.go), read here with
// the queries ECR's listings need. Where an ECR operation must check and
// change in one step (delete a repository only if empty, drop an image
// with its last tag) it runs its own transaction over those tables, with
// the row locks that keep a concurrent push from being lost.

//go:embed migrations/*.sql
var migrations embed.FS

func migrate(ctx context.Context, db *store.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("ecr: %w", err)
	}
	if err := db.Migrate(ctx, "ecr", sub); err != nil {
		return fmt.Errorf("ecr: %w", err)
	}
	return nil
}

var (
	errRepoExists   = errors.New("repository exists")
	errRepoNotFound = errors.New("repository not found")
	errRepoNotEmpty = errors.New("repository not empty")
	errNotFound     = errors.New("not found")
)

// settings are a repository's ECR settings.
type settings struct {
	Mutability string
	Exclusions []ImageTagMutabilityExclusionFilter
	ScanOnPush bool
	Encryption string
	KmsKey     string
	Tags       []Tag
}

// defaultSettings are ECR's defaults, which repositories made outside the
// ECR API have.
func defaultSettings() settings {
	return settings{Mutability: "MUTABLE", Encryption: "AES256"}
}

// repo is a repository with its ECR settings.
type repo struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	settings
}

const repoSelect = `SELECT r.id, r.name, r.created_at, e.image_tag_mutability, e.mutability_exclusions,
	e.scan_on_push, e.encryption_type, e.kms_key, e.tags
	FROM registry_repositories r LEFT JOIN ecr_repositories e ON e.repository_id = r.id`

type scanner interface{ Scan(dest ...any) error }

func scanRepo(row scanner) (repo, error) {
	var r repo
	var created int64
	var mut, excl, enc, kms, tags sql.NullString
	var sop sql.NullInt64
	if err := row.Scan(&r.ID, &r.Name, &created, &mut, &excl, &sop, &enc, &kms, &tags); err != nil {
		return repo{}, err
	}
	r.CreatedAt = time.UnixMilli(created).UTC()
	r.settings = defaultSettings()
	if mut.Valid {
		r.Mutability = mut.String
		r.ScanOnPush = sop.Int64 != 0
		r.Encryption = enc.String
		r.KmsKey = kms.String
		if excl.Valid {
			if err := json.Unmarshal([]byte(excl.String), &r.Exclusions); err != nil {
				return repo{}, fmt.Errorf("mutability exclusions of %s: %w", r.Name, err)
			}
		}
		if tags.Valid {
			if err := json.Unmarshal([]byte(tags.String), &r.Tags); err != nil {
				return repo{}, fmt.Errorf("tags of %s: %w", r.Name, err)
			}
		}
	}
	return r, nil
}

// nullJSON is v as JSON, or NULL when v is empty.
func nullJSON[T any](v []T) (any, error) {
	if len(v) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// createRepository creates a repository with its ECR settings in one
// transaction (the registry row is what store.Registry.CreateRepository
// writes), or returns errRepoExists.
func (s *Service) createRepository(ctx context.Context, name string, st settings, now time.Time) (repo, error) {
	r := repo{Name: name, CreatedAt: time.UnixMilli(now.UnixMilli()).UTC(), settings: st}
	excl, err := nullJSON(st.Exclusions)
	if err != nil {
		return repo{}, err
	}
	tags, err := nullJSON(st.Tags)
	if err != nil {
		return repo{}, err
	}
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO registry_repositories (name, created_at) VALUES (?, ?)
			ON CONFLICT (name) DO NOTHING RETURNING id`, name, now.UnixMilli()).Scan(&r.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return errRepoExists
		}
		if err != nil {
			return fmt.Errorf("create repository %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ecr_repositories (repository_id, image_tag_mutability,
			mutability_exclusions, scan_on_push, encryption_type, kms_key, tags) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.ID, st.Mutability, excl, boolInt(st.ScanOnPush), st.Encryption, nullString(st.KmsKey), tags); err != nil {
			return fmt.Errorf("create repository %s: %w", name, err)
		}
		return store.RecordRepositoryCreatedTx(ctx, tx, name, now)
	})
	if err != nil {
		return repo{}, err
	}
	return r, nil
}

// repository returns a repository by name, or errRepoNotFound.
func (s *Service) repository(ctx context.Context, name string) (repo, error) {
	r, err := scanRepo(s.db.QueryRowContext(ctx, repoSelect+` WHERE r.name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return repo{}, errRepoNotFound
	}
	if err != nil {
		return repo{}, fmt.Errorf("repository %s: %w", name, err)
	}
	return r, nil
}

// repositories lists repositories in order of name after the name after,
// at most limit of them.
func (s *Service) repositories(ctx context.Context, after string, limit int) ([]repo, error) {
	rows, err := s.db.QueryContext(ctx, repoSelect+` WHERE r.name > ? ORDER BY r.name LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list repositories: %w", err)
	}
	defer rows.Close()
	var out []repo
	for rows.Next() {
		r, err := scanRepo(rows)
		if err != nil {
			return nil, fmt.Errorf("list repositories: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// setScanOnPush sets a repository's scan-on-push flag, giving it the
// default ECR settings first if it has none.
func (s *Service) setScanOnPush(ctx context.Context, name string, on bool) (repo, error) {
	var r repo
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM registry_repositories WHERE name = ?`, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return errRepoNotFound
		}
		if err != nil {
			return err
		}
		d := defaultSettings()
		if _, err := tx.ExecContext(ctx, `INSERT INTO ecr_repositories (repository_id, image_tag_mutability, scan_on_push, encryption_type)
			VALUES (?, ?, ?, ?) ON CONFLICT (repository_id) DO UPDATE SET scan_on_push = excluded.scan_on_push`,
			id, d.Mutability, boolInt(on), d.Encryption); err != nil {
			return err
		}
		r, err = scanRepo(tx.QueryRowContext(ctx, repoSelect+` WHERE r.id = ?`, id))
		return err
	})
	if err != nil && !errors.Is(err, errRepoNotFound) {
		return repo{}, fmt.Errorf("set scan on push of %s: %w", name, err)
	}
	return r, err
}

// deleteRepository deletes a repository and returns it as it was. Without
// force it refuses (errRepoNotEmpty) when the repository holds an image:
// the check and the delete are one transaction, and on PostgreSQL the
// repository row is locked first, so an image pushed meanwhile either is
// seen or fails its push; it is never deleted unseen.
func (s *Service) deleteRepository(ctx context.Context, name string, force bool) (repo, error) {
	var r repo
	if force {
		var err error
		if r, err = s.repository(ctx, name); err != nil {
			return repo{}, err
		}
		if err := s.reg.DeleteRepository(ctx, name); err != nil {
			if errors.Is(err, store.ErrRepositoryNotFound) {
				return repo{}, errRepoNotFound
			}
			return repo{}, fmt.Errorf("delete repository %s: %w", name, err)
		}
		return r, nil
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		q := repoSelect + ` WHERE r.name = ?`
		if tx.Dialect() == store.Postgres {
			q += ` FOR UPDATE OF r`
		}
		var err error
		r, err = scanRepo(tx.QueryRowContext(ctx, q, name))
		if errors.Is(err, sql.ErrNoRows) {
			return errRepoNotFound
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM registry_manifests WHERE repository_id = ?`, r.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errRepoNotEmpty
		}
		if err := store.RecordRepositoryDeletedTx(ctx, tx, r.ID, r.Name, s.now()); err != nil {
			return err
		}
		// No manifests, so no tags or references: what is left (blob links,
		// settings) goes with the repository row by ON DELETE CASCADE.
		for _, q := range []string{
			`DELETE FROM ecr_repositories WHERE repository_id = ?`,
			`DELETE FROM registry_repositories WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, r.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRepoNotFound) && !errors.Is(err, errRepoNotEmpty) {
		return repo{}, fmt.Errorf("delete repository %s: %w", name, err)
	}
	return r, err
}

// image is a manifest of a repository with its tags.
type image struct {
	Digest       string
	MediaType    string
	ArtifactType string
	Subject      string
	Content      []byte
	PushedAt     time.Time
	PulledAt     time.Time // zero if never pulled
	Tags         []string
}

const imageSelect = `SELECT m.digest, m.media_type, m.artifact_type, COALESCE(m.subject_digest, ''), m.content,
	m.pushed_at, m.last_pulled_at FROM registry_manifests m`

// tagFilter is the SQL condition of a tagStatus filter on manifests m.
func tagFilter(tagStatus string) string {
	exists := `EXISTS (SELECT 1 FROM registry_tags t WHERE t.repository_id = m.repository_id AND t.manifest_digest = m.digest)`
	switch tagStatus {
	case "TAGGED":
		return ` AND ` + exists
	case "UNTAGGED":
		return ` AND NOT ` + exists
	}
	return ""
}

func (s *Service) queryImages(ctx context.Context, repoID int64, q string, args ...any) ([]image, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	defer rows.Close()
	var out []image
	for rows.Next() {
		var im image
		var pushed int64
		var pulled sql.NullInt64
		if err := rows.Scan(&im.Digest, &im.MediaType, &im.ArtifactType, &im.Subject, &im.Content, &pushed, &pulled); err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		im.PushedAt = time.UnixMilli(pushed).UTC()
		if pulled.Valid {
			im.PulledAt = time.UnixMilli(pulled.Int64).UTC()
		}
		out = append(out, im)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	if err := s.addTags(ctx, repoID, out); err != nil {
		return nil, err
	}
	return out, nil
}

// imagesPage lists a repository's images in order of digest after the
// digest after, at most limit of them, filtered by tag status.
func (s *Service) imagesPage(ctx context.Context, repoID int64, after string, limit int, tagStatus string) ([]image, error) {
	return s.queryImages(ctx, repoID, imageSelect+` WHERE m.repository_id = ? AND m.digest > ?`+tagFilter(tagStatus)+
		` ORDER BY m.digest LIMIT ?`, repoID, after, limit)
}

// imagesByDigest returns the images of a repository with the given
// digests; missing ones are left out.
func (s *Service) imagesByDigest(ctx context.Context, repoID int64, digests []string) (map[string]image, error) {
	out := make(map[string]image, len(digests))
	for len(digests) > 0 {
		n := min(len(digests), 500)
		args := []any{repoID}
		for _, d := range digests[:n] {
			args = append(args, d)
		}
		ims, err := s.queryImages(ctx, repoID, imageSelect+` WHERE m.repository_id = ? AND m.digest IN (`+store.Placeholders(n)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for _, im := range ims {
			out[im.Digest] = im
		}
		digests = digests[n:]
	}
	return out, nil
}

// addTags fills in the tags of images, sorted.
func (s *Service) addTags(ctx context.Context, repoID int64, ims []image) error {
	idx := map[string]int{}
	args := []any{repoID}
	for i, im := range ims {
		idx[im.Digest] = i
		args = append(args, im.Digest)
	}
	if len(ims) == 0 {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT manifest_digest, name FROM registry_tags WHERE repository_id = ?
		AND manifest_digest IN (`+store.Placeholders(len(ims))+`) ORDER BY name`, args...)
	if err != nil {
		return fmt.Errorf("image tags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d, tag string
		if err := rows.Scan(&d, &tag); err != nil {
			return fmt.Errorf("image tags: %w", err)
		}
		if i, ok := idx[d]; ok {
			ims[i].Tags = append(ims[i].Tags, tag)
		}
	}
	return rows.Err()
}

// tagDigest returns the digest a tag points at, or errNotFound.
func (s *Service) tagDigest(ctx context.Context, repoID int64, tag string) (string, error) {
	var d string
	err := s.db.QueryRowContext(ctx, `SELECT manifest_digest FROM registry_tags WHERE repository_id = ? AND name = ?`,
		repoID, tag).Scan(&d)
	if errors.Is(err, sql.ErrNoRows) {
		return "", errNotFound
	}
	if err != nil {
		return "", fmt.Errorf("tag %s: %w", tag, err)
	}
	return d, nil
}

// imageID is one entry of ListImages: a digest with one of its tags, or
// alone when it has none.
type imageID struct {
	Digest string `json:"d"`
	Tag    string `json:"t,omitempty"`
}

// imageIDs lists (digest, tag) pairs in order after the pair after, at most
// limit of them, filtered by tag status.
func (s *Service) imageIDs(ctx context.Context, repoID int64, after imageID, limit int, tagStatus string) ([]imageID, error) {
	q := `SELECT m.digest, COALESCE(t.name, '') AS tag FROM registry_manifests m
		LEFT JOIN registry_tags t ON t.repository_id = m.repository_id AND t.manifest_digest = m.digest
		WHERE m.repository_id = ? AND (m.digest > ? OR (m.digest = ? AND COALESCE(t.name, '') > ?))`
	switch tagStatus {
	case "TAGGED":
		q += ` AND t.name IS NOT NULL`
	case "UNTAGGED":
		q += ` AND t.name IS NULL`
	}
	q += ` ORDER BY m.digest, tag LIMIT ?`
	rows, err := s.db.QueryContext(ctx, q, repoID, after.Digest, after.Digest, after.Tag, limit)
	if err != nil {
		return nil, fmt.Errorf("list image ids: %w", err)
	}
	defer rows.Close()
	var out []imageID
	for rows.Next() {
		var id imageID
		if err := rows.Scan(&id.Digest, &id.Tag); err != nil {
			return nil, fmt.Errorf("list image ids: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// lockManifest locks a manifest row on PostgreSQL (SQLite serialises
// writers) and reports whether it exists.
func lockManifest(ctx context.Context, tx *store.Tx, repoID int64, digest string) (bool, error) {
	q := `SELECT 1 FROM registry_manifests WHERE repository_id = ? AND digest = ?`
	if tx.Dialect() == store.Postgres {
		q += ` FOR UPDATE`
	}
	var one int
	err := tx.QueryRowContext(ctx, q, repoID, digest).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// referencedByIndex reports whether an index in the repository lists the
// manifest.
func referencedByIndex(ctx context.Context, tx *store.Tx, repoID int64, digest string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM registry_manifest_refs WHERE repository_id = ? AND child_digest = ?
		AND kind = 'manifest'`, repoID, digest).Scan(&n)
	return n > 0, err
}

// deleteManifestTx deletes a manifest with its tags and references, and
// writes the registry outbox's image-deleted event (what
// store.Registry.DeleteManifest does, inside the caller's transaction).
func deleteManifestTx(ctx context.Context, tx *store.Tx, repoID int64, digest string, now time.Time) error {
	_, err := store.DeleteManifestTx(ctx, tx, repoID, digest, now)
	return err
}

// deleteOutcome is what deleting one image identifier did.
type deleteOutcome struct {
	// removed lists the (digest, tag) pairs removed; a digest with no tag
	// when an untagged image was deleted.
	removed []imageID
	// failure is set when nothing was deleted.
	failure *imageIDFailure
}

var (
	failNotFound = &imageIDFailure{"ImageNotFound", "Requested image not found"}
	failMismatch = &imageIDFailure{"ImageTagDoesNotMatchDigest", "Invalid request parameters: given tag does not map to the given digest"}
	failIndexed  = &imageIDFailure{"ImageReferencedByManifestList", "Requested image is referenced by a manifest list"}
)

// deleteImage applies one BatchDeleteImage identifier in a transaction.
// With a tag it removes that tag (checked against the digest when both
// are given) and deletes the image when that was its last tag and no
// index lists it; with a digest alone it deletes the image and all its
// tags, unless an index in the repository lists it.
func (s *Service) deleteImage(ctx context.Context, repoID int64, ref imageRef) (deleteOutcome, error) {
	var out deleteOutcome
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		out = deleteOutcome{}
		digest := ref.digest
		if ref.tag != "" {
			var d string
			err := tx.QueryRowContext(ctx, `SELECT manifest_digest FROM registry_tags WHERE repository_id = ? AND name = ?`,
				repoID, ref.tag).Scan(&d)
			if errors.Is(err, sql.ErrNoRows) {
				out.failure = failNotFound
				return nil
			}
			if err != nil {
				return err
			}
			if digest != "" && d != digest {
				out.failure = failMismatch
				return nil
			}
			digest = d
		}
		ok, err := lockManifest(ctx, tx, repoID, digest)
		if err != nil {
			return err
		}
		if !ok {
			out.failure = failNotFound
			return nil
		}
		indexed, err := referencedByIndex(ctx, tx, repoID, digest)
		if err != nil {
			return err
		}
		if ref.tag != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM registry_tags WHERE repository_id = ? AND name = ? AND manifest_digest = ?`,
				repoID, ref.tag, digest); err != nil {
				return err
			}
			out.removed = append(out.removed, imageID{digest, ref.tag})
			var left int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM registry_tags WHERE repository_id = ? AND manifest_digest = ?`,
				repoID, digest).Scan(&left); err != nil {
				return err
			}
			if left > 0 || indexed {
				return store.RecordTagDeletedTx(ctx, tx, repoID, digest, ref.tag, s.now())
			}
			return deleteManifestTx(ctx, tx, repoID, digest, s.now())
		}
		if indexed {
			out.failure = failIndexed
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT name FROM registry_tags WHERE repository_id = ? AND manifest_digest = ? ORDER BY name`,
			repoID, digest)
		if err != nil {
			return err
		}
		for rows.Next() {
			var tag string
			if err := rows.Scan(&tag); err != nil {
				rows.Close()
				return err
			}
			out.removed = append(out.removed, imageID{digest, tag})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(out.removed) == 0 {
			out.removed = []imageID{{Digest: digest}}
		}
		return deleteManifestTx(ctx, tx, repoID, digest, s.now())
	})
	if err != nil {
		return deleteOutcome{}, fmt.Errorf("delete image: %w", err)
	}
	return out, nil
}
