package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// TestDBCommands runs drydock db on the real Go snapshots: import the old
// one then the new one (the change set is the real delta), status, changes,
// export, and import of the export into another data directory.
func TestDBCommands(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runDrydock(t, "db", "status", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "the database is empty") {
		t.Fatalf("status of an empty database: %d %s %s", code, out, errOut)
	}
	code, out, errOut = runDrydock(t, "db", "import", "--data-dir", dir, testutil.Fixture(t, "feeds/osv/Go/all-2026-06-26.zip"))
	if code != 0 || !strings.Contains(out, "generation 1: 3786 added") {
		t.Fatalf("import old snapshot: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runDrydock(t, "db", "import", testutil.Fixture(t, "feeds/osv/Go/all.zip"), "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "generation 2: 505 added, 16 modified, 0 withdrawn, 0 removed") || !strings.Contains(out, "osv-Go ") {
		t.Fatalf("import new snapshot: %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runDrydock(t, "db", "import", "--data-dir", dir, testutil.Fixture(t, "feeds/osv/Go/all.zip"))
	if code != 0 || !strings.Contains(out, "no changes: no new generation") {
		t.Errorf("import again: %d %s", code, out)
	}
	code, out, _ = runDrydock(t, "db", "changes", "--data-dir", dir, "--json")
	var cs vulndb.ChangeSet
	if code != 0 || json.Unmarshal([]byte(out), &cs) != nil || cs.Generation != 2 || cs.Counts() != (vulndb.Counts{Added: 505, Modified: 16}) {
		t.Errorf("changes --json: %d %+v", code, cs.Counts())
	}
	code, out, _ = runDrydock(t, "db", "status", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "generation 2") || !strings.Contains(out, "4291 advisories") || !strings.Contains(out, "osv-Go") {
		t.Errorf("status: %d\n%s", code, out)
	}

	export := filepath.Join(t.TempDir(), "db.export")
	code, out, errOut = runDrydock(t, "db", "export", "--data-dir", dir, export)
	if code != 0 || !strings.Contains(out, "4291 advisories") {
		t.Fatalf("export: %d %s %s", code, out, errOut)
	}
	if _, err := os.Stat(export + ".sha256"); err != nil {
		t.Error(err)
	}
	mirror := t.TempDir()
	code, out, errOut = runDrydock(t, "db", "import", "--data-dir", mirror, export)
	if code != 0 || !strings.Contains(out, "generation 1: 4291 added") {
		t.Fatalf("import export: %d %s %s", code, out, errOut)
	}
	code, out, _ = runDrydock(t, "db", "status", "--data-dir", mirror, "--json")
	var st vulndb.DBStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Advisories != 4291 || len(st.Sources) != 1 || st.Sources[0].Name != "osv-Go" {
		t.Errorf("mirror status: %d %s", code, out)
	}

	// A damaged export is refused, and the mirror keeps its generation.
	b, _ := os.ReadFile(export)
	bad := filepath.Join(t.TempDir(), "bad.export")
	os.WriteFile(bad, b[:len(b)/2], 0o600)
	code, _, errOut = runDrydock(t, "db", "import", "--data-dir", mirror, bad)
	if code != 1 || !strings.Contains(errOut, "not a valid Drydock vulnerability database export") {
		t.Errorf("damaged export: %d %s", code, errOut)
	}
	// Bad usage.
	for _, args := range [][]string{{"db"}, {"db", "frobnicate"}, {"db", "import"}, {"db", "update", "--source", "no-such-source"}} {
		if code, _, _ := runDrydock(t, append(args, "--data-dir", dir)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// TestDBUpdateFromFiles runs drydock db update with a sources file naming
// local fixtures, as an air-gapped site would.
func TestDBUpdateFromFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sources.json")
	os.WriteFile(cfg, []byte(`{"no_defaults":true,"sources":[
		{"name":"osv-crates.io","kind":"osv","url":"`+testutil.Fixture(t, "feeds/osv/crates.io/all.zip")+`"},
		{"name":"osv-PyPI","kind":"osv","url":"file://`+testutil.Fixture(t, "feeds/osv/PyPI/sample.zip")+`"},
		{"name":"broken","kind":"osv","url":"`+filepath.Join(dir, "missing.zip")+`"}]}`), 0o600)
	code, out, errOut := runDrydock(t, "db", "update", "--data-dir", dir, "--sources", cfg)
	if code != 1 || !strings.Contains(out, "generation 1: 1472 added") || !strings.Contains(errOut, "broken") {
		t.Fatalf("update with a broken source: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runDrydock(t, "db", "update", "--data-dir", dir, "--sources", cfg, "--source", "osv-PyPI")
	if code != 0 || !strings.Contains(out, "not-modified") || !strings.Contains(out, "no changes") {
		t.Errorf("second update: %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runDrydock(t, "db", "status", "--data-dir", dir)
	if !strings.Contains(out, "failing since") || !strings.Contains(out, "osv-crates.io") {
		t.Errorf("status: %d\n%s", code, out)
	}
}
