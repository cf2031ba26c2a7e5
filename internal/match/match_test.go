package match

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// memDB is an in-memory Advisories keyed as the database keys them, each
// advisory's entries together, withdrawn ones left out.
type memDB map[vulndb.Key][]vulndb.Match

func newMemDB(advs ...*vulndb.Advisory) memDB {
	db := memDB{}
	for _, a := range advs {
		if !a.Withdrawn.IsZero() {
			continue
		}
		for i := range a.Affected {
			k := a.Affected[i].Key()
			db[k] = append(db[k], vulndb.Match{Advisory: a, Affected: &a.Affected[i]})
		}
	}
	return db
}

func (db memDB) Lookup(k vulndb.Key) []vulndb.Match { return db[k] }

func rng(events ...vulndb.Event) []vulndb.Range {
	return []vulndb.Range{{Type: vulndb.RangeEcosystem, Events: events}}
}

func intro(v string) vulndb.Event { return vulndb.Event{Introduced: v} }
func fixed(v string) vulndb.Event { return vulndb.Event{Fixed: v} }

// Advisories mirroring real records of the fixtures.
var (
	// feeds/alpine-secdb/v3.10/main.yaml: openssl secfixes 1.1.1d-r0.
	alpineOpenSSL = &vulndb.Advisory{ID: "CVE-2019-1547", Source: "alpine-secdb", Affected: []vulndb.Affected{{
		Ecosystem: "Alpine:v3.10", Package: "openssl", Status: vulndb.StatusFixed, Ranges: rng(intro("0"), fixed("1.1.1d-r0")),
	}}}
	// feeds/osv/records/GHSA-jfh8-c2jp-5v3q.json: its three ranges.
	log4shell = &vulndb.Advisory{ID: "GHSA-jfh8-c2jp-5v3q", Aliases: []string{"CVE-2021-44228"}, Source: "osv-Maven",
		Severity: []vulndb.Severity{{Type: vulndb.SeverityCVSSv3, Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", BaseScore: 10, Source: "ghsa"}},
		Affected: []vulndb.Affected{
			{Ecosystem: "Maven", Package: "org.apache.logging.log4j:log4j-core", Ranges: rng(intro("2.13.0"), fixed("2.15.0"))},
			{Ecosystem: "Maven", Package: "org.apache.logging.log4j:log4j-core", Ranges: rng(intro("0"), fixed("2.3.1"))},
			{Ecosystem: "Maven", Package: "org.apache.logging.log4j:log4j-core", Ranges: rng(intro("2.4"), fixed("2.12.2"))},
		}}
	// feeds/osv/records/DSA-3029-1.json.
	dsa3029 = &vulndb.Advisory{ID: "DSA-3029-1", Aliases: []string{"CVE-2014-3616"}, Source: "osv-Debian", Affected: []vulndb.Affected{{
		Ecosystem: "Debian:7", Package: "nginx", Ranges: rng(intro("0"), fixed("1.2.1-2.2+wheezy3")),
	}}}
	// feeds/osv/records/USN-5192-1.json (bionic entry, with its versions list).
	usn5192 = &vulndb.Advisory{ID: "USN-5192-1", Source: "osv-Ubuntu", Affected: []vulndb.Affected{{
		Ecosystem: "Ubuntu:18.04:LTS", Package: "apache-log4j2", Ranges: rng(intro("0"), fixed("2.10.0-2ubuntu0.1")),
		Versions: []string{"2.8.2-1", "2.8.2-2", "2.10.0-1", "2.10.0-2"},
	}}}
	// feeds/osv/AlmaLinux/sample.zip: ALSA-2025:10630 names binary packages.
	alsa10630 = &vulndb.Advisory{ID: "ALSA-2025:10630", Source: "osv-AlmaLinux", Affected: []vulndb.Affected{
		{Ecosystem: "AlmaLinux:10", Package: "libxml2", Ranges: rng(intro("0"), fixed("2.12.5-7.el10_0"))},
		{Ecosystem: "AlmaLinux:10", Package: "libxml2-devel", Ranges: rng(intro("0"), fixed("2.12.5-7.el10_0"))},
	}}
)

func match(t *testing.T, db Advisories, pkgs ...index.Package) *Result {
	t.Helper()
	res, err := New(db).Match(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func findingCVSS(f Finding) *vulndb.Severity {
	_, c := f.Severity()
	return c
}

func ids(res *Result) []string {
	var out []string
	for _, f := range res.Findings {
		out = append(out, f.ID()+"@"+f.Package.Name)
	}
	return out
}

func TestAlpineOriginAndBackportedFix(t *testing.T) {
	db := newMemDB(alpineOpenSSL)
	shipped := index.Package{Type: index.TypeApk, Ecosystem: "Alpine:v3.10", Name: "libssl1.1", SourceName: "openssl", Version: "1.1.1d-r2"}
	if res := match(t, db, shipped); len(res.Findings) != 0 {
		t.Errorf("1.1.1d-r2 is at or above the fix 1.1.1d-r0, got %v", ids(res))
	}
	old := shipped
	old.Version = "1.1.1c-r0"
	crypto := old
	crypto.Name = "libcrypto1.1"
	res := match(t, db, old, crypto)
	if got := ids(res); !slices.Equal(got, []string{"CVE-2019-1547@libcrypto1.1", "CVE-2019-1547@libssl1.1"}) {
		t.Fatalf("findings %v", got)
	}
	f := res.Findings[0]
	if !slices.Equal(f.FixedVersions, []string{"1.1.1d-r0"}) || f.FixAvailable != FixYes || f.MatchedName() != "openssl" {
		t.Errorf("finding %+v", f)
	}
	// Another release's branch is another key.
	other := old
	other.Ecosystem = "Alpine:v3.11"
	if res := match(t, db, other); len(res.Findings) != 0 {
		t.Errorf("v3.11 package matched a v3.10 advisory: %v", ids(res))
	}
}

func TestMavenLog4Shell(t *testing.T) {
	db := newMemDB(log4shell)
	for _, c := range []struct {
		version string
		fixed   []string
	}{
		{"2.14.1", []string{"2.15.0"}},
		{"2.13.0", []string{"2.15.0"}},
		{"2.3.0", []string{"2.3.1"}},
		{"2.0-beta9", []string{"2.3.1"}},
		{"2.12.1", []string{"2.12.2"}},
		{"2.15.0", nil},
		{"2.19.0", nil},
		{"2.12.2", nil},
	} {
		p := index.Package{Type: index.TypeJava, Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: c.version}
		res := match(t, db, p)
		if c.fixed == nil {
			if len(res.Findings) != 0 {
				t.Errorf("%s: unexpected %v", c.version, ids(res))
			}
			continue
		}
		if len(res.Findings) != 1 {
			t.Fatalf("%s: findings %v", c.version, ids(res))
		}
		f := res.Findings[0]
		if !slices.Equal(f.FixedVersions, c.fixed) || f.FixAvailable != FixYes || f.Aliases()[0] != "CVE-2021-44228" || findingCVSS(f) == nil || findingCVSS(f).BaseScore != 10 {
			t.Errorf("%s: finding %+v", c.version, f)
		}
	}
}

func TestDebianSourcePackage(t *testing.T) {
	db := newMemDB(dsa3029)
	bin := index.Package{Type: index.TypeDpkg, Ecosystem: "Debian:7", Name: "nginx-full", SourceName: "nginx", Version: "1.2.1-2.2+wheezy2"}
	if got := ids(match(t, db, bin)); !slices.Equal(got, []string{"DSA-3029-1@nginx-full"}) {
		t.Errorf("findings %v", got)
	}
	bin.Version = "1.2.1-2.2+wheezy3"
	if got := ids(match(t, db, bin)); len(got) != 0 {
		t.Errorf("fixed version matched: %v", got)
	}
	// A binNMU binary keeps its source version: judged by that.
	bin.Version, bin.SourceVersion = "1.2.1-2.2+wheezy2+b1", "1.2.1-2.2+wheezy2"
	if got := ids(match(t, db, bin)); len(got) != 1 {
		t.Errorf("binNMU: findings %v", got)
	}
	bin.Ecosystem = "Debian:8"
	if got := ids(match(t, db, bin)); len(got) != 0 {
		t.Errorf("another release matched: %v", got)
	}
}

func TestUbuntuLTSKeyAndVersionsList(t *testing.T) {
	db := newMemDB(usn5192)
	p := index.Package{Type: index.TypeDpkg, Ecosystem: "Ubuntu:18.04", Name: "liblog4j2-java", SourceName: "apache-log4j2", Version: "2.10.0-2"}
	if got := ids(match(t, db, p)); !slices.Equal(got, []string{"USN-5192-1@liblog4j2-java"}) {
		t.Errorf("findings %v", got)
	}
	p.Version = "2.10.0-2ubuntu0.1"
	if got := ids(match(t, db, p)); len(got) != 0 {
		t.Errorf("fixed version matched: %v", got)
	}
}

func TestRPMBinaryAndSourceNames(t *testing.T) {
	db := newMemDB(alsa10630)
	devel := index.Package{Type: index.TypeRPM, Ecosystem: "AlmaLinux:10", Name: "libxml2-devel", SourceName: "libxml2-2.12.5-5.el10.src.rpm", Version: "2.12.5-5.el10"}
	res := match(t, db, devel)
	if got := ids(res); !slices.Equal(got, []string{"ALSA-2025:10630@libxml2-devel"}) {
		t.Fatalf("findings %v (one finding per advisory, not per matching name)", got)
	}
	// A binary the advisory does not list still matches by its source RPM.
	py := devel
	py.Name = "python3-libxml2-extra"
	if got := ids(match(t, db, py)); len(got) != 1 {
		t.Errorf("source RPM match: %v", got)
	}
	devel.Version = "2.12.5-7.el10_0"
	if got := ids(match(t, db, devel)); len(got) != 0 {
		t.Errorf("fixed build matched: %v", got)
	}
	devel.Version, devel.Ecosystem = "2.12.5-5.el10", "AlmaLinux:9"
	if got := ids(match(t, db, devel)); len(got) != 0 {
		t.Errorf("AlmaLinux 9 matched an AlmaLinux 10 advisory: %v", got)
	}
}

func TestRPMModuleStreams(t *testing.T) {
	// ALSA module advisories carry module builds in their fixed versions.
	adv := &vulndb.Advisory{ID: "ALSA-2022:7340", Affected: []vulndb.Affected{{
		Ecosystem: "AlmaLinux:8", Package: "nodejs", Ranges: rng(intro("0"), fixed("1:16.17.1-1.module_el8.6.0+3180+2f7f8d37")),
	}}}
	db := newMemDB(adv)
	modular := index.Package{Type: index.TypeRPM, Ecosystem: "AlmaLinux:8", Name: "nodejs", Version: "1:16.14.0-3.module_el8.6.0+2793+2a8d7b27", Modularity: "nodejs:16:8060020220411085709:ad008a3a"}
	if got := ids(match(t, db, modular)); len(got) != 1 {
		t.Errorf("modular package: %v", got)
	}
	plain := modular
	plain.Version, plain.Modularity = "1:10.24.0-1.el8", ""
	if got := ids(match(t, db, plain)); len(got) != 0 {
		t.Errorf("non-modular package matched a module fix: %v", got)
	}
}

func TestDistroStatuses(t *testing.T) {
	adv := func(id string, st vulndb.Status, r []vulndb.Range) *vulndb.Advisory {
		return &vulndb.Advisory{ID: id, Affected: []vulndb.Affected{{Ecosystem: "Debian:12", Package: "tiff", Status: st, Ranges: r, VendorSeverity: "low"}}}
	}
	db := newMemDB(
		adv("CVE-2023-1", vulndb.StatusUnfixed, nil),
		adv("CVE-2023-2", vulndb.StatusWillNotFix, rng(intro("0"))),
		adv("CVE-2023-3", vulndb.StatusNotAffected, nil),
		adv("CVE-2023-4", vulndb.StatusFixed, rng(intro("0"), fixed("4.5.0-6+deb12u1"))),
		adv("CVE-2023-5", vulndb.StatusEndOfLife, nil),
	)
	p := index.Package{Type: index.TypeDpkg, Ecosystem: "Debian:12", Name: "libtiff6", SourceName: "tiff", Version: "4.5.0-6"}
	res := match(t, db, p)
	want := map[string]struct {
		st  vulndb.Status
		fix FixAvailable
	}{
		"CVE-2023-1": {vulndb.StatusUnfixed, FixNo},
		"CVE-2023-2": {vulndb.StatusWillNotFix, FixNo},
		"CVE-2023-4": {vulndb.StatusFixed, FixYes},
		"CVE-2023-5": {vulndb.StatusEndOfLife, FixNo},
	}
	if len(res.Findings) != len(want) {
		t.Fatalf("findings %v", ids(res))
	}
	for _, f := range res.Findings {
		w, ok := want[f.ID()]
		if !ok || f.Status != w.st || f.FixAvailable != w.fix || f.Unfixable() != (w.fix == FixNo) {
			t.Errorf("%s: status %q fix %q", f.ID(), f.Status, f.FixAvailable)
		}
		if vendor, _ := f.Severity(); vendor == nil || vendor.Score != "low" {
			t.Errorf("%s: vendor severity %+v", f.ID(), vendor)
		}
	}
}

func TestPartialFix(t *testing.T) {
	// One advisory, two ranges containing the version, one without fix.
	adv := &vulndb.Advisory{ID: "GHSA-test", Affected: []vulndb.Affected{
		{Ecosystem: "npm", Package: "lodash", Ranges: rng(intro("0"), fixed("4.17.21"))},
		{Ecosystem: "npm", Package: "lodash", Ranges: rng(intro("4.0.0"))},
	}}
	p := index.Package{Type: index.TypeNPM, Ecosystem: "npm", Name: "lodash", Version: "4.17.15"}
	res := match(t, newMemDB(adv), p)
	if len(res.Findings) != 1 || res.Findings[0].FixAvailable != FixPartial {
		t.Fatalf("findings %+v", res.Findings)
	}
}

func TestLastAffectedAndLimit(t *testing.T) {
	adv := &vulndb.Advisory{ID: "RUSTSEC-test", Affected: []vulndb.Affected{{Ecosystem: "crates.io", Package: "smallvec",
		Ranges: rng(intro("0.6.3"), vulndb.Event{LastAffected: "0.6.13"}, intro("1.0.0"), vulndb.Event{Limit: "1.6.1"})}}}
	db := newMemDB(adv)
	for v, want := range map[string]bool{"0.6.2": false, "0.6.3": true, "0.6.13": true, "0.6.14": false, "1.0.0": true, "1.6.0": true, "1.6.1": false} {
		p := index.Package{Type: index.TypeCargo, Ecosystem: "crates.io", Name: "smallvec", Version: v}
		if got := len(match(t, db, p).Findings) == 1; got != want {
			t.Errorf("%s: affected %v, want %v", v, got, want)
		}
	}
}

func TestUnsortedEventsAndGitRanges(t *testing.T) {
	adv := &vulndb.Advisory{ID: "OSV-unsorted", Affected: []vulndb.Affected{{Ecosystem: "PyPI", Package: "Jinja2", Ranges: []vulndb.Range{
		{Type: vulndb.RangeGit, Repo: "https://example.invalid/jinja", Events: []vulndb.Event{intro("0"), fixed("abcdef")}},
		{Type: vulndb.RangeEcosystem, Events: []vulndb.Event{fixed("3.1.3"), intro("3.0.0"), fixed("2.11.3"), intro("0")}},
	}}}}
	db := newMemDB(adv)
	for v, want := range map[string]string{"2.10": "2.11.3", "2.11.3": "", "3.0.0rc1": "", "3.0.0": "3.1.3", "3.1.3": ""} {
		// PEP 503: the installed name differs in case and separators.
		p := index.Package{Type: index.TypePython, Ecosystem: "PyPI", Name: "jinja2", Version: v}
		res := match(t, db, p)
		switch {
		case want == "" && len(res.Findings) != 0:
			t.Errorf("%s: unexpected %v", v, ids(res))
		case want != "" && (len(res.Findings) != 1 || res.Findings[0].FixedVersions[0] != want):
			t.Errorf("%s: findings %+v, want fix %s", v, res.Findings, want)
		}
	}
}

func TestGoStdlibAndSemverRanges(t *testing.T) {
	// GO-2024-2687 shape: stdlib net/http, SEMVER ranges without "v".
	adv := &vulndb.Advisory{ID: "GO-2024-2687", Affected: []vulndb.Affected{
		{Ecosystem: "Go", Package: "stdlib", Ranges: []vulndb.Range{{Type: vulndb.RangeSemver, Events: []vulndb.Event{intro("0"), fixed("1.21.9"), intro("1.22.0-0"), fixed("1.22.2")}}}},
		{Ecosystem: "Go", Package: "golang.org/x/net", Ranges: []vulndb.Range{{Type: vulndb.RangeSemver, Events: []vulndb.Event{intro("0"), fixed("0.23.0")}}}},
	}}
	db := newMemDB(adv)
	for _, c := range []struct {
		name, version string
		want          bool
	}{
		{"stdlib", "go1.21.3", true}, {"stdlib", "go1.21.9", false}, {"stdlib", "go1.22", true}, {"stdlib", "go1.22rc1", true},
		{"stdlib", "go1.22.2", false}, {"golang.org/x/net", "v0.22.0", true}, {"golang.org/x/net", "v0.0.0-20210226172049-e18ecbb05110", true},
		{"golang.org/x/net", "v0.23.0", false}, {"golang.org/x/net", "(devel)", false},
	} {
		p := index.Package{Type: index.TypeGoBinary, Ecosystem: "Go", Name: c.name, Version: c.version}
		if got := len(match(t, db, p).Findings) == 1; got != c.want {
			t.Errorf("%s@%s: affected %v, want %v", c.name, c.version, got, c.want)
		}
	}
}

func TestWithdrawnAndBadVersions(t *testing.T) {
	withdrawn := &vulndb.Advisory{ID: "GHSA-gone", Affected: []vulndb.Affected{{Ecosystem: "npm", Package: "x", Ranges: rng(intro("0"))}}}
	withdrawn.Withdrawn = withdrawn.Published.AddDate(2020, 0, 0)
	bad := &vulndb.Advisory{ID: "GHSA-bad", Affected: []vulndb.Affected{{Ecosystem: "npm", Package: "x", Ranges: rng(intro("0"), fixed("not.a.version"))}}}
	res := match(t, newMemDB(withdrawn, bad), index.Package{Type: index.TypeNPM, Ecosystem: "npm", Name: "x", Version: "1.0.0"})
	if len(res.Findings) != 0 || len(res.Warnings) != 1 {
		t.Errorf("findings %v warnings %v", ids(res), res.Warnings)
	}
}

func TestGoToolchainVersion(t *testing.T) {
	for in, want := range map[string]string{"go1.21.3": "1.21.3", "go1.22": "1.22.0", "go1.21rc2": "1.21.0-rc.2", "go1.20beta1": "1.20.0-beta.1", "go1.22.1 X:boringcrypto": "1.22.1", "v1.23.4": "1.23.4"} {
		if got := goToolchainVersion(in); got != want {
			t.Errorf("goToolchainVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSortFindingsInPlace(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		pkgs := make([]index.Package, 1+r.IntN(12))
		for i := range pkgs {
			pkgs[i] = index.Package{Name: string(rune('a' + r.IntN(4))), Path: string(rune('x' + r.IntN(2)))}
		}
		var fs []Finding
		for i := range pkgs {
			for range r.IntN(4) {
				fs = append(fs, Finding{Package: &pkgs[i], Advisory: &vulndb.Advisory{ID: fmt.Sprint(r.IntN(50))}})
			}
		}
		// The reference: a stable sort by name, path, inventory position,
		// then id.
		want := slices.Clone(fs)
		slices.SortStableFunc(want, func(a, b Finding) int {
			if c := strings.Compare(a.Package.Name, b.Package.Name); c != 0 {
				return c
			}
			if c := strings.Compare(a.Package.Path, b.Package.Path); c != 0 {
				return c
			}
			if a.Package != b.Package {
				return cmpPtr(pkgs, a.Package, b.Package)
			}
			return strings.Compare(a.Advisory.ID, b.Advisory.ID)
		})
		sortFindings(fs)
		for i := range fs {
			if fs[i].Package != want[i].Package || fs[i].Advisory.ID != want[i].Advisory.ID {
				t.Fatalf("position %d: got %s/%s %s, want %s/%s %s", i, fs[i].Package.Name, fs[i].Package.Path, fs[i].Advisory.ID, want[i].Package.Name, want[i].Package.Path, want[i].Advisory.ID)
			}
		}
	}
}

// cmpPtr orders two packages of pkgs by their position in it.
func cmpPtr(pkgs []index.Package, a, b *index.Package) int {
	var ia, ib int
	for i := range pkgs {
		if &pkgs[i] == a {
			ia = i
		}
		if &pkgs[i] == b {
			ib = i
		}
	}
	return ia - ib
}

// TestVersionEdgeCasesThroughMatching checks that matching orders the
// installed version against a fixed version by its ecosystem's rules
// (each rule is checked against the ecosystem's own tool in
// internal/match/version's oracle tests).
func TestVersionEdgeCasesThroughMatching(t *testing.T) {
	for _, c := range []struct {
		rule, ecosystem  string
		typ              index.Type
		intro, fix, inst string
		affected         bool
	}{
		{"dpkg epoch", "Debian:12", index.TypeDpkg, "0", "1:2.0-1", "2.5-1", true},
		{"dpkg epoch above", "Debian:12", index.TypeDpkg, "0", "1:2.0-1", "1:2.0-1+deb12u1", false},
		{"dpkg tilde before", "Debian:12", index.TypeDpkg, "0", "1.0-1", "1.0-1~deb12u1", true},
		{"dpkg plus after", "Debian:12", index.TypeDpkg, "0", "1.0-1", "1.0-1+deb12u1", false},
		{"rpm epoch", "AlmaLinux:9", index.TypeRPM, "0", "2:1.0-1.el9", "1:9.9-1.el9", true},
		{"rpm tilde", "AlmaLinux:9", index.TypeRPM, "0", "1.0-1.el9", "1.0~rc1-1.el9", true},
		{"rpm caret after", "AlmaLinux:9", index.TypeRPM, "0", "1.0^git1-1.el9", "1.0-1.el9", true},
		{"rpm caret before next", "AlmaLinux:9", index.TypeRPM, "0", "1.0^git1-1.el9", "1.0.1-1.el9", false},
		{"apk _p after release", "Alpine:v3.18", index.TypeApk, "0", "1.2.3-r1", "1.2.3_p1-r0", false},
		{"apk _rc before release", "Alpine:v3.18", index.TypeApk, "0", "1.2.3-r0", "1.2.3_rc1-r0", true},
		{"npm pre-release before fix", "npm", index.TypeNPM, "0", "2.0.0", "2.0.0-rc.1", true},
		{"npm pre-release before introduced", "npm", index.TypeNPM, "2.0.0", "2.1.0", "2.0.0-rc.1", false},
		{"pypi local after public", "PyPI", index.TypePython, "0", "1.0.1", "1.0.1+ubuntu1", false},
		{"pypi rc before final", "PyPI", index.TypePython, "0", "1.0.1", "1.0.1rc1", true},
		{"pypi dev before final", "PyPI", index.TypePython, "0", "1.0.1", "1.0.1.dev1", true},
		{"pypi post after final", "PyPI", index.TypePython, "0", "1.0.1", "1.0.1.post1", false},
		{"pypi epoch", "PyPI", index.TypePython, "0", "1!1.0", "2.0", true},
		{"go pseudo-version", "Go", index.TypeGoBinary, "0", "0.23.0", "v0.22.1-0.20240101000000-abcdefabcdef", true},
		{"go +incompatible", "Go", index.TypeGoBinary, "0", "2.1.0", "v2.0.0+incompatible", true},
		{"maven rc before release", "Maven", index.TypeJava, "0", "2.15.0", "2.15.0-rc1", true},
		{"maven final is release", "Maven", index.TypeJava, "0", "2.15.0", "2.15.0.Final", false},
	} {
		adv := &vulndb.Advisory{ID: "EDGE", Affected: []vulndb.Affected{{Ecosystem: c.ecosystem, Package: "p", Ranges: rng(intro(c.intro), fixed(c.fix))}}}
		p := index.Package{Type: c.typ, Ecosystem: c.ecosystem, Name: "p", Version: c.inst}
		if c.typ == index.TypeApk || c.typ == index.TypeDpkg {
			p.SourceName = "p"
		}
		res := match(t, newMemDB(adv), p)
		if got := len(res.Findings) == 1; got != c.affected || len(res.Warnings) != 0 {
			t.Errorf("%s: %s installed, fixed %s: affected %v, want %v (warnings %v)", c.rule, c.inst, c.fix, got, c.affected, res.Warnings)
		}
	}
}

// TestConcurrentMatch matches from several goroutines with one Matcher
// (the parse caches fill concurrently; run with -race) and checks every
// goroutine gets the single-goroutine result.
func TestConcurrentMatch(t *testing.T) {
	real, _ := benchDB(t, 0)
	pkgs := benchInventory(t, 600, real)
	snap := vulndb.NewSnapshot(1, real, nil)
	want, err := New(snap).Match(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Findings) == 0 {
		t.Fatal("no findings to compare")
	}
	m := New(snap)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			res, err := m.Match(context.Background(), pkgs)
			if err == nil && len(res.Findings) != len(want.Findings) {
				err = fmt.Errorf("%d findings, want %d", len(res.Findings), len(want.Findings))
			}
			for i := 0; err == nil && i < len(res.Findings); i++ {
				g, w := res.Findings[i], want.Findings[i]
				if g.Package != w.Package || g.Advisory != w.Advisory || g.FixAvailable != w.FixAvailable || !slices.Equal(g.FixedVersions, w.FixedVersions) {
					err = fmt.Errorf("finding %d: %s@%s, want %s@%s", i, g.ID(), g.Package.Name, w.ID(), w.Package.Name)
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestNextKeepsUnchangedKeys: a Matcher for the next generation reuses
// the parsed entries of keys whose lists did not change and reparses the
// others.
func TestNextKeepsUnchangedKeys(t *testing.T) {
	db := newMemDB(log4shell, dsa3029)
	log4j := index.Package{Type: index.TypeJava, Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"}
	nginx := index.Package{Type: index.TypeDpkg, Ecosystem: "Debian:7", Name: "nginx-full", SourceName: "nginx", Version: "1.2.1-2.2+wheezy3"}
	m := New(db)
	if got := ids(match1(t, m, log4j, nginx)); !slices.Equal(got, []string{"GHSA-jfh8-c2jp-5v3q@org.apache.logging.log4j:log4j-core"}) {
		t.Fatalf("generation 1: %v", got)
	}
	// Generation 2: nginx's advisory now has a later fix; log4j's list is
	// the same slice.
	next := memDB{}
	for k, v := range db {
		next[k] = v
	}
	dsa := *dsa3029
	dsa.Affected = []vulndb.Affected{{Ecosystem: "Debian:7", Package: "nginx", Ranges: rng(intro("0"), fixed("1.2.1-2.2+wheezy4"))}}
	k := vulndb.NewKey("Debian:7", "nginx")
	next[k] = []vulndb.Match{{Advisory: &dsa, Affected: &dsa.Affected[0]}}
	n := m.Next(next)
	logKey := vulndb.NewKey("Maven", "org.apache.logging.log4j:log4j-core")
	if _, ok := n.cache[logKey]; !ok {
		t.Error("unchanged key not carried over")
	}
	if _, ok := n.cache[k]; ok {
		t.Error("changed key carried over")
	}
	want := []string{"DSA-3029-1@nginx-full", "GHSA-jfh8-c2jp-5v3q@org.apache.logging.log4j:log4j-core"}
	if got := ids(match1(t, n, log4j, nginx)); !slices.Equal(got, want) {
		t.Errorf("generation 2: %v, want %v", got, want)
	}
}

func match1(t *testing.T, m *Matcher, pkgs ...index.Package) *Result {
	t.Helper()
	res, err := m.Match(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// preparedDB is a database index that keeps the matcher's plans beside
// its lists, as PreparedAdvisories describes.
type preparedDB struct {
	memDB
	plans map[vulndb.Key]any
}

func (db preparedDB) LookupPrepared(k vulndb.Key) ([]vulndb.Match, any) {
	return db.memDB[k], db.plans[k]
}

// TestPreparedAdvisories: a database that holds PrepareKey's plans gives
// the same findings, and the matcher parses nothing of its own.
func TestPreparedAdvisories(t *testing.T) {
	mem := newMemDB(log4shell, dsa3029, alpineOpenSSL, alsa10630, usn5192)
	db := preparedDB{memDB: mem, plans: map[vulndb.Key]any{}}
	for k, ms := range mem {
		db.plans[k] = PrepareKey(k, ms)
	}
	pkgs := []index.Package{
		{Type: index.TypeJava, Ecosystem: "Maven", Name: "org.apache.logging.log4j:log4j-core", Version: "2.14.1"},
		{Type: index.TypeDpkg, Ecosystem: "Debian:7", Name: "nginx-full", SourceName: "nginx", Version: "1.2.1-2.2+wheezy2"},
		{Type: index.TypeApk, Ecosystem: "Alpine:v3.10", Name: "libssl1.1", SourceName: "openssl", Version: "1.1.1c-r0"},
		{Type: index.TypeRPM, Ecosystem: "AlmaLinux:10", Name: "libxml2-devel", SourceName: "libxml2-2.12.5-5.el10.src.rpm", Version: "2.12.5-5.el10"},
		{Type: index.TypeDpkg, Ecosystem: "Ubuntu:18.04", Name: "liblog4j2-java", SourceName: "apache-log4j2", Version: "2.10.0-2"},
	}
	want := ids(match(t, mem, pkgs...))
	m := New(db)
	got := ids(match1(t, m, pkgs...))
	if !slices.Equal(got, want) || len(want) != 5 {
		t.Errorf("prepared: %v, want %v", got, want)
	}
	if len(m.cache) != 0 {
		t.Errorf("the matcher parsed %d keys itself", len(m.cache))
	}
}
