package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// FindingQuery selects findings across images (Inspector's ListFindings
// filter criteria for ECR images). Empty lists match everything; values in
// one list are alternatives, lists are all required.
type FindingQuery struct {
	Repositories     []string
	Digests          []string
	Severities       []string
	VulnerabilityIDs []string
	PackageNames     []string
	// Statuses: empty matches every status, CLOSED included.
	Statuses     []string
	FixAvailable []string
	// The ledger's bounds (zero: none): findings first observed, fixable,
	// or closed at or after the time.
	FirstObservedSince time.Time
	FixAvailableSince  time.Time
	ClosedSince        time.Time
}

func (q FindingQuery) where() (string, []any) {
	var conds []string
	var args []any
	add := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		conds = append(conds, col+" IN ("+store.Placeholders(len(vals))+")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	add("repository", q.Repositories)
	add("image_digest", q.Digests)
	add("severity", q.Severities)
	add("advisory_id", q.VulnerabilityIDs)
	add("package_name", q.PackageNames)
	add("status", q.Statuses)
	add("fix_available", q.FixAvailable)
	since := func(col string, t time.Time) {
		if !t.IsZero() {
			conds = append(conds, col+" >= ? AND "+col+" > 0")
			args = append(args, ms(t))
		}
	}
	since("first_observed_at", q.FirstObservedSince)
	since("fix_available_since", q.FixAvailableSince)
	since("closed_at", q.ClosedSince)
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ListFindings returns a page of the findings matching q, newest update
// first, and the token of the next page ("" on the last).
func (s *Service) ListFindings(ctx context.Context, q FindingQuery, page Page) ([]Finding, string, error) {
	limit := page.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	offset := 0
	if page.After != "" {
		n, err := strconv.Atoi(page.After)
		if err != nil || n < 0 {
			return nil, "", &ValidationError{Msg: "invalid nextToken"}
		}
		offset = n
	}
	where, args := q.where()
	args = append(args, limit+1, offset)
	rows, err := s.db.QueryContext(ctx, `SELECT finding, status, first_observed_at, `+lastObservedSQL+`, updated_at,
		fix_available_since, closed_at, closed_reason FROM scan_findings`+where+`
		ORDER BY updated_at DESC, finding_id LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("scan: list findings: %w", err)
	}
	defer rows.Close()
	out := []Finding{}
	for rows.Next() {
		var body, status string
		var first, last, updated, fixSince, closedAt int64
		var reason string
		if err := rows.Scan(&body, &status, &first, &last, &updated, &fixSince, &closedAt, &reason); err != nil {
			return nil, "", fmt.Errorf("scan: list findings: %w", err)
		}
		var f Finding
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, "", fmt.Errorf("scan: stored finding: %w", err)
		}
		f.Status, f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = status, fromMS(first), fromMS(last), fromMS(updated)
		f.FixAvailableSince, f.ClosedAt, f.ClosedReason = fromMS(fixSince), fromMS(closedAt), CloseReason(reason)
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("scan: list findings: %w", err)
	}
	next := ""
	if len(out) > limit {
		out, next = out[:limit], strconv.Itoa(offset+limit)
	}
	return out, next, nil
}

// Suppress sets the findings matching q that are ACTIVE to SUPPRESSED
// (suppressed true) or the SUPPRESSED ones back to ACTIVE, and returns how
// many changed. CLOSED findings stay closed.
func (s *Service) Suppress(ctx context.Context, q FindingQuery, suppressed bool) (int64, error) {
	from, to := FindingActive, FindingSuppressed
	if !suppressed {
		from, to = to, from
	}
	q.Statuses = []string{from}
	where, args := q.where()
	now := ms(s.opts.Now())
	closedAt, reason := now, string(ClosedSuppressed)
	if !suppressed {
		closedAt, reason = 0, ""
	}
	res, err := s.db.ExecContext(ctx, `UPDATE scan_findings SET status = ?, updated_at = ?, closed_at = ?, closed_reason = ?`+where,
		append([]any{to, now, closedAt, reason}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("scan: suppress findings: %w", err)
	}
	return res.RowsAffected()
}
