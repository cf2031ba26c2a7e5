package scan

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// replacedDigests returns the images a push moved tags away from, once
// each.
func replacedDigests(ev store.ImagePushed) []string {
	var out []string
	for _, d := range ev.Replaced {
		if d != ev.Digest && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// supersedeTx applies a new image's findings to the images it replaced on
// their tags: a finding of a replaced image whose vulnerability the new
// image no longer has in the same package was remediated, and closes as
// FIXED_BY_NEW_IMAGE. The replaced image's other findings stay open (it
// still exists and still has them). Only images scanned with the same
// scan type are compared (a basic scan does not see language packages).
func (s *Service) supersedeTx(ctx context.Context, tx *store.Tx, repo string, p payload, fs []Finding, now time.Time) error {
	if len(p.Replaces) == 0 {
		return nil
	}
	still := make(map[[2]string]bool, len(fs))
	for _, f := range fs {
		still[[2]string{f.VulnerabilityID, f.Package.Name}] = true
	}
	for _, old := range p.Replaces {
		var typ string
		err := tx.QueryRowContext(ctx, `SELECT scan_type FROM scan_scans WHERE repository = ? AND image_digest = ?`, repo, old).Scan(&typ)
		if err != nil || ScanType(typ) != p.ScanType {
			continue // never scanned, or scanned another way
		}
		rows, err := tx.QueryContext(ctx, `SELECT finding_key, advisory_id, package_name FROM scan_findings
			WHERE repository = ? AND image_digest = ? AND status <> 'CLOSED'`, repo, old)
		if err != nil {
			return fmt.Errorf("scan: findings of the replaced image %s@%s: %w", repo, old, err)
		}
		var fixed []findingRef
		for rows.Next() {
			var key, vuln, pkg string
			if err := rows.Scan(&key, &vuln, &pkg); err != nil {
				rows.Close()
				return fmt.Errorf("scan: findings of the replaced image %s@%s: %w", repo, old, err)
			}
			if !still[[2]string{vuln, pkg}] {
				fixed = append(fixed, findingRef{repo, old, key})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("scan: findings of the replaced image %s@%s: %w", repo, old, err)
		}
		closed, err := closeByKeyTx(ctx, tx, fixed, ClosedFixedByNewImage, now)
		if err != nil {
			return err
		}
		if err := s.findingEventsTx(ctx, tx, now, closed); err != nil {
			return err
		}
	}
	return nil
}

// reinstateTx reopens the findings of an image pushed again (a tag moved
// back to it, as in a rollback) that closed as FIXED_BY_NEW_IMAGE: the
// image is in use again, and so are its vulnerabilities. Each reopened
// finding is announced.
func (s *Service) reinstateTx(ctx context.Context, tx *store.Tx, repo, dg string, now time.Time) error {
	t := ms(now)
	reopened, err := changeFindingsTx(ctx, tx, FindingActive, "", now, `UPDATE scan_findings SET status = 'ACTIVE', updated_at = ?, closed_at = 0, closed_reason = ''
		WHERE repository = ? AND image_digest = ? AND status = 'CLOSED' AND closed_reason = ?
		RETURNING finding, first_observed_at, last_observed_at`, t, repo, dg, string(ClosedFixedByNewImage))
	if err != nil {
		return fmt.Errorf("scan: reinstate findings of %s@%s: %w", repo, dg, err)
	}
	return s.findingEventsTx(ctx, tx, now, reopened)
}
