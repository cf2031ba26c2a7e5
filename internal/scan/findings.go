package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/drydockhq/drydock/internal/store"
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
	rows, err = s.db.QueryContext(ctx, `SELECT finding, status, first_observed_at, `+lastObservedSQL+`, updated_at FROM scan_findings
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

// Summary is an image's scan status with its open findings' severity
// counts (DescribeImages' imageScanStatus and imageScanFindingsSummary).
type Summary struct {
	Status         Status
	SeverityCounts map[string]int
}

// Summaries returns the scan summary of each given image of a repository
// that was scanned, keyed by digest, in two queries whatever their number
// (DescribeImages asks for up to 100 images at once).
func (s *Service) Summaries(ctx context.Context, repo string, digests []string) (map[string]Summary, error) {
	out := map[string]Summary{}
	const chunk = 400
	for start := 0; start < len(digests); start += chunk {
		part := digests[start:min(start+chunk, len(digests))]
		in := store.Placeholders(len(part))
		args := make([]any, 0, len(part)+1)
		args = append(args, repo)
		for _, d := range part {
			args = append(args, d)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT image_digest, scan_type, status, description, started_at, completed_at, vuln_source_updated_at, platform
			FROM scan_scans WHERE repository = ? AND image_digest IN (`+in+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("scan: summaries: %w", err)
		}
		for rows.Next() {
			st := Status{Repository: repo}
			var typ string
			var started, completed, vsu int64
			if err := rows.Scan(&st.Digest, &typ, &st.Status, &st.Description, &started, &completed, &vsu, &st.Platform); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan: summaries: %w", err)
			}
			st.ScanType, st.StartedAt, st.CompletedAt, st.VulnerabilitySourceUpdatedAt = ScanType(typ), fromMS(started), fromMS(completed), fromMS(vsu)
			out[st.Digest] = Summary{Status: st, SeverityCounts: map[string]int{}}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("scan: summaries: %w", err)
		}
		rows, err = s.db.QueryContext(ctx, `SELECT image_digest, severity, COUNT(*) FROM scan_findings
			WHERE repository = ? AND image_digest IN (`+in+`) AND status <> 'CLOSED' GROUP BY image_digest, severity`, args...)
		if err != nil {
			return nil, fmt.Errorf("scan: summaries: %w", err)
		}
		for rows.Next() {
			var d, sev string
			var n int
			if err := rows.Scan(&d, &sev, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan: summaries: %w", err)
			}
			if sm, ok := out[d]; ok {
				sm.SeverityCounts[sev] = n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("scan: summaries: %w", err)
		}
	}
	return out, nil
}
