package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/report"
	"github.com/drydockhq/drydock/internal/testutil"
)

const scanAlpine = "images/alpine-3.10-docker-archive.tar.gz"

// unpackAlpine extracts the single layer of the real alpine:3.10 docker
// archive into a directory (a root filesystem, for dir: targets).
func unpackAlpine(t *testing.T) string {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, scanAlpine))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	outer := tar.NewReader(gz)
	root := t.TempDir()
	for {
		h, err := outer.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("no layer.tar in the archive")
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, "/layer.tar") {
			continue
		}
		layer := tar.NewReader(outer)
		for {
			lh, err := layer.Next()
			if errors.Is(err, io.EOF) {
				return root
			}
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(lh.Name, "./")))
			if !strings.HasPrefix(name, root+string(filepath.Separator)) {
				continue
			}
			switch lh.Typeflag {
			case tar.TypeDir:
				os.MkdirAll(name, 0o755)
			case tar.TypeReg:
				os.MkdirAll(filepath.Dir(name), 0o755)
				data, err := io.ReadAll(layer)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(name, data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// setApkVersion rewrites the installed versions of packages in an
// unpacked Alpine root's apk database.
func setApkVersion(t *testing.T, root, version string, pkgs ...string) {
	t.Helper()
	p := filepath.Join(root, "lib/apk/db/installed")
	db, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cur, n := "", 0
	for line := range strings.Lines(string(db)) {
		if name, ok := strings.CutPrefix(line, "P:"); ok {
			cur = strings.TrimSpace(name)
		}
		if strings.HasPrefix(line, "V:") && slices.Contains(pkgs, cur) {
			line, n = "V:"+version+"\n", n+1
		}
		out.WriteString(line)
	}
	if n != len(pkgs) {
		t.Fatalf("rewrote %d of %v", n, pkgs)
	}
	if err := os.WriteFile(p, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeLog4jJar writes a Maven-layout jar of log4j-core at version.
func writeLog4jJar(t *testing.T, path, version string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	w, _ := zw.Create("META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties")
	fmt.Fprintf(w, "groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=%s\n", version)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// scanDB fills a data directory from the real fixtures with drydock db
// update: Alpine 3.10's secdb, the Log4Shell GHSA record and CISA KEV.
func scanDB(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sources.json")
	os.WriteFile(cfg, []byte(`{"no_defaults":true,"sources":[
		{"name":"alpine-secdb","kind":"alpine-secdb","url":"`+testutil.Fixture(t, "feeds/alpine-secdb")+`","releases":["v3.10"]},
		{"name":"osv-Maven","kind":"osv","url":"`+testutil.Fixture(t, "feeds/osv/records/GHSA-jfh8-c2jp-5v3q.json")+`"},
		{"name":"kev","kind":"kev","url":"`+testutil.Fixture(t, "enrichment/kev/known_exploited_vulnerabilities.json")+`"}]}`), 0o600)
	code, out, errOut := runDrydock(t, "db", "update", "--data-dir", dir, "--sources", cfg)
	// One real secdb record does not parse (a fixed version "4.8.0.-r1"):
	// the source is applied with it rejected.
	if !strings.Contains(out, "generation 1:") {
		t.Fatalf("db update: %d\n%s\n%s", code, out, errOut)
	}
	return dir
}

func scanJSON(t *testing.T, args ...string) (int, *report.Scan, string) {
	t.Helper()
	code, out, errOut := runDrydock(t, append([]string{"scan", "-o", "json"}, args...)...)
	if code == 1 || code == 2 {
		return code, nil, errOut
	}
	var doc report.Scan
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("scan %v: %v\n%s\n%s", args, err, out, errOut)
	}
	return code, &doc, errOut
}

func TestScanRefusesMissingOrEmptyDatabase(t *testing.T) {
	target := "docker-archive:" + testutil.Fixture(t, scanAlpine)
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runDrydock(t, "scan", "--data-dir", dir, target)
	if code != 1 || !strings.Contains(errOut, "no vulnerability database") || !strings.Contains(errOut, "drydock db update") || out != "" {
		t.Errorf("missing database: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scan created the data directory: %v", err)
	}
	// A store with no generation yet (drydock db status creates it).
	if code, _, errOut := runDrydock(t, "db", "status", "--data-dir", dir); code != 0 {
		t.Fatalf("db status: %d %s", code, errOut)
	}
	code, out, errOut = runDrydock(t, "scan", "--data-dir", dir, "--exit-code", "0", target)
	if code != 1 || !strings.Contains(errOut, "database is empty") || out != "" {
		t.Errorf("empty database: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
}

func TestScanAlpine(t *testing.T) {
	data := scanDB(t)
	shipped := "docker-archive:" + testutil.Fixture(t, scanAlpine)

	// The image as shipped: openssl 1.1.1d-r2 is past every secdb fix.
	code, out, errOut := runDrydock(t, "scan", "--data-dir", data, "--exit-code", "3", shipped)
	if code != 0 || !strings.Contains(out, "No vulnerabilities found.") || !strings.Contains(out, "Alpine Linux v3.10") || strings.Contains(out, "WARNING") {
		t.Errorf("shipped image: exit %d\n%s\n%s", code, out, errOut)
	}

	// A copy whose apk database says 1.1.1c-r0.
	root := unpackAlpine(t)
	setApkVersion(t, root, "1.1.1c-r0", "libcrypto1.1", "libssl1.1")
	code, doc, errOut := scanJSON(t, "--data-dir", data, "dir:"+root)
	if code != 0 || len(doc.Images) != 1 {
		t.Fatalf("old openssl: exit %d %s", code, errOut)
	}
	img := doc.Images[0]
	var got []string
	for _, f := range img.Findings {
		got = append(got, f.Aliases[0]+"@"+f.Package.Name)
		if f.MatchedName != "openssl" || !slices.Equal(f.FixedVersions, []string{"1.1.1d-r0"}) || f.FixAvailable != "YES" || f.Status != "fixed" ||
			f.Package.Path != "lib/apk/db/installed" || f.Package.Ecosystem != "Alpine:v3.10" || !strings.HasPrefix(f.Package.PURL, "pkg:apk/alpine/") {
			t.Errorf("finding %+v", f)
		}
	}
	slices.Sort(got)
	want := []string{"CVE-2019-1547@libcrypto1.1", "CVE-2019-1547@libssl1.1", "CVE-2019-1549@libcrypto1.1", "CVE-2019-1549@libssl1.1", "CVE-2019-1563@libcrypto1.1", "CVE-2019-1563@libssl1.1"}
	if !slices.Equal(got, want) {
		t.Errorf("findings %v, want %v", got, want)
	}
	if doc.SchemaVersion != report.ScanSchemaVersion || doc.Database.Generation != 1 || doc.Database.Stale || img.OS == "" || img.Packages != 14 || img.Summary["UNTRIAGED"] != 6 {
		t.Errorf("document: schema %d, database %+v, image os %q packages %d summary %v", doc.SchemaVersion, doc.Database, img.OS, img.Packages, img.Summary)
	}

	// Policy: --exit-code when findings remain after the filters.
	if code, _, _ := runDrydock(t, "scan", "--data-dir", data, "--exit-code", "3", "dir:"+root); code != 3 {
		t.Errorf("--exit-code 3 with findings: exit %d", code)
	}
	code, doc, _ = scanJSON(t, "--data-dir", data, "--exit-code", "3", "--severity", "critical,high", "dir:"+root)
	if code != 0 || len(doc.Images[0].Findings) != 0 || doc.Images[0].Filtered != 6 || !slices.Equal(doc.Filters.Severities, []string{"CRITICAL", "HIGH"}) {
		t.Errorf("--severity critical,high: exit %d, %d findings, %d filtered", code, len(doc.Images[0].Findings), doc.Images[0].Filtered)
	}
	if code, doc, _ = scanJSON(t, "--data-dir", data, "--exit-code", "3", "--pkg-types", "library", "dir:"+root); code != 0 || doc.Images[0].Filtered != 6 {
		t.Errorf("--pkg-types library: exit %d", code)
	}
	if code, _, _ = scanJSON(t, "--data-dir", data, "--exit-code", "3", "--pkg-types", "os", "--ignore-unfixed", "dir:"+root); code != 3 {
		t.Errorf("--pkg-types os --ignore-unfixed (all fixable): exit %d", code)
	}

	// A stale database is said so, on standard error and in the output.
	code, out, errOut = runDrydock(t, "scan", "--data-dir", data, "--db-max-age", "1ns", shipped)
	if code != 0 || !strings.Contains(out, "WARNING: the vulnerability database is stale") || !strings.Contains(errOut, "stale") {
		t.Errorf("stale database: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, doc, _ = scanJSON(t, "--data-dir", data, "--db-max-age", "1ns", shipped); !doc.Database.Stale || len(doc.Database.Warnings) == 0 {
		t.Errorf("stale database in JSON: %+v", doc.Database)
	}

	// The table groups by severity.
	code, out, _ = runDrydock(t, "scan", "--data-dir", data, "dir:"+root)
	if code != 0 || !strings.Contains(out, "UNTRIAGED (6)") || !strings.Contains(out, "ALPINE-CVE-2019-1547  CVE-2019-1547  libcrypto1.1") {
		t.Errorf("table:\n%s", out)
	}
}

func TestScanLog4Shell(t *testing.T) {
	data := scanDB(t)
	root := t.TempDir()
	writeLog4jJar(t, filepath.Join(root, "srv/app/lib/log4j-core.jar"), "2.14.1")
	writeLog4jJar(t, filepath.Join(root, "srv/other/lib/log4j-core.jar"), "2.17.1")
	code, doc, errOut := scanJSON(t, "--data-dir", data, "--exit-code", "4", "dir:"+root)
	if code != 4 || len(doc.Images) != 1 || len(doc.Images[0].Findings) != 1 {
		t.Fatalf("exit %d, %s, doc %+v", code, errOut, doc)
	}
	f := doc.Images[0].Findings[0]
	if f.ID != "GHSA-jfh8-c2jp-5v3q" || f.Aliases[0] != "CVE-2021-44228" || f.Package.Path != "srv/app/lib/log4j-core.jar" || f.Package.Version != "2.14.1" {
		t.Errorf("finding %s %v on %+v", f.ID, f.Aliases, f.Package)
	}
	if !f.ExploitAvailable || f.KEV == nil || f.KEV.DateAdded.Format("2006-01-02") != "2021-12-10" || f.KEV.DueDate == nil || f.KEV.DueDate.Format("2006-01-02") != "2021-12-24" {
		t.Errorf("KEV %+v", f.KEV)
	}
	// GitHub rates it CRITICAL (database_specific) and scores the vector
	// 10.0; both say their source.
	if f.Severity != "CRITICAL" || f.SeveritySource != "vendor" || f.VendorSeverity == nil || f.VendorSeverity.Rating != "CRITICAL" || f.VendorSeverity.Source != "ghsa" {
		t.Errorf("severity %s (%s), vendor %+v", f.Severity, f.SeveritySource, f.VendorSeverity)
	}
	if f.CVSS == nil || f.CVSS.BaseScore != 10 || f.CVSS.Vector != "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H" || f.CVSS.Source != "ghsa" {
		t.Errorf("CVSS %+v", f.CVSS)
	}
	if f.Published == nil || f.Published.Format("2006-01-02") != "2021-12-10" || f.Summary == "" || f.Description == "" || !slices.Contains(f.References, "https://nvd.nist.gov/vuln/detail/CVE-2021-44228") {
		t.Errorf("published %v, summary %q, description %q, %d references", f.Published, f.Summary, f.Description, len(f.References))
	}
	if !slices.Equal(f.FixedVersions, []string{"2.15.0"}) || f.FixAvailable != "YES" || f.Status != "affected" {
		t.Errorf("fix %v %s status %s", f.FixedVersions, f.FixAvailable, f.Status)
	}
}

func TestScanUsage(t *testing.T) {
	data := scanDB(t)
	target := "docker-archive:" + testutil.Fixture(t, scanAlpine)
	for _, args := range [][]string{
		{"scan", "--data-dir", data},
		{"scan", "--data-dir", data, "--severity", "urgent", target},
		{"scan", "--data-dir", data, "--pkg-types", "firmware", target},
		{"scan", "--data-dir", data, "-o", "sarif", target},
		{"scan", "--data-dir", data, "--exit-code", "300", target},
	} {
		if code, _, errOut := runDrydock(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
	}
}
