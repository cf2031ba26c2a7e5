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

// BenchmarkDeleteImage measures what an image deletion costs the push
// poller: one registry.image.deleted event for an image with 100 open
// findings (closing them with their events, dropping its status, jobs,
// inventory and 100 package-index rows), in a registry of 1,000 images.
// The registry's own delete transaction is outside the timer.
func BenchmarkDeleteImage(b *testing.B) {
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
			reg := db.Registry()
			repo, err := reg.CreateRepository(ctx, "bench", time.Now())
			if err != nil {
				b.Fatal(err)
			}
			cfg := "sha256:" + strings.Repeat("c", 64)
			if err := reg.CommitBlob(ctx, repo.ID, cfg, 10, time.Now()); err != nil {
				b.Fatal(err)
			}
			n := 0
			image := func() string {
				n++
				dg := fmt.Sprintf("sha256:%064d", n)
				if err := reg.PutManifest(ctx, store.ManifestPut{RepositoryID: repo.ID, Repository: "bench", Digest: dg,
					MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/x.bench",
					Content: []byte(dg), Blobs: []store.BlobRef{{Digest: cfg, Size: 10}}}, time.Now()); err != nil {
					b.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, `INSERT INTO scan_scans (repository, image_digest, scan_type, status, started_at)
					VALUES ('bench', ?, 'ENHANCED', 'ACTIVE', 1)`, dg); err != nil {
					b.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, `INSERT INTO scan_inventories (image_digest, catalogers, inventory, created_at) VALUES (?, '', '{}', 1)`, dg); err != nil {
					b.Fatal(err)
				}
				var fv, kv []string
				var fa, ka []any
				for i := range 100 {
					fv = append(fv, `('bench', ?, ?, ?, 'CVE-1', 'p', '1', 'OS', 'HIGH', 'ACTIVE', 'YES', 1, 1, 1, '{}')`)
					fa = append(fa, dg, fmt.Sprintf("k%d", i), fmt.Sprintf("%s-%d", dg, i))
					kv = append(kv, `('os', ?, ?, '[]')`)
					ka = append(ka, fmt.Sprintf("p%d", i), dg)
				}
				if _, err := db.ExecContext(ctx, `INSERT INTO scan_findings (repository, image_digest, finding_key, finding_id, advisory_id,
					package_name, package_version, package_manager, severity, status, fix_available, first_observed_at, last_observed_at,
					updated_at, finding) VALUES `+strings.Join(fv, ","), fa...); err != nil {
					b.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, `INSERT INTO scan_package_keys (ecosystem, package, image_digest, packages) VALUES `+
					strings.Join(kv, ","), ka...); err != nil {
					b.Fatal(err)
				}
				return dg
			}
			for range 1000 {
				image()
			}
			// Coverage passes are measured on their own (BenchmarkAnnounceCoverage).
			if _, err := db.ExecContext(ctx, `INSERT INTO scan_cursors (name, position) VALUES (?, ?)`, coverageCursor, int64(1)<<62); err != nil {
				b.Fatal(err)
			}
			drain := func() {
				for {
					n, err := s.ConsumePushes(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if n == 0 {
						return
					}
				}
			}
			drain()
			for b.Loop() {
				b.StopTimer()
				dg := image()
				drain() // the push
				if err := reg.DeleteManifest(ctx, "bench", dg); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if n, err := s.ConsumePushes(ctx); err != nil || n != 1 {
					b.Fatalf("%d %v", n, err)
				}
			}
		})
	}
}
