package scan

import (
	"context"
	"errors"
	"reflect"
	"testing"

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
		eff, err = s.EffectiveConfiguration(ctx, "scanrepo-prod", "scanrepo-test", "legacy")
		if err != nil {
			t.Fatal(err)
		}
		if eff[0].ScanFrequency != ContinuousScan || eff[1].ScanFrequency != Manual || eff[2].ScanFrequency != Manual {
			t.Fatalf("enhanced effective: %+v", eff)
		}
	})
}
