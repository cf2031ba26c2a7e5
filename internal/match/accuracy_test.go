package match

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/langtest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// Accuracy on real data: real images, real packages and real advisory
// feeds; the expected findings come from the fixtures' documentation or
// from an independent evaluation (rpm, Python's packaging, x/mod/semver),
// never from the matcher.

const alpine310 = "images/alpine-3.10-docker-archive.tar.gz"

// secfixes reads one package's secfixes from a secdb YAML document with a
// line scanner (independent of the feed adapter): fixed version → CVEs.
func secfixes(t *testing.T, rel, pkg string) map[string][]string {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	in, fixes, cur := false, false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "name:"):
			in = strings.TrimSpace(strings.TrimPrefix(line, "name:")) == pkg
			fixes = false
		case in && line == "secfixes:":
			fixes = true
		case in && fixes && strings.HasPrefix(line, "- "):
			out[cur] = append(out[cur], strings.TrimSpace(strings.TrimPrefix(line, "- ")))
		case in && fixes && strings.HasSuffix(line, ":"):
			cur = strings.Trim(strings.TrimSuffix(line, ":"), `"'`)
		case strings.HasPrefix(line, "- pkg:"):
			in = false
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func originOpenSSL(p *index.Package) bool { return p.SourceName == "openssl" }

// cveOf is the advisory's CVE id: its id or its first CVE alias.
func cveOf(a *vulndb.Advisory) string {
	for _, id := range append([]string{a.ID}, a.Aliases...) {
		if strings.HasPrefix(id, "CVE-") {
			return id
		}
	}
	return a.ID
}

// The real alpine:3.10 image ships libcrypto1.1 and libssl1.1 1.1.1d-r2;
// the real v3.10 secdb lists openssl fixes up to 1.1.1d-r0, so nothing
// about openssl applies (the fixtures' README documents both facts).
func TestAccuracyAlpineShippedOpenSSLIsClean(t *testing.T) {
	fixes := secfixes(t, "feeds/alpine-secdb/v3.10/main.yaml", "openssl")
	if want := []string{"CVE-2019-1547", "CVE-2019-1549", "CVE-2019-1563"}; !slices.Equal(fixes["1.1.1d-r0"], want) {
		t.Fatalf("secdb v3.10 openssl 1.1.1d-r0 fixes %v, want %v (fixture changed?)", fixes["1.1.1d-r0"], want)
	}
	inv := indexArchive(t, testutil.Fixture(t, alpine310))
	var openssl []string
	for _, p := range inv.Packages {
		if originOpenSSL(&p) {
			openssl = append(openssl, p.Name+"@"+p.Version)
		}
	}
	slices.Sort(openssl)
	if want := []string{"libcrypto1.1@1.1.1d-r2", "libssl1.1@1.1.1d-r2"}; !slices.Equal(openssl, want) {
		t.Fatalf("image's openssl packages %v, want %v", openssl, want)
	}
	advs := append(alpineAdvisories(t, "feeds/alpine-secdb/v3.10/main.yaml"), alpineAdvisories(t, "feeds/alpine-secdb/v3.10/community.yaml")...)
	res, _ := matchInventory(t, inv, advs, nil)
	if got := findingKeys(res, originOpenSSL); len(got) != 0 {
		t.Errorf("openssl findings on the shipped image: %v", got)
	}
}

// A copy of the image whose apk database says 1.1.1c-r0: the three CVEs
// fixed in 1.1.1d-r0 apply to both binary packages of origin openssl, and
// only those (1.1.1b-r1 and 1.1.1a-r0 are below 1.1.1c-r0).
func TestAccuracyAlpineOldOpenSSL(t *testing.T) {
	archive := rewriteDockerArchive(t, testutil.Fixture(t, alpine310), "lib/apk/db/installed", func(db []byte) []byte {
		var out bytes.Buffer
		pkg := ""
		for line := range strings.Lines(string(db)) {
			if name, ok := strings.CutPrefix(line, "P:"); ok {
				pkg = strings.TrimSpace(name)
			}
			if strings.HasPrefix(line, "V:") && (pkg == "libcrypto1.1" || pkg == "libssl1.1") {
				line = "V:1.1.1c-r0\n"
			}
			out.WriteString(line)
		}
		return out.Bytes()
	})
	inv := indexArchive(t, archive)
	advs := append(alpineAdvisories(t, "feeds/alpine-secdb/v3.10/main.yaml"), alpineAdvisories(t, "feeds/alpine-secdb/v3.10/community.yaml")...)
	res, _ := matchInventory(t, inv, advs, nil)
	var got []string
	for _, f := range res.Findings {
		if originOpenSSL(f.Package) {
			got = append(got, cveOf(f.Advisory)+"@"+f.Package.Name)
		}
	}
	slices.Sort(got)
	want := []string{
		"CVE-2019-1547@libcrypto1.1", "CVE-2019-1547@libssl1.1",
		"CVE-2019-1549@libcrypto1.1", "CVE-2019-1549@libssl1.1",
		"CVE-2019-1563@libcrypto1.1", "CVE-2019-1563@libssl1.1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("openssl findings %v, want %v", got, want)
	}
	for _, f := range res.Findings {
		if !originOpenSSL(f.Package) {
			continue
		}
		if !slices.Equal(f.FixedVersions, []string{"1.1.1d-r0"}) || f.FixAvailable != FixYes || f.MatchedName() != "openssl" {
			t.Errorf("%s@%s: fixed %v, fixAvailable %s, matched %q", f.ID(), f.Package.Name, f.FixedVersions, f.FixAvailable, f.MatchedName())
		}
		if f.Package.Layer == "" || f.Package.Path != "lib/apk/db/installed" || f.Package.PURL == "" {
			t.Errorf("%s@%s: package layer %q path %q purl %q", f.ID(), f.Package.Name, f.Package.Layer, f.Package.Path, f.Package.PURL)
		}
	}
}

// writeJar writes a jar holding only Maven's pom.properties, the layout
// Maven's archiver gives every artifact it builds.
func writeJar(t *testing.T, path, group, artifact, version string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for name, body := range map[string]string{
		"META-INF/MANIFEST.MF": "Manifest-Version: 1.0\r\nCreated-By: Apache Maven\r\n\r\n",
		"META-INF/maven/" + group + "/" + artifact + "/pom.properties": fmt.Sprintf("#Created by Apache Maven\ngroupId=%s\nartifactId=%s\nversion=%s\n", group, artifact, version),
	} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// kevListed reads the KEV catalogue with encoding/json (not the feed
// adapter) and reports whether it lists the CVE.
func kevListed(t *testing.T, cve string) bool {
	t.Helper()
	data, err := os.ReadFile(testutil.Fixture(t, "enrichment/kev/known_exploited_vulnerabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cat struct {
		Vulnerabilities []struct {
			CVEID string `json:"cveID"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &cat); err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(cat.Vulnerabilities, func(v struct {
		CVEID string `json:"cveID"`
	}) bool {
		return v.CVEID == cve
	})
}

// cisaScore reads the CVSS 3.1 base score CISA's ADP container of the CVE
// record gives the vector.
func cisaScore(t *testing.T, vector string) float64 {
	t.Helper()
	data, err := os.ReadFile(testutil.Fixture(t, "enrichment/cve5/CVE-2021-44228.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Containers struct {
			ADP []struct {
				Metrics []struct {
					CVSSV31 *struct {
						BaseScore    float64 `json:"baseScore"`
						VectorString string  `json:"vectorString"`
					} `json:"cvssV3_1"`
				} `json:"metrics"`
			} `json:"adp"`
		} `json:"containers"`
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	for _, adp := range rec.Containers.ADP {
		for _, m := range adp.Metrics {
			if m.CVSSV31 != nil && m.CVSSV31.VectorString == vector {
				return m.CVSSV31.BaseScore
			}
		}
	}
	t.Fatalf("CVE record has no CVSS 3.1 score for %s", vector)
	return 0
}

// log4j-core 2.14.1 in a Maven-layout jar matches Log4Shell with its KEV
// membership and GitHub's CVSS; the real log4j-core jar of Debian's
// liblog4j2-java (2.19) does not.
func TestAccuracyLog4Shell(t *testing.T) {
	root := t.TempDir()
	writeJar(t, filepath.Join(root, "opt/app/lib/log4j-core-2.14.1.jar"), "org.apache.logging.log4j", "log4j-core", "2.14.1")
	deb := langtest.Debian(t, "liblog4j2-java")
	debRoot, debVersion := deb.Root, deb.Version
	if !strings.HasPrefix(debVersion, "2.19") {
		t.Fatalf("liblog4j2-java candidate is %s, the test expects 2.19", debVersion)
	}
	inv := indexDir(t, root)
	debInv := indexDir(t, debRoot)

	advs := osvAdvisories(t, "feeds/osv/records/GHSA-jfh8-c2jp-5v3q.json")
	if len(advs) != 1 {
		t.Fatalf("%d advisories", len(advs))
	}
	kev := kevEnrichment(t)
	res, snap := matchInventory(t, inv, advs, kev)
	if got := findingKeys(res, nil); !slices.Equal(got, []string{"GHSA-jfh8-c2jp-5v3q@org.apache.logging.log4j:log4j-core"}) {
		t.Fatalf("findings %v", got)
	}
	f := &res.Findings[0]
	d := Describe(f, nil, snap.Enrichment(f.Advisory))
	wantVector := "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H" // the record's severity
	if len(d.Aliases) == 0 || d.Aliases[0] != "CVE-2021-44228" {
		t.Errorf("aliases %v", d.Aliases)
	}
	if !kevListed(t, "CVE-2021-44228") || !d.ExploitAvailable || d.KEV == nil || d.KEV.CVE != "CVE-2021-44228" {
		t.Errorf("KEV: exploitAvailable %v, entry %+v", d.ExploitAvailable, d.KEV)
	}
	if d.CVSS == nil || d.CVSS.Vector != wantVector || d.CVSS.BaseScore != cisaScore(t, wantVector) || d.CVSS.Version != "3.1" {
		t.Errorf("CVSS %+v", d.CVSS)
	}
	if d.Severity != SeverityCritical || !slices.Equal(d.FixedVersions, []string{"2.15.0"}) || d.FixAvailable != FixYes {
		t.Errorf("severity %s (%s), fixed %v, fix %s", d.Severity, d.SeveritySource, d.FixedVersions, d.FixAvailable)
	}
	if d.Package.Path != "opt/app/lib/log4j-core-2.14.1.jar" || d.Package.Ecosystem != "Maven" || !strings.HasPrefix(d.Package.PURL, "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1") {
		t.Errorf("package %+v", d.Package)
	}

	var log4j []string
	for _, p := range debInv.Packages {
		if p.Name == "org.apache.logging.log4j:log4j-core" {
			log4j = append(log4j, p.Version)
		}
	}
	if len(log4j) == 0 || !strings.HasPrefix(log4j[0], "2.19") {
		t.Fatalf("Debian's jar: log4j-core versions %v", log4j)
	}
	debRes, _ := matchInventory(t, debInv, advs, kev)
	if got := findingKeys(debRes, nil); len(got) != 0 {
		t.Errorf("Debian's log4j %s matched: %v", log4j[0], got)
	}
}

// rpmVercmp compares EVR pairs with rpm's own rpm.vercmp.
func rpmVercmp(t *testing.T, pairs [][2]string) []int {
	t.Helper()
	var in strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&in, "%s\t%s\n", p[0], p[1])
	}
	file := filepath.Join(t.TempDir(), "pairs")
	if err := os.WriteFile(file, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, "", nil, testutil.RequireTool(t, "rpm"), "--eval", `%{lua:
for l in io.lines("`+file+`") do
	local a, b = string.match(l, "^(.*)\t(.*)$")
	io.write(rpm.vercmp(a, b), "\n")
end
}`)
	var res []int
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		var c int
		if _, err := fmt.Sscan(line, &c); err != nil {
			t.Fatalf("rpm output %q: %v", line, err)
		}
		res = append(res, c)
	}
	if len(res) != len(pairs) {
		t.Fatalf("rpm gave %d answers for %d pairs", len(res), len(pairs))
	}
	return res
}

type osvRecord struct {
	ID       string `json:"id"`
	Withdraw string `json:"withdrawn"`
	Affected []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
		} `json:"package"`
		Ranges []struct {
			Type   string              `json:"type"`
			Events []map[string]string `json:"events"`
		} `json:"ranges"`
		Versions []string `json:"versions"`
	} `json:"affected"`
}

// readOSVZip reads the records of an OSV zip with encoding/json.
func readOSVZip(t *testing.T, rel string) []osvRecord {
	t.Helper()
	zr, err := zip.OpenReader(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []osvRecord
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var r osvRecord
		err = json.NewDecoder(rc).Decode(&r)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		out = append(out, r)
	}
	return out
}

// AlmaLinux packages at the versions the sample feed names (with and
// without their epoch) match exactly the advisories whose fixed version
// rpm orders after them.
func TestAccuracyAlmaLinuxRPM(t *testing.T) {
	type pkg struct{ ecosystem, name string }
	chosen := []pkg{{"AlmaLinux:8", "kernel"}, {"AlmaLinux:8", "bpftool"}, {"AlmaLinux:10", "bind-license"}, {"AlmaLinux:10", "tomcat9"}}
	recs := readOSVZip(t, "feeds/osv/AlmaLinux/sample.zip")
	type fix struct{ id, fixed string }
	fixes := map[pkg][]fix{}
	for _, r := range recs {
		for _, a := range r.Affected {
			k := pkg{a.Package.Ecosystem, a.Package.Name}
			if !slices.Contains(chosen, k) {
				continue
			}
			for _, rg := range a.Ranges {
				if rg.Type != "ECOSYSTEM" || len(rg.Events) != 2 || rg.Events[0]["introduced"] != "0" || rg.Events[1]["fixed"] == "" || len(a.Versions) > 0 {
					t.Fatalf("%s %s: range %+v is not introduced 0 / fixed (the oracle below reads only those)", r.ID, k, rg)
				}
				fixes[k] = append(fixes[k], fix{r.ID, rg.Events[1]["fixed"]})
			}
		}
	}
	// Installed versions: every fixed version the feed names for the
	// package, and each without its epoch.
	var pkgs []index.Package
	var pairs [][2]string
	type probe struct {
		pkg pkg
		v   string
	}
	var probes []probe
	for _, k := range chosen {
		if len(fixes[k]) == 0 {
			t.Fatalf("sample has no %v", k)
		}
		var versions []string
		for _, f := range fixes[k] {
			versions = append(versions, f.fixed)
			if _, noEpoch, ok := strings.Cut(f.fixed, ":"); ok {
				versions = append(versions, noEpoch)
			}
		}
		slices.Sort(versions)
		for _, v := range slices.Compact(versions) {
			probes = append(probes, probe{k, v})
			pkgs = append(pkgs, index.Package{Type: index.TypeRPM, Ecosystem: k.ecosystem, Name: k.name, Version: v, Path: "var/lib/rpm/rpmdb.sqlite"})
			for _, f := range fixes[k] {
				pairs = append(pairs, [2]string{v, f.fixed})
			}
		}
	}
	cmp := rpmVercmp(t, pairs)
	var want []string
	i := 0
	for _, pr := range probes {
		for _, f := range fixes[pr.pkg] {
			if cmp[i] < 0 {
				want = append(want, f.id+"@"+pr.pkg.name+"@"+pr.v)
			}
			i++
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)

	res, err := New(vulndb.NewSnapshot(1, osvAdvisories(t, "feeds/osv/AlmaLinux/sample.zip"), nil)).Match(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.ID()+"@"+f.Package.Name+"@"+f.Package.Version)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("findings differ from rpm's order:\n got %v\nwant %v", got, want)
	}
	t.Logf("%d packages, %d findings", len(pkgs), len(want))
	if len(want) == 0 || len(res.Warnings) != 0 {
		t.Errorf("%d expected findings, warnings %v", len(want), res.Warnings)
	}
}
