package inspector_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/drydockhq/drydock/internal/awsapi/inspector"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// TestEcrConfigurationIsTheScanWindows: inspector2 UpdateConfiguration
// sets the scan service's monitoring windows (what its sweep enforces),
// GetConfiguration reads them, and a configuration an older Drydock kept
// in inspector_settings moves to the scan service at start.
func TestEcrConfigurationIsTheScanWindows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		c := s.client(s.admin)
		if _, err := c.UpdateConfiguration(ctx, &inspector2.UpdateConfigurationInput{EcrConfiguration: &types.EcrConfiguration{
			RescanDuration: types.EcrRescanDurationDays60, PullDateRescanDuration: types.EcrPullDateRescanDurationDays90,
			PullDateRescanMode: types.EcrPullDateRescanModeLastInUseAt}}); err != nil {
			t.Fatal(err)
		}
		w, err := s.scan.Windows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if w.RescanDuration != "DAYS_60" || w.PullDateRescanDuration != "DAYS_90" || w.PullDateRescanMode != "LAST_IN_USE_AT" || w.UpdatedAt.IsZero() {
			t.Fatalf("scan windows after UpdateConfiguration: %+v", w)
		}
		if push, ok := w.PushWindow(); !ok || push != 60*24*time.Hour || w.PullWindow() != 90*24*time.Hour {
			t.Fatalf("windows %+v: push %v %v, pull %v", w, push, ok, w.PullWindow())
		}
		conf, err := c.GetConfiguration(ctx, &inspector2.GetConfigurationInput{})
		if err != nil {
			t.Fatal(err)
		}
		st := conf.EcrConfiguration.RescanDurationState
		if st.RescanDuration != types.EcrRescanDurationDays60 || st.PullDateRescanDuration != types.EcrPullDateRescanDurationDays90 ||
			st.PullDateRescanMode != types.EcrPullDateRescanModeLastInUseAt || st.UpdatedAt == nil || st.UpdatedAt.Unix() != w.UpdatedAt.Unix() {
			t.Fatalf("GetConfiguration %+v, scan windows %+v", st, w)
		}
		// A value outside the enum is refused and changes nothing.
		_, err = c.UpdateConfiguration(ctx, &inspector2.UpdateConfigurationInput{EcrConfiguration: &types.EcrConfiguration{
			RescanDuration: types.EcrRescanDurationDays14, PullDateRescanDuration: "DAYS_1"}})
		wantCode(t, "pullDateRescanDuration DAYS_1", err, "ValidationException")
		if got, err := s.scan.Windows(ctx); err != nil || got != w {
			t.Fatalf("a refused update changed the windows: %+v %v", got, err)
		}

		// An installation from before: the setting in inspector_settings,
		// none in the scan domain. A start moves it over, with its time.
		if _, err := db.ExecContext(ctx, `DELETE FROM scan_windows`); err != nil {
			t.Fatal(err)
		}
		old := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		if _, err := db.ExecContext(ctx, `INSERT INTO inspector_settings (name, value, updated_at) VALUES ('ecr_configuration', ?, ?)`,
			`{"rescanDuration":"DAYS_180","pullDateRescanDuration":"DAYS_30","pullDateRescanMode":"LAST_PULL_DATE"}`, old.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if _, err := inspector.New(ctx, inspector.Options{Store: db, Auth: s.auth, Scan: s.scan}); err != nil {
			t.Fatal(err)
		}
		want := scan.Windows{RescanDuration: "DAYS_180", PullDateRescanDuration: "DAYS_30", PullDateRescanMode: "LAST_PULL_DATE", UpdatedAt: old}
		if got, err := s.scan.Windows(ctx); err != nil || got != want {
			t.Fatalf("adopted windows %+v %v, want %+v", got, err, want)
		}
		var v string
		if err := db.QueryRowContext(ctx, `SELECT value FROM inspector_settings WHERE name = 'ecr_configuration'`).Scan(&v); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("the old row is still there: %q %v", v, err)
		}
		conf, err = c.GetConfiguration(ctx, &inspector2.GetConfigurationInput{})
		if err != nil {
			t.Fatal(err)
		}
		if st := conf.EcrConfiguration.RescanDurationState; st.RescanDuration != types.EcrRescanDurationDays180 || !st.UpdatedAt.Equal(old) {
			t.Fatalf("GetConfiguration after the move: %+v", st)
		}
		// A stale old row never overrides the scan domain's setting.
		if _, err := db.ExecContext(ctx, `INSERT INTO inspector_settings (name, value, updated_at) VALUES ('ecr_configuration', ?, ?)`,
			`{"rescanDuration":"DAYS_14"}`, old.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if _, err := inspector.New(ctx, inspector.Options{Store: db, Auth: s.auth, Scan: s.scan}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.scan.Windows(ctx); err != nil || got != want {
			t.Fatalf("windows after a stale row %+v %v, want %+v", got, err, want)
		}
	})
}
