package scan_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
	"github.com/drydockhq/drydock/internal/testutil/regtest"
)

// TestRegistryDeleteClosesFindings deletes a scanned image through the
// registry API (DELETE /v2/NAME/manifests/DIGEST) on SQLite and
// PostgreSQL: its findings close with reason IMAGE_DELETED and closedAt,
// each with a CLOSED Inspector2 Finding event, its scan status goes
// (ScanNotFound) with its inventory, and pushing it again scans it anew
// and reopens the findings.
func TestRegistryDeleteClosesFindings(t *testing.T) {
	img := imagetest.WithAPKVersions(t, imagetest.Alpine310(t), map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	want := expectedFindings(t, imagetest.ReadFile(t, img, imagetest.APKInstalled))
	if len(want) == 0 {
		t.Fatal("the modified fixture has no findings in the secdb")
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced, Rules: []scan.Rule{
			{ScanFrequency: scan.ContinuousScan, RepositoryFilters: []scan.Filter{{Filter: "alpine", FilterType: scan.FilterWildcard}}},
		}}); err != nil {
			t.Fatal(err)
		}
		dg := s.push(t, img, "alpine/old:3.10")
		s.waitStatus(t, "alpine/old", dg, scan.StatusActive)
		if got, _ := findingPairs(t, s, "alpine/old", dg); len(got) != len(want) {
			t.Fatalf("findings %v, want %v", got, want)
		}
		events, err := s.svc.Events(ctx, 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		mark := events[len(events)-1].ID
		// The repository, created by the push under a CONTINUOUS_SCAN
		// rule, was announced.
		scopes := 0
		for _, e := range events {
			if e.DetailType == scan.DetailECRScanResourceChange {
				scopes++
				var d struct {
					Repositories []map[string]string `json:"repositories"`
				}
				json.Unmarshal(e.Detail, &d)
				if len(d.Repositories) != 1 || d.Repositories[0]["repository-name"] != "alpine/old" ||
					d.Repositories[0]["previous-scan-frequency"] != "MANUAL" || d.Repositories[0]["scan-frequency"] != "CONTINUOUS_SCAN" {
					t.Errorf("scope event %s", e.Detail)
				}
			}
		}
		if scopes != 1 {
			t.Errorf("%d scope events for a repository created by a push, want 1", scopes)
		}

		regtest.DeleteManifest(t, s.host, "alpine/old", dg)
		deadline := time.Now().Add(time.Minute)
		for {
			_, err := s.svc.ScanStatus(ctx, "alpine/old", dg)
			if errors.Is(err, scan.ErrScanNotFound) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("scan status after the delete: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := s.svc.Findings(ctx, "alpine/old", dg, scan.Page{}); !errors.Is(err, scan.ErrScanNotFound) {
			t.Fatalf("findings of a deleted image: %v", err)
		}
		rows, err := db.QueryContext(ctx, `SELECT status, closed_reason, closed_at FROM scan_findings WHERE repository = ? AND image_digest = ?`, "alpine/old", dg)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var st, reason string
			var at int64
			if err := rows.Scan(&st, &reason, &at); err != nil {
				t.Fatal(err)
			}
			if st != "CLOSED" || reason != string(scan.ClosedImageDeleted) || at == 0 {
				t.Errorf("finding after the delete: %s %q %d", st, reason, at)
			}
			n++
		}
		rows.Close()
		if n != len(want) {
			t.Fatalf("%d findings kept, want %d", n, len(want))
		}
		var inv int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_inventories WHERE image_digest = ?`, dg).Scan(&inv); err != nil || inv != 0 {
			t.Fatalf("inventory of a digest no repository holds: %d %v", inv, err)
		}
		events, err = s.svc.Events(ctx, mark, 100000)
		if err != nil {
			t.Fatal(err)
		}
		closed := 0
		for _, e := range events {
			if e.DetailType != scan.DetailInspector2Finding {
				continue
			}
			var f struct {
				Status         string `json:"status"`
				RepositoryName string `json:"repositoryName"`
				ImageDigest    string `json:"imageDigest"`
			}
			if err := json.Unmarshal(e.Detail, &f); err != nil {
				t.Fatal(err)
			}
			if f.Status != "CLOSED" || f.RepositoryName != "alpine/old" || f.ImageDigest != dg {
				t.Errorf("finding event %s", e.Detail)
			}
			closed++
		}
		if closed != len(want) {
			t.Errorf("%d CLOSED finding events, want %d", closed, len(want))
		}

		// Pushed again: scanned anew, the same findings open again.
		if again := s.push(t, img, "alpine/old:3.10"); again != dg {
			t.Fatalf("digest changed: %s", again)
		}
		s.waitStatus(t, "alpine/old", dg, scan.StatusActive)
		res, err := s.svc.Findings(ctx, "alpine/old", dg, scan.Page{})
		if err != nil || len(res.Findings) != len(want) {
			t.Fatalf("findings after a new push: %d %v", len(res.Findings), err)
		}
		for _, f := range res.Findings {
			if f.Status != scan.FindingActive {
				t.Errorf("finding after a new push: %+v", f)
			}
		}
	})
}
