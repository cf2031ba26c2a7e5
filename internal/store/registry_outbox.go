package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Outbox kinds besides OutboxImagePushed. Each is written in the
// transaction of the change it announces. Readers of the outbox must skip
// kinds they do not know: more may come.
const (
	// OutboxImageDeleted: a manifest was deleted by digest (payload
	// ImageDeleted).
	OutboxImageDeleted = "registry.image.deleted"
	// OutboxRepositoryCreated: a repository was created (payload
	// RepositoryCreated).
	OutboxRepositoryCreated = "registry.repository.created"
	// OutboxRepositoryDeleted: a repository was deleted with every image
	// it held (payload RepositoryDeleted).
	OutboxRepositoryDeleted = "registry.repository.deleted"
	// OutboxTagDeleted: a tag was removed from an image that stays
	// (payload ImageDeleted naming the image and, in Tags, the tag).
	OutboxTagDeleted = "registry.tag.deleted"
)

// ImageDeleted is the payload of an OutboxImageDeleted event: the manifest
// as it was just before its deletion.
type ImageDeleted struct {
	Repository   string `json:"repository"`
	Digest       string `json:"digest"`
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType,omitempty"`
	// Tags are the tags that pointed at the manifest, in name order.
	Tags      []string `json:"tags,omitempty"`
	DeletedAt string   `json:"deletedAt"`
}

// RepositoryCreated is the payload of an OutboxRepositoryCreated event.
type RepositoryCreated struct {
	Repository string `json:"repository"`
	CreatedAt  string `json:"createdAt"`
}

// RepositoryDeleted is the payload of an OutboxRepositoryDeleted event.
type RepositoryDeleted struct {
	Repository string `json:"repository"`
	// Digests are the manifests the repository held, in digest order.
	Digests   []string `json:"digests,omitempty"`
	DeletedAt string   `json:"deletedAt"`
}

// writeOutbox appends one event to the registry outbox inside tx.
func writeOutbox(ctx context.Context, tx *Tx, kind string, payload any, now time.Time) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("store: %s payload: %w", kind, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO registry_outbox (created_at, kind, payload) VALUES (?, ?, ?)`,
		ms(now), kind, string(b)); err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	return nil
}

// RecordRepositoryCreatedTx writes the OutboxRepositoryCreated event of a
// repository just inserted in tx. Code that inserts registry_repositories
// rows itself (the ECR API) calls it in the same transaction.
func RecordRepositoryCreatedTx(ctx context.Context, tx *Tx, name string, now time.Time) error {
	return writeOutbox(ctx, tx, OutboxRepositoryCreated,
		RepositoryCreated{Repository: name, CreatedAt: now.UTC().Format(time.RFC3339Nano)}, now)
}

// RecordRepositoryDeletedTx writes the OutboxRepositoryDeleted event of
// repository repoID, listing the manifests it holds. Call it in the
// deleting transaction before the manifests' rows are deleted.
func RecordRepositoryDeletedTx(ctx context.Context, tx *Tx, repoID int64, name string, now time.Time) error {
	rows, err := tx.QueryContext(ctx, `SELECT digest FROM registry_manifests WHERE repository_id = ? ORDER BY digest`, repoID)
	if err != nil {
		return fmt.Errorf("store: manifests of %s: %w", name, err)
	}
	var digests []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return fmt.Errorf("store: manifests of %s: %w", name, err)
		}
		digests = append(digests, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: manifests of %s: %w", name, err)
	}
	return writeOutbox(ctx, tx, OutboxRepositoryDeleted,
		RepositoryDeleted{Repository: name, Digests: digests, DeletedAt: now.UTC().Format(time.RFC3339Nano)}, now)
}

// DeleteManifestTx deletes manifest digest of repository repoID with its
// tags and references inside tx, and writes an OutboxImageDeleted event
// naming the tags it had. It reports false (and changes nothing) when the
// repository has no such manifest.
func DeleteManifestTx(ctx context.Context, tx *Tx, repoID int64, digest string, now time.Time) (bool, error) {
	ev := ImageDeleted{Digest: digest, DeletedAt: now.UTC().Format(time.RFC3339Nano)}
	err := tx.QueryRowContext(ctx, `SELECT r.name, m.media_type, m.artifact_type FROM registry_manifests m
		JOIN registry_repositories r ON r.id = m.repository_id WHERE m.repository_id = ? AND m.digest = ?`,
		repoID, digest).Scan(&ev.Repository, &ev.MediaType, &ev.ArtifactType)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: delete manifest %s: %w", digest, err)
	}
	rows, err := tx.QueryContext(ctx, `DELETE FROM registry_tags WHERE repository_id = ? AND manifest_digest = ? RETURNING name`, repoID, digest)
	if err != nil {
		return false, fmt.Errorf("store: delete manifest %s: %w", digest, err)
	}
	for rows.Next() {
		var tag string
		if err := rows.Scan(&tag); err != nil {
			rows.Close()
			return false, fmt.Errorf("store: delete manifest %s: %w", digest, err)
		}
		ev.Tags = append(ev.Tags, tag)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("store: delete manifest %s: %w", digest, err)
	}
	sort.Strings(ev.Tags)
	for _, q := range []string{
		`DELETE FROM registry_manifest_refs WHERE repository_id = ? AND manifest_digest = ?`,
		`DELETE FROM registry_manifests WHERE repository_id = ? AND digest = ?`,
	} {
		if _, err := tx.ExecContext(ctx, q, repoID, digest); err != nil {
			return false, fmt.Errorf("store: delete manifest %s: %w", digest, err)
		}
	}
	return true, writeOutbox(ctx, tx, OutboxImageDeleted, ev, now)
}

// RecordTagDeletedTx writes the OutboxTagDeleted event of tag, just
// removed in tx from manifest digest of repository repoID, which stays.
func RecordTagDeletedTx(ctx context.Context, tx *Tx, repoID int64, digest, tag string, now time.Time) error {
	ev := ImageDeleted{Digest: digest, Tags: []string{tag}, DeletedAt: now.UTC().Format(time.RFC3339Nano)}
	err := tx.QueryRowContext(ctx, `SELECT r.name, m.media_type, m.artifact_type FROM registry_manifests m
		JOIN registry_repositories r ON r.id = m.repository_id WHERE m.repository_id = ? AND m.digest = ?`,
		repoID, digest).Scan(&ev.Repository, &ev.MediaType, &ev.ArtifactType)
	if err != nil {
		return fmt.Errorf("store: tag %s of %s: %w", tag, digest, err)
	}
	return writeOutbox(ctx, tx, OutboxTagDeleted, ev, now)
}
