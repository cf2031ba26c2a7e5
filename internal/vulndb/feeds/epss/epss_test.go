package epss

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

const fixture = "enrichment/epss/vunnel-example-1.csv"

func readFixture(t testing.TB) []byte {
	raw, err := os.ReadFile(testutil.Fixture(t, fixture))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// want reads the fixture rows with plain string splitting.
func want(t *testing.T, raw []byte) map[string][2]float64 {
	out := map[string][2]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n")[2:] {
		f := strings.Split(line, ",")
		s, _ := strconv.ParseFloat(f[1], 64)
		p, _ := strconv.ParseFloat(f[2], 64)
		out[f[0]] = [2]float64{s, p}
	}
	return out
}

func check(t *testing.T, d *vulndb.FeedData, raw []byte) {
	t.Helper()
	w := want(t, raw)
	if len(d.Enrichment) != len(w) || len(w) != 5 || len(d.Rejected) != 0 {
		t.Fatalf("%d scores, want %d; rejected %v", len(d.Enrichment), len(w), d.Rejected)
	}
	date := time.Date(2025, 2, 20, 0, 0, 0, 0, time.UTC)
	for _, e := range d.Enrichment {
		x, ok := w[e.CVE]
		if !ok || e.EPSS == nil || e.EPSS.Score != x[0] || e.EPSS.Percentile != x[1] || e.KEV != nil || e.NVD != nil {
			t.Fatalf("%s: %+v, want %v", e.CVE, e.EPSS, x)
		}
		if e.EPSS.Model != "v2023.03.01" || !e.EPSS.Date.Equal(date) {
			t.Fatalf("%s: model %q date %v", e.CVE, e.EPSS.Model, e.EPSS.Date)
		}
	}
}

func TestParseFixture(t *testing.T) {
	raw := readFixture(t)
	d, err := Parse(bytes.NewReader(raw), "epss")
	if err != nil {
		t.Fatal(err)
	}
	check(t, d, raw)
}

func gz(t testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestFeedGzipOverHTTP serves the fixture gzipped, as the live file is.
func TestFeedGzipOverHTTP(t *testing.T) {
	raw := readFixture(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "epss_scores-current.csv.gz"), gz(t, raw), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	client := fetch.New(fetch.Options{Backoff: time.Millisecond, Retries: 1})
	feed := New("epss", srv.URL+"/epss_scores-current.csv.gz", client)
	d, st, err := feed.Fetch(context.Background(), vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, d, raw)
	if _, _, err := feed.Fetch(context.Background(), st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("second fetch: %v", err)
	}
	// A local path works the same, for air-gapped sites.
	d, _, err = New("epss", filepath.Join(dir, "epss_scores-current.csv.gz"), client).Fetch(context.Background(), vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	check(t, d, raw)
}

func TestParseBadInput(t *testing.T) {
	for name, doc := range map[string]string{
		"empty":         "",
		"no header":     "#model_version:v1,score_date:2025-02-20T00:00:00+0000\n",
		"wrong columns": "cve,score\nCVE-1999-0001,0.1\n",
		"bad date":      "#model_version:v1,score_date:someday\ncve,epss,percentile\n",
		"header only":   "cve,epss,percentile\n",
	} {
		if _, err := Parse(strings.NewReader(doc), "epss"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	doc := "#model_version:v2023.03.01,score_date:2025-02-20T00:00:00+0000\ncve,epss,percentile\n" +
		"CVE-1999-0001,0.00383,0.73075\n" +
		"CVE-1999-0002,1.5,0.9\n" +
		"nonsense,0.1,0.1\n" +
		"CVE-1999-0004,0.1\n" +
		"CVE-1999-0005,0.1,NaN\n" +
		"CVE-1999-0006,\"0.1,0.2\n"
	d, err := Parse(strings.NewReader(doc), "epss")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Enrichment) != 1 || d.Enrichment[0].CVE != "CVE-1999-0001" {
		t.Fatalf("kept %+v", d.Enrichment)
	}
	var got []string
	for _, r := range d.Rejected {
		got = append(got, r.Record)
	}
	if fmt.Sprint(got) != "[line 4 CVE-1999-0002 line 5 nonsense line 6 line 7 CVE-1999-0005 line 8]" {
		t.Fatalf("rejected records %v (%v)", got, d.Rejected)
	}
}

func TestParseWithoutMetadata(t *testing.T) {
	d, err := Parse(strings.NewReader("cve,epss,percentile\nCVE-2021-44228,0.94358,0.99982\n"), "epss")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Enrichment) != 1 || d.Enrichment[0].EPSS.Score != 0.94358 || !d.Enrichment[0].EPSS.Date.IsZero() {
		t.Fatalf("%+v", d.Enrichment)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readFixture(f))
	f.Add([]byte("cve,epss,percentile\nCVE-2021-44228,0.9,0.9\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := Parse(bytes.NewReader(doc), "fuzz")
		if err != nil {
			return
		}
		for _, e := range d.Enrichment {
			if !cveID.MatchString(e.CVE) || e.EPSS == nil || e.EPSS.Score < 0 || e.EPSS.Score > 1 || e.EPSS.Percentile < 0 || e.EPSS.Percentile > 1 {
				t.Fatalf("%+v", e)
			}
		}
	})
}

// BenchmarkParseLiveSize parses a file of the live file's size (about
// 280,000 rows): the fixture's header and rows, repeated with new CVE
// numbers.
func BenchmarkParseLiveSize(b *testing.B) {
	raw := readFixture(b)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var buf bytes.Buffer
	buf.WriteString(lines[0] + "\n" + lines[1] + "\n")
	rows := lines[2:]
	for i := 0; i < 280000; i++ {
		f := strings.SplitN(rows[i%len(rows)], ",", 2)
		fmt.Fprintf(&buf, "CVE-%d-%d,%s\n", 1999+i/20000, 10000+i, f[1])
	}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		d, err := Parse(bytes.NewReader(buf.Bytes()), "epss")
		if err != nil || len(d.Enrichment) != 280000 {
			b.Fatal(err)
		}
	}
}
