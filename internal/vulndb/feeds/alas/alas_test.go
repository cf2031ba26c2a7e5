package alas

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

const fixtures = "feeds/amazon/vuln-list-update"

// golden is the per-ALAS JSON that vuln-list-update writes from the same
// updateinfo: the independent truth.
type golden struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Issued   struct{ Date string }
	Updated  struct{ Date string }
	Severity string `json:"severity"`
	Desc     string `json:"description"`
	Packages []struct {
		Name, Epoch, Version, Release, Arch string
	} `json:"packages"`
	CVEIDs []string `json:"cveids"`
}

func readGolden(t testing.TB, id string) golden {
	raw, err := os.ReadFile(filepath.Join(testutil.Fixture(t, fixtures), id+".json.golden"))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func gunzip(t testing.TB, name string) []byte {
	f, err := os.Open(filepath.Join(testutil.Fixture(t, fixtures), "fixtures", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil && name != "updateinfo_invalid.xml.gz" {
		t.Fatal(err)
	}
	return raw
}

func parseFixture(t testing.TB, name, release string) *vulndb.FeedData {
	d, err := Parse(bytes.NewReader(gunzip(t, name)), "alas", release)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

func TestParseAgainstGoldens(t *testing.T) {
	for _, tc := range []struct {
		file, release string
		ids           []string
	}{
		{"updateinfo_1_item.xml.gz", "2", []string{"ALAS2-2018-939"}},
		{"updateinfo_2_items.xml.gz", "2", []string{"ALAS2-2018-942", "ALAS2-2018-949"}},
		{"updateinfo_AL2022.xml.gz", "2022", []string{"ALAS2022-2021-001"}},
		{"updateinfo_AL2023.xml.gz", "2023", []string{"ALAS2023-2023-001"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			// The release given, and the release read from the collection,
			// give the same result.
			d := parseFixture(t, tc.file, tc.release)
			if inferred := parseFixture(t, tc.file, ""); !reflect.DeepEqual(d, inferred) {
				t.Fatal("release from the collection differs from the release given")
			}
			if len(d.Rejected) != 0 || len(d.Advisories) != len(tc.ids) {
				t.Fatalf("%d advisories, rejected %v", len(d.Advisories), d.Rejected)
			}
			for i, id := range tc.ids {
				checkGolden(t, d.Advisories[i], readGolden(t, id), tc.release)
			}
		})
	}
}

func checkGolden(t *testing.T, a vulndb.Advisory, g golden, release string) {
	t.Helper()
	if a.ID != g.ID || a.Summary != g.Title || a.Details != strings.TrimSpace(g.Desc) {
		t.Fatalf("%s: id/summary/details differ", g.ID)
	}
	issued, _ := time.Parse("2006-01-02 15:04", g.Issued.Date)
	updated, _ := time.Parse("2006-01-02 15:04", g.Updated.Date)
	if !a.Published.Equal(issued) || !a.Modified.Equal(updated) || issued.IsZero() {
		t.Fatalf("%s: published %v modified %v, golden %s %s", g.ID, a.Published, a.Modified, g.Issued.Date, g.Updated.Date)
	}
	sev := strings.ToLower(g.Severity)
	if !reflect.DeepEqual(a.Severity, []vulndb.Severity{{Type: "VENDOR", Score: sev, Source: "amazon"}}) {
		t.Fatalf("%s: severity %+v", g.ID, a.Severity)
	}
	if !reflect.DeepEqual(a.Aliases, g.CVEIDs) {
		t.Fatalf("%s: aliases %v, golden %v", g.ID, a.Aliases, g.CVEIDs)
	}
	want := map[string]string{}
	arches := map[string][]string{}
	for _, p := range g.Packages {
		want[p.Name] = p.Epoch + ":" + p.Version + "-" + p.Release
		arches[p.Name] = append(arches[p.Name], p.Arch)
	}
	if len(a.Affected) != len(want) {
		t.Fatalf("%s: %d affected, golden has %d package names", g.ID, len(a.Affected), len(want))
	}
	for _, aff := range a.Affected {
		if aff.Ecosystem != "Amazon Linux:"+release || aff.Status != vulndb.StatusFixed || aff.VendorSeverity != sev ||
			!reflect.DeepEqual(aff.BinaryNames, []string{aff.Package}) {
			t.Fatalf("%s %s: %+v", g.ID, aff.Package, aff)
		}
		ev := aff.Ranges[0].Events
		if aff.Ranges[0].Type != "ECOSYSTEM" || len(ev) != 2 || ev[0].Introduced != "0" || ev[1].Fixed != want[aff.Package] {
			t.Fatalf("%s %s: range %+v, golden fixed %q", g.ID, aff.Package, aff.Ranges, want[aff.Package])
		}
		sort.Strings(arches[aff.Package])
		var spec struct{ Arches []string }
		json.Unmarshal(aff.EcosystemSpecific, &spec)
		if !reflect.DeepEqual(spec.Arches, arches[aff.Package]) {
			t.Fatalf("%s %s: arches %v, golden %v", g.ID, aff.Package, spec.Arches, arches[aff.Package])
		}
	}
}

func TestAdvisoryPage(t *testing.T) {
	// The ALAS pages, as the RSS feeds in feeds/amazon/vunnel-input link them.
	for id, want := range map[string]string{
		"ALAS2-2018-939":    "https://alas.aws.amazon.com/AL2/ALAS-2018-939.html",
		"ALAS2023-2023-126": "https://alas.aws.amazon.com/AL2023/ALAS-2023-126.html",
		"ALAS2022-2021-001": "https://alas.aws.amazon.com/AL2022/ALAS-2021-001.html",
	} {
		if got := advisoryPage(id); got != want {
			t.Errorf("%s: %s", id, got)
		}
	}
	rss, err := os.ReadFile(testutil.Fixture(t, "feeds/amazon/vunnel-input/2023_rss.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rss, []byte("<link>"+advisoryPage("ALAS2023-2023-126")+"</link>")) {
		t.Fatal("the AL2023 RSS does not link the page advisoryPage names")
	}
}

func TestParseTruncated(t *testing.T) {
	// updateinfo_invalid.xml.gz is updateinfo_1_item cut before </updates>.
	_, err := Parse(bytes.NewReader(gunzip(t, "updateinfo_invalid.xml.gz")), "alas", "2")
	if err == nil || !strings.Contains(err.Error(), "updateinfo") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseBadInput(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":      "",
		"not xml":    "{}",
		"wrong root": `<repomd><data/></repomd>`,
		"unclosed":   `<updates><update type="security"><id>ALAS2-2018-939</id>`,
	} {
		if _, err := Parse(strings.NewReader(doc), "alas", "2"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	doc := `<updates>
	 <update type="security"><id>ALAS2-2020-1</id><issued date="2020-01-01 00:00"/><severity>low</severity>
	  <pkglist><collection short="amazon-linux-2">
	   <package name="good" epoch="0" version="1.0" release="1.amzn2" arch="x86_64"/>
	   <package name="badepoch" epoch="x" version="1.0" release="1.amzn2" arch="x86_64"/>
	   <package name="badversion" epoch="0" version="1.0 beta" release="1" arch="x86_64"/>
	   <package name="good" epoch="1" version="0.5" release="1.amzn2" arch="aarch64"/>
	   <package name="good" epoch="0" version="1.0" release="1.amzn2" arch="src"/>
	  </collection></pkglist></update>
	 <update type="security"><id>not-an-id</id></update>
	 <update type="security"><id>ALAS2-2020-3</id><issued date="yesterday"/></update>
	 <update type="security"><id>ALAS2-2020-4</id><pkglist><collection short="amazon-linux-2"><package name="x" version="" release="1" arch="x86_64"/></collection></pkglist></update>
	 <update type="bugfix"><id>ALBA-2020-5</id></update>
	</updates>`
	d, err := Parse(strings.NewReader(doc), "alas-al2", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Advisories) != 1 {
		t.Fatalf("advisories %+v", d.Advisories)
	}
	a := d.Advisories[0]
	// The higher of the two "good" versions (epoch 1 wins) is the fix.
	if len(a.Affected) != 1 || a.Affected[0].Ranges[0].Events[1].Fixed != "1:0.5-1.amzn2" || a.Affected[0].Ecosystem != "Amazon Linux:2" {
		t.Fatalf("%+v", a.Affected)
	}
	var got []string
	for _, r := range d.Rejected {
		if r.Feed != "alas-al2" {
			t.Fatalf("feed %q", r.Feed)
		}
		got = append(got, r.Record)
	}
	want := []string{"ALAS2-2020-1 badepoch.x86_64", "ALAS2-2020-1 badversion.x86_64", "not-an-id", "ALAS2-2020-3", "ALAS2-2020-4 x.x86_64", "ALAS2-2020-4"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rejected %v", d.Rejected)
	}
}

func newClient() *fetch.Client {
	return fetch.New(fetch.Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Retries: 2})
}

// repo serves a yum repository over HTTP: mirror.list, repomd.xml and the
// real updateinfo fixture.
func repo(t *testing.T, updateinfo string, repomd func(base string) string) *httptest.Server {
	raw, err := os.ReadFile(filepath.Join(testutil.Fixture(t, fixtures), "fixtures", updateinfo))
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/al2023/core/mirrors/latest/x86_64/mirror.list":
			fmt.Fprintf(w, "%s/al2023/core/guids/abc123/x86_64/\n", srv.URL)
		case "/al2023/core/guids/abc123/x86_64/repodata/repomd.xml":
			io.WriteString(w, repomd(srv.URL))
		case "/al2023/core/guids/abc123/x86_64/repodata/updateinfo.xml.gz":
			http.ServeContent(w, r, "updateinfo.xml.gz", time.Date(2023, 2, 23, 0, 0, 0, 0, time.UTC), bytes.NewReader(raw))
		default:
			http.NotFound(w, r)
		}
	}))
	return srv
}

// repomdFor writes a repomd.xml in the layout of the real one
// (repomd_valid.xml) whose updateinfo entry carries the given
// open-checksum.
func repomdFor(t *testing.T, openSum string) func(string) string {
	valid, err := os.ReadFile(filepath.Join(testutil.Fixture(t, fixtures), "fixtures", "repomd_valid.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return func(string) string {
		const old = "d00ca5a4fa4b40ea884c4510c76194c4b13da46fdf5863bcc81615efd7b1eafa"
		if !bytes.Contains(valid, []byte(old)) {
			t.Fatal("repomd_valid.xml changed")
		}
		return strings.Replace(string(valid), old, openSum, 1)
	}
}

func TestFeedThroughMirrorList(t *testing.T) {
	content := gunzip(t, "updateinfo_AL2023.xml.gz")
	sum := sha256.Sum256(content)
	srv := repo(t, "updateinfo_AL2023.xml.gz", repomdFor(t, hex.EncodeToString(sum[:])))
	defer srv.Close()
	feed := New("alas-al2023", "2023", srv.URL+"/al2023/core/mirrors/latest/x86_64/mirror.list", newClient())
	d, st, err := feed.Fetch(context.Background(), vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Advisories) != 1 {
		t.Fatalf("%d advisories", len(d.Advisories))
	}
	checkGolden(t, d.Advisories[0], readGolden(t, "ALAS2023-2023-001"), "2023")
	if d.Advisories[0].Source != "alas-al2023" {
		t.Fatal(d.Advisories[0].Source)
	}
	if st.LastModified == "" || st.Checksum != hex.EncodeToString(sum[:]) {
		t.Fatalf("state %+v", st)
	}
	if _, _, err := feed.Fetch(context.Background(), st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("second fetch: %v", err)
	}
}

func TestFeedChecksumMismatch(t *testing.T) {
	// The real repomd_valid.xml states the open-checksum of another
	// updateinfo: the download must be refused.
	valid, err := os.ReadFile(filepath.Join(testutil.Fixture(t, fixtures), "fixtures", "repomd_valid.xml"))
	if err != nil {
		t.Fatal(err)
	}
	srv := repo(t, "updateinfo_AL2023.xml.gz", func(string) string { return string(valid) })
	defer srv.Close()
	_, _, err = New("alas-al2023", "2023", srv.URL+"/al2023/core/mirrors/latest/x86_64/mirror.list", newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "repomd.xml says d00ca5a4") {
		t.Fatalf("err = %v", err)
	}
}

func TestFeedRepomdWithoutUpdateinfo(t *testing.T) {
	invalid, err := os.ReadFile(filepath.Join(testutil.Fixture(t, fixtures), "fixtures", "repomd_invalid.xml"))
	if err != nil {
		t.Fatal(err)
	}
	srv := repo(t, "updateinfo_AL2023.xml.gz", func(string) string { return string(invalid) })
	defer srv.Close()
	_, _, err = New("alas-al2023", "2023", srv.URL+"/al2023/core/guids/abc123/x86_64/repodata/repomd.xml", newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "no updateinfo") || !strings.Contains(err.Error(), "alas-al2023") {
		t.Fatalf("err = %v", err)
	}
}

func TestFeedServerErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	_, _, err := New("alas-al2", "2", srv.URL+"/2/core/latest/x86_64/mirror.list", newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "mirror.list") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("err = %v", err)
	}
}

func TestFeedLocalFiles(t *testing.T) {
	dir := filepath.Join(testutil.Fixture(t, fixtures), "fixtures")
	for _, src := range []string{filepath.Join(dir, "updateinfo_2_items.xml.gz"), "file://" + filepath.Join(dir, "updateinfo_2_items.xml.gz")} {
		d, _, err := New("alas-al2", "2", src, newClient()).Fetch(context.Background(), vulndb.FetchState{})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Advisories) != 2 {
			t.Fatalf("%d advisories", len(d.Advisories))
		}
		checkGolden(t, d.Advisories[1], readGolden(t, "ALAS2-2018-949"), "2")
	}
	_, _, err := New("alas-al2", "2", filepath.Join(dir, "updateinfo_invalid.xml.gz"), newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil {
		t.Fatal("truncated file accepted")
	}
}

func TestDefaultURLs(t *testing.T) {
	for _, r := range []string{"2", "2022", "2023"} {
		if !strings.HasSuffix(DefaultURL(r), "/x86_64/mirror.list") {
			t.Errorf("%s: %q", r, DefaultURL(r))
		}
	}
	if DefaultURL("1") != "" {
		t.Error("unknown release has a URL")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"updateinfo_1_item.xml.gz", "updateinfo_AL2022.xml.gz"} {
		f.Add(gunzip(f, name))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(bytes.NewReader(doc), "fuzz", "")
		if err != nil {
			return
		}
		for _, a := range d.Advisories {
			if !alasID.MatchString(a.ID) || len(a.Affected) == 0 {
				t.Fatalf("%+v", a)
			}
			for _, aff := range a.Affected {
				if !strings.HasPrefix(aff.Ecosystem, EcosystemPrefix) || aff.Ranges[0].Events[1].Fixed == "" {
					t.Fatalf("%+v", aff)
				}
			}
		}
	})
}

func BenchmarkParseAL2023(b *testing.B) {
	raw := gunzip(b, "updateinfo_AL2023.xml.gz")
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw), "alas", "2023"); err != nil {
			b.Fatal(err)
		}
	}
}
