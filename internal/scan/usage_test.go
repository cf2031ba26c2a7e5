package scan

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
	"github.com/drydockhq/drydock/internal/testutil/regtest"
)

// meterStack is a registry, the Alpine 3.10 secdb as the vulnerability
// database and a scan service on a settable clock (as e2e_test.go builds
// its stack, with the clock the service's).
type meterStack struct {
	db   *store.DB
	opts Options
	svc  *Service
	clk  *clock
	host string
}

func newMeterStack(t *testing.T, db *store.DB, start time.Time, tune ...func(*Options)) *meterStack {
	t.Helper()
	ctx := context.Background()
	bs, host := regtest.Registry(t, db)
	_, vix, _ := regtest.AlpineVulns(t, db)
	clk := &clock{t: start}
	opts := Options{Store: db, Blobs: bs, Vulns: vix, AccountID: "123456789012", Now: clk.Now}
	for _, f := range tune {
		f(&opts)
	}
	svc, err := New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &meterStack{db: db, opts: opts, svc: svc, clk: clk, host: host}
}

func (s *meterStack) push(t *testing.T, img v1.Image, ref string) string {
	t.Helper()
	r, err := name.ParseReference(s.host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// runUntil runs the service (re-indexer off) until every image has one of
// the statuses, or fails the test after a deadline.
func (s *meterStack) runUntil(t *testing.T, images map[string]string, statuses ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.svc.Run(ctx, RunOptions{PushPoll: 20 * time.Millisecond, QueuePoll: 50 * time.Millisecond, ReindexRate: -1})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	s.waitFor(t, func() (bool, string) {
		for ref, dg := range images {
			repo, _, _ := strings.Cut(ref, "@")
			st, err := s.svc.ScanStatus(ctx, repo, dg)
			if err != nil && !errors.Is(err, ErrScanNotFound) {
				t.Fatal(err)
			}
			ok := false
			for _, w := range statuses {
				ok = ok || st.Status == w
			}
			if !ok || s.jobsLive(t) > 0 {
				return false, ref + " " + st.Status
			}
		}
		return true, ""
	})
}

func (s *meterStack) jobsLive(t *testing.T) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM scan_jobs WHERE state IN ('queued', 'running')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds, or fails the test after a deadline.
func (s *meterStack) waitFor(t *testing.T, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func usageLines(t *testing.T, rows []UsageRow) string {
	t.Helper()
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.Day.Format(time.DateOnly) + " " + r.Repository + " " + string(r.Kind) + " " + strconv.FormatInt(r.Count, 10) + "\n")
	}
	return b.String()
}

// TestUsageMetering: each scan counts once in its repository's UTC day by
// kind; a job whose lease was lost and that another worker ran counts once
// although both ran the scan; re-scans count as RESCAN; the totals are
// drydock_scans_total.
func TestUsageMetering(t *testing.T) {
	old := imagetest.WithAPKVersions(t, imagetest.Alpine310(t), map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newMeterStack(t, db, time.Date(2026, 3, 4, 23, 58, 0, 0, time.UTC))
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("*")}}}); err != nil {
			t.Fatal(err)
		}
		dg := s.push(t, old, "app/a:v1")
		s.push(t, old, "app/b:v1")
		s.runUntil(t, map[string]string{"app/a": dg, "app/b": dg}, StatusComplete)

		// Enhanced: one scan job, claimed by a worker that then stalls past
		// its lease (and past midnight UTC); a second worker claims and
		// finishes it; the first one's scan then ends without storing.
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("app/c")}}}); err != nil {
			t.Fatal(err)
		}
		s.push(t, old, "app/c:v1")
		if n, err := s.svc.ConsumePushes(ctx); err != nil || n == 0 {
			t.Fatalf("consume pushes: %d %v", n, err)
		}
		stalled, err := s.svc.Queue().Claim(ctx)
		if err != nil || stalled == nil {
			t.Fatalf("claim: %+v %v", stalled, err)
		}
		s.clk.Add(3 * time.Minute) // the default lease is 2 minutes
		second, err := s.svc.Queue().Claim(ctx)
		if err != nil || second == nil || second.ID != stalled.ID {
			t.Fatalf("second claim: %+v %v", second, err)
		}
		if err := s.svc.handle(ctx, second); err != nil {
			t.Fatal(err)
		}
		if err := s.svc.handle(ctx, stalled); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stalled worker's scan: %v, want ErrLeaseLost", err)
		}
		// A re-scan of the same image (the trigger continuous re-scans use).
		if _, err := s.svc.Queue().Enqueue(ctx, NewJob{Repository: "app/c", Digest: dg, Kind: kindScan,
			Payload: `{"scanType":"ENHANCED","frequency":"CONTINUOUS_SCAN","trigger":"rescan"}`}); err != nil {
			t.Fatal(err)
		}
		j, err := s.svc.Queue().Claim(ctx)
		if err != nil || j == nil {
			t.Fatalf("claim re-scan: %+v %v", j, err)
		}
		if err := s.svc.handle(ctx, j); err != nil {
			t.Fatal(err)
		}

		rows, err := s.svc.Usage(ctx, day("2026-03-01"), time.Time{}, "")
		if err != nil {
			t.Fatal(err)
		}
		want := "2026-03-04 app/a INITIAL_SCAN_BASIC 1\n2026-03-04 app/b INITIAL_SCAN_BASIC 1\n" +
			"2026-03-05 app/c INITIAL_SCAN_ENHANCED 1\n2026-03-05 app/c RESCAN 1\n"
		if got := usageLines(t, rows); got != want {
			t.Errorf("usage:\n%swant:\n%s", got, want)
		}
		// Bounds: from's day is included, to's day is not; by repository.
		for _, c := range []struct {
			from, to time.Time
			repo     string
			want     string
		}{
			{day("2026-03-05"), time.Time{}, "", "2026-03-05 app/c INITIAL_SCAN_ENHANCED 1\n2026-03-05 app/c RESCAN 1\n"},
			{day("2026-03-04").Add(23 * time.Hour), day("2026-03-05").Add(time.Hour), "", "2026-03-04 app/a INITIAL_SCAN_BASIC 1\n2026-03-04 app/b INITIAL_SCAN_BASIC 1\n"},
			{day("2026-03-01"), time.Time{}, "app/b", "2026-03-04 app/b INITIAL_SCAN_BASIC 1\n"},
			{day("2026-03-01"), day("2026-03-05"), "app/c", ""},
			{day("2026-03-06"), time.Time{}, "", ""},
		} {
			rows, err := s.svc.Usage(ctx, c.from, c.to, c.repo)
			if err != nil {
				t.Fatal(err)
			}
			if got := usageLines(t, rows); got != c.want {
				t.Errorf("usage from %v to %v of %q:\n%swant:\n%s", c.from, c.to, c.repo, got, c.want)
			}
		}
		if tot := UsageTotals(rows); tot[UsageInitialBasic] != 2 || tot[UsageInitialEnhanced] != 1 || tot[UsageRescan] != 1 {
			t.Errorf("totals %v", tot)
		}
		const metrics = `
# HELP drydock_scans_total Image scans completed, by kind: initial_basic, initial_enhanced, rescan (re-evaluations of stored images). Read from the store: every replica reports the registry's total.
# TYPE drydock_scans_total counter
drydock_scans_total{kind="initial_basic"} 2
drydock_scans_total{kind="initial_enhanced"} 1
drydock_scans_total{kind="rescan"} 1
`
		if err := promtest.CollectAndCompare(s.svc.UsageCollector(), strings.NewReader(metrics), "drydock_scans_total"); err != nil {
			t.Error(err)
		}
	})
}
