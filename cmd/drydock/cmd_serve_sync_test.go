package main

import (
	"archive/zip"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil"
)

// TestServeScheduledSync starts `drydock serve` with a sources file that
// points at the real Go OSV snapshot and checks that the server syncs it on
// start (the database is empty, so the first sync is due at once), that
// `drydock db status` then shows the generation with the snapshot's record
// count, and that /metrics reports it.
func TestServeScheduledSync(t *testing.T) {
	dir := t.TempDir()
	goZip := testutil.Fixture(t, "feeds/osv/Go/all-2026-06-26.zip")
	cfg := filepath.Join(dir, "sources.json")
	if err := os.WriteFile(cfg, []byte(`{"no_defaults": true, "interval": "1h",
		"sources": [{"name": "osv-Go", "kind": "osv", "url": "`+goZip+`"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	// The record count of the snapshot, read independently of Drydock.
	want := countZipEntries(t, goZip)

	srv := startServe(t, nil, "--data-dir", dir, "--db-sources", cfg, "--scan-workers", "1")
	addr, logs := srv.addr, srv.logs

	var status struct {
		Generation int64 `json:"generation"`
		Advisories int   `json:"advisories"`
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		code, out, errOut := runDrydock(t, "db", "status", "--json", "--data-dir", dir)
		if code == 0 && json.Unmarshal([]byte(out), &status) == nil && status.Generation > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no generation after the scheduled sync (status %d: %s %s)\nserver log:\n%s", code, out, errOut, logs)
		}
	}
	if status.Advisories != want {
		t.Errorf("db status shows %d advisories, the snapshot holds %d records", status.Advisories, want)
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^drydock_vulndb_generation [1-9]`).Match(body) {
		t.Errorf("/metrics does not report the generation:\n%s", grepLines(string(body), "drydock_vulndb"))
	}
}

// countZipEntries counts the JSON records of an OSV all.zip.
func countZipEntries(t *testing.T, path string) int {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	n := 0
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".json") {
			n++
		}
	}
	return n
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
