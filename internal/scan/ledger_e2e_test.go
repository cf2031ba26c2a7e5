package scan_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
)

// TestLedgerFixedByNewImage: pushing a patched image to the tag of a
// vulnerable one closes the old image's findings the new one no longer has
// as FIXED_BY_NEW_IMAGE, which the remediation summary counts; re-scanning
// the old image does not reopen them.
func TestLedgerFixedByNewImage(t *testing.T) {
	fixed := imagetest.Alpine310(t)
	// OpenSSL one release behind: its CVEs; musl current.
	vulnerable := imagetest.WithAPKVersions(t, fixed, map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	want := expectedFindings(t, imagetest.ReadFile(t, vulnerable, imagetest.APKInstalled))
	if len(want) == 0 || len(expectedFindings(t, imagetest.ReadFile(t, fixed, imagetest.APKInstalled))) != 0 {
		t.Fatal("the fixture is not what the test expects")
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		oldDigest := s.push(t, vulnerable, "app/api:prod")
		s.waitStatus(t, "app/api", oldDigest, scan.StatusActive)
		waitFindings(t, s, "app/api", oldDigest, want)

		newDigest := s.push(t, fixed, "app/api:prod")
		s.waitStatus(t, "app/api", newDigest, scan.StatusActive)
		var closed []scan.Finding
		deadline := time.Now().Add(60 * time.Second)
		for {
			list, _, err := s.svc.ListFindings(ctx, scan.FindingQuery{Repositories: []string{"app/api"}, ClosedSince: start}, scan.Page{})
			if err != nil {
				t.Fatal(err)
			}
			if closed = list; len(closed) == len(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(closed) != len(want) {
			t.Fatalf("%d findings closed since the first push, want %d", len(closed), len(want))
		}
		var sum time.Duration
		for _, f := range closed {
			if f.Digest != oldDigest || f.Status != scan.FindingClosed || f.ClosedReason != scan.ClosedFixedByNewImage || f.ClosedAt.Before(f.FirstObservedAt) {
				t.Errorf("closed finding %s@%s %s: %s %s at %v (first %v)", f.Repository, f.Digest, f.VulnerabilityID, f.Status, f.ClosedReason, f.ClosedAt, f.FirstObservedAt)
			}
			sum += f.ClosedAt.Sub(f.FirstObservedAt)
		}
		stats, err := s.svc.Remediation(ctx, []string{"app/api"}, start.Add(-time.Minute), time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(stats) != 1 {
			t.Fatalf("stats %+v", stats)
		}
		st := stats[0]
		mean := sum / time.Duration(len(closed))
		if st.Remediated != len(want) || st.Closed[scan.ClosedFixedByNewImage] != len(want) || st.New != len(want) || st.Open != 0 ||
			(st.MeanTimeToRemediate-mean).Abs() > time.Millisecond {
			t.Errorf("remediation %+v, want %d remediated in %v on average", st, len(want), mean)
		}
		// New since the first push: the old image's findings, nothing of
		// the patched image.
		fresh, _, err := s.svc.ListFindings(ctx, scan.FindingQuery{FirstObservedSince: start}, scan.Page{})
		if err != nil || len(fresh) != len(want) {
			t.Fatalf("new since the first push: %d (%v), want %d", len(fresh), err, len(want))
		}
		fixable, _, err := s.svc.ListFindings(ctx, scan.FindingQuery{FixAvailableSince: start}, scan.Page{})
		if err != nil || len(fixable) != len(want) {
			t.Fatalf("fixable since the first push: %d (%v), want %d (the secdb names a fix for each)", len(fixable), err, len(want))
		}

		// A full re-scan of the old image keeps the remediation.
		if _, err := s.svc.RescanContinuous(ctx); err != nil {
			t.Fatal(err)
		}
		deadline = time.Now().Add(60 * time.Second)
		for {
			st, err := s.svc.ScanStatus(ctx, "app/api", oldDigest)
			if err != nil {
				t.Fatal(err)
			}
			var queued int
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_jobs WHERE state IN ('queued', 'running')`).Scan(&queued); err != nil {
				t.Fatal(err)
			}
			if queued == 0 && st.Status == scan.StatusActive {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("re-scan did not finish: %+v", st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		got, _ := findingPairs(t, s, "app/api", oldDigest)
		if len(got) != 0 {
			t.Errorf("the re-scan reopened %s", strings.Join(got, ", "))
		}

		// A rollback: the tag moves back to the vulnerable image, whose
		// findings are open again.
		if d := s.push(t, vulnerable, "app/api:prod"); d != oldDigest {
			t.Fatalf("pushed %s again as %s", oldDigest, d)
		}
		res := waitFindings(t, s, "app/api", oldDigest, want)
		for _, f := range res.Findings {
			if f.Status != scan.FindingActive {
				t.Errorf("reinstated %s: %s", f.VulnerabilityID, f.Status)
			}
		}
	})
}
