package scan

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/apk"
	"github.com/drydockhq/drydock/internal/index/catalogers"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
)

func TestOlderCatalogerSet(t *testing.T) {
	const cur = "index:2,apk:1,dpkg:2,go:3"
	for _, c := range []struct {
		stored string
		want   bool
	}{
		{cur, false},
		{"old", true},                              // no versions at all: nothing says it is newer
		{"index:1,apk:1,dpkg:2,go:3", true},        // older index format
		{"index:2,apk:1,dpkg:1,go:3", true},        // an older cataloger
		{"index:2,apk:1,dpkg:2", true},             // a cataloger added since
		{"index:2,apk:1,dpkg:2,go:4", false},       // a newer cataloger: a newer Drydock made it
		{"index:3,apk:1,dpkg:2,go:3", false},       // a newer index format
		{"index:2,apk:1,dpkg:2,go:3,rpm:1", false}, // a cataloger this indexer lacks
		{"index:2,apk:1,dpkg:1,go:4", false},       // older and newer at once: leave it
	} {
		if got := olderCatalogerSet(cur, c.stored); got != c.want {
			t.Errorf("olderCatalogerSet(%q, %q) = %v, want %v", cur, c.stored, got, c.want)
		}
	}
}

// snapshotFindings is each finding of the images as "repo digest key
// findingID status firstObserved lastObserved".
func snapshotFindings(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT repository, image_digest, finding_key, finding_id, status, first_observed_at, updated_at FROM scan_findings`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var repo, dg, key, id, st string
		var first, updated int64
		if err := rows.Scan(&repo, &dg, &key, &id, &st, &first, &updated); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join([]string{repo, dg, key, id, st, time.UnixMilli(first).String(), time.UnixMilli(updated).String()}, " "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func countRows(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// TestReindexStale: inventories made by an older cataloger set are
// re-indexed at the rate asked (counted per sweep on an injected clock,
// shared by two services on one store), only for images still scanned;
// when the new index finds the same packages, the findings and their
// events stay as they were.
func TestReindexStale(t *testing.T) {
	orig := imagetest.Alpine310(t)
	old := imagetest.WithAPKVersions(t, orig, map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	oldMusl := imagetest.WithAPKVersions(t, orig, map[string]string{"musl": "1.1.22-r2", "musl-utils": "1.1.22-r2"})
	oldBoth := imagetest.WithAPKVersions(t, orig, map[string]string{"musl": "1.1.22-r2", "musl-utils": "1.1.22-r2", "libssl1.1": "1.1.1c-r0"})
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		start := time.Date(2026, 5, 6, 7, 8, 0, 0, time.UTC)
		s := newMeterStack(t, db, start)
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("*")}}}); err != nil {
			t.Fatal(err)
		}
		images := map[string]string{
			"app/a@": s.push(t, old, "app/a:v1"),
			"app/b@": s.push(t, old, "app/b:v1"), // the same image in a second repository
			"app/c@": s.push(t, orig, "app/c:v1"),
			"app/d@": s.push(t, oldMusl, "app/d:v1"),
			"lib/x@": s.push(t, oldBoth, "lib/x:v1"),
		}
		s.runUntil(t, images, StatusActive)
		if n := countRows(t, db, `SELECT COUNT(*) FROM scan_findings WHERE status = 'ACTIVE'`); n == 0 {
			t.Fatal("no findings: the test needs some to show they stay as they were")
		}
		before := snapshotFindings(t, db)
		findingEvents := `SELECT COUNT(*) FROM scan_outbox WHERE detail_type = ?`
		eventsBefore := countRows(t, db, findingEvents, DetailInspector2Finding)
		scanEventsBefore := countRows(t, db, findingEvents, DetailInspector2Scan)

		cur := s.svc.indexer.CatalogerSet()
		if _, err := db.ExecContext(ctx, `UPDATE scan_inventories SET catalogers = 'old'`); err != nil {
			t.Fatal(err)
		}
		// lib/x leaves enhanced scanning: its image is not re-indexed.
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("app/*")}}}); err != nil {
			t.Fatal(err)
		}
		reindexJobs := func() (images, jobs int) {
			q := `FROM scan_jobs WHERE payload LIKE '%"trigger":"reindex"%'`
			return countRows(t, db, `SELECT COUNT(DISTINCT image_digest) `+q), countRows(t, db, `SELECT COUNT(*) `+q)
		}
		// A second replica on the same store shares the budget.
		replica, err := New(ctx, s.opts)
		if err != nil {
			t.Fatal(err)
		}
		const rate = 2 // images per minute
		for i, step := range []struct {
			advance   time.Duration
			svc       *Service
			want      int
			wantTotal int // images with re-index jobs so far
		}{
			{0, s.svc, 2, 2},                  // a minute's burst
			{0, s.svc, 0, 2},                  // spent
			{0, replica, 0, 2},                // spent for every replica
			{20 * time.Second, s.svc, 0, 2},   // 2/min: one image each 30 s
			{10 * time.Second, replica, 1, 3}, // 30 s on: one more image
			{10 * time.Minute, s.svc, 0, 3},   // lib/x's image is out of scope, the others queued
		} {
			s.clk.Add(step.advance)
			n, err := step.svc.ReindexStale(ctx, rate)
			if err != nil {
				t.Fatal(err)
			}
			imgs, _ := reindexJobs()
			if n != step.want || imgs != step.wantTotal {
				t.Fatalf("sweep %d: %d images queued (%d in all), want %d (%d)", i+1, n, imgs, step.want, step.wantTotal)
			}
		}
		if imgs, jobs := reindexJobs(); imgs != 3 || jobs != 4 {
			t.Fatalf("re-index jobs: %d images, %d jobs; want 3 images in 4 repositories", imgs, jobs)
		}

		s.runUntil(t, images, StatusActive)
		for ref, dg := range images {
			want := cur
			if ref == "lib/x@" {
				want = "old"
			}
			var set string
			var created int64
			if err := db.QueryRowContext(ctx, `SELECT catalogers, created_at FROM scan_inventories WHERE image_digest = ?`, dg).Scan(&set, &created); err != nil {
				t.Fatal(err)
			}
			if set != want {
				t.Errorf("%s%s: inventory made by %q, want %q", ref, dg, set, want)
			}
			if want == cur && !time.UnixMilli(created).Equal(s.clk.Now()) {
				t.Errorf("%s%s: inventory made at %v, not re-made at %v", ref, dg, time.UnixMilli(created).UTC(), s.clk.Now())
			}
		}
		if after := snapshotFindings(t, db); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Errorf("findings changed by a re-index that found the same packages:\n%s\nwere:\n%s", strings.Join(after, "\n"), strings.Join(before, "\n"))
		}
		if n := countRows(t, db, findingEvents, DetailInspector2Finding); n != eventsBefore {
			t.Errorf("%d Inspector2 Finding events after the re-index, %d before", n, eventsBefore)
		}
		if n := countRows(t, db, findingEvents, DetailInspector2Scan); n != scanEventsBefore {
			t.Errorf("%d Inspector2 Scan events after the re-index, %d before: a re-index is no initial scan", n, scanEventsBefore)
		}
		rows, err := s.svc.Usage(ctx, start, time.Time{}, "")
		if err != nil {
			t.Fatal(err)
		}
		if tot := UsageTotals(rows); tot[UsageRescan] != 4 || tot[UsageInitialEnhanced] != 5 {
			t.Errorf("usage %v, want 4 re-scans and 5 initial scans", tot)
		}
		// Nothing is left to re-index however long one waits.
		s.clk.Add(time.Hour)
		if n, err := s.svc.ReindexStale(ctx, rate); err != nil || n != 0 {
			t.Errorf("sweep after the re-index: %d %v", n, err)
		}
	})
}

// TestReindexAfterCatalogerAdded: images indexed before the apk cataloger
// existed have no Alpine packages and no findings; the upgraded service
// re-indexes them in the background and their findings open, each with its
// Inspector2 Finding event, exactly as a fresh scan of the image finds them.
func TestReindexAfterCatalogerAdded(t *testing.T) {
	old := imagetest.WithAPKVersions(t, imagetest.Alpine310(t), map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newMeterStack(t, db, time.Date(2026, 7, 8, 9, 10, 0, 0, time.UTC), func(o *Options) {
			cache, err := index.NewStoreCache(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			var without []index.Cataloger
			for _, c := range catalogers.All() {
				if c.Name() != apk.New().Name() {
					without = append(without, c)
				}
			}
			o.Indexer = &index.Indexer{Catalogers: without, Cache: cache}
		})
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("*")}}}); err != nil {
			t.Fatal(err)
		}
		dg := s.push(t, old, "app/a:v1")
		s.runUntil(t, map[string]string{"app/a@": dg}, StatusActive)
		if n := countRows(t, db, `SELECT COUNT(*) FROM scan_findings`); n != 0 {
			t.Fatalf("%d findings without the apk cataloger", n)
		}
		var oldSet string
		if err := db.QueryRowContext(ctx, `SELECT catalogers FROM scan_inventories WHERE image_digest = ?`, dg).Scan(&oldSet); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(oldSet, "apk:") {
			t.Fatalf("the first indexer had the apk cataloger: %s", oldSet)
		}

		// The upgrade: the same store, every cataloger.
		opts := s.opts
		opts.Indexer = nil
		upgraded, err := New(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		s.svc = upgraded
		if n, err := upgraded.ReindexStale(ctx, DefaultReindexRate); err != nil || n != 1 {
			t.Fatalf("re-index sweep: %d %v", n, err)
		}
		s.runUntil(t, map[string]string{"app/a@": dg}, StatusActive)
		// The truth: a fresh scan of the same image by the upgraded service.
		s.push(t, old, "app/fresh:v1")
		s.runUntil(t, map[string]string{"app/fresh@": dg}, StatusActive)
		pairs := func(repo string) []string {
			res, err := upgraded.Findings(ctx, repo, dg, Page{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, f := range res.Findings {
				out = append(out, f.VulnerabilityID+" "+f.Package.Name+" "+f.Package.Version+" "+f.Status)
			}
			sort.Strings(out)
			return out
		}
		got, want := pairs("app/a"), pairs("app/fresh")
		if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("findings after the re-index:\n%s\na fresh scan finds:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var events int
		rows, err := upgraded.Events(ctx, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rows {
			if e.DetailType == DetailInspector2Finding && strings.Contains(string(e.Detail), `"repositoryName":"app/a"`) {
				events++
			}
		}
		if events != len(want) {
			t.Errorf("%d Inspector2 Finding events for app/a, want one per finding (%d)", events, len(want))
		}
	})
}

// TestReindexSkipsOutOfScope: images no rule covers any more, however many
// hold the oldest inventories, do not stop the re-indexer from reaching
// the images still scanned (rows written directly: no image is read).
func TestReindexSkipsOutOfScope(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, err := New(ctx, Options{Store: db})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("prod-*")}}}); err != nil {
			t.Fatal(err)
		}
		add := func(i int, repo string) {
			dg := fmt.Sprintf("sha256:%064x", i)
			if _, err := db.ExecContext(ctx, `INSERT INTO scan_inventories (image_digest, catalogers, inventory, created_at) VALUES (?, 'old', '{}', ?)`, dg, int64(i)); err != nil {
				t.Fatal(err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO scan_scans (repository, image_digest, scan_type, status, started_at) VALUES (?, ?, 'ENHANCED', 'ACTIVE', 1)`, repo, dg); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 200; i++ {
			add(i, "test-app") // oldest first, out of scope
		}
		for i := 200; i < 205; i++ {
			add(i, "prod-app")
		}
		n, err := svc.ReindexStale(ctx, 2)
		if err != nil || n != 2 {
			t.Fatalf("sweep: %d images queued (%v), want 2", n, err)
		}
		var repos []string
		rows, err := db.QueryContext(ctx, `SELECT repository, image_digest, payload FROM scan_jobs ORDER BY image_digest`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var repo, dg, p string
			if err := rows.Scan(&repo, &dg, &p); err != nil {
				t.Fatal(err)
			}
			repos = append(repos, repo+" "+dg[len(dg)-3:]+" "+p)
		}
		want := []string{
			`prod-app 0c8 {"scanType":"ENHANCED","frequency":"CONTINUOUS_SCAN","trigger":"reindex"}`,
			`prod-app 0c9 {"scanType":"ENHANCED","frequency":"CONTINUOUS_SCAN","trigger":"reindex"}`,
		}
		if strings.Join(repos, "\n") != strings.Join(want, "\n") {
			t.Errorf("jobs:\n%s\nwant:\n%s", strings.Join(repos, "\n"), strings.Join(want, "\n"))
		}
	})
}
