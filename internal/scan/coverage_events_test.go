package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// TestCoverageAnnouncements walks images through scan statuses and checks
// which Inspector2 Coverage events each step gives (contract §11.6 and
// §11.7: coverage status changes; Inspector's statusCodeValue and reason
// as ListCoverage reports them), on SQLite and PostgreSQL.
func TestCoverageAnnouncements(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := time.Date(2023, 1, 20, 22, 51, 35, 665501000, time.UTC)
		s, err := New(ctx, Options{Store: db, AccountID: "111122223333", Region: "eu-west-1", Now: func() time.Time { return clk }})
		if err != nil {
			t.Fatal(err)
		}
		digest := func(c string) string { return "sha256:" + fmt.Sprintf("%064s", c) }
		set := func(repo, dg string, typ ScanType, status string) {
			t.Helper()
			if _, err := db.ExecContext(ctx, `INSERT INTO scan_scans (repository, image_digest, scan_type, status, started_at) VALUES (?, ?, ?, ?, 1)
				ON CONFLICT (repository, image_digest) DO UPDATE SET scan_type = excluded.scan_type, status = excluded.status`,
				repo, dg, string(typ), status); err != nil {
				t.Fatal(err)
			}
		}
		steps := []struct {
			name   string
			repo   string
			image  string
			typ    ScanType
			status string
			want   []string
		}{
			{"queued: not yet covered", "app", "a", Enhanced, StatusPending, nil},
			{"first scan stored: covered", "app", "a", Enhanced, StatusActive, []string{"app/a ACTIVE/SUCCESSFUL"}},
			{"re-scan under way", "app", "a", Enhanced, StatusInProgress, nil},
			{"active again: no change", "app", "a", Enhanced, StatusActive, nil},
			{"out of the monitoring window", "app", "a", Enhanced, StatusEligibilityExp, []string{"app/a INACTIVE/SCAN_ELIGIBILITY_EXPIRED"}},
			{"pushed again, queued", "app", "a", Enhanced, StatusPending, nil},
			{"pushed again, scanned", "app", "a", Enhanced, StatusActive, []string{"app/a ACTIVE/SUCCESSFUL"}},
			{"a scan failed after coverage", "app", "a", Enhanced, StatusFailed, []string{"app/a INACTIVE/INTERNAL_ERROR"}},
			{"unsupported image", "app", "b", Enhanced, StatusUnsupportedImage, []string{"app/b INACTIVE/UNSUPPORTED_OS"}},
			{"first scan failed: never covered", "app", "c", Enhanced, StatusFailed, nil},
			{"basic scans are not Inspector's", "base", "d", Basic, StatusComplete, nil},
		}
		var last int64
		for _, st := range steps {
			clk = clk.Add(time.Second)
			set(st.repo, digest(st.image), st.typ, st.status)
			n, err := s.AnnounceCoverage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := s.Events(ctx, last, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range evs {
				last = e.ID
				if e.DetailType != DetailInspector2Coverage || e.Source != SourceInspector2 {
					t.Errorf("%s: event %s %s", st.name, e.Source, e.DetailType)
					continue
				}
				var d CoverageDetail
				if err := json.Unmarshal(e.Detail, &d); err != nil {
					t.Fatal(err)
				}
				arn := "arn:aws:ecr:eu-west-1:111122223333:repository/" + st.repo + "/" + digest(st.image)
				if d.ResourceID != arn || d.ScanType != "PACKAGE" || d.Provider != "AWS" || d.ProviderAccountID != "111122223333" ||
					d.ProviderRegion != "eu-west-1" || d.Version != "1.0" || d.EventTimestamp != clk.Format("2006-01-02T15:04:05.000000Z") {
					t.Errorf("%s: detail %s", st.name, e.Detail)
				}
				got = append(got, st.repo+"/"+st.image+" "+d.ScanStatus.StatusCodeValue+"/"+d.ScanStatus.Reason)
			}
			if !slices.Equal(got, st.want) || n != len(st.want) {
				t.Errorf("%s: events %v (%d), want %v", st.name, got, n, st.want)
			}
		}
		// A pass run by the poller right after another (another replica's)
		// does nothing.
		set("app", digest("a"), Enhanced, StatusActive)
		if err := s.announceCoverageIfDue(ctx); err != nil {
			t.Fatal(err)
		}
		if evs, _ := s.Events(ctx, last, 100); len(evs) != 0 {
			t.Errorf("a pass inside the sweep interval wrote %d events", len(evs))
		}
		clk = clk.Add(time.Minute)
		if err := s.announceCoverageIfDue(ctx); err != nil {
			t.Fatal(err)
		}
		if evs, _ := s.Events(ctx, last, 100); len(evs) != 1 {
			t.Errorf("a pass after the sweep interval wrote %d events, want 1", len(evs))
		}
	})
}

// TestCoverageFailureKeepsPushesMoving: a coverage pass that fails (here
// its table is gone) is logged, and the poller still starts the scans of
// the pushes after it.
func TestCoverageFailureKeepsPushesMoving(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, err := New(ctx, Options{Store: db})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutRegistryScanningConfiguration(ctx, Config{ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("*")}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `DROP TABLE scan_coverage`); err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(store.ImagePushed{Repository: "app", Digest: "sha256:" + fmt.Sprintf("%064d", 1),
			MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/vnd.oci.image.config.v1+json"})
		if _, err := db.ExecContext(ctx, `INSERT INTO registry_outbox (created_at, kind, payload) VALUES (?, ?, ?)`,
			time.Now().UnixMilli(), store.OutboxImagePushed, string(p)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AnnounceCoverage(ctx); err == nil {
			t.Fatal("a coverage pass without its table succeeded")
		}
		if n, err := s.ConsumePushes(ctx); err != nil || n != 1 {
			t.Fatalf("poll with a failing coverage pass: %d %v", n, err)
		}
		if st, err := s.ScanStatus(ctx, "app", "sha256:"+fmt.Sprintf("%064d", 1)); err != nil || st.Status != StatusInProgress {
			t.Fatalf("scan of the push: %+v %v", st, err)
		}
	})
}
