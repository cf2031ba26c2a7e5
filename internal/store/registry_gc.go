package store

import (
	"context"
	"fmt"
	"time"
)

// PruneBlobLinks removes the links of blobs into repositories that no
// manifest of that repository references and that no push or mount used
// since before. It returns how many it removed.
//
// It works in two steps in one transaction: lock the candidates, then
// delete those still unreferenced in a new statement. On PostgreSQL a
// manifest put that touched a candidate link first makes the lock wait for
// its commit, and the second statement then sees the references it wrote;
// a put that comes after the lock finds the link gone and fails cleanly
// with MANIFEST_BLOB_UNKNOWN. SQLite serialises the transactions.
func (r *Registry) PruneBlobLinks(ctx context.Context, before time.Time) (int64, error) {
	var removed int64
	err := r.db.InTx(ctx, func(tx *Tx) error {
		removed = 0
		q := `SELECT repository_id, digest FROM registry_repository_blobs rb WHERE updated_at < ? AND NOT EXISTS (
			SELECT 1 FROM registry_manifest_refs mr WHERE mr.repository_id = rb.repository_id AND mr.child_digest = rb.digest)`
		if tx.Dialect() == Postgres {
			q += ` FOR UPDATE`
		}
		rows, err := tx.QueryContext(ctx, q, ms(before))
		if err != nil {
			return fmt.Errorf("store: prune blob links: %w", err)
		}
		type link struct {
			repo   int64
			digest string
		}
		var cands []link
		for rows.Next() {
			var l link
			if err := rows.Scan(&l.repo, &l.digest); err != nil {
				rows.Close()
				return fmt.Errorf("store: prune blob links: %w", err)
			}
			cands = append(cands, l)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: prune blob links: %w", err)
		}
		for _, l := range cands {
			res, err := tx.ExecContext(ctx, `DELETE FROM registry_repository_blobs WHERE repository_id = ? AND digest = ?
				AND updated_at < ? AND NOT EXISTS (SELECT 1 FROM registry_manifest_refs mr
				WHERE mr.repository_id = ? AND mr.child_digest = ?)`, l.repo, l.digest, ms(before), l.repo, l.digest)
			if err != nil {
				return fmt.Errorf("store: prune blob links: %w", err)
			}
			n, _ := res.RowsAffected()
			removed += n
		}
		return nil
	})
	return removed, err
}

// PruneBlobs removes the records of blobs linked into no repository,
// referenced by no manifest and not used since before, and returns their
// digests: the blob store may then delete their bytes. Like PruneBlobLinks
// it locks the candidates first and re-checks them in a new statement.
func (r *Registry) PruneBlobs(ctx context.Context, before time.Time) ([]string, error) {
	var removed []string
	err := r.db.InTx(ctx, func(tx *Tx) error {
		removed = nil
		q := `SELECT digest FROM registry_blobs b WHERE updated_at < ?
			AND NOT EXISTS (SELECT 1 FROM registry_repository_blobs rb WHERE rb.digest = b.digest)
			AND NOT EXISTS (SELECT 1 FROM registry_manifest_refs mr WHERE mr.child_digest = b.digest)`
		if tx.Dialect() == Postgres {
			q += ` FOR UPDATE`
		}
		rows, err := tx.QueryContext(ctx, q, ms(before))
		if err != nil {
			return fmt.Errorf("store: prune blobs: %w", err)
		}
		var cands []string
		for rows.Next() {
			var d string
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return fmt.Errorf("store: prune blobs: %w", err)
			}
			cands = append(cands, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: prune blobs: %w", err)
		}
		for _, d := range cands {
			res, err := tx.ExecContext(ctx, `DELETE FROM registry_blobs WHERE digest = ? AND updated_at < ?
				AND NOT EXISTS (SELECT 1 FROM registry_repository_blobs rb WHERE rb.digest = ?)
				AND NOT EXISTS (SELECT 1 FROM registry_manifest_refs mr WHERE mr.child_digest = ?)`, d, ms(before), d, d)
			if err != nil {
				return fmt.Errorf("store: prune blobs: %w", err)
			}
			if n, _ := res.RowsAffected(); n > 0 {
				removed = append(removed, d)
			}
		}
		return nil
	})
	return removed, err
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
