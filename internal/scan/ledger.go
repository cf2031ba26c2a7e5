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
