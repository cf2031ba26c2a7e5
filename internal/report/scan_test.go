package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/match"
)

func detail(id, sev string, fix match.FixAvailable, status, name string, typ index.Type) match.Details {
	d := match.Details{ID: id, Severity: sev, FixAvailable: fix, Status: status,
		Package: match.PackageRef{Name: name, Version: "1.0", Type: typ, Path: "var/lib/dpkg/status"}}
	if fix != match.FixNo {
		d.FixedVersions = []string{"1.1"}
	}
	return d
}

func sampleFindings() []match.Details {
	return []match.Details{
		detail("CVE-4", match.SeverityHigh, match.FixNo, "will_not_fix", "libtiff6", index.TypeDpkg),
		detail("CVE-1", match.SeverityLow, match.FixYes, "fixed", "zlib1g", index.TypeDpkg),
		detail("GHSA-2", match.SeverityCritical, match.FixYes, "affected", "org.example:lib", index.TypeJava),
		detail("CVE-3", match.SeverityHigh, match.FixYes, "fixed", "openssl", index.TypeDpkg),
		detail("CVE-5", match.SeverityHigh, match.FixPartial, "affected", "curl", index.TypeDpkg),
		detail("CVE-6", match.SeverityUntriaged, match.FixNo, "unfixed", "bash", index.TypeDpkg),
	}
}

func TestScanImageOrderAndSummary(t *testing.T) {
	inv := &index.Inventory{Name: "img", Packages: make([]index.Package, 42)}
	img := NewScanImage(inv, sampleFindings(), ScanFilters{}, []string{"w"})
	var got []string
	for _, f := range img.Findings {
		got = append(got, f.ID)
	}
	// Severity first; within HIGH: fixable (YES), partly fixable, then
	// without a fix.
	if want := "GHSA-2 CVE-3 CVE-5 CVE-4 CVE-1 CVE-6"; strings.Join(got, " ") != want {
		t.Errorf("order %v, want %s", got, want)
	}
	want := map[string]int{"CRITICAL": 1, "HIGH": 3, "MEDIUM": 0, "LOW": 1, "INFORMATIONAL": 0, "UNTRIAGED": 1}
	for k, v := range want {
		if img.Summary[k] != v {
			t.Errorf("summary %v, want %v", img.Summary, want)
			break
		}
	}
	if img.Packages != 42 || img.Filtered != 0 || len(img.Warnings) != 1 {
		t.Errorf("image %+v", img)
	}
}

func TestScanFilters(t *testing.T) {
	for _, c := range []struct {
		name string
		f    ScanFilters
		want string
	}{
		{"severity", ScanFilters{Severities: []string{"HIGH", "CRITICAL"}}, "GHSA-2 CVE-3 CVE-5 CVE-4"},
		{"ignore unfixed", ScanFilters{IgnoreUnfixed: true}, "GHSA-2 CVE-3 CVE-5 CVE-1"},
		{"os", ScanFilters{PkgTypes: []string{PkgTypeOS}}, "CVE-3 CVE-5 CVE-4 CVE-1 CVE-6"},
		{"library", ScanFilters{PkgTypes: []string{PkgTypeLibrary}}, "GHSA-2"},
		{"all three", ScanFilters{Severities: []string{"HIGH"}, IgnoreUnfixed: true, PkgTypes: []string{PkgTypeOS}}, "CVE-3 CVE-5"},
	} {
		img := NewScanImage(&index.Inventory{}, sampleFindings(), c.f, nil)
		var got []string
		for _, f := range img.Findings {
			got = append(got, f.ID)
		}
		if strings.Join(got, " ") != c.want || img.Filtered != 6-len(got) {
			t.Errorf("%s: %v (%d filtered), want %s", c.name, got, img.Filtered, c.want)
		}
	}
}

func TestScanTableAndJSON(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	s := &Scan{
		SchemaVersion: ScanSchemaVersion, CreatedAt: now, Target: "oci:x",
		Database: ScanDatabase{Generation: 7, UpdatedAt: now.Add(-30 * time.Hour), Advisories: 10, Stale: true, Warnings: []string{"the vulnerability database is stale"}},
		Images:   []ScanImage{NewScanImage(&index.Inventory{Name: "oci:x"}, sampleFindings(), ScanFilters{}, nil)},
	}
	var buf bytes.Buffer
	if err := WriteScanTable(&buf, s); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"generation 7", "(30h0m0s ago)", "WARNING: the vulnerability database is stale", "Findings: 6 (4 fixable, 2 without a fix)", "(will not fix)", "(no fix yet)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Groups in severity order.
	last := -1
	for _, h := range []string{"CRITICAL (1)", "HIGH (3)", "LOW (1)", "UNTRIAGED (1)"} {
		i := strings.Index(out, "\n"+h+"\n")
		if i < last {
			t.Errorf("group %q out of order:\n%s", h, out)
		}
		last = i
	}
	if strings.Contains(out, "MEDIUM (") || strings.Contains(out, "No vulnerabilities found") {
		t.Errorf("empty group or no-findings line printed:\n%s", out)
	}
	if s.Count() != 6 {
		t.Errorf("count %d", s.Count())
	}

	buf.Reset()
	if err := WriteScanJSON(&buf, s); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	img := back["images"].([]any)[0].(map[string]any)
	f0 := img["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"id", "package", "fixAvailable", "severity", "exploitAvailable", "status", "matchedName"} {
		if _, ok := f0[k]; !ok {
			t.Errorf("finding JSON lacks %q: %v", k, f0)
		}
	}
	if back["schemaVersion"].(float64) != ScanSchemaVersion || back["database"].(map[string]any)["stale"] != true {
		t.Errorf("document %v", back)
	}
}
