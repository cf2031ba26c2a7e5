package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
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

// closeFindingsTx closes the open (ACTIVE or SUPPRESSED) findings of the
// given images in repo (every image of repo when digests is empty) with
// the reason, records closedAt, and writes an Inspector2 Finding event for
// each. It returns how many it closed.
func (s *Service) closeFindingsTx(ctx context.Context, tx *store.Tx, repo string, digests []string, reason CloseReason, now time.Time) (int, error) {
	where, args := `repository = ?`, []any{repo}
	if len(digests) > 0 {
		where += ` AND image_digest IN (` + store.Placeholders(len(digests)) + `)`
		for _, d := range digests {
			args = append(args, d)
		}
	}
	t := ms(now)
	closed, err := changeFindingsTx(ctx, tx, FindingClosed, reason, now, `UPDATE scan_findings SET status = 'CLOSED', updated_at = ?, closed_at = ?, closed_reason = ?,
		last_observed_at = `+lastObservedSQL+`
		WHERE `+where+` AND status <> 'CLOSED'
		RETURNING finding, first_observed_at, last_observed_at`, append([]any{t, t, string(reason)}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("scan: close findings of %s: %w", repo, err)
	}
	if err := s.findingEventsTx(ctx, tx, now, closed); err != nil {
		return 0, err
	}
	return len(closed), nil
}

// changeFindingsTx runs query, an UPDATE of scan_findings ending in
// "RETURNING finding, first_observed_at, last_observed_at", and returns the
// findings it changed as they now stand: in status, updated now, and when
// closed, closed now for reason.
func changeFindingsTx(ctx context.Context, tx *store.Tx, status string, reason CloseReason, now time.Time, query string, args ...any) ([]Finding, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var body string
		var first, last int64
		if err := rows.Scan(&body, &first, &last); err != nil {
			return nil, err
		}
		var f Finding
		if err := json.Unmarshal([]byte(body), &f); err != nil {
			return nil, fmt.Errorf("stored finding: %w", err)
		}
		f.Status, f.FirstObservedAt, f.LastObservedAt, f.UpdatedAt = status, fromMS(first), fromMS(last), now
		if status == FindingClosed {
			f.ClosedAt, f.ClosedReason = now, reason
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// findingEventsTx writes one Inspector2 Finding event for each finding
// of the lists (opened, updated or closed), as it now stands (the caller
// sets status and times).
func (s *Service) findingEventsTx(ctx context.Context, tx *store.Tx, now time.Time, changed ...[]Finding) error {
	n := 0
	for _, list := range changed {
		n += len(list)
	}
	events := make([]event, 0, n)
	for _, list := range changed {
		for _, f := range list {
			events = append(events, event{SourceInspector2, DetailInspector2Finding, f})
		}
	}
	return insertEvents(ctx, tx, s.packer, events, now)
}

// lastObservedSQL is, in SQL over a row of scan_findings, when the finding
// was last observed. A closed finding keeps the time its row holds (every
// close sets it from this expression first). An open one was observed by
// every evaluation of its image since its row was written: a scan rewrites
// every finding it sees, but a re-evaluation rewrites only the findings a
// change opened, updated or closed, and records the time it evaluated the
// image in scan_scans.evaluated_at.
const lastObservedSQL = `CASE WHEN scan_findings.status = 'CLOSED' THEN scan_findings.last_observed_at
	ELSE COALESCE((SELECT CASE WHEN ev.evaluated_at > scan_findings.last_observed_at THEN ev.evaluated_at ELSE scan_findings.last_observed_at END
		FROM scan_scans ev WHERE ev.repository = scan_findings.repository AND ev.image_digest = scan_findings.image_digest),
		scan_findings.last_observed_at) END`

// reopens says, in SQL, whether seeing a stored finding again reopens it:
// a closed one does, unless a newer image on its tag fixed it (the ledger
// keeps that remediation; see supersedeTx).
const reopens = `(scan_findings.status = 'CLOSED' AND scan_findings.closed_reason <> '` + string(ClosedFixedByNewImage) + `')`

// findingCols are the columns upsertFindingsTx writes per finding.
const findingCols = 16

// upsertFindingsTx writes findings (each names its repository and image):
// new ones open with firstObservedAt now; existing ones keep
// firstObservedAt and a SUPPRESSED status, take the new content, and move
// updatedAt only when something changed; CLOSED ones reopen. The ledger's
// fixAvailableSince is set when a fix first appears and cleared when none
// is left.
// bodies, when not nil, are the findings already encoded. run names the
// re-evaluation run that writes them ("" for anything else), and known
// may give the writers of their advisories (see noteAdvisoriesTx).
func upsertFindingsTx(ctx context.Context, tx *store.Tx, fs []Finding, bodies []string, now time.Time, run string, known map[string]string) error {
	t := ms(now)
	_, err := tx.ExecRows(ctx, `INSERT INTO scan_findings (repository, image_digest, finding_key, finding_id, advisory_id,
			package_name, package_version, package_manager, severity, status, fix_available, first_observed_at, last_observed_at,
			updated_at, finding, fix_available_since)`, `
			ON CONFLICT (repository, image_digest, finding_key) DO UPDATE SET
				status = CASE WHEN `+reopens+` THEN 'ACTIVE' ELSE scan_findings.status END,
				updated_at = CASE WHEN `+reopens+` OR scan_findings.finding <> excluded.finding
					THEN excluded.updated_at ELSE scan_findings.updated_at END,
				closed_at = CASE WHEN `+reopens+` THEN 0 ELSE scan_findings.closed_at END,
				closed_reason = CASE WHEN `+reopens+` THEN '' ELSE scan_findings.closed_reason END,
				fix_available_since = CASE WHEN excluded.fix_available_since = 0 THEN 0
					WHEN scan_findings.fix_available_since = 0 THEN excluded.fix_available_since
					ELSE scan_findings.fix_available_since END,
				severity = excluded.severity, fix_available = excluded.fix_available, finding = excluded.finding,
				last_observed_at = excluded.last_observed_at`,
		findingCols, len(fs), func(i int) ([]any, error) {
			f := &fs[i]
			var body string
			if bodies != nil {
				body = bodies[i]
			} else {
				b, err := json.Marshal(f)
				if err != nil {
					return nil, fmt.Errorf("encode finding: %w", err)
				}
				body = string(b)
			}
			fixSince := int64(0)
			if f.FixAvailable != "" && f.FixAvailable != "NO" {
				fixSince = t
			}
			return []any{f.Repository, f.Digest, f.key, f.ID, f.VulnerabilityID, f.Package.Name, f.Package.Version,
				f.Package.PackageManager, f.Severity, FindingActive, f.FixAvailable, t, t, t, body, fixSince}, nil
		})
	if err != nil {
		return fmt.Errorf("scan: store findings: %w", err)
	}
	return noteAdvisoriesTx(ctx, tx, fs, run, known)
}

// noteAdvisoriesTx records in scan_finding_advisories that findings of
// the findings' advisories are stored, by the re-evaluation run named run
// or, when run is "", by anything else. An advisory's row keeps the name
// of the run that stored its first findings while no other writer has
// stored any, and turns to "" for good once one has: re-evaluation looks
// up stored findings of an advisory only when its row is there and names
// another writer (see maybeStoredTx). known, when not nil, is what the
// table said of these advisories earlier in the transaction; else it is
// read. A stale answer is safe: a row never leaves "", and the upsert
// decides on the row as it stands.
//
// Rows that need no change are only read: on PostgreSQL, scans that store
// findings of the same advisories then take no row lock.
func noteAdvisoriesTx(ctx context.Context, tx *store.Tx, fs []Finding, run string, known map[string]string) error {
	set := map[string]bool{}
	for i := range fs {
		set[keyAdvisory(fs[i].key)] = true
	}
	ids := slices.Sorted(maps.Keys(set)) // one lock order for concurrent writers
	if known == nil {
		var err error
		if known, err = advisoryWritersTx(ctx, tx, ids); err != nil {
			return err
		}
	}
	ids = slices.DeleteFunc(ids, func(id string) bool {
		w, ok := known[id]
		return ok && (w == "" || w == run)
	})
	_, err := tx.ExecRows(ctx, `INSERT INTO scan_finding_advisories (advisory, reeval)`,
		` ON CONFLICT (advisory) DO UPDATE SET reeval = '' WHERE scan_finding_advisories.reeval <> excluded.reeval`,
		2, len(ids), func(i int) ([]any, error) { return []any{ids[i], run}, nil })
	if err != nil {
		return fmt.Errorf("scan: note finding advisories: %w", err)
	}
	return nil
}

// advisoryWritersTx returns, of the advisories ids, those findings were
// ever stored for, each with its writer ("" for any but one
// re-evaluation run).
func advisoryWritersTx(ctx context.Context, tx *store.Tx, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	for start := 0; start < len(ids); start += keyBatch {
		part := ids[start:min(start+keyBatch, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := tx.QueryContext(ctx, `SELECT advisory, reeval FROM scan_finding_advisories WHERE advisory IN (`+store.Placeholders(len(part))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("scan: finding advisories: %w", err)
		}
		for rows.Next() {
			var id, w string
			if err := rows.Scan(&id, &w); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan: finding advisories: %w", err)
			}
			out[id] = w
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("scan: finding advisories: %w", err)
		}
	}
	return out, nil
}

// Remediated reports whether a closing reason is a remediation: the
// vulnerable image was replaced on its tag by one without the
// vulnerability, or deleted. Withdrawn or corrected advisories were never
// real, suppression accepts the risk, and expiry stops watching; none of
// those count towards the time to remediate.
func (r CloseReason) Remediated() bool {
	return r == ClosedFixedByNewImage || r == ClosedImageDeleted
}

// RemediationStats sums up one repository's ledger over a period.
type RemediationStats struct {
	Repository string `json:"repository"`
	// Open and Suppressed count the findings open now.
	Open       int `json:"open"`
	Suppressed int `json:"suppressed"`
	// New counts the findings first observed in the period, Fixable those
	// whose fix became available in it.
	New     int `json:"new"`
	Fixable int `json:"fixable"`
	// Closed counts the findings closed in the period, by reason.
	Closed map[CloseReason]int `json:"closed"`
	// Remediated counts the closings that were remediations, and
	// MeanTimeToRemediate is their mean time from first observation to
	// closing.
	Remediated          int           `json:"remediated"`
	MeanTimeToRemediate time.Duration `json:"meanTimeToRemediate"`
}

// Remediation returns the ledger's summary per repository (those named, or
// every repository with findings) for the period [since, until).
func (s *Service) Remediation(ctx context.Context, repos []string, since, until time.Time) ([]RemediationStats, error) {
	byRepo := map[string]*RemediationStats{}
	remediatedMS := map[string]int64{} // per repository: the sum of closedAt - firstObservedAt
	get := func(r string) *RemediationStats {
		st := byRepo[r]
		if st == nil {
			st = &RemediationStats{Repository: r, Closed: map[CloseReason]int{}}
			byRepo[r] = st
		}
		return st
	}
	for _, r := range repos {
		get(r)
	}
	repoCond, repoArgs := "", []any{}
	if len(repos) > 0 {
		repoCond = ` AND repository IN (` + store.Placeholders(len(repos)) + `)`
		for _, r := range repos {
			repoArgs = append(repoArgs, r)
		}
	}
	lo, hi := ms(since), ms(until)
	type query struct {
		sql  string
		args []any
		scan func(repo string, key string, n int, sum int64)
	}
	queries := []query{
		{`SELECT repository, status, COUNT(*), 0 FROM scan_findings WHERE status <> 'CLOSED'` + repoCond + ` GROUP BY repository, status`,
			repoArgs, func(repo, status string, n int, _ int64) {
				if status == FindingSuppressed {
					get(repo).Suppressed += n
				} else {
					get(repo).Open += n
				}
			}},
		{`SELECT repository, '', COUNT(*), 0 FROM scan_findings WHERE first_observed_at >= ? AND first_observed_at < ?` + repoCond + ` GROUP BY repository`,
			append([]any{lo, hi}, repoArgs...), func(repo, _ string, n int, _ int64) { get(repo).New += n }},
		{`SELECT repository, '', COUNT(*), 0 FROM scan_findings WHERE fix_available_since >= ? AND fix_available_since < ? AND fix_available_since > 0` + repoCond + ` GROUP BY repository`,
			append([]any{lo, hi}, repoArgs...), func(repo, _ string, n int, _ int64) { get(repo).Fixable += n }},
		{`SELECT repository, closed_reason, COUNT(*), SUM(closed_at - first_observed_at) FROM scan_findings
			WHERE closed_at >= ? AND closed_at < ? AND closed_at > 0` + repoCond + ` GROUP BY repository, closed_reason`,
			append([]any{lo, hi}, repoArgs...), func(repo, reason string, n int, sum int64) {
				st := get(repo)
				st.Closed[CloseReason(reason)] += n
				if CloseReason(reason).Remediated() {
					st.Remediated += n
					remediatedMS[repo] += sum
				}
			}},
	}
	for _, q := range queries {
		rows, err := s.db.QueryContext(ctx, q.sql, q.args...)
		if err != nil {
			return nil, fmt.Errorf("scan: remediation summary: %w", err)
		}
		for rows.Next() {
			var repo, key string
			var n int
			var sum int64
			if err := rows.Scan(&repo, &key, &n, &sum); err != nil {
				rows.Close()
				return nil, fmt.Errorf("scan: remediation summary: %w", err)
			}
			q.scan(repo, key, n, sum)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("scan: remediation summary: %w", err)
		}
	}
	out := make([]RemediationStats, 0, len(byRepo))
	for repo, st := range byRepo {
		if st.Remediated > 0 {
			st.MeanTimeToRemediate = time.Duration(remediatedMS[repo]/int64(st.Remediated)) * time.Millisecond
		}
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b RemediationStats) int { return strings.Compare(a.Repository, b.Repository) })
	return out, nil
}
