package scan_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
	"github.com/drydockhq/drydock/internal/testutil/regtest"
)

const day = 24 * time.Hour

// testClock is the scan service's injected clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// windowStack is a real registry, the Alpine 3.10 secdb and a running scan
// service on the injected clock (its own window sweep held off: the test
// sweeps).
type windowStack struct {
	db   *store.DB
	svc  *scan.Service
	clk  *testClock
	host string
}

func newWindowStack(t *testing.T, db *store.DB, clk *testClock) *windowStack {
	t.Helper()
	ctx := context.Background()
	bs, host := regtest.Registry(t, db)
	_, vix, _ := regtest.AlpineVulns(t, db)
	svc, err := scan.New(ctx, scan.Options{Store: db, Blobs: bs, Vulns: vix, AccountID: "123456789012", Region: "us-east-1", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- svc.Run(runCtx, scan.RunOptions{PushPoll: 50 * time.Millisecond, QueuePoll: 200 * time.Millisecond,
			VulnRefresh: time.Hour, WindowSweep: 1000 * time.Hour})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &windowStack{db: db, svc: svc, clk: clk, host: host}
}

func (s *windowStack) ref(t *testing.T, r string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s.host + "/" + r)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func (s *windowStack) push(t *testing.T, img v1.Image, r string) string {
	t.Helper()
	if err := remote.Write(s.ref(t, r), img); err != nil {
		t.Fatalf("push %s: %v", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// status polls until the image's scan status is want.
func (s *windowStack) status(t *testing.T, repo, dg, want string) scan.Status {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := s.svc.ScanStatus(context.Background(), repo, dg)
		if err == nil && st.Status == want {
			return st
		}
		if err != nil && !errors.Is(err, scan.ErrScanNotFound) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s@%s: status %+v (%v), want %s", repo, dg, st, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *windowStack) sweep(t *testing.T) scan.SweepResult {
	t.Helper()
	res, err := s.svc.SweepWindows(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// recordPull records a pull of the image at the clock's time, as the
// registry's manifest GET does at its own.
func (s *windowStack) recordPull(t *testing.T, repo, dg string) {
	t.Helper()
	ctx := context.Background()
	m, err := s.db.Registry().Manifest(ctx, repo, dg, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Registry().RecordPull(ctx, m.RepositoryID, dg, s.clk.Now()); err != nil {
		t.Fatal(err)
	}
}

// findingStates returns the image's findings as "id status reason".
func (s *windowStack) findingStates(t *testing.T, repo, dg string) []string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), `SELECT finding_id, status, closed_reason FROM scan_findings
		WHERE repository = ? AND image_digest = ? ORDER BY finding_id`, repo, dg)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, st, reason string
		if err := rows.Scan(&id, &st, &reason); err != nil {
			t.Fatal(err)
		}
		out = append(out, id+" "+st+" "+reason)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func (s *windowStack) findingIDs(t *testing.T, repo, dg, status string) []string {
	t.Helper()
	var out []string
	for _, f := range s.findingStates(t, repo, dg) {
		parts := strings.Fields(f)
		if parts[1] == status {
			out = append(out, parts[0])
		}
	}
	return out
}

// closedEvents returns the ids of the findings of the image closed by
// Inspector2 Finding events after the event id.
func (s *windowStack) closedEvents(t *testing.T, after int64, repo, dg string) []string {
	t.Helper()
	events, err := s.svc.Events(context.Background(), after, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range events {
		if e.DetailType != scan.DetailInspector2Finding {
			continue
		}
		var f scan.Finding
		if err := json.Unmarshal(e.Detail, &f); err != nil {
			t.Fatal(err)
		}
		if f.Repository == repo && f.Digest == dg && f.Status == scan.FindingClosed {
			ids = append(ids, f.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

func lastEvent(t *testing.T, svc *scan.Service) int64 {
	t.Helper()
	events, err := svc.Events(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		return 0
	}
	return events[len(events)-1].ID
}

// TestMonitoringWindows walks images through Inspector's re-scan durations
// (CONTRACT.md §12.5) on an injected clock: an image is monitored while it
// was pushed within the push date duration OR pulled (pushed, when never
// pulled) within the pull date duration; outside both it goes to
// SCAN_ELIGIBILITY_EXPIRED and its findings close; a pull or a push brings
// it back; LIFETIME never expires.
func TestMonitoringWindows(t *testing.T) {
	// The alpine:3.10 image with OpenSSL downgraded to 1.1.1c-r0, which the
	// secdb lists as fixed in 1.1.1d-r0 (three CVEs): it has findings.
	img := imagetest.WithAPKVersions(t, imagetest.Alpine310(t), map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Now().UTC().Truncate(time.Millisecond)
		clk := &testClock{t: t0}
		s := newWindowStack(t, db, clk)

		w, err := s.svc.Windows(ctx)
		if err != nil || w != scan.DefaultWindows() {
			t.Fatalf("default windows %+v %v", w, err)
		}
		if _, err := s.svc.SetWindows(ctx, scan.Windows{RescanDuration: "DAYS_7"}); err == nil {
			t.Fatal("DAYS_7 accepted")
		}
		if _, err := s.svc.SetWindows(ctx, scan.Windows{RescanDuration: scan.RescanDays14, PullDateRescanMode: "LAST_SEEN"}); err == nil {
			t.Fatal("pull mode LAST_SEEN accepted")
		}

		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
			t.Fatal(err)
		}
		// idle: never pulled; pulled: pulled once at t0; busy: pulled
		// again on day 20.
		dg := s.push(t, img, "idle:v1")
		for _, r := range []string{"pulled:v1", "busy:v1"} {
			if got := s.push(t, img, r); got != dg {
				t.Fatalf("digest %s, want %s", got, dg)
			}
		}
		for _, r := range []string{"idle", "pulled", "busy"} {
			s.status(t, r, dg, scan.StatusActive)
		}
		// Finding ids name the repository: keep each image's.
		openIn := map[string][]string{}
		for _, r := range []string{"idle", "pulled", "busy"} {
			openIn[r] = s.findingIDs(t, r, dg, scan.FindingActive)
		}
		open := openIn["idle"]
		if len(open) < 3 || len(openIn["pulled"]) != len(open) || len(openIn["busy"]) != len(open) {
			t.Fatalf("open findings %v, want at least the three OpenSSL CVEs in each", openIn)
		}
		s.recordPull(t, "pulled", dg)
		s.recordPull(t, "busy", dg)

		// Push date 14 days, pull date 30 days, by last pull.
		set, err := s.svc.SetWindows(ctx, scan.Windows{RescanDuration: scan.RescanDays14,
			PullDateRescanDuration: scan.RescanDays30, PullDateRescanMode: scan.PullModeLastPullDate})
		if err != nil || !set.UpdatedAt.Equal(t0) {
			t.Fatalf("set windows: %+v %v", set, err)
		}
		if got, err := s.svc.Windows(ctx); err != nil || got != set {
			t.Fatalf("stored windows %+v %v, want %+v", got, err, set)
		}

		// Day 13: inside both windows.
		clk.Set(t0.Add(13 * day))
		if res := s.sweep(t); res != (scan.SweepResult{}) {
			t.Fatalf("day 13 sweep: %+v", res)
		}
		// Day 20: past the push date window, inside the pull date window
		// (measured from the push for the image never pulled).
		clk.Set(t0.Add(20 * day))
		if res := s.sweep(t); res != (scan.SweepResult{}) {
			t.Fatalf("day 20 sweep: %+v", res)
		}
		s.recordPull(t, "busy", dg)

		// Day 31: idle and pulled are out of both windows; busy, pulled
		// on day 20, stays.
		before := lastEvent(t, s.svc)
		clk.Set(t0.Add(31 * day))
		res := s.sweep(t)
		if res.Expired != 2 || res.Revived != 0 || res.ClosedFindings != 2*len(open) {
			t.Fatalf("day 31 sweep: %+v, want 2 images expired and %d findings closed", res, 2*len(open))
		}
		for _, r := range []string{"idle", "pulled"} {
			st, err := s.svc.ScanStatus(ctx, r, dg)
			if err != nil || st.Status != scan.StatusEligibilityExp || st.Description != "The configured scan duration has lapsed for this image." {
				t.Fatalf("%s: %+v %v", r, st, err)
			}
			var want []string
			for _, id := range s.findingIDs(t, r, dg, scan.FindingClosed) {
				want = append(want, id+" CLOSED ELIGIBILITY_EXPIRED")
			}
			if got := s.findingStates(t, r, dg); strings.Join(got, ",") != strings.Join(want, ",") || len(got) != len(open) {
				t.Fatalf("%s findings after expiry: %v", r, got)
			}
			var first, last int64
			if err := db.QueryRowContext(ctx, `SELECT MIN(closed_at), MAX(closed_at) FROM scan_findings WHERE repository = ? AND image_digest = ?`,
				r, dg).Scan(&first, &last); err != nil || first != clk.Now().UnixMilli() || last != first {
				t.Fatalf("%s closed_at %d..%d (%v), want the sweep's time %d", r, first, last, err, clk.Now().UnixMilli())
			}
			if got := s.closedEvents(t, before, r, dg); strings.Join(got, ",") != strings.Join(s.findingIDs(t, r, dg, scan.FindingClosed), ",") {
				t.Fatalf("%s: closed finding events %v", r, got)
			}
		}
		s.status(t, "busy", dg, scan.StatusActive)
		if got := s.findingIDs(t, "busy", dg, scan.FindingActive); len(got) != len(open) {
			t.Fatalf("busy open findings %v", got)
		}
		// The sweep is idempotent.
		if res := s.sweep(t); res != (scan.SweepResult{}) {
			t.Fatalf("second day 31 sweep: %+v", res)
		}

		// Longer windows do not bring expired images back by themselves.
		if _, err := s.svc.SetWindows(ctx, scan.Windows{RescanDuration: scan.RescanLifetime}); err != nil {
			t.Fatal(err)
		}
		if res := s.sweep(t); res != (scan.SweepResult{}) {
			t.Fatalf("sweep after LIFETIME: %+v", res)
		}
		// LIFETIME never expires, however old the push and the pull.
		clk.Set(t0.Add(3000 * day))
		if res := s.sweep(t); res != (scan.SweepResult{}) {
			t.Fatalf("LIFETIME sweep at day 3000: %+v", res)
		}
		if st, _ := s.svc.ScanStatus(ctx, "busy", dg); st.Status != scan.StatusActive {
			t.Fatalf("busy under LIFETIME: %+v", st)
		}

		// A pull of an expired image brings it back: scanned again, its
		// findings reopen.
		clk.Set(t0.Add(32 * day))
		if _, err := s.svc.SetWindows(ctx, scan.Windows{RescanDuration: scan.RescanDays14,
			PullDateRescanDuration: scan.RescanDays14, PullDateRescanMode: scan.PullModeLastInUseAt}); err != nil {
			t.Fatal(err)
		}
		s.recordPull(t, "pulled", dg)
		// busy, last pulled on day 20, is inside the 14 days; pulled
		// (pulled after it expired) comes back; idle stays expired.
		if res := s.sweep(t); res != (scan.SweepResult{Revived: 1}) {
			t.Fatalf("day 32 sweep: %+v, want pulled revived", res)
		}
		s.status(t, "pulled", dg, scan.StatusActive)
		if got := s.findingIDs(t, "pulled", dg, scan.FindingActive); strings.Join(got, ",") != strings.Join(openIn["pulled"], ",") {
			t.Fatalf("pulled: reopened findings %v, want %v", got, openIn["pulled"])
		}
		if st, _ := s.svc.ScanStatus(ctx, "idle", dg); st.Status != scan.StatusEligibilityExp {
			t.Fatalf("idle (not pulled) revived: %+v", st)
		}

		// LAST_IN_USE_AT is measured by the last pull: busy (day 20) goes
		// on day 35, pulled (day 32) stays until day 46.
		clk.Set(t0.Add(35 * day))
		if res := s.sweep(t); res.Expired != 1 {
			t.Fatalf("day 35 sweep: %+v, want busy expired", res)
		}
		s.status(t, "busy", dg, scan.StatusEligibilityExp)
		s.status(t, "pulled", dg, scan.StatusActive)

		// A push of the same image (a new tag) brings idle back, and its
		// push date window starts again from that push.
		s.push(t, img, "idle:v2")
		s.status(t, "idle", dg, scan.StatusActive)
		if got := s.findingIDs(t, "idle", dg, scan.FindingActive); strings.Join(got, ",") != strings.Join(openIn["idle"], ",") {
			t.Fatalf("idle: reopened findings %v, want %v", got, openIn["idle"])
		}
		clk.Set(t0.Add(48 * day))
		res = s.sweep(t)
		if res.Expired != 1 {
			t.Fatalf("day 48 sweep: %+v, want pulled expired", res)
		}
		s.status(t, "idle", dg, scan.StatusActive)
		s.status(t, "pulled", dg, scan.StatusEligibilityExp)
		clk.Set(t0.Add(35*day + 15*day))
		if res := s.sweep(t); res.Expired != 1 {
			t.Fatalf("day 50 sweep: %+v, want idle expired again", res)
		}
		s.status(t, "idle", dg, scan.StatusEligibilityExp)

		// Under basic scanning nothing is monitored and nothing moves.
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Basic}); err != nil {
			t.Fatal(err)
		}
		s.recordPull(t, "idle", dg)
		if res := s.sweep(t); res != (scan.SweepResult{}) {
			t.Fatalf("sweep under BASIC: %+v", res)
		}
	})
}

// TestPullThroughRegistryRevives: a real pull (manifest GET) of an expired
// image brings it back at the next sweep; a HEAD does not count. The
// image's push is dated 40 days back in the store, since the registry
// records times on the wall clock.
func TestPullThroughRegistryRevives(t *testing.T) {
	img := imagetest.WithAPKVersions(t, imagetest.Alpine310(t), map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &testClock{t: time.Now().UTC()}
		s := newWindowStack(t, db, clk)
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.svc.SetWindows(ctx, scan.Windows{RescanDuration: scan.RescanDays30, PullDateRescanDuration: scan.RescanDays30}); err != nil {
			t.Fatal(err)
		}
		dg := s.push(t, img, "app:v1")
		s.status(t, "app", dg, scan.StatusActive)
		open := s.findingIDs(t, "app", dg, scan.FindingActive)
		old := time.Now().Add(-40 * day).UnixMilli()
		if _, err := db.ExecContext(ctx, `UPDATE registry_manifests SET pushed_at = ? WHERE digest = ?`, old, dg); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE scan_scans SET started_at = ? WHERE image_digest = ?`, old, dg); err != nil {
			t.Fatal(err)
		}
		clk.Set(time.Now().UTC())
		if res := s.sweep(t); res.Expired != 1 {
			t.Fatalf("sweep: %+v, want the image expired", res)
		}
		// Wait for the wall clock to pass the expiry's millisecond, so a
		// pull is recorded after it.
		for time.Now().UnixMilli() <= clk.Now().UnixMilli() {
			time.Sleep(time.Millisecond)
		}
		if _, err := remote.Head(s.ref(t, "app:v1")); err != nil {
			t.Fatal(err)
		}
		if res := s.sweep(t); res.Revived != 0 {
			t.Fatalf("a HEAD revived the image: %+v", res)
		}
		// A pull while no rule scans the repository (MANUAL) revives
		// nothing; once a rule scans it again, that pull counts.
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced, Rules: []scan.Rule{
			{ScanFrequency: scan.ContinuousScan, RepositoryFilters: []scan.Filter{{Filter: "other", FilterType: "WILDCARD"}}}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Get(s.ref(t, "app:v1")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			m, err := db.Registry().Manifest(ctx, "app", dg, false, false)
			if err != nil {
				t.Fatal(err)
			}
			if m.LastPulledAt.UnixMilli() > clk.Now().UnixMilli() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the pull was never recorded")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if res := s.sweep(t); res != (scan.SweepResult{}) {
			t.Fatalf("sweep with the repository MANUAL: %+v", res)
		}
		if st, _ := s.svc.ScanStatus(ctx, "app", dg); st.Status != scan.StatusEligibilityExp {
			t.Fatalf("pulled while MANUAL: %+v", st)
		}
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
			t.Fatal(err)
		}
		for {
			res := s.sweep(t)
			if res.Revived == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the pull never revived the image: %+v", res)
			}
			time.Sleep(20 * time.Millisecond)
		}
		s.status(t, "app", dg, scan.StatusActive)
		if got := s.findingIDs(t, "app", dg, scan.FindingActive); strings.Join(got, ",") != strings.Join(open, ",") {
			t.Fatalf("reopened findings %v, want %v", got, open)
		}
		// Monitored again for the pull date duration.
		if res := s.sweep(t); res != (scan.SweepResult{}) {
			t.Fatalf("sweep after the revival: %+v", res)
		}
	})
}

// BenchmarkSweepWindows measures one sweep over 10,000 enhanced ACTIVE
// images in 100 repositories (three findings each): "steady" when every
// image is inside its windows (the sweep Run makes every minute), and
// "expire-all" when every image falls out at once (30,000 findings closed,
// each with its event).
func BenchmarkSweepWindows(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		b.Run(backend.name, func(b *testing.B) {
			ctx := context.Background()
			db := backend.open(b)
			t0 := time.Now().UTC().Truncate(time.Millisecond)
			clk := &testClock{t: t0}
			svc, err := scan.New(ctx, scan.Options{Store: db, Now: clk.Now})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
				b.Fatal(err)
			}
			if _, err := svc.SetWindows(ctx, scan.Windows{RescanDuration: scan.RescanDays14, PullDateRescanDuration: scan.RescanDays14}); err != nil {
				b.Fatal(err)
			}
			const repos, perRepo, findings = 100, 100, 3
			err = db.InTx(ctx, func(tx *store.Tx) error {
				for r := range repos {
					repo := fmt.Sprintf("team/app-%03d", r)
					var id int64
					if err := tx.QueryRowContext(ctx, `INSERT INTO registry_repositories (name, created_at) VALUES (?, ?) RETURNING id`,
						repo, t0.UnixMilli()).Scan(&id); err != nil {
						return err
					}
					for i := range perRepo {
						dg := fmt.Sprintf("sha256:%064x", r*perRepo+i)
						if _, err := tx.ExecContext(ctx, `INSERT INTO registry_manifests (repository_id, digest, media_type, size, content, pushed_at)
							VALUES (?, ?, 'application/vnd.oci.image.manifest.v1+json', 2, ?, ?)`, id, dg, []byte("{}"), t0.UnixMilli()); err != nil {
							return err
						}
						if _, err := tx.ExecContext(ctx, `INSERT INTO scan_scans (repository, image_digest, scan_type, status, started_at)
							VALUES (?, ?, 'ENHANCED', 'ACTIVE', ?)`, repo, dg, t0.UnixMilli()); err != nil {
							return err
						}
						for f := range findings {
							key := fmt.Sprintf("CVE-2024-%d|pkg", f)
							if _, err := tx.ExecContext(ctx, `INSERT INTO scan_findings (repository, image_digest, finding_key, finding_id, advisory_id,
								package_name, package_version, package_manager, severity, status, fix_available, first_observed_at,
								last_observed_at, updated_at, finding) VALUES (?, ?, ?, ?, ?, 'pkg', '1', 'OS', 'HIGH', 'ACTIVE', 'NO', ?, ?, ?, '{}')`,
								repo, dg, key, fmt.Sprintf("%x-%d", r*perRepo+i, f), fmt.Sprintf("CVE-2024-%d", f), t0.UnixMilli(), t0.UnixMilli(), t0.UnixMilli()); err != nil {
								return err
							}
						}
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			// Statistics, as a store in use has them (PostgreSQL's
			// planner picks a poor join for freshly loaded tables).
			if _, err := db.ExecContext(ctx, `ANALYZE`); err != nil {
				b.Fatal(err)
			}
			b.Run("steady", func(b *testing.B) {
				clk.Set(t0.Add(24 * time.Hour))
				for b.Loop() {
					if res, err := svc.SweepWindows(ctx); err != nil || res != (scan.SweepResult{}) {
						b.Fatalf("%+v %v", res, err)
					}
				}
			})
			b.Run("expire-all", func(b *testing.B) {
				clk.Set(t0.Add(30 * 24 * time.Hour))
				for b.Loop() {
					b.StopTimer()
					for _, q := range []string{`UPDATE scan_scans SET status = 'ACTIVE'`,
						`UPDATE scan_findings SET status = 'ACTIVE', closed_at = 0, closed_reason = ''`, `DELETE FROM scan_outbox`} {
						if _, err := db.ExecContext(ctx, q); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
					res, err := svc.SweepWindows(ctx)
					if err != nil || res.Expired != repos*perRepo || res.ClosedFindings != repos*perRepo*findings {
						b.Fatalf("%+v %v", res, err)
					}
				}
			})
		})
	}
}
