package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/semver"
	"golang.org/x/sync/errgroup"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/osv"
)

// The two real snapshots of the Go vulnerability database: the newer adds
// about 500 advisories and changes a few more.
const (
	goOldZip = "feeds/osv/Go/all-2026-06-26.zip"
	goNewZip = "feeds/osv/Go/all.zip"
)

func readGoFeed(t testing.TB, rel string) *vulndb.FeedData {
	t.Helper()
	fd, err := osv.ReadPath(context.Background(), testutil.Fixture(t, rel), "osv-Go", osv.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// goModule is a Go module at a version, as a Go binary's build
// information lists it.
type goModule struct{ path, version string }

// affectedModules picks, for each advisory, one module and a real version
// (one some range of the feeds names for that module) inside the
// advisory's first affected range: the introduced version when it is not
// 0, else the highest version named for the module below the fix. The
// choice only builds inputs: expected findings come from full scans.
func affectedModules(feeds []*vulndb.FeedData, advisories []*vulndb.Advisory) []goModule {
	named := map[string][]string{} // module -> versions some range names
	for _, fd := range feeds {
		for i := range fd.Advisories {
			for _, af := range fd.Advisories[i].Affected {
				for _, r := range af.Ranges {
					for _, e := range r.Events {
						for _, v := range []string{e.Introduced, e.Fixed} {
							if v != "" && v != "0" && semver.IsValid("v"+v) {
								named[af.Package] = append(named[af.Package], "v"+v)
							}
						}
					}
				}
			}
		}
	}
	seen := map[goModule]bool{}
	var out []goModule
	for _, a := range advisories {
		if len(a.Affected) == 0 || len(a.Affected[0].Ranges) == 0 {
			continue
		}
		af := a.Affected[0]
		if af.Package == "stdlib" || af.Package == "toolchain" {
			continue
		}
		var introduced, fixed string
		for _, e := range af.Ranges[0].Events {
			if e.Introduced != "" && introduced == "" {
				introduced = e.Introduced
			}
			if e.Fixed != "" && fixed == "" {
				fixed = e.Fixed
			}
		}
		v := ""
		switch {
		case introduced != "" && introduced != "0" && semver.IsValid("v"+introduced):
			v = "v" + introduced
		case fixed != "":
			for _, c := range named[af.Package] {
				if semver.Compare(c, "v"+fixed) < 0 && (v == "" || semver.Compare(c, v) > 0) {
					v = c
				}
			}
		}
		if v == "" {
			continue
		}
		m := goModule{af.Package, v}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// goDelta is the real delta between the two snapshots: the advisories the
// newer adds, and modules affected by them and by older ones.
type goDelta struct {
	oldFeed, newFeed *vulndb.FeedData
	added            []goModule      // affected by advisories only the newer snapshot has
	older            []goModule      // affected by advisories both have
	changed          map[string]bool // modules the delta's change set names
}

func loadGoDelta(t testing.TB) *goDelta {
	t.Helper()
	d := &goDelta{oldFeed: readGoFeed(t, goOldZip), newFeed: readGoFeed(t, goNewZip)}
	inOld := map[string]bool{}
	var older []*vulndb.Advisory
	for i := range d.oldFeed.Advisories {
		inOld[d.oldFeed.Advisories[i].ID] = true
		older = append(older, &d.oldFeed.Advisories[i])
	}
	var added []*vulndb.Advisory
	for i := range d.newFeed.Advisories {
		if !inOld[d.newFeed.Advisories[i].ID] {
			added = append(added, &d.newFeed.Advisories[i])
		}
	}
	if len(added) < 500 {
		t.Fatalf("the newer Go snapshot adds %d advisories; the fixtures promise about 505", len(added))
	}
	feeds := []*vulndb.FeedData{d.oldFeed, d.newFeed}
	d.added = affectedModules(feeds, added)
	d.older = affectedModules(feeds, older)
	// The modules the delta touches: the keys of the change set the newer
	// snapshot makes over the older one, in a scratch database.
	ctx := context.Background()
	scratch, err := vulndb.Open(ctx, storetest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	var cs *vulndb.ChangeSet
	for _, fd := range feeds {
		if _, err := scratch.Apply(ctx, []vulndb.SourceUpdate{{Name: "osv-Go", Kind: "osv", Data: fd}}); err != nil {
			t.Fatal(err)
		}
	}
	gen, err := scratch.Generation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cs, err = scratch.ChangeSet(ctx, gen); err != nil {
		t.Fatal(err)
	}
	d.changed = map[string]bool{}
	for _, k := range cs.Keys {
		if k.Ecosystem == "Go" {
			d.changed[k.Package] = true
		}
	}
	return d
}

// goPackages turns modules into the packages a Go binary at path lists.
func goPackages(mods []goModule, path, layer string) []index.Package {
	var out []index.Package
	for _, m := range mods {
		out = append(out, index.Package{Type: index.TypeGoBinary, Ecosystem: "Go", Name: m.path, Version: m.version,
			PURL: "pkg:golang/" + m.path + "@" + m.version, Path: path, Layer: layer})
	}
	return out
}

// reevalEnv is a scan service over a store with the older Go snapshot
// loaded, whose scans the test drives by hand.
type reevalEnv struct {
	db    *store.DB
	svc   *Service
	vdb   *vulndb.DB
	vix   *vulndb.Index
	clock *clock
}

func newReevalEnv(t testing.TB, db *store.DB, feed *vulndb.FeedData) *reevalEnv {
	t.Helper()
	ctx := context.Background()
	vdb, err := vulndb.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vdb.Apply(ctx, []vulndb.SourceUpdate{{Name: "osv-Go", Kind: "osv", Data: feed}}); err != nil {
		t.Fatal(err)
	}
	vix, err := vulndb.OpenIndex(ctx, vdb)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)}
	svc, err := New(ctx, Options{Store: db, Vulns: vix, Now: c.Now, Indexer: &index.Indexer{}})
	if err != nil {
		t.Fatal(err)
	}
	return &reevalEnv{db: db, svc: svc, vdb: vdb, vix: vix, clock: c}
}

// addImage stores an inventory for a digest and starts its enhanced scan
// in repo with the frequency.
func (e *reevalEnv) addImage(t testing.TB, repo, dg string, pkgs []index.Package, freq Frequency) {
	t.Helper()
	ctx := context.Background()
	inv := &index.Inventory{Name: repo + "@" + dg, Digest: dg, Platform: "linux/amd64", Packages: pkgs, Catalogers: e.svc.indexer.CatalogerSet()}
	err := e.db.InTx(ctx, func(tx *store.Tx) error {
		if err := storeInventoryTx(ctx, tx, dg, e.svc.indexer.CatalogerSet(), inv, e.clock.Now()); err != nil {
			return err
		}
		return e.svc.startTx(ctx, tx, repo, dg, payload{ScanType: Enhanced, Frequency: freq, Trigger: "push"}, e.clock.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// drain runs every ready job to its end, one at a time.
func (e *reevalEnv) drain(t testing.TB) { e.drainOn(t, 1) }

// drainOn runs every ready job to its end on the given number of
// goroutines, as that many scan workers would.
func (e *reevalEnv) drainOn(t testing.TB, workers int) {
	t.Helper()
	ctx := context.Background()
	var g errgroup.Group
	for range workers {
		g.Go(func() error {
			for {
				j, err := e.svc.queue.Claim(ctx)
				if err != nil || j == nil {
					return err
				}
				if err := e.svc.handle(ctx, j); err != nil {
					return fmt.Errorf("job %s %s@%s: %w", j.Kind, j.Repository, j.Digest, err)
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// apply loads a feed as the osv-Go source's next generation and brings
// the index to it.
func (e *reevalEnv) apply(t testing.TB, feed *vulndb.FeedData) {
	t.Helper()
	ctx := context.Background()
	if _, err := e.vdb.Apply(ctx, []vulndb.SourceUpdate{{Name: "osv-Go", Kind: "osv", Data: feed}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vix.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
}

// findingRow is a stored finding, every column.
type findingRow struct {
	repo, digest, key, status, severity, fix, body, reason string
	first, last, updated, fixSince, closedAt               int64
}

func (e *reevalEnv) findings(t testing.TB) map[string]findingRow {
	t.Helper()
	rows, err := e.db.QueryContext(context.Background(), `SELECT repository, image_digest, finding_key, status, severity, fix_available,
		finding, closed_reason, first_observed_at, `+lastObservedSQL+`, updated_at, fix_available_since, closed_at FROM scan_findings`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]findingRow{}
	for rows.Next() {
		var r findingRow
		if err := rows.Scan(&r.repo, &r.digest, &r.key, &r.status, &r.severity, &r.fix, &r.body, &r.reason,
			&r.first, &r.last, &r.updated, &r.fixSince, &r.closedAt); err != nil {
			t.Fatal(err)
		}
		out[r.repo+"@"+r.digest+"#"+r.key] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *reevalEnv) lastEvent(t testing.TB) int64 {
	t.Helper()
	var id int64
	if err := e.db.QueryRowContext(context.Background(), `SELECT COALESCE(MAX(id), 0) FROM scan_outbox`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// findingEvents returns the Inspector2 Finding events after id.
func (e *reevalEnv) findingEvents(t testing.TB, after int64) []Finding {
	t.Helper()
	evs, err := e.svc.Events(context.Background(), after, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	var out []Finding
	for _, ev := range evs {
		if ev.DetailType != DetailInspector2Finding {
			continue
		}
		var f Finding
		if err := json.Unmarshal(ev.Detail, &f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// announcements counts the events of each finding, and reports the
// findings announced more than once.
func announcements(t testing.TB, events []Finding) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, f := range events {
		if n[f.ID]++; n[f.ID] == 2 {
			t.Errorf("finding %s announced twice", f.ID)
		}
	}
	return n
}

func digestN(i int) string { return fmt.Sprintf("sha256:%064x", i+1) }

// goImages is the registry of the test: twelve images holding Go modules,
// in repositories under continuous scanning, scan on push, and both.
type goImages struct {
	continuous [][2]string // (repository, digest) pairs under CONTINUOUS_SCAN
	onPush     [][2]string // pairs under SCAN_ON_PUSH
	untouched  string      // a continuous image with no module the delta touches
}

func (e *reevalEnv) addGoImages(t testing.TB, d *goDelta) goImages {
	t.Helper()
	ctx := context.Background()
	if _, err := e.svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced, Rules: []Rule{
		{ScanFrequency: ContinuousScan, RepositoryFilters: []Filter{{Filter: "prod", FilterType: FilterWildcard}}},
		{ScanFrequency: ScanOnPush, RepositoryFilters: []Filter{{Filter: "push", FilterType: FilterWildcard}}},
	}}); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var im goImages
	for i := range n + 1 {
		var mods []goModule
		for j, m := range d.older {
			if j%n == i%n && j < 300 {
				mods = append(mods, m)
			}
		}
		if i == n {
			mods = nil
			for _, m := range d.older {
				if !d.changed[m.path] && len(mods) < 30 {
					mods = append(mods, m)
				}
			}
		} else {
			for j, m := range d.added {
				// Each module in two images, so images share packages.
				if j%n == i || j%n == (i+1)%n {
					mods = append(mods, m)
				}
			}
		}
		dg := digestN(i)
		pkgs := goPackages(mods, "app/server", digestN(100+i))
		switch {
		case i == n:
			im.untouched = dg
			fallthrough
		case i < 6:
			repo := "team/prod-a"
			if i%2 == 1 {
				repo = "team/prod-b"
			}
			e.addImage(t, repo, dg, pkgs, ContinuousScan)
			im.continuous = append(im.continuous, [2]string{repo, dg})
		default:
			e.addImage(t, "team/push", dg, pkgs, ScanOnPush)
			im.onPush = append(im.onPush, [2]string{"team/push", dg})
		}
		if i == 0 {
			// The same image under scan on push as well.
			e.addImage(t, "team/push", dg, pkgs, ScanOnPush)
			im.onPush = append(im.onPush, [2]string{"team/push", dg})
		}
	}
	e.drain(t)
	for _, p := range append(slices.Clone(im.continuous), im.onPush...) {
		st, err := e.svc.ScanStatus(ctx, p[0], p[1])
		if err != nil || st.Status != StatusActive {
			t.Fatalf("%s@%s: %+v %v", p[0], p[1], st, err)
		}
	}
	return im
}

// TestReevaluateGoDelta loads the older Go snapshot, scans images holding
// modules affected by the advisories the newer one adds, loads the newer
// one and re-evaluates: exactly the findings a full re-scan gives, with an
// event for each change, and nothing moves outside continuous scope.
func TestReevaluateGoDelta(t *testing.T) {
	d := loadGoDelta(t)
	t.Logf("modules affected by added advisories: %d; by older ones: %d", len(d.added), len(d.older))
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newReevalEnv(t, db, d.oldFeed)
		im := e.addGoImages(t, d)
		// Re-evaluation starts from the generation the scans used.
		if st, err := e.svc.Reevaluate(ctx); err != nil || st.Rescans != 0 {
			t.Fatalf("first re-evaluation: %+v %v", st, err)
		}
		before := e.findings(t)
		beforeScans := scanRows(t, db)
		mark := e.lastEvent(t)

		e.clock.Add(time.Hour)
		e.apply(t, d.newFeed)
		st, err := e.svc.Reevaluate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("re-evaluation: %+v", st)
		if st.From != 1 || st.To != 2 || st.Changes < 500 || st.Rescans != 0 {
			t.Errorf("stats %+v", st)
		}
		// Every continuous image but the untouched one holds a changed
		// module; the scan-on-push image is not re-evaluated.
		if st.Evaluated != len(im.continuous)-1 {
			t.Errorf("evaluated %d pairs, want %d", st.Evaluated, len(im.continuous)-1)
		}
		if st.Opened < 200 {
			t.Errorf("opened %d findings; the delta's advisories should open hundreds", st.Opened)
		}
		// Findings were never stored for the advisories the delta adds:
		// only the candidates of the advisories it modifies are looked up.
		if st.LookedUp == 0 || st.LookedUp*4 > st.Candidates {
			t.Errorf("looked up %d of %d candidate findings", st.LookedUp, st.Candidates)
		}
		after := e.findings(t)

		// Outside continuous scope, and the untouched image: nothing moved.
		for k, r := range before {
			if (r.repo == "team/push" || r.digest == im.untouched) && after[k] != r {
				t.Errorf("%s changed:\n%+v\n%+v", k, r, after[k])
			}
		}
		for k, r := range after {
			if _, ok := before[k]; !ok && (r.repo == "team/push" || r.digest == im.untouched) {
				t.Errorf("%s appeared outside the re-evaluated images", k)
			}
		}
		afterScans := scanRows(t, db)
		for _, p := range im.onPush {
			if afterScans[p] != beforeScans[p] {
				t.Errorf("scan-on-push scan %v changed: %+v -> %+v", p, beforeScans[p], afterScans[p])
			}
		}
		vsu := e.svc.sourceUpdatedAt(ctx, e.vix.Snapshot())
		for _, p := range im.continuous {
			s := afterScans[p]
			if s.generation != 2 || s.vsu != ms(vsu) {
				t.Errorf("continuous scan %v: %+v, want generation 2, source updated %v", p, s, vsu)
			}
			if touched := p[1] != im.untouched; touched != (s.completed == ms(e.clock.Now())) {
				t.Errorf("continuous scan %v: last scanned %v (touched %v)", p, fromMS(s.completed), touched)
			}
		}

		// Events: one per change, each opened finding announced as ACTIVE.
		events := e.findingEvents(t, mark)
		if len(events) != st.Opened+st.Updated+st.Closed {
			t.Errorf("%d Inspector2 Finding events for %d+%d+%d changes", len(events), st.Opened, st.Updated, st.Closed)
		}
		announced := announcements(t, events)
		opened := 0
		for k, r := range after {
			if _, ok := before[k]; ok {
				continue
			}
			opened++
			var f Finding
			if err := json.Unmarshal([]byte(r.body), &f); err != nil {
				t.Fatal(err)
			}
			if announced[f.ID] != 1 || r.status != FindingActive || r.first != ms(e.clock.Now()) {
				t.Errorf("opened finding %s: status %s first %d, %d events", k, r.status, r.first, announced[f.ID])
			}
			if (r.fix != "NO") != (r.fixSince == ms(e.clock.Now())) {
				t.Errorf("opened finding %s: fix %s since %d", k, r.fix, r.fixSince)
			}
		}
		if opened != st.Opened {
			t.Errorf("%d new finding rows, stats say %d opened", opened, st.Opened)
		}
		// The re-evaluation observed every open finding of the images it
		// evaluated, rewritten or not; the others keep their time.
		for k, r := range after {
			b, ok := before[k]
			if !ok || r.status == FindingClosed {
				continue
			}
			evaluated := r.repo != "team/push" && r.digest != im.untouched
			if evaluated && r.last != ms(e.clock.Now()) || !evaluated && r.last != b.last {
				t.Errorf("%s: last observed %v (evaluated %v, before %v)", k, fromMS(r.last), evaluated, fromMS(b.last))
			}
		}

		// The oracle: a full re-scan of every continuous image from its
		// whole inventory gives exactly the same findings.
		e.agreesWithFullRescan(t, im)
	})
}

// agreesWithFullRescan checks the findings stored against those a full
// re-scan of every continuous image from its whole inventory gives: the
// same, and the re-scan announces no change.
func (e *reevalEnv) agreesWithFullRescan(t *testing.T, im goImages) {
	t.Helper()
	ctx := context.Background()
	after := e.findings(t)
	mark := e.lastEvent(t)
	e.clock.Add(time.Minute)
	if n, err := e.svc.RescanContinuous(ctx); err != nil || n != len(im.continuous) {
		t.Fatalf("full re-scan queued %d: %v", n, err)
	}
	e.drain(t)
	full := e.findings(t)
	if len(full) != len(after) {
		t.Errorf("full re-scan: %d findings, re-evaluation: %d", len(full), len(after))
	}
	for k, r := range full {
		a, ok := after[k]
		if !ok {
			t.Errorf("full re-scan finds %s; re-evaluation did not", k)
			continue
		}
		if a.status != r.status || a.body != r.body || a.severity != r.severity || a.fix != r.fix {
			t.Errorf("%s differs:\nre-evaluation %s %s\nfull re-scan  %s %s", k, a.status, a.body, r.status, r.body)
		}
	}
	if evs := e.findingEvents(t, mark); len(evs) != 0 {
		t.Errorf("the full re-scan announced %d finding changes re-evaluation missed", len(evs))
	}
}

// landGoDelta fills the registry with the Go images, scanned against the
// older snapshot and re-evaluated once (which sets the cursor), and an
// hour later applies the newer snapshot. It returns the images and the
// last event before the new generation.
func (e *reevalEnv) landGoDelta(t *testing.T, d *goDelta) (goImages, int64) {
	t.Helper()
	im := e.addGoImages(t, d)
	if _, err := e.svc.Reevaluate(context.Background()); err != nil {
		t.Fatal(err)
	}
	mark := e.lastEvent(t)
	e.clock.Add(time.Hour)
	e.apply(t, d.newFeed)
	return im, mark
}

// TestReevaluateBesideScans checks re-evaluation beside scans of the same
// images: after its first batch, scans of every continuous image against
// the new generation store the new findings themselves. Each finding is
// announced once, by whichever came first, and what stands is what a full
// re-scan finds.
func TestReevaluateBesideScans(t *testing.T) {
	d := loadGoDelta(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newReevalEnv(t, db, d.oldFeed)
		im, mark := e.landGoDelta(t, d)
		e.svc.reevalBatch = 2
		e.svc.reevalHook = func(n int) error {
			if n == 1 {
				if _, err := e.svc.RescanContinuous(ctx); err != nil {
					return err
				}
				e.drain(t)
			}
			return nil
		}
		st, err := e.svc.Reevaluate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("re-evaluation: %+v", st)
		if st.Evaluated < 5 {
			t.Fatalf("%d pairs evaluated, want batches after the first", st.Evaluated)
		}
		announcements(t, slices.DeleteFunc(e.findingEvents(t, mark), func(f Finding) bool { return f.Status != FindingActive }))
		e.agreesWithFullRescan(t, im)
	})
}

type scanRow struct {
	status                     string
	completed, vsu, generation int64
}

func scanRows(t testing.TB, db *store.DB) map[[2]string]scanRow {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT repository, image_digest, status, completed_at, vuln_source_updated_at, generation FROM scan_scans`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[2]string]scanRow{}
	for rows.Next() {
		var p [2]string
		var r scanRow
		if err := rows.Scan(&p[0], &p[1], &r.status, &r.completed, &r.vsu, &r.generation); err != nil {
			t.Fatal(err)
		}
		out[p] = r
	}
	return out
}

// TestReevaluateWithdrawn: withdrawing an advisory closes its findings in
// continuous scope, with the reason and an event, and leaves scan-on-push
// images alone.
func TestReevaluateWithdrawn(t *testing.T) {
	d := loadGoDelta(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newReevalEnv(t, db, d.oldFeed)
		e.addGoImages(t, d)
		if _, err := e.svc.Reevaluate(ctx); err != nil {
			t.Fatal(err)
		}
		// The advisory with the most findings in the continuous image
		// shared with the scan-on-push repository.
		before := e.findings(t)
		count := map[string]int{}
		for _, r := range before {
			if r.digest == digestN(0) && r.repo == "team/push" {
				adv, _, _ := strings.Cut(r.key, "|")
				count[adv]++
			}
		}
		var withdraw string
		for adv, n := range count {
			if withdraw == "" || n > count[withdraw] || (n == count[withdraw] && adv < withdraw) {
				withdraw = adv
			}
		}
		if withdraw == "" {
			t.Fatal("no finding in the shared image")
		}
		feed := &vulndb.FeedData{Advisories: slices.Clone(d.oldFeed.Advisories)}
		found := false
		for i := range feed.Advisories {
			if feed.Advisories[i].ID == withdraw {
				feed.Advisories[i].Withdrawn = e.clock.Now()
				found = true
			}
		}
		if !found {
			t.Fatalf("%s not in the feed", withdraw)
		}
		mark := e.lastEvent(t)
		e.clock.Add(time.Hour)
		e.apply(t, feed)
		st, err := e.svc.Reevaluate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		after := e.findings(t)
		closed := 0
		for k, r := range after {
			adv, _, _ := strings.Cut(r.key, "|")
			switch {
			case adv != withdraw || r.repo == "team/push":
				// Findings of the same packages were observed again.
				b := before[k]
				if r.repo != "team/push" {
					b.last = r.last
				}
				if b != r {
					t.Errorf("%s changed:\n%+v\n%+v", k, before[k], r)
				}
			default:
				closed++
				// Closed now; last observed by the evaluation before.
				if r.status != FindingClosed || r.reason != string(ClosedAdvisoryWithdrawn) || r.closedAt != ms(e.clock.Now()) ||
					r.first != before[k].first || r.last != before[k].last {
					t.Errorf("withdrawn advisory's finding %s: %+v", k, r)
				}
			}
		}
		if closed == 0 || st.Closed != closed || st.Opened != 0 || st.Updated != 0 {
			t.Errorf("closed %d findings of %s; stats %+v", closed, withdraw, st)
		}
		events := e.findingEvents(t, mark)
		if len(events) != closed {
			t.Errorf("%d events for %d closed findings", len(events), closed)
		}
		for _, f := range events {
			if f.Status != FindingClosed || f.AdvisoryID != withdraw {
				t.Errorf("event %s %s %s", f.ID, f.AdvisoryID, f.Status)
			}
		}
	})
}

// TestReevaluateInterrupted: the re-evaluation job dies after its first
// batch (its process stops: no release, no failure recorded), leaving the
// cursor where it was and the job claimed. A restarted service claims it
// again when the lease expires and finishes the work: no finding lost,
// none announced or metered twice.
func TestReevaluateInterrupted(t *testing.T) {
	d := loadGoDelta(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newReevalEnv(t, db, d.oldFeed)
		im, mark := e.landGoDelta(t, d)

		// The re-evaluation runs as its job; the process "dies" after the
		// first batch commits: its context ends and nothing else happens,
		// so the job stays claimed until its lease runs out.
		if err := e.svc.QueueReevaluation(ctx); err != nil {
			t.Fatal(err)
		}
		job, err := e.svc.queue.Claim(ctx)
		if err != nil || job == nil || job.Kind != kindReeval {
			t.Fatalf("claim: %+v %v", job, err)
		}
		dying, die := context.WithCancel(ctx)
		e.svc.reevalBatch = 2
		e.svc.reevalHook = func(n int) error {
			if n == 1 {
				die()
				return dying.Err()
			}
			return nil
		}
		if err := e.svc.handle(dying, job); !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted re-evaluation: %v", err)
		}
		if cur, _, err := e.svc.ReevaluationCursor(ctx); err != nil || cur != 1 {
			t.Fatalf("cursor %d after the interruption (%v), want 1", cur, err)
		}
		partial := len(e.findingEvents(t, mark))
		if partial == 0 {
			t.Fatal("the first batch changed nothing")
		}

		// The restarted process: a new service on the same store. The job
		// is claimed again once the dead holder's lease expires.
		restarted, err := New(ctx, Options{Store: db, Vulns: e.vix, Now: e.clock.Now, Indexer: &index.Indexer{}})
		if err != nil {
			t.Fatal(err)
		}
		if j, err := restarted.queue.Claim(ctx); err != nil || j != nil {
			t.Fatalf("claimed %+v (%v) while the lease holds", j, err)
		}
		e.clock.Add(restarted.queue.opts.Lease + time.Second)
		before := e.lastEvent(t)
		e.svc = restarted
		e.drain(t)
		if len(e.findingEvents(t, before)) == 0 {
			t.Fatal("the restarted re-evaluation changed nothing")
		}
		if state, err := restarted.queue.State(ctx, "", "", kindReeval); err != nil || state.State != jobDone {
			t.Fatalf("re-evaluation job after the restart: %+v %v", state, err)
		}
		if cur, _, _ := e.svc.ReevaluationCursor(ctx); cur != 2 {
			t.Fatalf("cursor %d, want 2", cur)
		}
		// No finding announced twice across the interruption; none lost
		// (the full re-scan below finds nothing more).
		events := e.findingEvents(t, mark)
		announcements(t, events)
		// Each re-evaluated image metered once, interruption or not.
		usage, err := e.svc.Usage(ctx, time.Time{}, time.Time{}, "")
		if err != nil {
			t.Fatal(err)
		}
		rescans := int64(0)
		for _, u := range usage {
			if u.Kind == UsageRescan {
				rescans += u.Count
			}
		}
		if rescans != int64(len(im.continuous)-1) {
			t.Errorf("%d re-scans metered, want %d (usage %+v)", rescans, len(im.continuous)-1, usage)
		}
		// The same as a full re-scan.
		got := e.findings(t)
		if _, err := e.svc.RescanContinuous(ctx); err != nil {
			t.Fatal(err)
		}
		mark = e.lastEvent(t)
		e.drain(t)
		full := e.findings(t)
		for k, r := range full {
			if g, ok := got[k]; !ok || g.status != r.status || g.body != r.body {
				t.Errorf("%s: after the interrupted re-evaluation %+v, full re-scan %+v", k, g, r)
			}
		}
		if len(full) != len(got) || len(e.findingEvents(t, mark)) != 0 {
			t.Errorf("%d findings vs %d after a full re-scan", len(got), len(full))
		}
	})
}

// TestFindingsUnavailable: an image scanned before any advisory was loaded
// shows FINDINGS_UNAVAILABLE (not a clean result); when the database gains
// its first generation, re-evaluation scans it.
func TestFindingsUnavailable(t *testing.T) {
	d := loadGoDelta(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		e := newReevalEnv(t, db, &vulndb.FeedData{})
		if g := e.vix.Snapshot().Generation(); g != 0 {
			t.Fatalf("an empty feed made generation %d", g)
		}
		if _, err := e.svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced}); err != nil {
			t.Fatal(err)
		}
		e.addImage(t, "team/app", digestN(0), goPackages(d.older[:20], "app/server", digestN(100)), ContinuousScan)
		e.drain(t)
		st, err := e.svc.ScanStatus(ctx, "team/app", digestN(0))
		if err != nil || st.Status != StatusFindingsUnavail || st.Description != descNoDatabase {
			t.Fatalf("status before any advisory: %+v %v", st, err)
		}
		e.apply(t, d.oldFeed)
		if _, err := e.svc.Reevaluate(ctx); err != nil {
			t.Fatal(err)
		}
		e.drain(t)
		st, err = e.svc.ScanStatus(ctx, "team/app", digestN(0))
		if err != nil || st.Status != StatusActive {
			t.Fatalf("status after the first generation: %+v %v", st, err)
		}
		if n := len(e.findings(t)); n == 0 {
			t.Error("no findings for modules the Go database names")
		}
	})
}

// TestReevaluationReadPlans checks that re-evaluation's reads by digest go
// through the indexes made for them (see factsSource and scansByDigest):
// inventory facts through the covering index, never the table rows that
// hold whole inventories; scans through the digest index, never all
// enhanced scans.
func TestReevaluationReadPlans(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, err := New(ctx, Options{Store: db})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ query, want string }{
			{`SELECT image_digest, facts FROM ` + s.factsSource() + ` WHERE image_digest IN (?, ?)`,
				"COVERING INDEX scan_inventories_facts"},
			{`SELECT repository, image_digest FROM ` + s.scansByDigest() + `
				WHERE scan_type = 'ENHANCED' AND status = 'ACTIVE' AND image_digest IN (?, ?) ORDER BY repository, image_digest`,
				"INDEX scan_scans_digest (image_digest=?)"},
		} {
			if db.Dialect() != store.SQLite {
				// The query must stand; the plan is PostgreSQL's to choose.
				rows, err := db.QueryContext(ctx, db.Rebind(c.query), "a", "b")
				if err != nil {
					t.Fatal(err)
				}
				rows.Close()
				continue
			}
			rows, err := db.QueryContext(ctx, `EXPLAIN QUERY PLAN `+c.query, "a", "b")
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rows.Close()
			if got := strings.Join(plan, "; "); !strings.Contains(got, c.want) {
				t.Errorf("plan %q, want %s", got, c.want)
			}
		}
	})
}

// TestFindingAdvisories follows an advisory's row in
// scan_finding_advisories: it names the re-evaluation run that stored its
// first findings until any other writer stores some, and from then on
// says "" for good; maybeStoredTx looks up candidates of advisories with
// a row, except those only the asking run wrote.
func TestFindingAdvisories(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
		finding := func(advisory, digest string) Finding {
			p := &index.Package{Type: index.TypeGoBinary, Name: "example.com/m", Version: "v1.0.0", Path: "app"}
			key := findingKey(advisory, p)
			return Finding{ID: findingID("team/app", digest, key), Repository: "team/app", Digest: digest, key: key,
				AdvisoryID: advisory, VulnerabilityID: advisory, Severity: SevHigh, FixAvailable: "NO",
				Package: VulnerablePackage{Name: p.Name, Version: p.Version, PackageManager: "GOBINARY"}}
		}
		put := func(run string, fs ...Finding) {
			t.Helper()
			if err := db.InTx(ctx, func(tx *store.Tx) error { return upsertFindingsTx(ctx, tx, fs, nil, now, run, nil) }); err != nil {
				t.Fatal(err)
			}
		}
		writers := func() map[string]string {
			t.Helper()
			var out map[string]string
			err := db.InTx(ctx, func(tx *store.Tx) (err error) {
				out, err = advisoryWritersTx(ctx, tx, []string{"A", "B", "C", "D"})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		check := func(step string, want map[string]string) {
			t.Helper()
			if got := writers(); !maps.Equal(got, want) {
				t.Errorf("%s: writers %v, want %v", step, got, want)
			}
		}
		put("reeval:1", finding("A", digestN(1)), finding("B", digestN(1)))
		check("first run stores A and B", map[string]string{"A": "reeval:1", "B": "reeval:1"})
		put("reeval:1", finding("A", digestN(2)))
		check("the same run again", map[string]string{"A": "reeval:1", "B": "reeval:1"})
		put("", finding("A", digestN(3)), finding("C", digestN(3)))
		check("a scan", map[string]string{"A": "", "B": "reeval:1", "C": ""})
		put("reeval:2", finding("B", digestN(4)))
		check("another run", map[string]string{"A": "", "B": "", "C": ""})
		put("reeval:2", finding("A", digestN(5)), finding("D", digestN(5)))
		check("settled rows stay", map[string]string{"A": "", "B": "", "C": "", "D": "reeval:2"})

		p := &index.Package{Type: index.TypeGoBinary, Name: "example.com/m", Version: "v1.0.0", Path: "app"}
		targets := []reevalTarget{{repo: "team/app", digest: digestN(9), touchedImage: touchedImage{
			keys: []string{findingKey("A", p), findingKey("D", p), findingKey("E", p)}}}}
		for _, c := range []struct {
			run  string
			want []string
		}{
			{"reeval:2", []string{"A"}},      // D is only its own; E never stored
			{"reeval:3", []string{"A", "D"}}, // D was another run's
		} {
			var refs []findingRef
			var n int
			err := db.InTx(ctx, func(tx *store.Tx) (err error) {
				refs, n, _, err = maybeStoredTx(ctx, tx, targets, c.run)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range refs {
				got = append(got, keyAdvisory(r.key))
			}
			if n != 3 || !slices.Equal(got, c.want) {
				t.Errorf("run %s looks up %v of %d candidates, want %v of 3", c.run, got, n, c.want)
			}
		}
	})
}
