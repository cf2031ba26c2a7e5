package scan

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// BenchmarkReindexSweep measures one re-indexer sweep (what Run does every
// 15 s) over 10,000 stored images: "stale" when every inventory was made
// by an older cataloger set (the sweep picks 10 images and queues their
// jobs), "current" when none was (the steady state). Rows are written
// directly; inventories hold a small JSON body.
func BenchmarkReindexSweep(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		for _, stale := range []bool{true, false} {
			name := backend.name + "/current"
			if stale {
				name = backend.name + "/stale"
			}
			b.Run(name, func(b *testing.B) { benchReindexSweep(b, backend.open(b), stale) })
		}
	}
}

func benchReindexSweep(b *testing.B, db *store.DB, stale bool) {
	ctx := context.Background()
	svc, err := New(ctx, Options{Store: db})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("*")}}}); err != nil {
		b.Fatal(err)
	}
	set := svc.indexer.CatalogerSet()
	if stale {
		set = set[:strings.LastIndex(set, ",")] // a cataloger added since
	}
	const images = 10_000
	err = db.InTx(ctx, func(tx *store.Tx) error {
		for i := 0; i < images; i++ {
			dg := fmt.Sprintf("sha256:%064x", i)
			if _, err := tx.ExecContext(ctx, `INSERT INTO scan_inventories (image_digest, catalogers, inventory, created_at) VALUES (?, ?, '{"packages":[]}', ?)`, dg, set, int64(i)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO scan_scans (repository, image_digest, scan_type, status, started_at) VALUES (?, ?, 'ENHANCED', 'ACTIVE', 1)`, fmt.Sprintf("repo%d", i%100), dg); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	want := 0
	if stale {
		want = DefaultReindexRate
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := db.ExecContext(ctx, `DELETE FROM scan_jobs`); err != nil {
			b.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM scan_cursors WHERE name = ?`, reindexCursor); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		n, err := svc.ReindexStale(ctx, DefaultReindexRate)
		if err != nil || n != want {
			b.Fatalf("sweep: %d %v, want %d", n, err, want)
		}
	}
}

// BenchmarkMeterTx measures what metering adds to a scan's final
// transaction: one upsert of the (day, repository, kind) row ("meter"),
// against the same transaction without it ("write": one row written, so
// the commit costs what a scan's commit does).
func BenchmarkMeterTx(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		for _, meter := range []bool{false, true} {
			name := backend.name + "/write"
			if meter {
				name = backend.name + "/meter"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				db := backend.open(b)
				svc, err := New(ctx, Options{Store: db})
				if err != nil {
					b.Fatal(err)
				}
				now := time.Now()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					err := db.InTx(ctx, func(tx *store.Tx) error {
						// The scan's own writes, reduced to one row.
						if _, err := tx.ExecContext(ctx, `INSERT INTO scan_cursors (name, position) VALUES ('bench', ?)
							ON CONFLICT (name) DO UPDATE SET position = excluded.position`, i); err != nil {
							return err
						}
						if !meter {
							return nil
						}
						return svc.meterTx(ctx, tx, fmt.Sprintf("repo%d", i%50), UsageRescan, 1, now)
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
