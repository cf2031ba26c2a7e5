package scan

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// BenchmarkAnnounceCoverage measures one coverage pass over 10,000
// enhanced images whose coverage was announced already (the steady state
// the poller pays every CoverageSweep), and one that announces a status
// change of 200 of them.
func BenchmarkAnnounceCoverage(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(backend.name, func(b *testing.B) {
			ctx := context.Background()
			db := backend.open(b)
			s, err := New(ctx, Options{Store: db})
			if err != nil {
				b.Fatal(err)
			}
			const images = 10_000
			for start := 0; start < images; start += 500 {
				var vals []string
				var args []any
				for i := start; i < start+500; i++ {
					vals = append(vals, "(?, ?, 'ENHANCED', 'ACTIVE', 1)")
					args = append(args, fmt.Sprintf("repo-%d", i%50), fmt.Sprintf("sha256:%064d", i))
				}
				if _, err := db.ExecContext(ctx, `INSERT INTO scan_scans (repository, image_digest, scan_type, status, started_at) VALUES `+
					strings.Join(vals, ","), args...); err != nil {
					b.Fatal(err)
				}
			}
			if n, err := s.AnnounceCoverage(ctx); err != nil || n != images {
				b.Fatalf("first pass: %d %v", n, err)
			}
			b.Run("unchanged", func(b *testing.B) {
				for b.Loop() {
					if n, err := s.AnnounceCoverage(ctx); err != nil || n != 0 {
						b.Fatalf("%d %v", n, err)
					}
				}
			})
			b.Run("200-changed", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					if _, err := db.ExecContext(ctx, `UPDATE scan_scans SET status = CASE WHEN status = ? THEN ? ELSE ? END
						WHERE repository = 'repo-7'`, StatusActive, StatusEligibilityExp, StatusActive); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if n, err := s.AnnounceCoverage(ctx); err != nil || n != images/50 {
						b.Fatalf("%d %v", n, err)
					}
				}
			})
		})
	}
}
