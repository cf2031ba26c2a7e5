package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// registryChange is a registry outbox event besides a push that the push
// poller applies, in outbox order, in the transaction that moves its
// cursor.
type registryChange struct {
	kind string
	repo string
	// digests: the deleted image, or every image of a deleted repository.
	digests []string
}

// changeOf reads the registry outbox events the poller acts on besides
// pushes: image and repository deletions, repository creations. It
// returns nil for other kinds (and for an unreadable payload, logged).
func (s *Service) changeOf(e store.OutboxEvent) *registryChange {
	var c registryChange
	var err error
	switch e.Kind {
	case store.OutboxImageDeleted:
		var p store.ImageDeleted
		err = json.Unmarshal(e.Payload, &p)
		c = registryChange{kind: e.Kind, repo: p.Repository, digests: []string{p.Digest}}
	case store.OutboxRepositoryDeleted:
		var p store.RepositoryDeleted
		err = json.Unmarshal(e.Payload, &p)
		c = registryChange{kind: e.Kind, repo: p.Repository, digests: p.Digests}
	case store.OutboxRepositoryCreated:
		var p store.RepositoryCreated
		err = json.Unmarshal(e.Payload, &p)
		c = registryChange{kind: e.Kind, repo: p.Repository}
	default:
		return nil
	}
	if err != nil || c.repo == "" {
		s.log.Warn("scan: unreadable outbox event", "id", e.ID, "kind", e.Kind, "err", err)
		return nil
	}
	return &c
}

// applyChangeTx applies one registry change inside the poller's
// transaction. cfg is the registry scanning configuration in effect.
func (s *Service) applyChangeTx(ctx context.Context, tx *store.Tx, cfg Config, c *registryChange, now time.Time) error {
	switch c.kind {
	case store.OutboxImageDeleted:
		return s.forgetImagesTx(ctx, tx, c.repo, c.digests, c.digests, now)
	case store.OutboxRepositoryDeleted:
		if err := s.forgetImagesTx(ctx, tx, c.repo, nil, c.digests, now); err != nil {
			return err
		}
		return s.repositoryScopeTx(ctx, tx, cfg, c.repo, false, now)
	case store.OutboxRepositoryCreated:
		return s.repositoryScopeTx(ctx, tx, cfg, c.repo, true, now)
	}
	return nil
}

// forgetImagesTx removes what the scanning service holds about deleted
// images of repo (all of its images when only is empty): it announces
// their coverage's end, closes their findings with reason
// ClosedImageDeleted (writing the Inspector2 Finding events), deletes
// their scan statuses and the jobs not yet running, and, for each digest
// of digests no repository holds any more, its inventory and its entries
// in the inverted package index. A job already running finds its status
// gone and stores nothing.
func (s *Service) forgetImagesTx(ctx context.Context, tx *store.Tx, repo string, only, digests []string, now time.Time) error {
	if err := s.coverageDeletedTx(ctx, tx, repo, only, now); err != nil {
		return err
	}
	if _, err := s.closeFindingsTx(ctx, tx, repo, only, ClosedImageDeleted, now); err != nil {
		return err
	}
	where, args := `repository = ?`, []any{repo}
	if len(only) > 0 {
		where += ` AND image_digest IN (` + store.Placeholders(len(only)) + `)`
		for _, d := range only {
			args = append(args, d)
		}
	}
	for _, q := range []string{
		`DELETE FROM scan_scans WHERE ` + where,
		`DELETE FROM scan_jobs WHERE state <> 'running' AND ` + where,
	} {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("scan: forget deleted images of %s: %w", repo, err)
		}
	}
	for _, d := range digests {
		var held int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM registry_manifests WHERE digest = ?`, d).Scan(&held); err != nil {
			return fmt.Errorf("scan: is %s still held: %w", d, err)
		}
		if held > 0 {
			continue
		}
		for _, q := range []string{
			`DELETE FROM scan_package_keys WHERE image_digest = ?`,
			`DELETE FROM scan_inventories WHERE image_digest = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, d); err != nil {
				return fmt.Errorf("scan: forget inventory of %s: %w", d, err)
			}
		}
	}
	return nil
}
