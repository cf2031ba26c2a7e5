package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"
)

//go:embed migrations/registry/*.sql
var registryMigrations embed.FS

// MigrateRegistry applies the registry's migrations (domain "registry").
func (db *DB) MigrateRegistry(ctx context.Context) error {
	sub, err := fs.Sub(registryMigrations, "migrations/registry")
	if err != nil {
		return err
	}
	return db.Migrate(ctx, "registry", sub)
}

// Errors of the registry's metadata.
var (
	ErrRepositoryNotFound = errors.New("store: repository not found")
	ErrRepositoryExists   = errors.New("store: repository already exists")
	ErrBlobNotFound       = errors.New("store: blob not found")
	ErrManifestNotFound   = errors.New("store: manifest not found")
	ErrTagNotFound        = errors.New("store: tag not found")
)

// RefError reports a manifest reference that cannot be satisfied: a blob
// not in the repository (or of another size), or an index child manifest
// not in the repository.
type RefError struct {
	// Kind is "blob" or "manifest".
	Kind   string
	Digest string
	// SizeMismatch is true when the blob exists with another size.
	SizeMismatch bool
}

func (e *RefError) Error() string {
	if e.SizeMismatch {
		return fmt.Sprintf("store: %s %s has another size than the manifest says", e.Kind, e.Digest)
	}
	return fmt.Sprintf("store: %s %s is not in the repository", e.Kind, e.Digest)
}

// Registry is the registry's view of the store: repositories, blobs per
// repository, uploads, manifests, tags and referrers. Get it with
// DB.Registry.
type Registry struct {
	db    *DB
	blobs *blobBatcher
}

// Registry returns the registry's metadata on db.
func (db *DB) Registry() *Registry { return &Registry{db: db, blobs: &blobBatcher{}} }

// Repository is a named repository.
type Repository struct {
	ID        int64
	Name      string
	CreatedAt time.Time
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// CreateRepository creates a repository, or returns ErrRepositoryExists.
func (r *Registry) CreateRepository(ctx context.Context, name string, now time.Time) (Repository, error) {
	repo := Repository{Name: name, CreatedAt: fromMS(ms(now))}
	err := r.db.QueryRowContext(ctx, `INSERT INTO registry_repositories (name, created_at) VALUES (?, ?)
		ON CONFLICT (name) DO NOTHING RETURNING id`, name, ms(now)).Scan(&repo.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return Repository{}, ErrRepositoryExists
	}
	if err != nil {
		return Repository{}, fmt.Errorf("store: create repository %s: %w", name, err)
	}
	return repo, nil
}

// EnsureRepository returns the repository, creating it if it is missing.
func (r *Registry) EnsureRepository(ctx context.Context, name string, now time.Time) (Repository, error) {
	// Read first: the repository nearly always exists, and a read costs no
	// durable commit.
	if repo, err := r.Repository(ctx, name); !errors.Is(err, ErrRepositoryNotFound) {
		return repo, err
	}
	// A repository created here (on a first push) is announced like one
	// the ECR API creates (OutboxRepositoryCreated), in the same
	// transaction; losing a race to another creator announces nothing.
	err := r.db.InTx(ctx, func(tx *Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO registry_repositories (name, created_at) VALUES (?, ?)
			ON CONFLICT (name) DO NOTHING RETURNING id`, name, ms(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: create repository %s: %w", name, err)
		}
		return RecordRepositoryCreatedTx(ctx, tx, name, now)
	})
	if err != nil {
		return Repository{}, err
	}
	return r.Repository(ctx, name)
}

// Repository returns a repository by name, or ErrRepositoryNotFound.
func (r *Registry) Repository(ctx context.Context, name string) (Repository, error) {
	repo := Repository{Name: name}
	var created int64
	err := r.db.QueryRowContext(ctx, `SELECT id, created_at FROM registry_repositories WHERE name = ?`, name).Scan(&repo.ID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Repository{}, ErrRepositoryNotFound
	}
	if err != nil {
		return Repository{}, fmt.Errorf("store: repository %s: %w", name, err)
	}
	repo.CreatedAt = fromMS(created)
	return repo, nil
}

// Repositories lists repositories in lexical order of name, starting after
// the name after, at most limit of them (limit <= 0: all).
func (r *Registry) Repositories(ctx context.Context, after string, limit int) ([]Repository, error) {
	q := `SELECT id, name, created_at FROM registry_repositories WHERE name > ? ORDER BY name`
	args := []any{after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list repositories: %w", err)
	}
	defer rows.Close()
	var out []Repository
	for rows.Next() {
		var repo Repository
		var created int64
		if err := rows.Scan(&repo.ID, &repo.Name, &created); err != nil {
			return nil, fmt.Errorf("store: list repositories: %w", err)
		}
		repo.CreatedAt = fromMS(created)
		out = append(out, repo)
	}
	return out, rows.Err()
}

// DeleteRepository deletes a repository with its manifests, tags, blob
// links and uploads, and writes an OutboxRepositoryDeleted event listing
// its manifests. The blobs themselves are left to the garbage collector,
// since other repositories may share them.
func (r *Registry) DeleteRepository(ctx context.Context, name string) error {
	now := time.Now()
	return r.db.InTx(ctx, func(tx *Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM registry_repositories WHERE name = ?`, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrRepositoryNotFound
		}
		if err != nil {
			return fmt.Errorf("store: delete repository %s: %w", name, err)
		}
		if err := RecordRepositoryDeletedTx(ctx, tx, id, name, now); err != nil {
			return err
		}
		// Children first, explicitly: the composite foreign keys of tags and
		// refs cascade from manifests, but be independent of cascade order.
		for _, q := range []string{
			`DELETE FROM registry_tags WHERE repository_id = ?`,
			`DELETE FROM registry_manifest_refs WHERE repository_id = ?`,
			`DELETE FROM registry_manifests WHERE repository_id = ?`,
			`DELETE FROM registry_repository_blobs WHERE repository_id = ?`,
			`DELETE FROM registry_repositories WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("store: delete repository %s: %w", name, err)
			}
		}
		return nil
	})
}

// repositoryError tells a missing repository from a missing object: it
// returns ErrRepositoryNotFound when the repository does not exist, and
// notFound otherwise.
func (r *Registry) repositoryError(ctx context.Context, name string, notFound error) error {
	if _, err := r.Repository(ctx, name); err != nil {
		return err
	}
	return notFound
}

// Blob returns the size of a blob linked into a repository, or
// ErrBlobNotFound (ErrRepositoryNotFound when the repository is missing).
func (r *Registry) Blob(ctx context.Context, repo, digest string) (int64, error) {
	var size int64
	err := r.db.QueryRowContext(ctx, `SELECT rb.size FROM registry_repository_blobs rb
		JOIN registry_repositories r ON r.id = rb.repository_id
		WHERE r.name = ? AND rb.digest = ?`, repo, digest).Scan(&size)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, r.repositoryError(ctx, repo, ErrBlobNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: blob %s in %s: %w", digest, repo, err)
	}
	return size, nil
}

// CommitBlob records a blob just committed to the blob store and links it
// into a repository. It returns once the record is durable.
//
// Concurrent calls on one Registry share transactions (group commit): the
// store serialises writers and each commit waits for the disk, so under
// concurrent pushes one sync per batch instead of one per blob multiplies
// how many blobs a second can be recorded. A call waits at most for the
// transaction in progress and its own. It does not give up when ctx ends:
// the caller holds the blob store's commit lock until the record is made.
func (r *Registry) CommitBlob(ctx context.Context, repoID int64, digest string, size int64, now time.Time) error {
	c := &blobCommit{repoID: repoID, digest: digest, size: size, t: ms(now), done: make(chan error, 1)}
	b := r.blobs
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if !b.running {
		b.running = true
		go r.flushBlobCommits()
	}
	b.mu.Unlock()
	return <-c.done
}

// blobBatcher queues CommitBlob calls for flushBlobCommits.
type blobBatcher struct {
	mu      sync.Mutex
	pending []*blobCommit
	running bool
}

type blobCommit struct {
	repoID int64
	digest string
	size   int64
	t      int64
	done   chan error
}

// flushBlobCommits records queued blobs, a batch per transaction, until the
// queue is empty.
func (r *Registry) flushBlobCommits() {
	ctx := context.Background()
	for {
		b := r.blobs
		b.mu.Lock()
		batch := b.pending
		b.pending = nil
		if len(batch) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		// A stable order keeps concurrent batches from deadlocking.
		sort.Slice(batch, func(i, j int) bool {
			if batch[i].digest != batch[j].digest {
				return batch[i].digest < batch[j].digest
			}
			return batch[i].repoID < batch[j].repoID
		})
		err := r.db.InTx(ctx, func(tx *Tx) error {
			for _, c := range batch {
				if err := recordBlob(ctx, tx, c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && len(batch) > 1 {
			// One bad entry (a repository deleted meanwhile) must not fail
			// the others: record them one by one.
			for _, c := range batch {
				c.done <- r.db.InTx(ctx, func(tx *Tx) error { return recordBlob(ctx, tx, c) })
			}
			continue
		}
		for _, c := range batch {
			c.done <- err
		}
	}
}

func recordBlob(ctx context.Context, tx *Tx, c *blobCommit) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO registry_blobs (digest, size, created_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (digest) DO UPDATE SET updated_at = excluded.updated_at`, c.digest, c.size, c.t, c.t); err != nil {
		return fmt.Errorf("store: record blob %s: %w", c.digest, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO registry_repository_blobs (repository_id, digest, size, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO UPDATE SET updated_at = excluded.updated_at`,
		c.repoID, c.digest, c.size, c.t, c.t); err != nil {
		return fmt.Errorf("store: link blob %s: %w", c.digest, err)
	}
	return nil
}

// MountBlob links a blob the registry already holds into a repository and
// returns its size. With from set, the blob must be linked into that
// repository; with from empty, any stored blob is mounted. It returns
// ErrBlobNotFound when there is nothing to mount.
func (r *Registry) MountBlob(ctx context.Context, repoID int64, digest, from string, now time.Time) (int64, error) {
	t := ms(now)
	var size int64
	err := r.db.InTx(ctx, func(tx *Tx) error {
		q := `UPDATE registry_blobs SET updated_at = ? WHERE digest = ? RETURNING size`
		args := []any{t, digest}
		if from != "" {
			q = `UPDATE registry_blobs SET updated_at = ? WHERE digest = ? AND EXISTS (
				SELECT 1 FROM registry_repository_blobs rb JOIN registry_repositories r ON r.id = rb.repository_id
				WHERE r.name = ? AND rb.digest = registry_blobs.digest) RETURNING size`
			args = append(args, from)
		}
		err := tx.QueryRowContext(ctx, q, args...).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrBlobNotFound
		}
		if err != nil {
			return fmt.Errorf("store: mount blob %s: %w", digest, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO registry_repository_blobs (repository_id, digest, size, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO UPDATE SET updated_at = excluded.updated_at`,
			repoID, digest, size, t, t); err != nil {
			return fmt.Errorf("store: mount blob %s: %w", digest, err)
		}
		return nil
	})
	return size, err
}

// RepositoriesWithBlob lists, in name order, up to limit repositories a
// blob is linked into.
func (r *Registry) RepositoriesWithBlob(ctx context.Context, digest string, limit int) ([]string, error) {
	return r.strings(ctx, `SELECT r.name FROM registry_repository_blobs rb
		JOIN registry_repositories r ON r.id = rb.repository_id WHERE rb.digest = ? ORDER BY r.name LIMIT ?`, digest, limit)
}

// UnlinkBlob removes a blob from a repository, or returns ErrBlobNotFound.
// The bytes stay until the garbage collector finds them unreferenced.
func (r *Registry) UnlinkBlob(ctx context.Context, repo, digest string) error {
	res, err := r.db.ExecContext(ctx, `DELETE FROM registry_repository_blobs WHERE digest = ? AND repository_id =
		(SELECT id FROM registry_repositories WHERE name = ?)`, digest, repo)
	if err != nil {
		return fmt.Errorf("store: unlink blob %s: %w", digest, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return r.repositoryError(ctx, repo, ErrBlobNotFound)
	}
	return nil
}

func (r *Registry) strings(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Descriptor describes a manifest as the referrers API lists it.
type Descriptor struct {
	MediaType    string
	Digest       string
	Size         int64
	ArtifactType string
	Annotations  map[string]string
}

// Manifest is a stored manifest.
type Manifest struct {
	RepositoryID int64
	Digest       string
	MediaType    string
	Size         int64
	// Content is nil when the manifest was read without it.
	Content      []byte
	PushedAt     time.Time
	LastPulledAt time.Time // zero if never pulled
}

// BlobRef is a blob a manifest references, with the size it states.
type BlobRef struct {
	Digest string
	Size   int64
}

// ManifestPut is a validated manifest to store.
type ManifestPut struct {
	RepositoryID int64
	Repository   string
	Digest       string
	MediaType    string
	// ArtifactType is what the referrers API reports: the manifest's
	// artifactType, or an image manifest's config media type.
	ArtifactType string
	Content      []byte
	// Subject is the digest of the manifest this one refers to, or "".
	Subject     string
	Annotations map[string]string
	// Blobs must be linked into the repository with these sizes.
	Blobs []BlobRef
	// Manifests must exist in the repository (an index's children).
	Manifests []string
	// Tags point at the manifest after the put.
	Tags []string
}

// OutboxImagePushed is the outbox kind of the event written with every
// manifest put.
const OutboxImagePushed = "registry.image.pushed"

// ImagePushed is the payload of an OutboxImagePushed event.
type ImagePushed struct {
	Repository   string   `json:"repository"`
	Digest       string   `json:"digest"`
	MediaType    string   `json:"mediaType"`
	ArtifactType string   `json:"artifactType,omitempty"`
	Size         int64    `json:"size"`
	Tags         []string `json:"tags,omitempty"`
	Subject      string   `json:"subject,omitempty"`
	PushedAt     string   `json:"pushedAt"`
	// Replaced maps each tag that moved to this manifest to the digest it
	// pointed at before (the image this push supersedes on that tag).
	Replaced map[string]string `json:"replaced,omitempty"`
}

// maxParams bounds the placeholders of one IN list, well inside both
// backends' limits.
const maxParams = 500

// Placeholders returns n comma-separated "?" placeholders, for an IN list
// or a VALUES row (Rebind turns them into $n on PostgreSQL).
func Placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// PutManifest stores a manifest, its references and its tags, and writes
// an OutboxImagePushed event, all in one transaction. It returns a
// *RefError when a referenced blob or child manifest is missing.
func (r *Registry) PutManifest(ctx context.Context, m ManifestPut, now time.Time) error {
	t := ms(now)
	var annotations any
	if len(m.Annotations) > 0 {
		b, err := json.Marshal(m.Annotations)
		if err != nil {
			return fmt.Errorf("store: manifest annotations: %w", err)
		}
		annotations = string(b)
	}
	var subject any
	if m.Subject != "" {
		subject = m.Subject
	}
	event := ImagePushed{
		Repository: m.Repository, Digest: m.Digest, MediaType: m.MediaType, ArtifactType: m.ArtifactType,
		Size: int64(len(m.Content)), Tags: m.Tags, Subject: m.Subject, PushedAt: now.UTC().Format(time.RFC3339Nano),
	}
	blobs := map[string]int64{}
	for _, b := range m.Blobs {
		blobs[b.Digest] = b.Size
	}
	children := map[string]bool{}
	for _, c := range m.Manifests {
		children[c] = true
	}
	return r.db.InTx(ctx, func(tx *Tx) error {
		// Touching the links both proves they exist and moves them out of
		// the garbage collector's reach (it only prunes links unused for
		// its whole safety window, and rechecks that under the row lock).
		if err := checkBlobs(ctx, tx, m.RepositoryID, blobs, t); err != nil {
			return err
		}
		if err := checkChildren(ctx, tx, m.RepositoryID, children); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO registry_manifests
			(repository_id, digest, media_type, artifact_type, size, content, subject_digest, annotations, pushed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO NOTHING`,
			m.RepositoryID, m.Digest, m.MediaType, m.ArtifactType, len(m.Content), m.Content, subject, annotations, t)
		if err != nil {
			return fmt.Errorf("store: insert manifest: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if err := insertRefs(ctx, tx, m.RepositoryID, m.Digest, blobs, children); err != nil {
				return err
			}
		}
		event.Replaced = nil
		for _, tag := range m.Tags {
			var prev string
			err := tx.QueryRowContext(ctx, `SELECT manifest_digest FROM registry_tags WHERE repository_id = ? AND name = ?`, m.RepositoryID, tag).Scan(&prev)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("store: tag %s: %w", tag, err)
			}
			if prev != "" && prev != m.Digest {
				if event.Replaced == nil {
					event.Replaced = map[string]string{}
				}
				event.Replaced[tag] = prev
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO registry_tags (repository_id, name, manifest_digest, updated_at)
				VALUES (?, ?, ?, ?) ON CONFLICT (repository_id, name)
				DO UPDATE SET manifest_digest = excluded.manifest_digest, updated_at = excluded.updated_at`,
				m.RepositoryID, tag, m.Digest, t); err != nil {
				return fmt.Errorf("store: tag %s: %w", tag, err)
			}
		}
		payload, err := json.Marshal(event)
		if err != nil {
			return fmt.Errorf("store: event payload: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO registry_outbox (created_at, kind, payload) VALUES (?, ?, ?)`,
			t, OutboxImagePushed, string(payload)); err != nil {
			return fmt.Errorf("store: outbox: %w", err)
		}
		return nil
	})
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func checkBlobs(ctx context.Context, tx *Tx, repoID int64, blobs map[string]int64, t int64) error {
	ds := keys(blobs)
	found := make(map[string]int64, len(ds))
	for len(ds) > 0 {
		n := min(len(ds), maxParams)
		args := []any{t, repoID}
		for _, d := range ds[:n] {
			args = append(args, d)
		}
		rows, err := tx.QueryContext(ctx, `UPDATE registry_repository_blobs SET updated_at = ?
			WHERE repository_id = ? AND digest IN (`+Placeholders(n)+`) RETURNING digest, size`, args...)
		if err != nil {
			return fmt.Errorf("store: check blobs: %w", err)
		}
		for rows.Next() {
			var d string
			var size int64
			if err := rows.Scan(&d, &size); err != nil {
				rows.Close()
				return fmt.Errorf("store: check blobs: %w", err)
			}
			found[d] = size
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: check blobs: %w", err)
		}
		ds = ds[n:]
	}
	for d, want := range blobs {
		got, ok := found[d]
		if !ok {
			return &RefError{Kind: "blob", Digest: d}
		}
		if got != want {
			return &RefError{Kind: "blob", Digest: d, SizeMismatch: true}
		}
	}
	return nil
}

func checkChildren(ctx context.Context, tx *Tx, repoID int64, children map[string]bool) error {
	ds := keys(children)
	found := map[string]bool{}
	for len(ds) > 0 {
		n := min(len(ds), maxParams)
		args := []any{repoID}
		for _, d := range ds[:n] {
			args = append(args, d)
		}
		rows, err := tx.QueryContext(ctx, `SELECT digest FROM registry_manifests
			WHERE repository_id = ? AND digest IN (`+Placeholders(n)+`)`, args...)
		if err != nil {
			return fmt.Errorf("store: check manifests: %w", err)
		}
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return fmt.Errorf("store: check manifests: %w", err)
			}
			found[d] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: check manifests: %w", err)
		}
		ds = ds[n:]
	}
	for d := range children {
		if !found[d] {
			return &RefError{Kind: "manifest", Digest: d}
		}
	}
	return nil
}

func insertRefs(ctx context.Context, tx *Tx, repoID int64, manifest string, blobs map[string]int64, children map[string]bool) error {
	type ref struct{ digest, kind string }
	var refs []ref
	for d := range blobs {
		refs = append(refs, ref{d, "blob"})
	}
	for d := range children {
		if _, dup := blobs[d]; !dup {
			refs = append(refs, ref{d, "manifest"})
		}
	}
	for len(refs) > 0 {
		n := min(len(refs), maxParams/4)
		args := make([]any, 0, 4*n)
		for _, rf := range refs[:n] {
			args = append(args, repoID, manifest, rf.digest, rf.kind)
		}
		q := `INSERT INTO registry_manifest_refs (repository_id, manifest_digest, child_digest, kind) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?),", n), ",") + ` ON CONFLICT DO NOTHING`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("store: manifest references: %w", err)
		}
		refs = refs[n:]
	}
	return nil
}

// Manifest returns a manifest of a repository by digest (byTag false) or
// by tag, with its content when withContent is set. It returns
// ErrManifestNotFound, or ErrRepositoryNotFound.
func (r *Registry) Manifest(ctx context.Context, repo, ref string, byTag, withContent bool) (Manifest, error) {
	content := "NULL"
	if withContent {
		content = "m.content"
	}
	q := `SELECT m.repository_id, m.digest, m.media_type, m.size, ` + content + `, m.pushed_at, m.last_pulled_at
		FROM registry_manifests m JOIN registry_repositories r ON r.id = m.repository_id
		WHERE r.name = ? AND m.digest = ?`
	if byTag {
		q = `SELECT m.repository_id, m.digest, m.media_type, m.size, ` + content + `, m.pushed_at, m.last_pulled_at
			FROM registry_tags t JOIN registry_repositories r ON r.id = t.repository_id
			JOIN registry_manifests m ON m.repository_id = t.repository_id AND m.digest = t.manifest_digest
			WHERE r.name = ? AND t.name = ?`
	}
	var m Manifest
	var pushed int64
	var pulled sql.NullInt64
	err := r.db.QueryRowContext(ctx, q, repo, ref).Scan(&m.RepositoryID, &m.Digest, &m.MediaType, &m.Size, &m.Content, &pushed, &pulled)
	if errors.Is(err, sql.ErrNoRows) {
		return Manifest{}, r.repositoryError(ctx, repo, ErrManifestNotFound)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("store: manifest %s in %s: %w", ref, repo, err)
	}
	m.PushedAt = fromMS(pushed)
	if pulled.Valid {
		m.LastPulledAt = fromMS(pulled.Int64)
	}
	return m, nil
}

// RecordPull sets a manifest's last pull time, unless a later one is
// stored (concurrent pulls, on several replicas, finish in any order).
func (r *Registry) RecordPull(ctx context.Context, repoID int64, digest string, at time.Time) error {
	return r.RecordPullCoarse(ctx, repoID, digest, at, 0)
}

// RecordPullCoarse sets a manifest's last pull time only when the stored
// one is more than granularity older than at: of many pulls at once, on
// one replica or several, one writes and the others match no row.
func (r *Registry) RecordPullCoarse(ctx context.Context, repoID int64, digest string, at time.Time, granularity time.Duration) error {
	if _, err := r.db.ExecContext(ctx, `UPDATE registry_manifests SET last_pulled_at = ?
		WHERE repository_id = ? AND digest = ? AND (last_pulled_at IS NULL OR last_pulled_at < ?)`,
		ms(at), repoID, digest, ms(at.Add(-granularity))); err != nil {
		return fmt.Errorf("store: record pull: %w", err)
	}
	return nil
}

// DeleteManifest deletes a manifest and every tag pointing at it, and
// writes an OutboxImageDeleted event, or returns ErrManifestNotFound.
func (r *Registry) DeleteManifest(ctx context.Context, repo, digest string) error {
	now := time.Now()
	return r.db.InTx(ctx, func(tx *Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM registry_repositories WHERE name = ?`, repo).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrRepositoryNotFound
		}
		if err != nil {
			return fmt.Errorf("store: delete manifest: %w", err)
		}
		found, err := DeleteManifestTx(ctx, tx, id, digest, now)
		if err == nil && !found {
			err = ErrManifestNotFound
		}
		return err
	})
}

// DeleteTag deletes a tag (not the manifest it points at) and writes an
// OutboxTagDeleted event, or returns ErrTagNotFound.
func (r *Registry) DeleteTag(ctx context.Context, repo, tag string) error {
	now := time.Now()
	found := false
	err := r.db.InTx(ctx, func(tx *Tx) error {
		var digest string
		var repoID int64
		err := tx.QueryRowContext(ctx, `DELETE FROM registry_tags WHERE name = ? AND repository_id =
			(SELECT id FROM registry_repositories WHERE name = ?) RETURNING repository_id, manifest_digest`, tag, repo).Scan(&repoID, &digest)
		if errors.Is(err, sql.ErrNoRows) {
			found = false
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: delete tag: %w", err)
		}
		found = true
		return RecordTagDeletedTx(ctx, tx, repoID, digest, tag, now)
	})
	if err != nil {
		return err
	}
	if !found {
		return r.repositoryError(ctx, repo, ErrTagNotFound)
	}
	return nil
}

// Tags lists a repository's tags in lexical order, after the tag after, at
// most limit of them (limit <= 0: all). It returns ErrRepositoryNotFound.
func (r *Registry) Tags(ctx context.Context, repo, after string, limit int) ([]string, error) {
	q := `SELECT t.name FROM registry_tags t JOIN registry_repositories r ON r.id = t.repository_id
		WHERE r.name = ? AND t.name > ? ORDER BY t.name`
	args := []any{repo, after}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	tags, err := r.strings(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		if _, err := r.Repository(ctx, repo); err != nil {
			return nil, err
		}
	}
	return tags, nil
}

// Referrers lists the manifests of a repository whose subject is the given
// digest, optionally only those of one artifact type. It returns
// ErrRepositoryNotFound.
func (r *Registry) Referrers(ctx context.Context, repo, subject, artifactType string) ([]Descriptor, error) {
	q := `SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations
		FROM registry_manifests m JOIN registry_repositories r ON r.id = m.repository_id
		WHERE r.name = ? AND m.subject_digest = ?`
	args := []any{repo, subject}
	if artifactType != "" {
		q += ` AND m.artifact_type = ?`
		args = append(args, artifactType)
	}
	q += ` ORDER BY m.digest`
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: referrers: %w", err)
	}
	defer rows.Close()
	var out []Descriptor
	for rows.Next() {
		var d Descriptor
		var ann sql.NullString
		if err := rows.Scan(&d.Digest, &d.MediaType, &d.Size, &d.ArtifactType, &ann); err != nil {
			return nil, fmt.Errorf("store: referrers: %w", err)
		}
		if ann.Valid && ann.String != "" {
			if err := json.Unmarshal([]byte(ann.String), &d.Annotations); err != nil {
				return nil, fmt.Errorf("store: referrer annotations: %w", err)
			}
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: referrers: %w", err)
	}
	if len(out) == 0 {
		if _, err := r.Repository(ctx, repo); err != nil {
			return nil, err
		}
	}
	return out, nil
}
