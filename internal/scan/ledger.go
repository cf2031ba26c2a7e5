package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// CloseReason says why a finding closed (or left the active set). The
// ledger keeps it with closedAt.
type CloseReason string

// The reasons a finding closes.
const (
	// ClosedNotObserved: a scan of the image no longer finds it (the
	// image's inventory changed, as after a re-index).
	ClosedNotObserved CloseReason = "NOT_OBSERVED"
	// ClosedAdvisoryWithdrawn: the advisory was withdrawn or removed.
	ClosedAdvisoryWithdrawn CloseReason = "ADVISORY_WITHDRAWN"
	// ClosedAdvisoryChanged: the advisory's ranges or the distribution's
	// status were corrected so that the package is no longer affected.
	ClosedAdvisoryChanged CloseReason = "ADVISORY_CHANGED"
	// ClosedFixedByNewImage: a newer image pushed to the same tag no
	// longer has the vulnerability.
	ClosedFixedByNewImage CloseReason = "FIXED_BY_NEW_IMAGE"
	// ClosedImageDeleted: the image (or its repository) was deleted.
	ClosedImageDeleted CloseReason = "IMAGE_DELETED"
	// ClosedEligibilityExpired: the image fell out of the monitoring
	// window (SCAN_ELIGIBILITY_EXPIRED).
	ClosedEligibilityExpired CloseReason = "ELIGIBILITY_EXPIRED"
	// ClosedSuppressed: a suppression rule matched it (status SUPPRESSED).
	ClosedSuppressed CloseReason = "SUPPRESSED"
)

// packageRef is the package part of a finding key (see findingKey).
func packageRef(findingKey string) string {
	_, ref, _ := strings.Cut(findingKey, "|")
	return ref
}

// closeFindingsTx closes the open (ACTIVE or SUPPRESSED) findings of the
// given images in repo (every image of repo when digests is empty) with
// the reason, records closedAt, and writes an Inspector2 Finding event for
// each. It returns how many it closed.
func (s *Service) closeFindingsTx(ctx context.Context, tx *store.Tx, repo string, digests []string, reason CloseReason, now time.Time) (int, error) {
	where, args := `repository = ?`, []any{repo}
	if len(digests) > 0 {
		where += ` AND image_digest IN (` + strings.TrimSuffix(strings.Repeat("?,", len(digests)), ",") + `)`
		for _, d := range digests {
			args = append(args, d)
		}
	}
	t := ms(now)
	rows, err := tx.QueryContext(ctx, `UPDATE scan_findings SET status = 'CLOSED', updated_at = ?, closed_at = ?, closed_reason = ?
		WHERE `+where+` AND status <> 'CLOSED'
		RETURNING finding, first_observed_at, last_observed_at`, append([]any{t, t, string(reason)}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("scan: close findings of %s: %w", repo, err)
	}
	var closed []Finding
	for rows.Next() {
		var body string
		var first, last int64
		if err := rows.Scan(&body, &first, &last); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan: close findings of %s: %w", repo, err)
		}
		var f Finding
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			rows.Close()
			return 0, fmt.Errorf("scan: stored finding: %w", err)
		}
		f.Status, f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = FindingClosed, fromMS(first), fromMS(last), now
		closed = append(closed, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("scan: close findings of %s: %w", repo, err)
	}
	if err := s.findingEventsTx(ctx, tx, nil, nil, closed, now); err != nil {
		return 0, err
	}
	return len(closed), nil
}

// findingEventsTx writes one Inspector2 Finding event for each finding
// opened, updated or closed, with the finding as it now stands (the
// caller sets status and times).
func (s *Service) findingEventsTx(ctx context.Context, tx *store.Tx, opened, updated, closed []Finding, now time.Time) error {
	events := make([]event, 0, len(opened)+len(updated)+len(closed))
	for _, list := range [][]Finding{opened, updated, closed} {
		for _, f := range list {
			events = append(events, event{SourceInspector2, DetailInspector2Finding, f})
		}
	}
	return insertEvents(ctx, tx, events, now)
}

// findingCols are the columns upsertFindingsTx writes per finding.
const findingCols = 17

// upsertFindingsTx writes findings (each names its repository and image):
// new ones open with firstObservedAt now; existing ones keep
// firstObservedAt and a SUPPRESSED status, take the new content, and move
// updatedAt only when something changed; CLOSED ones reopen. The ledger's
// fixAvailableSince is set when a fix first appears and cleared when none
// is left.
func upsertFindingsTx(ctx context.Context, tx *store.Tx, fs []Finding, now time.Time) error {
	t := ms(now)
	const batch = 25 // 25 rows x 17 columns stay well inside both backends' parameter limits
	for start := 0; start < len(fs); start += batch {
		end := min(start+batch, len(fs))
		args := make([]any, 0, (end-start)*findingCols)
		for i := start; i < end; i++ {
			f := &fs[i]
			body, err := json.Marshal(f)
			if err != nil {
				return fmt.Errorf("scan: encode finding: %w", err)
			}
			fixSince := int64(0)
			if f.FixAvailable != "" && f.FixAvailable != "NO" {
				fixSince = t
			}
			args = append(args, f.Repository, f.Digest, f.key, f.ID, f.VulnerabilityID, f.Package.Name, f.Package.Version,
				f.Package.PackageManager, f.Severity, FindingActive, f.FixAvailable, t, t, t, string(body), packageRef(f.key), fixSince)
		}
		row := "(" + strings.TrimSuffix(strings.Repeat("?,", findingCols), ",") + ")"
		values := strings.TrimSuffix(strings.Repeat(row+",", end-start), ",")
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_findings (repository, image_digest, finding_key, finding_id, advisory_id,
			package_name, package_version, package_manager, severity, status, fix_available, first_observed_at, last_observed_at,
			updated_at, finding, package_ref, fix_available_since) VALUES `+values+`
			ON CONFLICT (repository, image_digest, finding_key) DO UPDATE SET
				status = CASE WHEN scan_findings.status = 'CLOSED' THEN 'ACTIVE' ELSE scan_findings.status END,
				updated_at = CASE WHEN scan_findings.status = 'CLOSED' OR scan_findings.finding <> excluded.finding
					THEN excluded.updated_at ELSE scan_findings.updated_at END,
				closed_at = CASE WHEN scan_findings.status = 'CLOSED' THEN 0 ELSE scan_findings.closed_at END,
				closed_reason = CASE WHEN scan_findings.status = 'CLOSED' THEN '' ELSE scan_findings.closed_reason END,
				fix_available_since = CASE WHEN excluded.fix_available_since = 0 THEN 0
					WHEN scan_findings.fix_available_since = 0 THEN excluded.fix_available_since
					ELSE scan_findings.fix_available_since END,
				severity = excluded.severity, fix_available = excluded.fix_available, finding = excluded.finding,
				last_observed_at = excluded.last_observed_at, package_ref = excluded.package_ref`, args...); err != nil {
			return fmt.Errorf("scan: store findings: %w", err)
		}
	}
	return nil
}
