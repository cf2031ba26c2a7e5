package kev

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

func fixture(t testing.TB) (jsonPath, csvPath string) {
	dir := testutil.Fixture(t, "enrichment/kev")
	return filepath.Join(dir, "known_exploited_vulnerabilities.json"), filepath.Join(dir, "known_exploited_vulnerabilities.csv")
}

func newClient() *fetch.Client {
	return fetch.New(fetch.Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Retries: 2})
}

// TestJSONMatchesCSV compares the parse of the JSON catalogue with CISA's
// CSV export of the same catalogue version, read with encoding/csv.
func TestJSONMatchesCSV(t *testing.T) {
	jsonPath, csvPath := fixture(t)
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	rows = rows[1:]
	if len(rows) != 1404 {
		t.Fatalf("csv rows %d", len(rows))
	}

	jf, err := os.Open(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	defer jf.Close()
	d, err := Parse(jf, "kev")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Rejected) != 0 || len(d.Advisories) != 0 {
		t.Fatalf("rejected %v", d.Rejected)
	}
	got := map[string]*vulndb.KEV{}
	for _, e := range d.Enrichment {
		if e.KEV == nil || e.NVD != nil || e.EPSS != nil {
			t.Fatalf("%s: %+v", e.CVE, e)
		}
		got[e.CVE] = e.KEV
	}
	if len(got) != len(rows) {
		t.Fatalf("%d CVEs, csv has %d rows", len(got), len(rows))
	}
	known := 0
	for _, r := range rows {
		cve := r[col["cveID"]]
		k := got[cve]
		if k == nil {
			t.Fatalf("%s missing", cve)
		}
		if k.DateAdded.Format(time.DateOnly) != r[col["dateAdded"]] || k.DueDate.Format(time.DateOnly) != r[col["dueDate"]] ||
			k.VulnerabilityName != r[col["vulnerabilityName"]] || k.RequiredAction != r[col["requiredAction"]] ||
			k.RansomwareUse != r[col["knownRansomwareCampaignUse"]] || k.KnownRansomwareUse != (r[col["knownRansomwareCampaignUse"]] == "Known") {
			t.Fatalf("%s: %+v, csv %v", cve, k, r)
		}
		if k.KnownRansomwareUse {
			known++
		}
	}
	if known == 0 {
		t.Fatal("no entry with known ransomware use")
	}
	for i := 1; i < len(d.Enrichment); i++ {
		if d.Enrichment[i-1].CVE >= d.Enrichment[i].CVE {
			t.Fatal("enrichment not sorted by CVE")
		}
	}
}

func TestFeedOverHTTP(t *testing.T) {
	jsonPath, _ := fixture(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(jsonPath))))
	defer srv.Close()
	feed := New("cisa-kev", srv.URL+"/known_exploited_vulnerabilities.json", newClient())
	d, st, err := feed.Fetch(context.Background(), vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Enrichment) != 1404 || st.LastModified == "" {
		t.Fatalf("%d entries, state %+v", len(d.Enrichment), st)
	}
	if _, _, err := feed.Fetch(context.Background(), st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("second fetch: %v", err)
	}
	// Log4Shell, CISA added it on 2021-12-10.
	for _, e := range d.Enrichment {
		if e.CVE == "CVE-2021-44228" {
			if e.KEV.DateAdded != time.Date(2021, 12, 10, 0, 0, 0, 0, time.UTC) || !e.KEV.KnownRansomwareUse {
				t.Fatalf("%+v", e.KEV)
			}
			return
		}
	}
	t.Fatal("CVE-2021-44228 missing")
}

func TestFeedServerError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	_, _, err := New("cisa-kev", srv.URL+"/kev.json", newClient()).Fetch(context.Background(), vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "cisa-kev") || !strings.Contains(err.Error(), "502") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseBadInput(t *testing.T) {
	jsonPath, _ := fixture(t)
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"truncated":       string(raw[:len(raw)/2]),
		"empty":           "",
		"not a catalogue": `{"hello": "world"}`,
		"count mismatch":  `{"count": 2, "vulnerabilities": [{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10"}]}`,
	} {
		if _, err := Parse(strings.NewReader(doc), "kev"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	doc := `{"count": 4, "vulnerabilities": [
		{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10","dueDate":"2021-12-24","knownRansomwareCampaignUse":"Known"},
		{"cveID":"not-a-cve","dateAdded":"2021-12-10"},
		{"cveID":"CVE-2020-0001","dateAdded":"yesterday"},
		{"cveID":42}
	]}`
	d, err := Parse(strings.NewReader(doc), "kev")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Enrichment) != 1 || len(d.Rejected) != 3 {
		t.Fatalf("kept %d rejected %v", len(d.Enrichment), d.Rejected)
	}
	for i, want := range []string{"feed kev: record vulnerabilities[1] not-a-cve: cveID", "feed kev: record vulnerabilities[2] CVE-2020-0001: dateAdded", "feed kev: record vulnerabilities[3]: json"} {
		if !strings.HasPrefix(d.Rejected[i].Error(), want) {
			t.Errorf("rejected[%d] = %v, want prefix %q", i, d.Rejected[i], want)
		}
	}
}

func FuzzParse(f *testing.F) {
	jsonPath, _ := fixture(f)
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		f.Fatal(err)
	}
	// The first few entries, re-closed, keep the seed small.
	cut := bytes.Index(raw[2000:], []byte("\n        },"))
	f.Add(append(append([]byte{}, raw[:2000+cut]...), []byte("}]}")...))
	f.Add([]byte(`{"vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10","dueDate":"2021-12-24"}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(bytes.NewReader(doc), "fuzz")
		if err != nil {
			return
		}
		for _, e := range d.Enrichment {
			if !cveID.MatchString(e.CVE) || e.KEV == nil || e.KEV.DateAdded.IsZero() {
				t.Fatalf("%+v", e)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	jsonPath, _ := fixture(b)
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw), "kev"); err != nil {
			b.Fatal(err)
		}
	}
}
