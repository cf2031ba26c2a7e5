package store

import (
	"context"
	"fmt"
	"time"
)

// PruneBlobLinks removes the links of blobs into repositories that no
// manifest of that repository references and that no push or mount used
// since before. It returns how many it removed.
func (r *Registry) PruneBlobLinks(ctx context.Context, before time.Time) (int64, error) {
	// A manifest put touches the links it validates (updated_at) under a
	// row lock, and PostgreSQL re-checks updated_at on a row it waited for,
	// so a link a concurrent push is about to reference is never removed.
	res, err := r.db.ExecContext(ctx, `DELETE FROM registry_repository_blobs WHERE updated_at < ? AND NOT EXISTS (
		SELECT 1 FROM registry_manifest_refs mr WHERE mr.repository_id = registry_repository_blobs.repository_id
		AND mr.child_digest = registry_repository_blobs.digest)`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune blob links: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// PruneBlobs removes the records of blobs linked into no repository and not
// used since before, and returns their digests: the blob store may then
// delete their bytes.
func (r *Registry) PruneBlobs(ctx context.Context, before time.Time) ([]string, error) {
	return r.strings(ctx, `DELETE FROM registry_blobs WHERE updated_at < ? AND NOT EXISTS (
		SELECT 1 FROM registry_repository_blobs rb WHERE rb.digest = registry_blobs.digest) RETURNING digest`, ms(before))
}

// BlobRecorded reports whether the registry has a record of a blob.
func (r *Registry) BlobRecorded(ctx context.Context, digest string) (bool, error) {
	var n int
	if err := r.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM registry_blobs WHERE digest = ?`, digest).Scan(&n); err != nil {
		return false, fmt.Errorf("store: blob record: %w", err)
	}
	return n > 0, nil
}

// OutboxEvent is one row of the registry's outbox.
type OutboxEvent struct {
	ID        int64
	CreatedAt time.Time
	Kind      string
	Payload   []byte
}

// Outbox lists outbox events with an id above after, oldest first, at most
// limit of them.
func (r *Registry) Outbox(ctx context.Context, after int64, limit int) ([]OutboxEvent, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, created_at, kind, payload FROM registry_outbox
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxEvent
	for rows.Next() {
		var e OutboxEvent
		var created int64
		var payload string
		if err := rows.Scan(&e.ID, &created, &e.Kind, &payload); err != nil {
			return nil, fmt.Errorf("store: outbox: %w", err)
		}
		e.CreatedAt, e.Payload = fromMS(created), []byte(payload)
		out = append(out, e)
	}
	return out, rows.Err()
}
