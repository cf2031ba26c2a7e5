package osv

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
)

func readFixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRealRecords(t *testing.T) {
	t.Run("GHSA log4shell", func(t *testing.T) {
		a, err := Parse(readFixture(t, "feeds/osv/records/GHSA-jfh8-c2jp-5v3q.json"), "osv-Maven")
		if err != nil {
			t.Fatal(err)
		}
		if a.ID != "GHSA-jfh8-c2jp-5v3q" || !slices.Equal(a.Aliases, []string{"CVE-2021-44228"}) || a.Source != "osv-Maven" {
			t.Errorf("id %s aliases %v source %s", a.ID, a.Aliases, a.Source)
		}
		// GitHub rates Log4Shell CVSS 3.1 10.0 (AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H).
		if len(a.Severity) != 1 || a.Severity[0].Type != vulndb.SeverityCVSSv3 || a.Severity[0].BaseScore != 10.0 || a.Severity[0].Source != "ghsa" {
			t.Errorf("severity %+v", a.Severity)
		}
		var core *vulndb.Affected
		for i := range a.Affected {
			if a.Affected[i].Package == "org.apache.logging.log4j:log4j-core" {
				core = &a.Affected[i]
				break
			}
		}
		if core == nil || core.Ecosystem != "Maven" || core.Status != vulndb.StatusAffected {
			t.Fatalf("log4j-core entry %+v", core)
		}
		fixed := fixedVersions(*core)
		// The record's ranges: 2.0-beta9 to 2.15.0, 2.13.0 to 2.15.0 ... as published.
		if !slices.Contains(fixed, "2.15.0") {
			t.Errorf("fixed versions %v lack 2.15.0", fixed)
		}
		if k := core.Key(); k != (vulndb.Key{Ecosystem: "Maven", Package: "org.apache.logging.log4j:log4j-core"}) {
			t.Errorf("key %v", k)
		}
	})
	t.Run("USN binary names", func(t *testing.T) {
		a, err := Parse(readFixture(t, "feeds/osv/records/USN-5192-1.json"), "osv-Ubuntu")
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Affected) != 2 {
			t.Fatalf("%d affected", len(a.Affected))
		}
		af := a.Affected[0]
		if af.Ecosystem != "Ubuntu:18.04:LTS" || af.Package != "apache-log4j2" || af.Status != vulndb.StatusFixed {
			t.Errorf("affected %+v", af)
		}
		if !slices.Equal(af.BinaryNames, []string{"liblog4j2-java", "liblog4j2-java-doc"}) {
			t.Errorf("binary names %v", af.BinaryNames)
		}
		if !slices.Equal(fixedVersions(af), []string{"2.10.0-2ubuntu0.1"}) {
			t.Errorf("fixed %v", fixedVersions(af))
		}
		if k := af.Key(); k != (vulndb.Key{Ecosystem: "Ubuntu:18.04", Package: "apache-log4j2"}) {
			t.Errorf("key %v", k)
		}
		if !slices.Equal(a.Upstream, []string{"UBUNTU-CVE-2021-44228"}) {
			t.Errorf("upstream %v", a.Upstream)
		}
	})
	t.Run("Ubuntu priority, unfixed", func(t *testing.T) {
		a, err := Parse(readFixture(t, "feeds/osv/records/UBUNTU-CVE-2025-38094.json"), "osv-Ubuntu")
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Severity) != 1 || a.Severity[0] != (vulndb.Severity{Type: vulndb.SeverityUbuntu, Score: "medium", Source: "ubuntu"}) {
			t.Errorf("severity %+v", a.Severity)
		}
		for _, af := range a.Affected {
			if af.VendorSeverity != "medium" {
				t.Errorf("%s %s: vendor severity %q", af.Ecosystem, af.Package, af.VendorSeverity)
			}
			if af.Status != vulndb.StatusUnfixed {
				t.Errorf("%s %s: status %q, want unfixed (no fixed event)", af.Ecosystem, af.Package, af.Status)
			}
		}
		if k := a.Affected[0].Key(); k.Ecosystem != "Ubuntu:Pro:14.04" || k.Package != "linux" {
			t.Errorf("key %v", k)
		}
	})
	t.Run("DSA", func(t *testing.T) {
		a, err := Parse(readFixture(t, "feeds/osv/records/DSA-3029-1.json"), "osv-Debian")
		if err != nil {
			t.Fatal(err)
		}
		af := a.Affected[0]
		if af.Ecosystem != "Debian:7" || af.Package != "nginx" || af.Status != vulndb.StatusFixed ||
			!slices.Equal(fixedVersions(af), []string{"1.2.1-2.2+wheezy3"}) {
			t.Errorf("affected %+v", af)
		}
		if a.Published.Format("2006-01-02T15:04:05Z07:00") != "2014-09-20T00:00:00Z" || a.Modified.Format("2006-01-02T15:04:05Z07:00") != "2014-09-20T08:18:07Z" {
			t.Errorf("published %v modified %v", a.Published, a.Modified)
		}
	})
	t.Run("AlmaLinux rating", func(t *testing.T) {
		fd, err := ReadPath(context.Background(), testutil.Fixture(t, "feeds/osv/AlmaLinux/sample.zip"), "osv-AlmaLinux", DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		var a *vulndb.Advisory
		for i := range fd.Advisories {
			if fd.Advisories[i].ID == "ALSA-2025:10630" {
				a = &fd.Advisories[i]
			}
		}
		if a == nil {
			t.Fatal("ALSA-2025:10630 missing")
		}
		// Its summary is "Important: libxml2 security update".
		if len(a.Affected) != 4 || a.Affected[0].VendorSeverity != "Important" || a.Affected[0].Status != vulndb.StatusFixed {
			t.Errorf("affected %+v", a.Affected)
		}
		if !slices.Contains(a.Severity, vulndb.Severity{Type: vulndb.SeverityVendor, Score: "Important", Source: "almalinux"}) {
			t.Errorf("severity %+v", a.Severity)
		}
	})
}

func TestParseDebianUrgency(t *testing.T) {
	// The shape of osv.dev's records converted from the Debian security
	// tracker: the urgency per release in ecosystem_specific.
	rec := `{"id":"DEBIAN-CVE-2024-0001","upstream":["CVE-2024-0001"],"modified":"2024-05-01T00:00:00Z",
	 "affected":[
	  {"package":{"ecosystem":"Debian:12","name":"curl"},"ecosystem_specific":{"urgency":"low"},
	   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"7.88.1-10+deb12u6"}]}]},
	  {"package":{"ecosystem":"Debian:11","name":"curl"},"ecosystem_specific":{"urgency":"unimportant"},
	   "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}`
	a, err := Parse([]byte(rec), "osv-Debian")
	if err != nil {
		t.Fatal(err)
	}
	if a.Affected[0].VendorSeverity != "low" || a.Affected[0].Status != vulndb.StatusFixed {
		t.Errorf("bookworm: %+v", a.Affected[0])
	}
	if a.Affected[1].VendorSeverity != "unimportant" || a.Affected[1].Status != vulndb.StatusUnfixed {
		t.Errorf("bullseye: %+v", a.Affected[1])
	}
	if string(a.Affected[0].EcosystemSpecific) != `{"urgency":"low"}` {
		t.Errorf("ecosystem_specific %s", a.Affected[0].EcosystemSpecific)
	}
}

func fixedVersions(af vulndb.Affected) []string {
	var out []string
	for _, r := range af.Ranges {
		for _, e := range r.Events {
			if e.Fixed != "" {
				out = append(out, e.Fixed)
			}
		}
	}
	return out
}

// TestParseKeepsEverything compares each advisory of the real feeds with a
// generic decoding of the same JSON: every id, alias, range event, version
// and ecosystem_specific/database_specific object must survive.
func TestParseKeepsEverything(t *testing.T) {
	for _, rel := range []string{"feeds/osv/Go/all.zip", "feeds/osv/crates.io/all.zip", "feeds/osv/PyPI/sample.zip", "feeds/osv/AlmaLinux/sample.zip"} {
		t.Run(filepath.Dir(rel), func(t *testing.T) {
			recs := zipRecords(t, rel)
			checked := 0
			for _, raw := range recs {
				a, err := Parse(raw, "x")
				if err != nil {
					t.Errorf("%v", err)
					continue
				}
				var g map[string]any
				if err := json.Unmarshal(raw, &g); err != nil {
					t.Fatal(err)
				}
				if a.ID != g["id"] || !sameStrings(a.Aliases, g["aliases"]) || !sameStrings(a.Related, g["related"]) {
					t.Errorf("%s: ids differ", a.ID)
				}
				if !jsonEqual(a.DatabaseSpecific, g["database_specific"]) {
					t.Errorf("%s: database_specific %s", a.ID, a.DatabaseSpecific)
				}
				if _, ok := g["withdrawn"]; ok != !a.Withdrawn.IsZero() {
					t.Errorf("%s: withdrawn %v", a.ID, a.Withdrawn)
				}
				gaff, _ := g["affected"].([]any)
				if len(gaff) != len(a.Affected) {
					t.Errorf("%s: %d affected, published %d", a.ID, len(a.Affected), len(gaff))
					continue
				}
				for i, ga := range gaff {
					ga := ga.(map[string]any)
					pkg := ga["package"].(map[string]any)
					af := a.Affected[i]
					if af.Ecosystem != pkg["ecosystem"] || af.Package != pkg["name"] {
						t.Errorf("%s: package %s %s", a.ID, af.Ecosystem, af.Package)
					}
					if !sameStrings(af.Versions, ga["versions"]) {
						t.Errorf("%s: versions of %s differ", a.ID, af.Package)
					}
					if !jsonEqual(af.EcosystemSpecific, ga["ecosystem_specific"]) || !jsonEqual(af.DatabaseSpecific, ga["database_specific"]) {
						t.Errorf("%s: specific objects of %s differ", a.ID, af.Package)
					}
					granges, _ := ga["ranges"].([]any)
					var want, got []map[string]any
					for _, gr := range granges {
						for _, ev := range gr.(map[string]any)["events"].([]any) {
							want = append(want, ev.(map[string]any))
						}
					}
					for _, r := range af.Ranges {
						for _, e := range r.Events {
							b, _ := json.Marshal(e)
							var m map[string]any
							json.Unmarshal(b, &m)
							got = append(got, m)
						}
					}
					if !reflect.DeepEqual(want, got) {
						t.Errorf("%s: events of %s: got %v, published %v", a.ID, af.Package, got, want)
					}
				}
				checked++
			}
			if checked != len(recs) || checked == 0 {
				t.Errorf("checked %d of %d records", checked, len(recs))
			}
		})
	}
}

// sameStrings compares a kept list with the published one, whose repeats
// (real records have them) are dropped.
func sameStrings(got []string, published any) bool {
	var list []any
	all, _ := published.([]any)
	for _, x := range all {
		if !slices.Contains(list, x) {
			list = append(list, x)
		}
	}
	if len(got) != len(list) {
		return false
	}
	for i := range got {
		if got[i] != list[i] {
			return false
		}
	}
	return true
}

// jsonEqual compares a kept raw object with the generic decoding of the
// published one (an empty published object counts as absent).
func jsonEqual(raw json.RawMessage, published any) bool {
	if m, ok := published.(map[string]any); ok && len(m) == 0 {
		published = nil
	}
	if len(raw) == 0 {
		return published == nil
	}
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		return false
	}
	return reflect.DeepEqual(got, published)
}

func TestParseRejects(t *testing.T) {
	good := `{"id":"GO-2099-0001","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]}]}`
	if _, err := Parse([]byte(good), "t"); err != nil {
		t.Fatalf("the valid base record is refused: %v", err)
	}
	for _, c := range []struct {
		name, old, new string
		is             error
	}{
		{"not JSON", `{"id"`, `{"id" 1`, ErrInvalid},
		{"empty id", `"GO-2099-0001"`, `""`, ErrInvalid},
		{"id with spaces", `"GO-2099-0001"`, `"GO 2099"`, ErrInvalid},
		{"bad modified", `"2024-01-01T00:00:00Z"`, `"yesterday"`, ErrInvalid},
		{"unknown ecosystem", `"ecosystem":"Go"`, `"ecosystem":"Gopher"`, ErrUnknownEcosystem},
		{"unknown ecosystem with release", `"ecosystem":"Go"`, `"ecosystem":"Fedora:40"`, ErrUnknownEcosystem},
		{"no package name", `"name":"example.com/m"`, `"name":""`, ErrInvalid},
		{"unknown range type", `"SEMVER"`, `"CALVER"`, ErrInvalid},
		{"semver not semver", `"fixed":"1.2.3"`, `"fixed":"1.2"`, ErrBadVersion},
		{"semver garbage", `"fixed":"1.2.3"`, `"fixed":"one.two"`, ErrBadVersion},
		{"two fields in one event", `{"fixed":"1.2.3"}`, `{"fixed":"1.2.3","introduced":"1.0.0"}`, ErrInvalid},
		{"empty event", `{"fixed":"1.2.3"}`, `{}`, ErrInvalid},
		{"no introduced", `{"introduced":"0"},`, ``, ErrInvalid},
		{"no events", `"events":[{"introduced":"0"},{"fixed":"1.2.3"}]`, `"events":[]`, ErrInvalid},
		{"git without repo", `"SEMVER"`, `"GIT"`, ErrInvalid},
		{"specific not an object", `"ranges"`, `"ecosystem_specific":[1],"ranges"`, ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := strings.Replace(good, c.old, c.new, 1)
			if rec == good {
				t.Fatalf("replacement %q did not apply", c.old)
			}
			_, err := Parse([]byte(rec), "t")
			if err == nil {
				t.Fatalf("accepted %s", rec)
			}
			if !errors.Is(err, c.is) || !errors.Is(err, ErrInvalid) && c.is != ErrUnknownEcosystem && c.is != ErrBadVersion {
				t.Errorf("error %v is not %v", err, c.is)
			}
		})
	}
}

func TestCheckVersion(t *testing.T) {
	for _, c := range []struct {
		typ, eco, v string
		ok          bool
	}{
		{"ECOSYSTEM", "PyPI", "2.0.1", true},
		{"ECOSYSTEM", "PyPI", "1.0.0.dev1", true},
		{"ECOSYSTEM", "PyPI", "1.0+local.7", true},
		{"ECOSYSTEM", "PyPI", "not a version!!", false},
		{"ECOSYSTEM", "Debian:12", "1:2.36.1-8+deb12u1", true},
		{"ECOSYSTEM", "Debian:12", "7.88.1-10+deb12u6", true},
		{"ECOSYSTEM", "Debian:12", "abc", false},
		{"ECOSYSTEM", "Debian:12", "x:1.0-1", false},
		{"ECOSYSTEM", "Ubuntu:22.04:LTS", "2.15.0-0.20.04.1", true},
		{"ECOSYSTEM", "Ubuntu:22.04:LTS", "1.0-", false},
		{"ECOSYSTEM", "Ubuntu:22.04:LTS", "1.0 beta", false},
		{"ECOSYSTEM", "npm", "1.2.3-beta.1", true},
		{"ECOSYSTEM", "npm", "1.2.3.4.5.x", false},
		{"ECOSYSTEM", "AlmaLinux:9", "2.12.5-7.el10_0", true},
		{"SEMVER", "Go", "1.2.3", true},
		{"SEMVER", "Go", "0.0.0-20200101000000-abcdefabcdef", true},
		{"SEMVER", "Go", "v1.2.3", false},
		{"SEMVER", "crates.io", "1.2", false},
	} {
		err := checkVersion(c.typ, c.eco, c.v, false)
		if (err == nil) != c.ok {
			t.Errorf("checkVersion(%s, %s, %q) = %v, want ok=%v", c.typ, c.eco, c.v, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBadVersion) {
			t.Errorf("error %v does not wrap ErrBadVersion", err)
		}
	}
}

// buildZip writes a zip of name→content, in the given order.
func buildZip(t testing.TB, files [][2]string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range files {
		w, err := zw.Create(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
