package alpine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

const secdbFixtures = "feeds/alpine-secdb"

func fixtureFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testutil.Fixture(t, secdbFixtures), "*", "*.yaml"))
	if err != nil || len(files) != 18 {
		t.Fatalf("want 18 secdb fixture files, got %d (%v)", len(files), err)
	}
	return files
}

// scanned is what an independent line-by-line reading of a secdb YAML file
// finds: for each package, each CVE and the versions listing it.
type scanned map[string]map[string][]string

var (
	scanName    = regexp.MustCompile(`^\s+name:\s*(\S+)\s*$`)
	scanVersion = regexp.MustCompile(`^\s+["']?([0-9][^\s"':]*)["']?:\s*$`)
	scanEntry   = regexp.MustCompile(`^\s*-\s+(.*)$`)
	scanCVE     = regexp.MustCompile(`CVE[-_ ](\d{4})-(\d{4,})`)
)

// scanYAML reads a secdb YAML file with regular expressions only, no YAML
// decoder: the independent truth for Parse.
func scanYAML(t testing.TB, path string) scanned {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := scanned{}
	var pkg, version string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := scanName.FindStringSubmatch(line); m != nil {
			pkg, version = m[1], ""
			continue
		}
		if m := scanVersion.FindStringSubmatch(line); m != nil {
			version = m[1]
			continue
		}
		if m := scanEntry.FindStringSubmatch(line); m != nil && pkg != "" && version != "" {
			for _, c := range scanCVE.FindAllStringSubmatch(m[1], -1) {
				cve := "CVE-" + c[1] + "-" + c[2]
				if out[pkg] == nil {
					out[pkg] = map[string][]string{}
				}
				out[pkg][cve] = append(out[pkg][cve], version)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func parseFile(t testing.TB, path string) *vulndb.FeedData {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := Parse(f, "alpine-secdb")
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

func cveOf(a vulndb.Advisory) string {
	for _, x := range a.Aliases {
		if strings.HasPrefix(x, "CVE-") {
			return x
		}
	}
	return ""
}

func fixedOf(a vulndb.Affected) string {
	for _, r := range a.Ranges {
		for _, e := range r.Events {
			if e.Fixed != "" {
				return e.Fixed
			}
		}
	}
	return ""
}

func TestParseYAMLFixturesAgainstLineScan(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		rel := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
		t.Run(rel, func(t *testing.T) {
			want := scanYAML(t, path)
			d := parseFile(t, path)
			release := filepath.Base(filepath.Dir(path))
			got := scanned{}
			for _, a := range d.Advisories {
				if a.Source != "alpine-secdb" || !strings.HasPrefix(a.ID, IDPrefix) {
					t.Fatalf("advisory %s source %q", a.ID, a.Source)
				}
				for _, aff := range a.Affected {
					if aff.Ecosystem != "Alpine:"+release {
						t.Fatalf("%s: ecosystem %q", a.ID, aff.Ecosystem)
					}
					if aff.PURL != "pkg:apk/alpine/"+aff.Package+"?arch=source" {
						t.Fatalf("%s: purl %q", a.ID, aff.PURL)
					}
					for _, cve := range a.Aliases {
						if !strings.HasPrefix(cve, "CVE-") {
							continue
						}
						v := fixedOf(aff)
						switch aff.Status {
						case vulndb.StatusNotAffected:
							if v != "" {
								t.Fatalf("%s %s: not affected with a fixed version %q", a.ID, aff.Package, v)
							}
							v = "0"
						case vulndb.StatusFixed:
							if v == "" || v == "0" {
								t.Fatalf("%s %s: fixed without a version", a.ID, aff.Package)
							}
						default:
							t.Fatalf("%s %s: status %q", a.ID, aff.Package, aff.Status)
						}
						if got[aff.Package] == nil {
							got[aff.Package] = map[string][]string{}
						}
						got[aff.Package][cve] = append(got[aff.Package][cve], v)
					}
				}
			}
			// Every (package, CVE) the scan found is in the parse and the
			// other way round, and the fixed version chosen is one the file
			// lists for that pair. The exception: a pair listed only under
			// versions that are not apk versions (typos in the real data,
			// such as "0.8.21.r2") is rejected, naming the record.
			rejected := map[string]bool{}
			for _, r := range d.Rejected {
				if r.Feed != "alpine-secdb" || !strings.Contains(r.Err.Error(), "is not an apk version") {
					t.Fatalf("unexpected rejection %v", r)
				}
				rejected[r.Record] = true
			}
			for pkg, cves := range want {
				for cve, versions := range cves {
					g := got[pkg][cve]
					if len(g) == 0 {
						for _, v := range versions {
							if !rejected[release+"/"+strings.TrimSuffix(filepath.Base(path), ".yaml")+" "+pkg+" "+v] {
								t.Fatalf("%s %s: missing from the parse, and version %s not rejected", pkg, cve, v)
							}
						}
						continue
					}
					if len(g) != 1 {
						t.Fatalf("%s %s: parse has %d affected entries, want 1 (file lists %v)", pkg, cve, len(g), versions)
					}
					if !contains(versions, g[0]) {
						t.Fatalf("%s %s: fixed %q is not one of the file's %v", pkg, cve, g[0], versions)
					}
				}
			}
			for pkg, cves := range got {
				for cve := range cves {
					if want[pkg][cve] == nil {
						t.Fatalf("%s %s: in the parse, not in the file", pkg, cve)
					}
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func find(d *vulndb.FeedData, id string) *vulndb.Advisory {
	for i := range d.Advisories {
		if d.Advisories[i].ID == id {
			return &d.Advisories[i]
		}
	}
	return nil
}

func TestParseKnownEntries(t *testing.T) {
	dir := testutil.Fixture(t, secdbFixtures)
	// fixtures README: v3.10/main lists openssl fixes up to 1.1.1d-r0.
	d := parseFile(t, filepath.Join(dir, "v3.10", "main.yaml"))
	for _, cve := range []string{"CVE-2019-1547", "CVE-2019-1549", "CVE-2019-1563"} {
		a := find(d, "ALPINE-"+cve)
		if a == nil {
			t.Fatalf("%s missing", cve)
		}
		var openssl *vulndb.Affected
		for i := range a.Affected {
			if a.Affected[i].Package == "openssl" {
				openssl = &a.Affected[i]
			}
		}
		if openssl == nil || openssl.Status != vulndb.StatusFixed || fixedOf(*openssl) != "1.1.1d-r0" ||
			!reflect.DeepEqual(openssl.Ranges[0].Events, []vulndb.Event{{Introduced: "0"}, {Fixed: "1.1.1d-r0"}}) ||
			openssl.Ranges[0].Type != vulndb.RangeEcosystem {
			t.Fatalf("%s openssl: %+v", cve, openssl)
		}
		if !reflect.DeepEqual(a.Aliases, []string{cve}) {
			t.Fatalf("%s aliases %v", cve, a.Aliases)
		}
		if string(openssl.EcosystemSpecific) != `{"repo":"main"}` {
			t.Fatalf("ecosystem_specific %s", openssl.EcosystemSpecific)
		}
	}
	// v3.8/main: db lists Oracle Berkeley DB CVEs under "0": never affected.
	d = parseFile(t, filepath.Join(dir, "v3.8", "main.yaml"))
	a := find(d, "ALPINE-CVE-2016-0682")
	if a == nil || len(a.Affected) != 1 || a.Affected[0].Package != "db" ||
		a.Affected[0].Status != vulndb.StatusNotAffected || len(a.Affected[0].Ranges) != 0 {
		t.Fatalf("CVE-2016-0682: %+v", a)
	}
	// v3.4/main: irssi lists a fix under "0.8.21.r2", not an apk version.
	d = parseFile(t, filepath.Join(dir, "v3.4", "main.yaml"))
	if find(d, "ALPINE-CVE-2017-10965") != nil {
		t.Fatal("CVE-2017-10965 kept with an invalid version")
	}
	if len(d.Rejected) != 2 || d.Rejected[1].Error() != `feed alpine-secdb: record v3.4/main irssi 0.8.21.r2: fixed version "0.8.21.r2" is not an apk version` {
		t.Fatalf("rejected %v", d.Rejected)
	}
	// v3.9/main: ansible 2.7.3-r0 lists "CVE 2018-16859" (a space for the dash).
	d = parseFile(t, filepath.Join(dir, "v3.9", "main.yaml"))
	if a := find(d, "ALPINE-CVE-2018-16859"); a == nil || a.Affected[0].Package != "ansible" || fixedOf(a.Affected[0]) != "2.7.3-r0" {
		t.Fatalf("CVE-2018-16859: %+v", a)
	}
}

func TestParseXenAndTalosIdentifiers(t *testing.T) {
	dir := testutil.Fixture(t, secdbFixtures)
	var sawXSAOnly, sawAlias bool
	for _, path := range fixtureFiles(t) {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		d := parseFile(t, path)
		for _, a := range d.Advisories {
			if strings.HasPrefix(a.ID, "ALPINE-XSA-") {
				// Only entries with no CVE at all become XSA advisories.
				xsa := strings.TrimPrefix(a.ID, "ALPINE-")
				if !regexp.MustCompile(`(?m)^\s*- (CVE-\?+-\?+\s+)?` + xsa + `\s*$`).Match(raw) {
					t.Fatalf("%s: %s is an advisory, but the file has no entry of it alone", path, a.ID)
				}
				sawXSAOnly = true
			}
			if cveOf(a) != "" && len(a.Aliases) > 1 {
				sawAlias = true
			}
		}
	}
	if !sawXSAOnly || !sawAlias {
		t.Fatalf("xsa-only %v, cve+alias %v", sawXSAOnly, sawAlias)
	}
	// v3.11 main: xen lists "CVE-2017-8904 XSA-214" style pairs.
	d := parseFile(t, filepath.Join(dir, "v3.7", "main.yaml"))
	a := find(d, "ALPINE-CVE-2017-8904")
	if a == nil || !reflect.DeepEqual(a.Aliases, []string{"CVE-2017-8904", "XSA-214"}) {
		t.Fatalf("CVE-2017-8904: %+v", a)
	}
}

// yamlToJSON converts a secdb YAML document to the JSON layout the live
// feed serves, keeping every scalar as the text written (no YAML typing).
func yamlToJSON(t testing.TB, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(raw, &n); err != nil {
		t.Fatal(err)
	}
	var conv func(*yaml.Node) any
	conv = func(n *yaml.Node) any {
		switch n.Kind {
		case yaml.DocumentNode:
			return conv(n.Content[0])
		case yaml.MappingNode:
			m := map[string]any{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				m[n.Content[i].Value] = conv(n.Content[i+1])
			}
			return m
		case yaml.SequenceNode:
			l := []any{}
			for _, c := range n.Content {
				l = append(l, conv(c))
			}
			return l
		default:
			if n.Tag == "!!null" {
				return nil
			}
			return n.Value
		}
	}
	out, err := json.Marshal(conv(&n))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestJSONAndYAMLAgree(t *testing.T) {
	for _, path := range fixtureFiles(t) {
		y := parseFile(t, path)
		j, err := Parse(bytes.NewReader(yamlToJSON(t, path)), "alpine-secdb")
		if err != nil {
			t.Fatalf("%s as JSON: %v", path, err)
		}
		if !reflect.DeepEqual(y, j) {
			t.Fatalf("%s: JSON and YAML parses differ", path)
		}
	}
}

// liveLayout is a document in the layout secdb serves today (v3.20/main.json).
const liveLayout = `{
  "apkurl": "{{urlprefix}}/{{distroversion}}/{{reponame}}/{{arch}}/{{pkg.name}}-{{pkg.ver}}.apk",
  "archs": ["aarch64", "armhf", "armv7", "ppc64le", "riscv64", "s390x", "x86", "x86_64"],
  "reponame": "main",
  "urlprefix": "https://dl-cdn.alpinelinux.org/alpine",
  "distroversion": "v3.20",
  "packages": [
    {"pkg": {"name": "aom", "secfixes": {"3.1.1-r0": ["CVE-2021-30473", "CVE-2021-30474", "CVE-2021-30475"]}}},
    {"pkg": {"name": "busybox", "secfixes": {"0": ["CVE-2021-42373"], "1.36.1-r29": ["CVE-2023-42366"], "1.36.1-r27": ["CVE-2023-42363", "CVE-2023-42364"]}}},
    {"pkg": {"name": "zlib", "secfixes": {}}}
  ]
}`

func TestParseLiveJSONLayout(t *testing.T) {
	d, err := Parse(strings.NewReader(liveLayout), "alpine")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range d.Advisories {
		ids = append(ids, a.ID)
	}
	want := []string{"ALPINE-CVE-2021-30473", "ALPINE-CVE-2021-30474", "ALPINE-CVE-2021-30475", "ALPINE-CVE-2021-42373", "ALPINE-CVE-2023-42363", "ALPINE-CVE-2023-42364", "ALPINE-CVE-2023-42366"}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("ids = %v", ids)
	}
	a := find(d, "ALPINE-CVE-2021-42373")
	if a.Affected[0].Ecosystem != "Alpine:v3.20" || a.Affected[0].Status != vulndb.StatusNotAffected {
		t.Fatalf("%+v", a.Affected[0])
	}
	if a.References[0].URL != "https://security.alpinelinux.org/vuln/CVE-2021-42373" {
		t.Fatalf("references %+v", a.References)
	}
}

func TestParseBadInput(t *testing.T) {
	main310, err := os.ReadFile(filepath.Join(testutil.Fixture(t, secdbFixtures), "v3.10", "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	asJSON := yamlToJSON(t, filepath.Join(testutil.Fixture(t, secdbFixtures), "v3.10", "main.yaml"))
	for _, tc := range []struct {
		name string
		doc  []byte
	}{
		{"empty", nil},
		{"truncated json", asJSON[:len(asJSON)/2]},
		{"truncated yaml", append(main310[:len(main310)/2:len(main310)/2], []byte("\n  - pkg: [")...)},
		{"not secdb", []byte(`{"foo": 1}`)},
		{"packages not a list", []byte(`{"distroversion":"v3.20","reponame":"main","packages":{}}`)},
		{"yaml not a mapping", []byte("- a\n- b\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(bytes.NewReader(tc.doc), "alpine"); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestParseRejectsBadRecordsKeepsRest(t *testing.T) {
	doc := `{"distroversion":"v3.20","reponame":"main","packages":[
	  {"pkg":{"name":"good","secfixes":{"1.0-r1":["CVE-2024-0001"]}}},
	  {"pkg":{"name":"badversion","secfixes":{"1.0-r1-!!":["CVE-2024-0002"],"2.0-r0":["CVE-2024-0003"]}}},
	  {"pkg":{"name":"noid","secfixes":{"1.0-r0":["see upstream"]}}},
	  {"pkg":{"name":"badentries","secfixes":{"1.0-r0":"CVE-2024-0004"}}},
	  {"pkg":"not an object"},
	  {"pkg":{"secfixes":{"1.0-r0":["CVE-2024-0005"]}}}
	]}`
	d, err := Parse(strings.NewReader(doc), "alpine-edge")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range d.Advisories {
		ids = append(ids, a.ID)
	}
	if !reflect.DeepEqual(ids, []string{"ALPINE-CVE-2024-0001", "ALPINE-CVE-2024-0003"}) {
		t.Fatalf("kept %v", ids)
	}
	var records []string
	for _, r := range d.Rejected {
		if r.Feed != "alpine-edge" {
			t.Fatalf("feed %q", r.Feed)
		}
		records = append(records, r.Error())
	}
	sort.Strings(records)
	want := []string{
		"feed alpine-edge: record v3.20/main badentries 1.0-r0: json: cannot unmarshal string into Go value of type []string",
		"feed alpine-edge: record v3.20/main badversion 1.0-r1-!!:",
		"feed alpine-edge: record v3.20/main noid 1.0-r0: no vulnerability id in entry \"see upstream\"",
		"feed alpine-edge: record v3.20/main packages[4]:",
		"feed alpine-edge: record v3.20/main packages[5]: package without a name",
	}
	if len(records) != len(want) {
		t.Fatalf("rejected:\n%s", strings.Join(records, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(records[i], want[i]) {
			t.Fatalf("rejected[%d] = %q, want prefix %q", i, records[i], want[i])
		}
	}
}

func TestParseYAMLBadRecord(t *testing.T) {
	doc := "distroversion: v3.11\nreponame: main\npackages:\n" +
		"  - pkg:\n      name: ok\n      secfixes:\n        1.10-r0:\n          - CVE-2020-0001\n" +
		"  - pkg:\n      name: broken\n      secfixes: [1, 2]\n" +
		"  - pkg:\n      name: mixed\n      secfixes:\n        2.0-r0: CVE-2020-0002\n        2.1-r0:\n          - CVE-2020-0003\n"
	d, err := Parse(strings.NewReader(doc), "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Advisories) != 2 || len(d.Rejected) != 2 {
		t.Fatalf("advisories %d rejected %v", len(d.Advisories), d.Rejected)
	}
	// The unquoted 1.10-r0 stays as written.
	if got := fixedOf(find(d, "ALPINE-CVE-2020-0001").Affected[0]); got != "1.10-r0" {
		t.Fatalf("fixed %q", got)
	}
	if !strings.Contains(d.Rejected[0].Error(), "v3.11/main broken") {
		t.Fatalf("rejected %v", d.Rejected[0])
	}
}

func TestParseKeepsHigherFixOfTheSameCVE(t *testing.T) {
	doc := `{"distroversion":"v3.20","reponame":"main","packages":[
	  {"pkg":{"name":"p","secfixes":{"1.10-r0":["CVE-2024-1"],"1.9-r3":["CVE-2024-1"],"0":["CVE-2024-1"]}}}]}`
	d, err := Parse(strings.NewReader(doc), "a")
	if err != nil {
		t.Fatal(err)
	}
	// CVE-2024-1 is not a valid CVE number: it has fewer than 4 digits.
	if len(d.Advisories) != 0 || len(d.Rejected) != 3 {
		t.Fatalf("%+v", d)
	}
	doc = strings.ReplaceAll(doc, "CVE-2024-1", "CVE-2024-1000")
	d, err = Parse(strings.NewReader(doc), "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Advisories) != 1 || fixedOf(d.Advisories[0].Affected[0]) != "1.10-r0" {
		t.Fatalf("%+v", d.Advisories)
	}
}

// newClient returns a fetch client with quick retries.
func newClient() *fetch.Client {
	return fetch.New(fetch.Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Retries: 2})
}

// allCVEs reads every fixture file with the line scanner and returns the
// CVEs listed under at least one version that was not rejected.
func allCVEs(t testing.TB, rejected []vulndb.RecordError) map[string]bool {
	rej := map[string]bool{}
	for _, r := range rejected {
		rej[r.Record] = true
	}
	cves := map[string]bool{}
	for _, path := range fixtureFiles(t) {
		where := filepath.Base(filepath.Dir(path)) + "/" + strings.TrimSuffix(filepath.Base(path), ".yaml")
		for pkg, m := range scanYAML(t, path) {
			for cve, versions := range m {
				for _, v := range versions {
					if !rej[where+" "+pkg+" "+v] {
						cves[cve] = true
					}
				}
			}
		}
	}
	return cves
}

func TestFeedOverHTTPDiscoversReleases(t *testing.T) {
	var requests atomic.Int32
	fs := http.FileServer(http.Dir(testutil.Fixture(t, secdbFixtures)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fs.ServeHTTP(w, r)
	}))
	defer srv.Close()

	feed := New("alpine-secdb", srv.URL+"/", newClient())
	if feed.Name() != "alpine-secdb" {
		t.Fatal(feed.Name())
	}
	d, st, err := feed.Fetch(context.Background(), vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	ecosystems := map[string]bool{}
	gotCVEs := map[string]bool{}
	for _, a := range d.Advisories {
		if c := cveOf(a); c != "" {
			gotCVEs[c] = true
		}
		for _, aff := range a.Affected {
			ecosystems[aff.Ecosystem] = true
		}
	}
	var ecos []string
	for e := range ecosystems {
		ecos = append(ecos, e)
	}
	sort.Strings(ecos)
	want := []string{"Alpine:v3.10", "Alpine:v3.11", "Alpine:v3.3", "Alpine:v3.4", "Alpine:v3.5", "Alpine:v3.6", "Alpine:v3.7", "Alpine:v3.8", "Alpine:v3.9"}
	if !reflect.DeepEqual(ecos, want) {
		t.Fatalf("ecosystems %v", ecos)
	}
	if wantCVEs := allCVEs(t, d.Rejected); !reflect.DeepEqual(gotCVEs, wantCVEs) || len(gotCVEs) < 2400 {
		t.Fatalf("%d CVEs, the files list %d", len(gotCVEs), len(wantCVEs))
	}
	if len(d.Rejected) == 0 || len(d.Rejected) > 30 {
		t.Fatalf("%d rejected records", len(d.Rejected))
	}
	// The same CVE across releases is one advisory.
	a := find(d, "ALPINE-CVE-2019-1547")
	rels := map[string]bool{}
	for _, aff := range a.Affected {
		rels[aff.Ecosystem] = true
	}
	if !rels["Alpine:v3.10"] || !rels["Alpine:v3.11"] {
		t.Fatalf("CVE-2019-1547 releases %v", rels)
	}

	if _, _, err := feed.Fetch(context.Background(), st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("second fetch: %v", err)
	}
}

func TestFeedSingleDocumentAndFilters(t *testing.T) {
	dir := testutil.Fixture(t, secdbFixtures)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	ctx := context.Background()

	one := New("a", srv.URL+"/v3.10/main.yaml", newClient())
	d1, _, err := one.Fetch(ctx, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if want := parseFile(t, filepath.Join(dir, "v3.10", "main.yaml")); !reflect.DeepEqual(d1.Advisories, relabel(want.Advisories, "a")) {
		t.Fatal("single-document feed differs from Parse of the file")
	}

	filtered := New("a", srv.URL, newClient(), WithReleases("v3.10"), WithRepos("main"))
	d2, _, err := filtered.Fetch(ctx, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d1, d2) {
		t.Fatal("v3.10/main via the base differs from the document itself")
	}

	// The same from a local directory, for air-gapped sites, and a file URL.
	local, _, err := New("a", dir, newClient(), WithReleases("v3.10"), WithRepos("main")).Fetch(ctx, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d1, local) {
		t.Fatal("local directory differs")
	}
	fileURL, _, err := New("a", "file://"+filepath.Join(dir, "v3.10", "main.yaml"), newClient()).Fetch(ctx, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d1, fileURL) {
		t.Fatal("file URL differs")
	}
}

func relabel(as []vulndb.Advisory, source string) []vulndb.Advisory {
	for i := range as {
		as[i].Source = source
	}
	return as
}

func TestFeedServerErrorFailsWholeFeed(t *testing.T) {
	fs := http.FileServer(http.Dir(testutil.Fixture(t, secdbFixtures)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v3.9/") {
			http.Error(w, "broken", http.StatusInternalServerError)
			return
		}
		fs.ServeHTTP(w, r)
	}))
	defer srv.Close()
	_, _, err := New("alpine-secdb", srv.URL, newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "alpine-secdb") || !strings.Contains(err.Error(), "/v3.9/main.json") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("err = %v", err)
	}
}

func TestFeedTruncatedDocumentFailsWholeFeed(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "v3.11"), 0o755); err != nil {
		t.Fatal(err)
	}
	j := yamlToJSON(t, filepath.Join(testutil.Fixture(t, secdbFixtures), "v3.11", "main.yaml"))
	if err := os.WriteFile(filepath.Join(dir, "v3.11", "main.json"), j[:len(j)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := New("alpine", dir, newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "main.json") {
		t.Fatalf("err = %v", err)
	}
}

func TestFeedEmptyBase(t *testing.T) {
	_, _, err := New("alpine", t.TempDir(), newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "no releases") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, path := range fixtureFiles(f) {
		raw, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if len(raw) < 20000 {
			f.Add(raw)
		}
	}
	f.Add([]byte(liveLayout))
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(bytes.NewReader(doc), "fuzz")
		if err != nil {
			return
		}
		for _, a := range d.Advisories {
			if !strings.HasPrefix(a.ID, IDPrefix) || len(a.Affected) == 0 {
				t.Fatalf("advisory %+v", a)
			}
			for _, aff := range a.Affected {
				if aff.Status == vulndb.StatusFixed && fixedOf(aff) == "" {
					t.Fatalf("fixed without version: %+v", aff)
				}
			}
		}
	})
}

func BenchmarkParseYAML(b *testing.B) {
	path := filepath.Join(testutil.Fixture(b, secdbFixtures), "v3.11", "main.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw), "a"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseJSON(b *testing.B) {
	raw := yamlToJSON(b, filepath.Join(testutil.Fixture(b, secdbFixtures), "v3.11", "main.yaml"))
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw), "a"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchAllReleases fetches and merges all 18 fixture documents
// over a local HTTP server.
func BenchmarkFetchAllReleases(b *testing.B) {
	srv := httptest.NewServer(http.FileServer(http.Dir(testutil.Fixture(b, secdbFixtures))))
	defer srv.Close()
	feed := New("a", srv.URL, newClient())
	n := 0
	for b.Loop() {
		d, _, err := feed.Fetch(context.Background(), vulndb.FetchState{})
		if err != nil {
			b.Fatal(err)
		}
		n = len(d.Advisories)
	}
	b.ReportMetric(float64(n), "advisories")
}
