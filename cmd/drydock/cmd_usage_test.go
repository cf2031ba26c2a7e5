package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// seedUsage stores metered scans as the scan service records them (one
// row per UTC day, repository and kind; day in Unix ms of 00:00 UTC).
func seedUsage(t *testing.T, db *store.DB, rows []scan.UsageRow) {
	t.Helper()
	ctx := context.Background()
	if _, err := scan.New(ctx, scan.Options{Store: db}); err != nil { // migrates
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO scan_usage (day, repository, kind, count) VALUES (?, ?, ?, ?)`,
			r.Day.UnixMilli(), r.Repository, string(r.Kind), r.Count); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUsageCommand: drydock usage sums the stored counts per day and
// repository over the last 30 UTC days (or from --since), for one
// repository with --repository, as a table or JSON, on SQLite and
// PostgreSQL.
func TestUsageCommand(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	d := func(n int) time.Time { return today.AddDate(0, 0, -n) }
	day := func(n int) string { return d(n).Format(time.DateOnly) }
	rows := []scan.UsageRow{
		{Day: d(0), Repository: "app/api", Kind: scan.UsageInitialEnhanced, Count: 3},
		{Day: d(0), Repository: "app/api", Kind: scan.UsageRescan, Count: 40},
		{Day: d(0), Repository: "web", Kind: scan.UsageInitialBasic, Count: 2},
		{Day: d(29), Repository: "web", Kind: scan.UsageInitialBasic, Count: 5},
		{Day: d(30), Repository: "web", Kind: scan.UsageInitialBasic, Count: 7}, // 31 days ago with today
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var target []string
			var db *store.DB
			var err error
			if backend == "sqlite" {
				dir := t.TempDir()
				target = []string{"--data-dir", dir}
				db, err = store.Open(context.Background(), "", dir)
			} else {
				url := storetest.PostgresURL(t)
				target = []string{"--store", url}
				db, err = store.Open(context.Background(), url, "")
			}
			if err != nil {
				t.Fatal(err)
			}
			seedUsage(t, db, rows)
			db.Close()

			code, out, errOut := runDrydock(t, append([]string{"usage"}, target...)...)
			if code != 0 {
				t.Fatalf("usage: exit %d: %s", code, errOut)
			}
			want := [][]string{
				{"DAY", "(UTC)", "REPOSITORY", "INITIAL", "BASIC", "INITIAL", "ENHANCED", "RESCANS"},
				{day(29), "web", "5", "0", "0"},
				{day(0), "app/api", "0", "3", "40"},
				{day(0), "web", "2", "0", "0"},
				{"TOTAL", "7", "3", "40"},
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != len(want) {
				t.Fatalf("usage table:\n%s", out)
			}
			for i, l := range lines {
				if strings.Join(strings.Fields(l), " ") != strings.Join(want[i], " ") {
					t.Errorf("line %d: %q, want %q", i, l, strings.Join(want[i], " "))
				}
			}

			code, out, errOut = runDrydock(t, append([]string{"usage", "--since", day(30), "--repository", "web", "--json"}, target...)...)
			if code != 0 {
				t.Fatalf("usage --json: exit %d: %s", code, errOut)
			}
			var rep struct {
				Since      string `json:"since"`
				Repository string `json:"repository"`
				Days       []struct {
					Day          string `json:"day"`
					Repository   string `json:"repository"`
					InitialBasic int64  `json:"initialScansBasic"`
				} `json:"days"`
				Totals struct {
					InitialBasic    int64 `json:"initialScansBasic"`
					InitialEnhanced int64 `json:"initialScansEnhanced"`
					Rescans         int64 `json:"rescans"`
				} `json:"totals"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v:\n%s", err, out)
			}
			if rep.Since != day(30) || rep.Repository != "web" || len(rep.Days) != 3 || rep.Days[0].Day != day(30) || rep.Days[0].InitialBasic != 7 ||
				rep.Totals.InitialBasic != 14 || rep.Totals.InitialEnhanced != 0 || rep.Totals.Rescans != 0 {
				t.Errorf("usage --json:\n%s", out)
			}

			for _, bad := range [][]string{{"--since", "yesterday"}, {"--repository", "Bad Name"}, {"extra"}} {
				if code, _, _ := runDrydock(t, append(append([]string{"usage"}, bad...), target...)...); code != 2 {
					t.Errorf("usage %v: exit %d, want 2", bad, code)
				}
			}
		})
	}
}

// TestServeMetricsScans: drydock serve's /metrics carries
// drydock_scans_total by kind, read from the store.
func TestServeMetricsScans(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24 * time.Hour)
	seedUsage(t, db, []scan.UsageRow{
		{Day: day, Repository: "a", Kind: scan.UsageInitialBasic, Count: 2},
		{Day: day.AddDate(0, 0, -400), Repository: "b", Kind: scan.UsageInitialBasic, Count: 1},
		{Day: day, Repository: "b", Kind: scan.UsageRescan, Count: 9},
	})
	db.Close()

	srv := startServe(t, nil, "--data-dir", dir, "--scan-workers", "1", "--reindex-rate", "0")
	addr := srv.addr
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"# TYPE drydock_scans_total counter",
		`drydock_scans_total{kind="initial_basic"} 3`,
		`drydock_scans_total{kind="initial_enhanced"} 0`,
		`drydock_scans_total{kind="rescan"} 9`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(string(body), "drydock_scans"))
		}
	}
}
