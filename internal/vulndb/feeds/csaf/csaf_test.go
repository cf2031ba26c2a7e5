package csaf

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/osv-scalibr/semantic"
	"github.com/klauspost/compress/zstd"
	"github.com/package-url/packageurl-go"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

const (
	vexFile  = "feeds/redhat/cve-2023-38545.json"
	rhsaOld  = "feeds/redhat/rhsa-2022-0011.json"
	rhsaRuby = "feeds/redhat/rhsa-2024_1431.json"
	feedName = "redhat-csaf"
)

func read(t testing.TB, rel string) []byte {
	raw, err := os.ReadFile(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func parse(t testing.TB, raw []byte) *vulndb.FeedData {
	d, err := Parse(bytes.NewReader(raw), feedName)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func find(t *testing.T, a vulndb.Advisory, eco, pkg string, status vulndb.Status) vulndb.Affected {
	t.Helper()
	for _, x := range a.Affected {
		if x.Ecosystem == eco && x.Package == pkg && x.Status == status {
			return x
		}
	}
	t.Fatalf("%s: no %s %s %s", a.ID, eco, pkg, status)
	return vulndb.Affected{}
}

func fixed(x vulndb.Affected) string {
	if len(x.Ranges) == 0 {
		return ""
	}
	return x.Ranges[0].Events[1].Fixed
}

type spec struct {
	CPEs   []string `json:"cpes"`
	Module string   `json:"module"`
	Errata []string `json:"errata"`
}

func specOf(x vulndb.Affected) spec {
	var s spec
	json.Unmarshal(x.EcosystemSpecific, &s)
	return s
}

// generic is the fixture read as plain maps: the independent reading.
type generic struct {
	products map[string]map[string]any // product id → product
	rels     map[string][2]string
	vulns    []map[string]any
}

func readGeneric(t *testing.T, raw []byte) generic {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	g := generic{products: map[string]map[string]any{}, rels: map[string][2]string{}}
	tree := doc["product_tree"].(map[string]any)
	var walk func([]any)
	walk = func(bs []any) {
		for _, b := range bs {
			b := b.(map[string]any)
			if p, ok := b["product"].(map[string]any); ok {
				g.products[p["product_id"].(string)] = p
			}
			if sub, ok := b["branches"].([]any); ok {
				walk(sub)
			}
		}
	}
	walk(tree["branches"].([]any))
	for _, r := range tree["relationships"].([]any) {
		r := r.(map[string]any)
		id := r["full_product_name"].(map[string]any)["product_id"].(string)
		g.rels[id] = [2]string{r["product_reference"].(string), r["relates_to_product_reference"].(string)}
	}
	for _, v := range doc["vulnerabilities"].([]any) {
		g.vulns = append(g.vulns, v.(map[string]any))
	}
	return g
}

func (g generic) helper(id, key string) string {
	h, _ := g.products[id]["product_identification_helper"].(map[string]any)
	s, _ := h[key].(string)
	return s
}

// TestVEXFixedSourcesAgainstGenericReading checks every fixed source RPM
// of the VEX file, read with plain maps, against the parse: its package
// exists as fixed, at that version or a later one from another platform
// of the same release, with the platform's CPE listed.
func TestVEXFixedSourcesAgainstGenericReading(t *testing.T) {
	raw := read(t, vexFile)
	g := readGeneric(t, raw)
	d := parse(t, raw)
	if len(d.Advisories) != 1 || len(d.Rejected) != 0 {
		t.Fatalf("%d advisories, rejected %v", len(d.Advisories), d.Rejected)
	}
	a := d.Advisories[0]
	checked := 0
	for _, pid := range g.vulns[0]["product_status"].(map[string]any)["fixed"].([]any) {
		rel := g.rels[pid.(string)]
		purl, err := packageurl.FromString(g.helper(rel[0], "purl"))
		if err != nil || purl.Qualifiers.Map()["arch"] != "src" {
			continue
		}
		cpe := g.helper(rel[1], "cpe")
		epoch := purl.Qualifiers.Map()["epoch"]
		if epoch == "" {
			epoch = "0"
		}
		evr := epoch + ":" + purl.Version
		found := false
		for _, x := range a.Affected {
			if x.Package != purl.Name || x.Status != vulndb.StatusFixed || !contains(specOf(x).CPEs, cpe) {
				continue
			}
			c, err := semantic.ParseRedHatVersion(fixed(x)).CompareStr(evr)
			if err != nil || c < 0 {
				t.Fatalf("%s on %s: fixed %s below the document's %s", purl.Name, cpe, fixed(x), evr)
			}
			found = true
		}
		if !found {
			t.Fatalf("%s %s on %s: not in the parse", purl.Name, evr, cpe)
		}
		checked++
	}
	if checked < 15 {
		t.Fatalf("only %d fixed source RPMs checked", checked)
	}
}

func TestVEXKnownValues(t *testing.T) {
	d := parse(t, read(t, vexFile))
	a := d.Advisories[0]
	if a.ID != "CVE-2023-38545" || a.Source != feedName || a.Summary != "curl: heap based buffer overflow in the SOCKS5 proxy handshake" ||
		!strings.HasPrefix(a.Details, "A heap-based buffer overflow flaw was found in the SOCKS5 proxy handshake") {
		t.Fatalf("%s %q", a.ID, a.Summary)
	}
	if !a.Published.Equal(time.Date(2023, 10, 11, 0, 0, 0, 0, time.UTC)) || !a.Modified.Equal(time.Date(2025, 11, 21, 14, 31, 32, 0, time.UTC)) {
		t.Fatalf("published %v modified %v", a.Published, a.Modified)
	}
	wantSev := []vulndb.Severity{
		{Type: "VENDOR", Score: "important", Source: "redhat"},
		{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H", BaseScore: 8.1, Source: "redhat"},
	}
	if !reflect.DeepEqual(a.Severity, wantSev) {
		t.Fatalf("severity %+v", a.Severity)
	}
	// RHEL 9 main stream: fixed in RHSA-2023:6745 (9.3); the 9.2 EUS build
	// on the same CPE is older and yields.
	c9 := find(t, a, "Red Hat:9", "curl", vulndb.StatusFixed)
	if fixed(c9) != "0:7.76.1-26.el9_3.2" || c9.VendorSeverity != "important" || !contains(c9.BinaryNames, "libcurl-minimal") ||
		!contains(specOf(c9).Errata, "RHSA-2023:6745") || !contains(specOf(c9).CPEs, "cpe:/o:redhat:enterprise_linux:9::baseos") {
		t.Fatalf("RHEL 9 curl %+v %s", c9, c9.EcosystemSpecific)
	}
	// RHEL 9.0 EUS is its own ecosystem.
	c90 := find(t, a, "Red Hat:9.0", "curl", vulndb.StatusFixed)
	if fixed(c90) != "0:7.76.1-14.el9_0.9" || !reflect.DeepEqual(specOf(c90).Errata, []string{"RHSA-2023:5700"}) {
		t.Fatalf("RHEL 9.0 curl %+v", c90)
	}
	// RHEL 6, 7 and 8 ship a curl that is not affected.
	for _, eco := range []string{"Red Hat:6", "Red Hat:7", "Red Hat:8"} {
		x := find(t, a, eco, "curl", vulndb.StatusNotAffected)
		if len(x.Ranges) != 0 || !contains(x.BinaryNames, "libcurl") {
			t.Fatalf("%s curl %+v", eco, x)
		}
	}
	// Layered products: JBoss Core Services on RHEL 7.
	j := find(t, a, "Red Hat:7", "jbcs-httpd24-curl", vulndb.StatusFixed)
	if fixed(j) != "0:8.4.0-2.el7jbcs" || !reflect.DeepEqual(specOf(j).Errata, []string{"RHSA-2023:7625"}) {
		t.Fatalf("jbcs %+v", j)
	}
	for _, r := range []string{"RHSA-2023:5700", "RHSA-2023:5763", "RHSA-2023:6745", "RHSA-2023:7625", "RHSA-2023:7626", "RHSA-2024:0797", "RHSA-2024:2011"} {
		if !contains(a.Related, r) {
			t.Fatalf("related %v lacks %s", a.Related, r)
		}
	}
}

// TestVEXUnfixedAndWillNotFix moves RHEL 7 and 8 curl of a copy of the
// VEX file from known_not_affected to known_affected, with the two
// remediations Red Hat uses for those states.
func TestVEXUnfixedAndWillNotFix(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(read(t, vexFile), &doc); err != nil {
		t.Fatal(err)
	}
	v := doc["vulnerabilities"].([]any)[0].(map[string]any)
	st := v["product_status"].(map[string]any)
	var keep, rhel7, rhel8 []any
	for _, p := range st["known_not_affected"].([]any) {
		switch {
		case strings.HasPrefix(p.(string), "red_hat_enterprise_linux_7:"):
			rhel7 = append(rhel7, p)
		case strings.HasPrefix(p.(string), "red_hat_enterprise_linux_8:"):
			rhel8 = append(rhel8, p)
		default:
			keep = append(keep, p)
		}
	}
	if len(rhel7) == 0 || len(rhel8) == 0 {
		t.Fatal("fixture changed")
	}
	st["known_not_affected"] = keep
	st["known_affected"] = append(append([]any{}, rhel7...), rhel8...)
	v["remediations"] = append(v["remediations"].([]any),
		map[string]any{"category": "no_fix_planned", "details": "Will not fix", "product_ids": rhel7},
		map[string]any{"category": "none_available", "details": "Affected", "product_ids": rhel8})
	raw, _ := json.Marshal(doc)
	a := parse(t, raw).Advisories[0]
	if x := find(t, a, "Red Hat:7", "curl", vulndb.StatusWillNotFix); len(x.Ranges) != 0 {
		t.Fatalf("%+v", x)
	}
	if x := find(t, a, "Red Hat:8", "curl", vulndb.StatusUnfixed); !contains(x.BinaryNames, "libcurl-minimal") {
		t.Fatalf("%+v", x)
	}
	find(t, a, "Red Hat:6", "curl", vulndb.StatusNotAffected)
}

func TestRHSAModuleStream(t *testing.T) {
	raw := read(t, rhsaRuby)
	d := parse(t, raw)
	if len(d.Advisories) != 1 || len(d.Rejected) != 0 {
		t.Fatalf("%+v", d.Rejected)
	}
	a := d.Advisories[0]
	g := readGeneric(t, raw)
	var cves []string
	for _, v := range g.vulns {
		cves = append(cves, v["cve"].(string))
	}
	if a.ID != "RHSA-2024:1431" || !reflect.DeepEqual(a.Aliases, cves) || len(cves) != 4 {
		t.Fatalf("%s aliases %v, document %v", a.ID, a.Aliases, cves)
	}
	if a.Severity[0] != (vulndb.Severity{Type: "VENDOR", Score: "moderate", Source: "redhat"}) {
		t.Fatalf("%+v", a.Severity)
	}
	r := find(t, a, "Red Hat:8", "ruby", vulndb.StatusFixed)
	if fixed(r) != "0:3.1.4-142.module+el8.9.0+21471+7d1e4a35" || specOf(r).Module != "ruby:3.1" || !contains(r.BinaryNames, "ruby-libs") {
		t.Fatalf("ruby %+v %s", r, r.EcosystemSpecific)
	}
	for _, x := range a.Affected {
		if specOf(x).Module != "ruby:3.1" || x.Status != vulndb.StatusFixed {
			t.Fatalf("%s: %s", x.Package, x.EcosystemSpecific)
		}
	}
}

func TestRHSAWithoutPURLs(t *testing.T) {
	// RHSA-2022:0011 predates purls in the product tree: RPMs are named by
	// NEVRA only, on the AUS, E4S and TUS streams of RHEL 7.6.
	a := parse(t, read(t, rhsaOld)).Advisories[0]
	if a.ID != "RHSA-2022:0011" || !reflect.DeepEqual(a.Aliases, []string{"CVE-2020-10188"}) {
		t.Fatalf("%s %v", a.ID, a.Aliases)
	}
	if len(a.Affected) != 1 {
		t.Fatalf("%d affected", len(a.Affected))
	}
	x := a.Affected[0]
	if x.Ecosystem != "Red Hat:7.6" || x.Package != "telnet" || fixed(x) != "1:0.17-65.el7_6" ||
		!reflect.DeepEqual(x.BinaryNames, []string{"telnet", "telnet-debuginfo", "telnet-server"}) || x.VendorSeverity != "important" ||
		len(specOf(x).CPEs) != 3 {
		t.Fatalf("%+v %s", x, x.EcosystemSpecific)
	}
}

func TestParseBadInput(t *testing.T) {
	raw := read(t, rhsaOld)
	for name, doc := range map[string]string{
		"truncated":   string(raw[:len(raw)/2]),
		"empty":       "",
		"not csaf":    `{"document": {"category": "csaf_base", "tracking": {"id": "X"}}}`,
		"no id":       `{"document": {"category": "csaf_vex", "tracking": {}}}`,
		"rhsa bad id": `{"document": {"category": "csaf_security_advisory", "tracking": {"id": "CVE-2020-1"}}}`,
	} {
		if _, err := Parse(strings.NewReader(doc), feedName); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A vulnerability with a bad CVE id and a status naming a product the
	// tree lacks are rejected; the rest is kept.
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	vulns := doc["vulnerabilities"].([]any)
	v := vulns[0].(map[string]any)
	st := v["product_status"].(map[string]any)
	st["fixed"] = append(st["fixed"].([]any), "7Server-7.6.AUS:missing-0:1-1.el7.x86_64")
	doc["product_tree"].(map[string]any)["relationships"] = append(doc["product_tree"].(map[string]any)["relationships"].([]any),
		map[string]any{"category": "default_component_of", "product_reference": "missing-0:1-1.el7.x86_64", "relates_to_product_reference": "7Server-7.6.AUS",
			"full_product_name": map[string]any{"name": "x", "product_id": "7Server-7.6.AUS:missing-0:1-1.el7.x86_64"}})
	doc["vulnerabilities"] = append(vulns, map[string]any{"cve": "CVE-nope"}, "not an object")
	b, _ := json.Marshal(doc)
	d := parse(t, b)
	if len(d.Advisories) != 1 || len(d.Advisories[0].Affected) != 1 {
		t.Fatalf("%+v", d.Advisories)
	}
	var recs []string
	for _, r := range d.Rejected {
		recs = append(recs, r.Record)
	}
	want := []string{"RHSA-2022:0011 vulnerabilities[1]", "RHSA-2022:0011 vulnerabilities[2]", "CVE-2020-10188 7Server-7.6.AUS:missing-0:1-1.el7.x86_64"}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("rejected %v", d.Rejected)
	}
}

func TestEcosystem(t *testing.T) {
	for cpe, want := range map[string]string{
		"cpe:/o:redhat:enterprise_linux:9::baseos":    "Red Hat:9",
		"cpe:/a:redhat:enterprise_linux:8::appstream": "Red Hat:8",
		"cpe:/o:redhat:enterprise_linux:6":            "Red Hat:6",
		"cpe:/a:redhat:rhel_eus:9.0::appstream":       "Red Hat:9.0",
		"cpe:/o:redhat:rhel_aus:7.6::server":          "Red Hat:7.6",
		"cpe:/a:redhat:jboss_core_services:1::el8":    "Red Hat:8",
		"cpe:/a:redhat:rhel_satellite_client:6::el7":  "Red Hat:7",
		"cpe:/a:redhat:jboss_core_services:1":         "",
		"cpe:/a:redhat:openshift:4.14::el9":           "Red Hat:9",
		"cpe:/a:other:enterprise_linux:9":             "",
	} {
		got, ok := ecosystem(cpe)
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", cpe, got, ok, want)
		}
	}
}

func newClient() *fetch.Client {
	return fetch.New(fetch.Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Retries: 2})
}

func TestFeedSingleAndDirectory(t *testing.T) {
	dir := filepath.Dir(testutil.Fixture(t, vexFile))
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	ctx := context.Background()
	d, st, err := New(feedName, srv.URL+"/cve-2023-38545.json", newClient()).Fetch(ctx, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(d, parse(t, read(t, vexFile))) {
		t.Fatal("single document over HTTP differs from Parse")
	}
	if _, _, err := New(feedName, srv.URL+"/cve-2023-38545.json", newClient()).Fetch(ctx, st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("second fetch: %v", err)
	}
	// A local directory holds the three documents; the cvemap XML beside
	// them is not CSAF and is not read.
	d, _, err = New(feedName, dir, newClient()).Fetch(ctx, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range d.Advisories {
		ids = append(ids, a.ID)
	}
	if !reflect.DeepEqual(ids, []string{"CVE-2023-38545", "RHSA-2022:0011", "RHSA-2024:1431"}) {
		t.Fatalf("ids %v", ids)
	}
}

// vexServer serves Red Hat's VEX directory layout: archive_latest.txt, a
// tar.zst of documents, changes.csv and deletions.csv.
func vexServer(t *testing.T, archive map[string][]byte, changed map[string][]byte, changes, deletions string) *httptest.Server {
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(zw)
	for name, body := range archive {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	zw.Close()
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := strings.TrimPrefix(r.URL.Path, "/vex/"); p {
		case "archive_latest.txt":
			fmt.Fprintln(w, "csaf_vex_2025-11-22.tar.zst")
		case "csaf_vex_2025-11-22.tar.zst":
			w.Write(buf.Bytes())
		case "changes.csv":
			w.Write([]byte(changes))
		case "deletions.csv":
			w.Write([]byte(deletions))
		default:
			if b, ok := changed[p]; ok {
				w.Write(b)
				return
			}
			http.NotFound(w, r)
		}
	}))
}

func TestFeedArchiveChangesAndDeletions(t *testing.T) {
	vex := read(t, vexFile)
	// A second document, made from a copy of the real one, that
	// deletions.csv removes; and a newer version of the first that
	// changes.csv lists after the archive's date.
	other := bytes.ReplaceAll(vex, []byte("CVE-2023-38545"), []byte("CVE-2023-99999"))
	newer := bytes.ReplaceAll(vex, []byte("7.76.1-26.el9_3.2"), []byte("7.76.1-26.el9_3.3"))
	srv := vexServer(t,
		map[string][]byte{"2023/cve-2023-38545.json": vex, "./2023/cve-2023-99999.json": other, "index.txt": []byte("x")},
		map[string][]byte{"2023/cve-2023-38545.json": newer},
		"\"2023/cve-2023-38545.json\",\"2025-11-23T10:00:00+00:00\"\n\"2023/cve-2023-99999.json\",\"2025-11-01T10:00:00+00:00\"\n",
		"\"2023/cve-2023-99999.json\",\"2025-11-23T11:00:00+00:00\"\n")
	defer srv.Close()
	feed := New(feedName, srv.URL+"/vex/", newClient())
	d, st, err := feed.Fetch(context.Background(), vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Advisories) != 1 || d.Advisories[0].ID != "CVE-2023-38545" {
		t.Fatalf("%d advisories", len(d.Advisories))
	}
	if got := fixed(find(t, d.Advisories[0], "Red Hat:9", "curl", vulndb.StatusFixed)); got != "0:7.76.1-26.el9_3.3" {
		t.Fatalf("the change after the archive was not applied: %s", got)
	}
	if _, _, err := feed.Fetch(context.Background(), st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("second fetch: %v", err)
	}
}

func TestFeedArchiveErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bad/archive_latest.txt":
			fmt.Fprintln(w, "../../etc/passwd")
		case "/corrupt/archive_latest.txt":
			fmt.Fprintln(w, "csaf_vex_2025-11-22.tar.zst")
		case "/corrupt/csaf_vex_2025-11-22.tar.zst":
			w.Write([]byte("not zstd at all"))
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for dir, want := range map[string]string{"bad": "not a csaf_vex_DATE.tar.zst", "corrupt": "csaf_vex_2025-11-22.tar.zst", "down": "503"} {
		_, _, err := New(feedName, srv.URL+"/"+dir+"/", newClient()).Fetch(context.Background(), vulndb.FetchState{})
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), feedName) {
			t.Errorf("%s: err = %v", dir, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(read(f, rhsaOld))
	f.Add([]byte(`{"document":{"category":"csaf_vex","tracking":{"id":"CVE-2020-0001"}},"vulnerabilities":[{"cve":"CVE-2020-0001","product_status":{"fixed":["a:b"]}}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(bytes.NewReader(doc), "fuzz")
		if err != nil {
			return
		}
		for _, a := range d.Advisories {
			for _, x := range a.Affected {
				if !strings.HasPrefix(x.Ecosystem, EcosystemPrefix) || x.Package == "" || (x.Status == vulndb.StatusFixed) != (len(x.Ranges) == 1) {
					t.Fatalf("%+v", x)
				}
			}
		}
	})
}

func BenchmarkParseVEX(b *testing.B) {
	raw := read(b, vexFile)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw), feedName); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRHSA(b *testing.B) {
	raw := read(b, rhsaRuby)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw), feedName); err != nil {
			b.Fatal(err)
		}
	}
}
