package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

func TestConfigurationStored(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, err := New(ctx, Options{Store: db, RepositoryScanOnPush: func(_ context.Context, repo string) (bool, error) {
			return repo == "legacy", nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.RegistryScanningConfiguration(ctx)
		if err != nil || !reflect.DeepEqual(c, DefaultConfig()) {
			t.Fatalf("default: %+v %v", c, err)
		}
		eff, err := s.EffectiveConfiguration(ctx, "legacy", "other")
		if err != nil || eff[0].ScanFrequency != ScanOnPush || eff[1].ScanFrequency != Manual {
			t.Fatalf("basic effective: %+v %v", eff, err)
		}
		var ve *ValidationError
		if _, err := s.PutRegistryScanningConfiguration(ctx, Config{ScanType: "FOO"}); !errors.As(err, &ve) {
			t.Fatalf("bad scan type: %v", err)
		}
		want := Config{ScanType: Enhanced, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("prod")}}}
		if _, err := s.PutRegistryScanningConfiguration(ctx, want); err != nil {
			t.Fatal(err)
		}
		// A refused configuration leaves the stored one alone.
		if _, err := s.PutRegistryScanningConfiguration(ctx, Config{ScanType: Basic, Rules: []Rule{{ScanFrequency: ContinuousScan, RepositoryFilters: wild("x")}}}); err == nil {
			t.Fatal("continuous under basic accepted")
		}
		got, err := s.RegistryScanningConfiguration(ctx)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("stored %+v, want %+v (%v)", got, want, err)
		}
		events, err := s.Events(ctx, 0, 10)
		if err != nil || len(events) != 0 {
			t.Fatalf("events with no repositories: %v %v", events, err)
		}
		eff, err = s.EffectiveConfiguration(ctx, "scanrepo-prod", "scanrepo-test", "legacy")
		if err != nil {
			t.Fatal(err)
		}
		if eff[0].ScanFrequency != ContinuousScan || eff[1].ScanFrequency != Manual || eff[2].ScanFrequency != Manual {
			t.Fatalf("enhanced effective: %+v", eff)
		}

		// Switching rules under ENHANCED: an ECR Scan Resource Change lists
		// the repositories whose frequency changed.
		for _, r := range []string{"scanrepo-prod", "scanrepo-test", "web"} {
			if _, err := db.Registry().CreateRepository(ctx, r, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced, Rules: []Rule{
			{ScanFrequency: ContinuousScan, RepositoryFilters: wild("prod")},
			{ScanFrequency: ScanOnPush, RepositoryFilters: wild("test")},
		}}); err != nil {
			t.Fatal(err)
		}
		events, err = s.Events(ctx, 0, 10)
		if err != nil || len(events) != 1 || events[0].DetailType != DetailECRScanResourceChange || events[0].Source != "aws.ecr" {
			t.Fatalf("events: %+v %v", events, err)
		}
		var detail map[string]any
		if err := json.Unmarshal(events[0].Detail, &detail); err != nil {
			t.Fatal(err)
		}
		wantDetail := map[string]any{
			"action-type": "SCAN_FREQUENCY_CHANGE", "resource-type": "REPOSITORY", "scan-type": "ENHANCED",
			"repositories": []any{map[string]any{
				"repository-name": "scanrepo-test", "repository-arn": "arn:aws:ecr:us-east-1:000000000000:repository/scanrepo-test",
				"scan-frequency": "SCAN_ON_PUSH", "previous-scan-frequency": "MANUAL",
			}},
		}
		if !reflect.DeepEqual(detail, wantDetail) {
			t.Fatalf("detail %v, want %v", detail, wantDetail)
		}
		// Same configuration again: nothing changed, no event.
		if _, err := s.PutRegistryScanningConfiguration(ctx, Config{ScanType: Enhanced, Rules: []Rule{
			{ScanFrequency: ContinuousScan, RepositoryFilters: wild("prod")},
			{ScanFrequency: ScanOnPush, RepositoryFilters: wild("test")},
		}}); err != nil {
			t.Fatal(err)
		}
		if events, _ := s.Events(ctx, events[0].ID, 10); len(events) != 0 {
			t.Fatalf("event for an unchanged configuration: %+v", events)
		}
	})
}

// TestJobDiedMarksFailed: a scan whose worker vanished on its last attempt
// shows FAILED instead of staying in progress.
func TestJobDiedMarksFailed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		clk := &clock{t: time.Now().UTC()}
		s, err := New(ctx, Options{Store: db, Now: clk.Now, Queue: QueueOptions{MaxAttempts: 1, Lease: time.Minute}})
		if err != nil {
			t.Fatal(err)
		}
		err = db.InTx(ctx, func(tx *store.Tx) error {
			return s.startTx(ctx, tx, "r", "sha256:a", payload{ScanType: Basic, Frequency: Manual, Trigger: "manual"}, clk.Now())
		})
		if err != nil {
			t.Fatal(err)
		}
		if j, err := s.queue.Claim(ctx); err != nil || j == nil {
			t.Fatalf("claim: %v %v", j, err)
		}
		clk.Add(2 * time.Minute) // the claimer died
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, RunOptions{QueuePoll: 20 * time.Millisecond}) }()
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := s.ScanStatus(ctx, "r", "sha256:a")
			if err != nil {
				t.Fatal(err)
			}
			if st.Status == StatusFailed {
				if st.Description != "Scan failed: the scan did not finish in 1 attempts" {
					t.Errorf("description %q", st.Description)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %+v", st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestRegistryQuota: the 100,001st basic scan within 24 hours is refused;
// a day later scans start again. Also the per-image window.
func TestRegistryQuota(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Now().UTC()}
		s, err := New(ctx, Options{Store: db, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		start := func(repo string) error {
			return db.InTx(ctx, func(tx *store.Tx) error {
				return s.startTx(ctx, tx, repo, "sha256:a", payload{ScanType: Basic, Frequency: Manual, Trigger: "manual"}, clk.Now())
			})
		}
		if err := start("first"); err != nil {
			t.Fatal(err)
		}
		if err := start("first"); !errors.Is(err, ErrLimitExceeded) {
			t.Fatalf("second scan of an image inside 24 hours: %v", err)
		}
		// 99,999 more scans an hour ago fill the quota.
		if _, err := db.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			INSERT INTO scan_starts (repository, image_digest, started_at) SELECT 'bulk', 'sha256:b', ? FROM n`,
			RegistryQuota-1, clk.Now().Add(-time.Hour).UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if err := start("second"); !errors.Is(err, ErrLimitExceeded) {
			t.Fatalf("scan past the registry quota: %v", err)
		}
		// A push past the quota records why its image was not scanned.
		// (the push poller goes on with its transaction after the refusal).
		err = db.InTx(ctx, func(tx *store.Tx) error {
			err := s.startTx(ctx, tx, "pushed", "sha256:c", payload{ScanType: Basic, Frequency: ScanOnPush, Trigger: "push"}, clk.Now())
			if !errors.Is(err, ErrLimitExceeded) {
				return fmt.Errorf("push past the registry quota: %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if st, err := s.ScanStatus(ctx, "pushed", "sha256:c"); err != nil || st.Status != StatusLimitExceeded || st.Description != descQuota {
			t.Errorf("status of the push past the quota: %+v %v", st, err)
		}
		clk.Add(ImageScanWindow)
		if err := start("second"); err != nil {
			t.Fatalf("scan a day later: %v", err)
		}
		if err := start("first"); err != nil {
			t.Fatalf("image scanned again a day later: %v", err)
		}
	})
}
