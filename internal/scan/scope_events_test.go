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

// scopeEvents reads the ECR Scan Resource Change events after id, each
// as "scan-type: repo PREVIOUS->NEW, ...", and the last id.
func scopeEvents(t *testing.T, s *Service, after int64) ([]string, int64) {
	t.Helper()
	evs, err := s.Events(context.Background(), after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		after = e.ID
		if e.DetailType != DetailECRScanResourceChange || e.Source != SourceECR {
			t.Errorf("event %s %s", e.Source, e.DetailType)
			continue
		}
		var d struct {
			ActionType   string `json:"action-type"`
			ResourceType string `json:"resource-type"`
			ScanType     string `json:"scan-type"`
			Repositories []struct {
				Name     string `json:"repository-name"`
				Arn      string `json:"repository-arn"`
				Freq     string `json:"scan-frequency"`
				Previous string `json:"previous-scan-frequency"`
			} `json:"repositories"`
		}
		if err := json.Unmarshal(e.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if d.ActionType != "SCAN_FREQUENCY_CHANGE" || d.ResourceType != "REPOSITORY" {
			t.Errorf("detail %s", e.Detail)
		}
		line := d.ScanType + ":"
		for _, r := range d.Repositories {
			if r.Arn != "arn:aws:ecr:us-east-1:000000000000:repository/"+r.Name {
				t.Errorf("repository-arn %s", r.Arn)
			}
			line += " " + r.Name + " " + r.Previous + "->" + r.Freq
		}
		out = append(out, line)
	}
	return out, after
}

// TestScopeChangeEvents: switching scan type and rules, and creating or
// deleting repositories under enhanced scanning, give ECR Scan Resource
// Change events listing the repositories whose scanning changed, with
// frequencies as §12.2 defines them (continuous wins over scan on push;
// ENHANCED without rules is continuous for all; the deprecated
// per-repository scanOnPush counts under BASIC), on SQLite and PostgreSQL.
func TestScopeChangeEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, err := New(ctx, Options{Store: db, RepositoryScanOnPush: func(_ context.Context, repo string) (bool, error) {
			return repo == "legacy", nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"scanrepo-prod", "scanrepo-test", "legacy"} {
			if _, err := db.Registry().CreateRepository(ctx, r, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		steps := []struct {
			name string
			cfg  Config
			want []string
		}{
			{"BASIC to ENHANCED without rules: continuous for all", Config{ScanType: Enhanced},
				[]string{"ENHANCED: legacy SCAN_ON_PUSH->CONTINUOUS_SCAN scanrepo-prod MANUAL->CONTINUOUS_SCAN scanrepo-test MANUAL->CONTINUOUS_SCAN"}},
			{"rules narrow the scope", Config{ScanType: Enhanced, Rules: []Rule{
				{ScanFrequency: ContinuousScan, RepositoryFilters: wild("prod")},
				{ScanFrequency: ScanOnPush, RepositoryFilters: wild("test", "prod")},
			}}, []string{"ENHANCED: legacy CONTINUOUS_SCAN->MANUAL scanrepo-test CONTINUOUS_SCAN->SCAN_ON_PUSH"}},
			{"the same rules again", Config{ScanType: Enhanced, Rules: []Rule{
				{ScanFrequency: ContinuousScan, RepositoryFilters: wild("prod")},
				{ScanFrequency: ScanOnPush, RepositoryFilters: wild("test", "prod")},
			}}, nil},
			{"back to BASIC", Config{ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("prod")}}},
				[]string{"BASIC: legacy MANUAL->SCAN_ON_PUSH scanrepo-prod CONTINUOUS_SCAN->SCAN_ON_PUSH scanrepo-test SCAN_ON_PUSH->MANUAL"}},
			{"BASIC rules only: not enhanced scanning", Config{ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("test")}}}, nil},
			{"ENHANCED for prod", Config{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("prod")}}},
				[]string{"ENHANCED: legacy SCAN_ON_PUSH->MANUAL scanrepo-prod MANUAL->CONTINUOUS_SCAN scanrepo-test SCAN_ON_PUSH->MANUAL"}},
		}
		var last int64
		for _, st := range steps {
			if _, err := s.PutRegistryScanningConfiguration(ctx, st.cfg); err != nil {
				t.Fatal(err)
			}
			var got []string
			got, last = scopeEvents(t, s, last)
			if !slices.Equal(got, st.want) {
				t.Errorf("%s:\n got %q\nwant %q", st.name, got, st.want)
			}
		}

		// Repositories created through the ECR API and deleted: one event
		// each for a repository a rule covers.
		for _, r := range []string{"new-prod", "other"} {
			if err := db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO registry_repositories (name, created_at) VALUES (?, 0)`, r); err != nil {
					return err
				}
				return store.RecordRepositoryCreatedTx(ctx, tx, r, time.Now())
			}); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range []string{"new-prod", "other"} {
			if err := db.Registry().DeleteRepository(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.ConsumePushes(ctx); err != nil {
			t.Fatal(err)
		}
		got, last := scopeEvents(t, s, last)
		if want := []string{"ENHANCED: new-prod MANUAL->CONTINUOUS_SCAN", "ENHANCED: new-prod CONTINUOUS_SCAN->MANUAL"}; !slices.Equal(got, want) {
			t.Errorf("repository events:\n got %q\nwant %q", got, want)
		}

		// Many repositories: 100 per event.
		for i := range 150 {
			if _, err := db.Registry().CreateRepository(ctx, fmt.Sprintf("bulk-%03d", i), time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced}); err != nil {
			t.Fatal(err)
		}
		evs, err := s.Events(ctx, last, 100)
		if err != nil || len(evs) != 2 {
			t.Fatalf("%d events for 152 repositories (%v), want 2", len(evs), err)
		}
		n := 0
		for _, e := range evs {
			var d struct {
				Repositories []json.RawMessage `json:"repositories"`
			}
			if err := json.Unmarshal(e.Detail, &d); err != nil {
				t.Fatal(err)
			}
			n += len(d.Repositories)
		}
		if n != 152 {
			t.Errorf("%d repositories listed, want 152 (150 new, legacy, scanrepo-test)", n)
		}
	})
}
