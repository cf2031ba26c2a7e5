package nvd

import (
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
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cvss40 "github.com/pandatix/go-cvss/40"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

const (
	fullPage = "enrichment/nvd/nvd-api-2.0-full-page.json"
	perCVE   = "enrichment/nvd/nvdcve-2.0-per-cve"
)

func newClient() *fetch.Client {
	return fetch.New(fetch.Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Retries: 2})
}

// expected reads NVD documents generically (maps, no structs) and returns
// every CVSS metric as "CVE type vector score source", sorted.
func expected(t testing.TB, paths ...string) []string {
	var out []string
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for _, v := range doc["vulnerabilities"].([]any) {
			cve := v.(map[string]any)["cve"].(map[string]any)
			metrics, _ := cve["metrics"].(map[string]any)
			for key, list := range metrics {
				typ := map[string]string{"cvssMetricV2": "CVSS_V2", "cvssMetricV30": "CVSS_V3", "cvssMetricV31": "CVSS_V3", "cvssMetricV40": "CVSS_V4"}[key]
				if typ == "" {
					continue // ssvc and other non-CVSS metrics
				}
				for _, m := range list.([]any) {
					m := m.(map[string]any)
					d := m["cvssData"].(map[string]any)
					out = append(out, fmt.Sprintf("%s %s %s %v %s", cve["id"], typ, d["vectorString"], d["baseScore"], m["source"]))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func flatten(d *vulndb.FeedData) []string {
	var out []string
	for _, e := range d.Enrichment {
		if e.KEV != nil || e.EPSS != nil {
			panic("unexpected enrichment")
		}
		for _, s := range e.NVD {
			out = append(out, fmt.Sprintf("%s %s %s %v %s", e.CVE, s.Type, s.Score, s.BaseScore, s.Source))
		}
	}
	sort.Strings(out)
	return out
}

func perCVEFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(testutil.Fixture(t, perCVE), "*.json"))
	if err != nil || len(files) != 23 {
		t.Fatalf("want 23 per-CVE files, got %d %v", len(files), err)
	}
	return files
}

func TestParseFullPage(t *testing.T) {
	path := testutil.Fixture(t, fullPage)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := ParsePage(f, "nvd")
	if err != nil {
		t.Fatal(err)
	}
	if p.TotalResults != 38 || p.ResultsPerPage != 38 || p.StartIndex != 0 || p.Records != 38 || len(p.Data.Rejected) != 0 {
		t.Fatalf("page %+v rejected %v", p, p.Data.Rejected)
	}
	if got, want := flatten(p.Data), expected(t, path); !reflect.DeepEqual(got, want) || len(want) != 48 {
		t.Fatalf("got %d metrics, want %d:\n%s\nwant\n%s", len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParsePerCVEFiles(t *testing.T) {
	for _, path := range perCVEFiles(t) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Parse(f, "nvd")
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got, want := flatten(d), expected(t, path); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: got %v want %v", path, got, want)
		}
	}
}

func TestParseKnownScores(t *testing.T) {
	f, err := os.Open(filepath.Join(testutil.Fixture(t, perCVE), "CVE-2016-1585.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := Parse(f, "nvd")
	if err != nil {
		t.Fatal(err)
	}
	want := []vulndb.Severity{
		{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", BaseScore: 9.8, Source: "nvd@nist.gov"},
		{Type: "CVSS_V3", Score: "CVSS:3.0/AV:L/AC:H/PR:H/UI:N/S:U/C:L/I:L/A:L", BaseScore: 3.9, Source: "security@ubuntu.com"},
		{Type: "CVSS_V2", Score: "AV:N/AC:L/Au:N/C:P/I:P/A:P", BaseScore: 7.5, Source: "nvd@nist.gov"},
	}
	if len(d.Enrichment) != 1 || d.Enrichment[0].CVE != "CVE-2016-1585" || !reflect.DeepEqual(d.Enrichment[0].NVD, want) {
		t.Fatalf("%+v", d.Enrichment)
	}
}

// TestParseCVSSv4 feeds a record in NVD's cvssMetricV40 layout. NVD's
// stated base score is taken as is; the test checks its own data against
// go-cvss so the record is consistent.
func TestParseCVSSv4(t *testing.T) {
	const vector = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
	v, err := cvss40.ParseVector(vector)
	if err != nil {
		t.Fatal(err)
	}
	score := v.Score()
	doc := fmt.Sprintf(`{"resultsPerPage":1,"startIndex":0,"totalResults":1,"format":"NVD_CVE","version":"2.0","vulnerabilities":[
	 {"cve":{"id":"CVE-2024-0001","vulnStatus":"Analyzed","metrics":{"cvssMetricV40":[{"source":"cna@example.org","type":"Secondary",
	  "cvssData":{"version":"4.0","vectorString":%q,"baseScore":%v,"baseSeverity":"CRITICAL"}}]}}}]}`, vector, score)
	d, err := Parse(strings.NewReader(doc), "nvd")
	if err != nil {
		t.Fatal(err)
	}
	want := []vulndb.Severity{{Type: "CVSS_V4", Score: vector, BaseScore: score, Source: "cna@example.org"}}
	if score != 9.3 || len(d.Enrichment) != 1 || !reflect.DeepEqual(d.Enrichment[0].NVD, want) {
		t.Fatalf("score %v %+v", score, d.Enrichment)
	}
}

func TestParseBadInput(t *testing.T) {
	raw, err := os.ReadFile(testutil.Fixture(t, fullPage))
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"truncated":  string(raw[:len(raw)/2]),
		"empty":      "",
		"not nvd":    `{"foo": []}`,
		"array":      `[]`,
		"vulns type": `{"vulnerabilities": {}}`,
		"bad syntax": `{"vulnerabilities": [{"cve": }]}`,
		"trailing":   `{"vulnerabilities": []`,
	} {
		if _, err := Parse(strings.NewReader(doc), "nvd"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	doc := `{"totalResults":6,"vulnerabilities":[
	  {"cve":{"id":"CVE-2021-44228","metrics":{"cvssMetricV31":[
	     {"source":"nvd@nist.gov","cvssData":{"vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H","baseScore":10.0}},
	     {"source":"x","cvssData":{"vectorString":"","baseScore":1}},
	     {"source":"y","cvssData":{"vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H","baseScore":11}},
	     {"source":"z","cvssData":{"vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P","baseScore":7.5}}]}}},
	  {"cve":{"id":"bogus","metrics":{}}},
	  {"cve":{"id":"CVE-2020-0001","metrics":"wrong"}},
	  {"cve":{"id":"CVE-2020-0002","vulnStatus":"Rejected","metrics":{"cvssMetricV31":[{"source":"nvd@nist.gov","cvssData":{"vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H","baseScore":10.0}}]}}},
	  {"cve":{"id":"CVE-2020-0003"}},
	  {"cve":{"id":"CVE-2020-0004","metrics":{"cvssMetricV2":[{"source":"nvd@nist.gov","cvssData":{"vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P"}}]}}}
	]}`
	d, err := Parse(strings.NewReader(doc), "nvd")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Enrichment) != 1 || len(d.Enrichment[0].NVD) != 1 || d.Enrichment[0].NVD[0].Source != "nvd@nist.gov" {
		t.Fatalf("kept %+v", d.Enrichment)
	}
	var recs []string
	for _, r := range d.Rejected {
		recs = append(recs, r.Record)
	}
	want := []string{"CVE-2021-44228 cvssMetricV31[1]", "CVE-2021-44228 cvssMetricV31[2]", "CVE-2021-44228 cvssMetricV31[3]", "vulnerabilities[1]", "vulnerabilities[2]", "CVE-2020-0004 cvssMetricV2[0]"}
	if !reflect.DeepEqual(recs, want) {
		t.Fatalf("rejected %v", d.Rejected)
	}
}

// apiServer serves the full fixture page through the API's paging
// parameters, as the live API does, recording what was asked.
type apiServer struct {
	mu       sync.Mutex
	starts   []int
	keys     []string
	failFrom int // startIndex at which to answer 503 (0: never)
	lieAt    int // startIndex at which to answer a wrong startIndex (0: never)
}

func (s *apiServer) handler(t *testing.T) http.Handler {
	raw, err := os.ReadFile(testutil.Fixture(t, fullPage))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	all := doc["vulnerabilities"].([]any)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, _ := strconv.Atoi(r.URL.Query().Get("startIndex"))
		per, _ := strconv.Atoi(r.URL.Query().Get("resultsPerPage"))
		s.mu.Lock()
		s.starts = append(s.starts, start)
		s.keys = append(s.keys, r.Header.Get("apiKey"))
		s.mu.Unlock()
		if s.failFrom != 0 && start >= s.failFrom {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		end := min(start+per, len(all))
		answered := start
		if s.lieAt != 0 && start == s.lieAt {
			answered = 0
		}
		page := map[string]any{
			"resultsPerPage": end - start, "startIndex": answered, "totalResults": len(all),
			"format": "NVD_CVE", "version": "2.0", "timestamp": time.Now().Format("2006-01-02T15:04:05.000"),
			"vulnerabilities": all[start:end],
		}
		json.NewEncoder(w).Encode(page)
	})
}

func TestFeedPagesThroughAPI(t *testing.T) {
	s := &apiServer{}
	srv := httptest.NewServer(s.handler(t))
	defer srv.Close()
	feed := New("nvd", srv.URL+"/rest/json/cves/2.0", newClient(), WithAPIKey("k-123"), WithPageSize(10), WithPageDelay(0))
	d, st, err := feed.Fetch(context.Background(), vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.starts, []int{0, 10, 20, 30}) {
		t.Fatalf("asked for startIndex %v", s.starts)
	}
	for _, k := range s.keys {
		if k != "k-123" {
			t.Fatalf("apiKey header %q", k)
		}
	}
	if got, want := flatten(d), expected(t, testutil.Fixture(t, fullPage)); !reflect.DeepEqual(got, want) {
		t.Fatalf("paged result differs: %d vs %d metrics", len(got), len(want))
	}
	// Pages carry a fresh timestamp each time; the content did not change.
	if _, _, err := feed.Fetch(context.Background(), st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("second fetch: %v", err)
	}
}

func TestFeedAPIPageFailure(t *testing.T) {
	s := &apiServer{failFrom: 20}
	srv := httptest.NewServer(s.handler(t))
	defer srv.Close()
	_, _, err := New("nvd", srv.URL+"/api", newClient(), WithPageSize(10), WithPageDelay(0)).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "feed nvd") || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "startIndex=20") {
		t.Fatalf("err = %v", err)
	}
}

func TestFeedAPIWrongStartIndex(t *testing.T) {
	s := &apiServer{lieAt: 10}
	srv := httptest.NewServer(s.handler(t))
	defer srv.Close()
	_, _, err := New("nvd", srv.URL+"/api", newClient(), WithPageSize(10), WithPageDelay(0)).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "answered startIndex 0") {
		t.Fatalf("err = %v", err)
	}
}

func TestFeedPageDelayHonoursCancel(t *testing.T) {
	s := &apiServer{}
	srv := httptest.NewServer(s.handler(t))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed := New("nvd", srv.URL+"/api", newClient(), WithPageSize(10), WithPageDelay(time.Hour))
	done := make(chan error, 1)
	go func() { _, _, err := feed.Fetch(ctx, vulndb.FetchState{}); done <- err }()
	// Wait until the first page was served, then cancel during the pause.
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.starts)
		s.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("first page never requested")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Fetch did not return after cancel")
	}
}

func TestFeedDirectoryAndFile(t *testing.T) {
	dir := testutil.Fixture(t, perCVE)
	d, _, err := New("nvd", dir, newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := flatten(d), expected(t, perCVEFiles(t)...); !reflect.DeepEqual(got, want) {
		t.Fatalf("directory: %d metrics, want %d", len(got), len(want))
	}
	if len(d.Enrichment) != 23 {
		t.Fatalf("%d CVEs", len(d.Enrichment))
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(testutil.Fixture(t, fullPage)))))
	defer srv.Close()
	d, _, err = New("nvd", srv.URL+"/nvd-api-2.0-full-page.json", newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := flatten(d), expected(t, testutil.Fixture(t, fullPage)); !reflect.DeepEqual(got, want) {
		t.Fatalf("file over HTTP: %d metrics, want %d", len(got), len(want))
	}
	// 3 of the page's 38 CVEs have no CVSS metric yet.
	if len(d.Enrichment) != 35 {
		t.Fatalf("%d CVEs", len(d.Enrichment))
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range perCVEFiles(f)[:5] {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(bytes.NewReader(doc), "fuzz")
		if err != nil {
			return
		}
		for _, e := range d.Enrichment {
			if !cveID.MatchString(e.CVE) || len(e.NVD) == 0 {
				t.Fatalf("%+v", e)
			}
			for _, s := range e.NVD {
				if s.Score == "" || s.BaseScore < 0 || s.BaseScore > 10 {
					t.Fatalf("%+v", s)
				}
			}
		}
	})
}

func BenchmarkParseFullPage(b *testing.B) {
	raw, err := os.ReadFile(testutil.Fixture(b, fullPage))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw), "nvd"); err != nil {
			b.Fatal(err)
		}
	}
}
