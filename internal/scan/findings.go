package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
)

// Page asks for one page of findings: After is the token of the previous
// page ("" for the first), Limit the page size (default and cap 1000).
type Page struct {
	After string
	Limit int
}

// FindingsResult is one page of an image's findings with its scan.
type FindingsResult struct {
	Scan     Status
	Findings []Finding
	// SeverityCounts counts the image's findings that are not closed, by
	// severity; only severities that occur are present.
	SeverityCounts map[string]int
	// Next is the token of the next page, "" on the last.
	Next string
}

// Findings returns a page of the open (ACTIVE and SUPPRESSED) findings of
// an image's last scan, most severe first, with the severity counts. It
// returns ErrScanNotFound for an image never scanned.
func (s *Service) Findings(ctx context.Context, repo, dg string, page Page) (*FindingsResult, error) {
	st, err := s.ScanStatus(ctx, repo, dg)
	if err != nil {
		return nil, err
	}
	limit := page.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	offset := 0
	if page.After != "" {
		n, err := strconv.Atoi(page.After)
		if err != nil || n < 0 {
			return nil, &ValidationError{Msg: "invalid nextToken"}
		}
		offset = n
	}
	out := &FindingsResult{Scan: st, Findings: []Finding{}, SeverityCounts: map[string]int{}}
	rows, err := s.db.QueryContext(ctx, `SELECT severity, COUNT(*) FROM scan_findings
		WHERE repository = ? AND image_digest = ? AND status <> 'CLOSED' GROUP BY severity`, repo, dg)
	if err != nil {
		return nil, fmt.Errorf("scan: severity counts: %w", err)
	}
	for rows.Next() {
		var sev string
		var n int
		if err := rows.Scan(&sev, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan: severity counts: %w", err)
		}
		out.SeverityCounts[sev] = n
	}
	rows.Close()
	// Ordered by a rank of severity then the finding id: stable across
	// pages as long as the image is not rescanned in between.
	rows, err = s.db.QueryContext(ctx, `SELECT finding, status, first_observed_at, last_observed_at, updated_at FROM scan_findings
		WHERE repository = ? AND image_digest = ? AND status <> 'CLOSED'
		ORDER BY CASE severity WHEN 'CRITICAL' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 WHEN 'LOW' THEN 3
			WHEN 'INFORMATIONAL' THEN 4 ELSE 5 END, finding_key LIMIT ? OFFSET ?`, repo, dg, limit+1, offset)
	if err != nil {
		return nil, fmt.Errorf("scan: findings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var body, status string
		var first, last, updated int64
		if err := rows.Scan(&body, &status, &first, &last, &updated); err != nil {
			return nil, fmt.Errorf("scan: findings: %w", err)
		}
		var f Finding
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, fmt.Errorf("scan: stored finding: %w", err)
		}
		f.Status, f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = status, fromMS(first), fromMS(last), fromMS(updated)
		out.Findings = append(out.Findings, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan: findings: %w", err)
	}
	if len(out.Findings) > limit {
		out.Findings = out.Findings[:limit]
		out.Next = strconv.Itoa(offset + limit)
	}
	return out, nil
}
