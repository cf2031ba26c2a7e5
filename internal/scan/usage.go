package scan

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drydockhq/drydock/internal/store"
)

// UsageKind is what a metered scan was.
type UsageKind string

// The kinds of metered scans.
const (
	// UsageInitialBasic is a basic scan of an image (on push or manual).
	UsageInitialBasic UsageKind = "INITIAL_SCAN_BASIC"
	// UsageInitialEnhanced is an enhanced scan of an image when it is
	// pushed or first comes under enhanced scanning.
	UsageInitialEnhanced UsageKind = "INITIAL_SCAN_ENHANCED"
	// UsageRescan is a re-evaluation of a stored image: a continuous
	// re-scan after the vulnerability data changed, or a re-scan after the
	// indexer improved.
	UsageRescan UsageKind = "RESCAN"
)

// usageKinds lists the kinds in the order reports show them.
var usageKinds = []UsageKind{UsageInitialBasic, UsageInitialEnhanced, UsageRescan}

func (k UsageKind) valid() bool {
	return k == UsageInitialBasic || k == UsageInitialEnhanced || k == UsageRescan
}

// UsageRow is how many scans of one kind ran in one repository on one UTC
// day.
type UsageRow struct {
	Day        time.Time `json:"day"` // 00:00 UTC
	Repository string    `json:"repository"`
	Kind       UsageKind `json:"kind"`
	Count      int64     `json:"count"`
}

// utcDay is the start (00:00 UTC) of t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// meterTx counts n scans of kind in repo on now's UTC day, inside the
// transaction that stores the scans' results: a transaction rolled back
// (and its job retried) counts nothing.
func (s *Service) meterTx(ctx context.Context, tx *store.Tx, repo string, kind UsageKind, n int, now time.Time) error {
	if n <= 0 {
		return nil
	}
	if !kind.valid() {
		return fmt.Errorf("scan: meter: unknown usage kind %q", kind)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO scan_usage (day, repository, kind, count) VALUES (?, ?, ?, ?)
		ON CONFLICT (day, repository, kind) DO UPDATE SET count = scan_usage.count + excluded.count`,
		ms(utcDay(now)), repo, string(kind), int64(n)); err != nil {
		return fmt.Errorf("scan: meter %s of %s: %w", kind, repo, err)
	}
	return nil
}

// scanUsageKind is the kind a scan job counts as: a re-scan when the
// service queued it to re-evaluate a stored image (trigger "rescan" or
// "reindex"), else an initial scan of its scan type.
func scanUsageKind(p payload) UsageKind {
	switch {
	case p.Trigger == "rescan" || p.Trigger == triggerReindex:
		return UsageRescan
	case p.ScanType == Enhanced:
		return UsageInitialEnhanced
	}
	return UsageInitialBasic
}

// meterScanTx counts the scan a job ran (see scanUsageKind).
func (s *Service) meterScanTx(ctx context.Context, tx *store.Tx, repo string, p payload, now time.Time) error {
	return s.meterTx(ctx, tx, repo, scanUsageKind(p), 1, now)
}

// Usage returns the scans counted on the UTC days from from's day up to
// and excluding to's day (no upper bound when to is zero), in one
// repository or in all when repo is empty, ordered by day, repository and
// kind.
func (s *Service) Usage(ctx context.Context, from, to time.Time, repo string) ([]UsageRow, error) {
	q := `SELECT day, repository, kind, count FROM scan_usage WHERE day >= ?`
	args := []any{ms(utcDay(from))}
	if !to.IsZero() {
		q += ` AND day < ?`
		args = append(args, ms(utcDay(to)))
	}
	if repo != "" {
		q += ` AND repository = ?`
		args = append(args, repo)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY day, repository, kind`, args...)
	if err != nil {
		return nil, fmt.Errorf("scan: usage: %w", err)
	}
	defer rows.Close()
	var out []UsageRow
	for rows.Next() {
		var r UsageRow
		var day int64
		var kind string
		if err := rows.Scan(&day, &r.Repository, &kind, &r.Count); err != nil {
			return nil, fmt.Errorf("scan: usage: %w", err)
		}
		r.Day, r.Kind = fromMS(day), UsageKind(kind)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan: usage: %w", err)
	}
	return out, nil
}

// UsageTotals sums the counts of rows by kind.
func UsageTotals(rows []UsageRow) map[UsageKind]int64 {
	t := make(map[UsageKind]int64, len(usageKinds))
	for _, r := range rows {
		t[r.Kind] += r.Count
	}
	return t
}

// usageCollector exposes the stored totals as drydock_scans_total.
type usageCollector struct {
	db    *store.DB
	total *prometheus.Desc
}

// UsageCollector returns a Prometheus collector of drydock_scans_total
// {kind="initial_basic"|"initial_enhanced"|"rescan"}: the scans counted in
// the store since it was created. The counts are the store's, the same on
// every replica sharing it (aggregate replicas with max, not sum) and
// unchanged by restarts.
func (s *Service) UsageCollector() prometheus.Collector {
	return &usageCollector{db: s.db, total: prometheus.NewDesc("drydock_scans_total",
		"Image scans completed, by kind: initial_basic, initial_enhanced, rescan (re-evaluations of stored images). Read from the store: every replica reports the registry's total.",
		[]string{"kind"}, nil)}
}

// metricKind is a usage kind's label value.
var metricKind = map[UsageKind]string{
	UsageInitialBasic:    "initial_basic",
	UsageInitialEnhanced: "initial_enhanced",
	UsageRescan:          "rescan",
}

// Describe implements prometheus.Collector.
func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.total }

// Collect implements prometheus.Collector.
func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	totals, err := usageByKind(ctx, c.db)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.total, err)
		return
	}
	for _, k := range usageKinds {
		ch <- prometheus.MustNewConstMetric(c.total, prometheus.CounterValue, float64(totals[k]), metricKind[k])
	}
}

func usageByKind(ctx context.Context, db *store.DB) (map[UsageKind]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT kind, CAST(SUM(count) AS BIGINT) FROM scan_usage GROUP BY kind`)
	if err != nil {
		return nil, fmt.Errorf("scan: usage totals: %w", err)
	}
	defer rows.Close()
	out := map[UsageKind]int64{}
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("scan: usage totals: %w", err)
		}
		out[UsageKind(k)] = n
	}
	return out, rows.Err()
}
