package vulndb_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
	"github.com/drydockhq/drydock/internal/vulndb/sources"
)

// fixtureSources is the configuration of every real fixture feed, read in
// place: the OSV archives (Go, crates.io, PyPI sample, AlmaLinux sample),
// the Alpine secdb of v3.3 to v3.11 and CISA's KEV catalogue.
func fixtureSources(b *testing.B) []vulndb.SourceFeed {
	b.Helper()
	var c sources.Config
	c.NoDefaults = true
	for _, s := range [][3]string{
		{"osv-Go", sources.KindOSV, "feeds/osv/Go/all.zip"},
		{"osv-crates.io", sources.KindOSV, "feeds/osv/crates.io/all.zip"},
		{"osv-PyPI", sources.KindOSV, "feeds/osv/PyPI/sample.zip"},
		{"osv-AlmaLinux", sources.KindOSV, "feeds/osv/AlmaLinux/sample.zip"},
		{"kev", sources.KindKEV, "enrichment/kev/known_exploited_vulnerabilities.json"},
	} {
		c.Sources = append(c.Sources, sources.Source{Name: s[0], Kind: s[1], URL: testutil.Fixture(b, s[2])})
	}
	dirs, _ := filepath.Glob(filepath.Join(testutil.Fixture(b, "feeds/alpine-secdb"), "v3.*"))
	for _, d := range dirs {
		for _, repo := range []string{"main", "community"} {
			p := filepath.Join(d, repo+".yaml")
			if _, err := os.Stat(p); err == nil {
				c.Sources = append(c.Sources, sources.Source{Name: "alpine-" + filepath.Base(d) + "-" + repo, Kind: sources.KindAlpine, URL: p})
			}
		}
	}
	feeds, err := c.Feeds(sources.Options{Client: fetch.New(fetch.Options{TempDir: b.TempDir()})})
	if err != nil {
		b.Fatal(err)
	}
	return feeds
}

// BenchmarkFullImport syncs every fixture feed into an empty database: read
// and parse each feed, hash, diff and write one generation.
func BenchmarkFullImport(b *testing.B) {
	feeds := fixtureSources(b)
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			advisories := 0
			start := cpuNow()
			for b.Loop() {
				b.StopTimer()
				var st *store.DB
				if backend == "sqlite" {
					st = storetest.SQLite(b)
				} else {
					st = storetest.Postgres(b)
				}
				db, err := vulndb.Open(context.Background(), st)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := (&vulndb.Syncer{DB: db, Sources: feeds}).Sync(context.Background(), vulndb.SyncOptions{})
				if err != nil || len(res.Failed()) > 0 {
					b.Fatalf("sync: %v %+v", err, res.Failed())
				}
				advisories = res.ChangeSet.Counts().Added
			}
			reportCPU(b, start, b.N)
			b.ReportMetric(float64(advisories), "advisories")
		})
	}
}

// BenchmarkIncrementalGo applies the real Go delta (505 added, 16 modified)
// to a database holding the older snapshot. "sync" is what a server's
// scheduled sync does when the archive changed upstream: fetch the new
// all.zip (here from a local file), read the entries that changed since the
// previous fetch, diff and write the generation. "sync-cold" is the same
// from a process that has not fetched the feed before (drydock db update):
// every entry is read. "apply" starts from the parsed feed.
func BenchmarkIncrementalGo(b *testing.B) {
	oldFeed := readOSV(b, "feeds/osv/Go/all-2026-06-26.zip", "osv-Go")
	newFeed := readOSV(b, "feeds/osv/Go/all.zip", "osv-Go")
	oldBytes, err := os.ReadFile(testutil.Fixture(b, "feeds/osv/Go/all-2026-06-26.zip"))
	if err != nil {
		b.Fatal(err)
	}
	newBytes, err := os.ReadFile(testutil.Fixture(b, "feeds/osv/Go/all.zip"))
	if err != nil {
		b.Fatal(err)
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, mode := range []string{"apply", "sync", "sync-cold"} {
			b.Run(backend+"/"+mode, func(b *testing.B) {
				var st *store.DB
				if backend == "sqlite" {
					st = storetest.SQLite(b)
				} else {
					st = storetest.Postgres(b)
				}
				ctx := context.Background()
				db, err := vulndb.Open(ctx, st)
				if err != nil {
					b.Fatal(err)
				}
				feedPath := filepath.Join(b.TempDir(), "all.zip")
				var c sources.Config
				c.NoDefaults = true
				c.Sources = []sources.Source{{Name: "osv-Go", Kind: sources.KindOSV, URL: feedPath}}
				client := fetch.New(fetch.Options{TempDir: b.TempDir()})
				var cpu int64
				for b.Loop() {
					b.StopTimer()
					// Back to the older snapshot, fetched through the feed
					// so that it remembers it.
					feeds, err := c.Feeds(sources.Options{Client: client})
					if err != nil {
						b.Fatal(err)
					}
					syncer := &vulndb.Syncer{DB: db, Sources: feeds}
					if err := os.WriteFile(feedPath, oldBytes, 0o600); err != nil {
						b.Fatal(err)
					}
					if _, err := syncer.Sync(ctx, vulndb.SyncOptions{AllowShrink: true}); err != nil {
						b.Fatal(err)
					}
					if mode == "sync-cold" {
						feeds, _ = c.Feeds(sources.Options{Client: client})
						syncer.Sources = feeds
					}
					if err := os.WriteFile(feedPath, newBytes, 0o600); err != nil {
						b.Fatal(err)
					}
					t0 := cpuNow()
					b.StartTimer()
					var res *vulndb.ApplyResult
					if mode == "apply" {
						res, err = db.Apply(ctx, []vulndb.SourceUpdate{{Name: "osv-Go", Data: cloneFeed(newFeed)}})
					} else {
						res, err = syncer.Sync(ctx, vulndb.SyncOptions{})
					}
					b.StopTimer()
					cpu += int64(cpuNow() - t0)
					if err != nil || res.ChangeSet == nil || res.ChangeSet.Counts() != (vulndb.Counts{Added: 505, Modified: 16}) {
						b.Fatalf("%v %+v", err, res)
					}
					if mode == "apply" {
						// Leave the database as the syncs expect it.
						if _, err := db.Apply(ctx, []vulndb.SourceUpdate{{Name: "osv-Go", Data: cloneFeed(oldFeed)}}); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
