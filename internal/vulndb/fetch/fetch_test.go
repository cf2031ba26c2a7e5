package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// fastOptions keep retries quick in tests.
func fastOptions() Options {
	return Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Retries: 3, TempDir: ""}
}

func readAll(t *testing.T, b *Body) []byte {
	t.Helper()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func gunzipFile(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestETagAndNotModified(t *testing.T) {
	payload := []byte(`{"hello":"world"}`)
	const etag = `"v1"`
	var conditional atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == etag {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", "Mon, 25 Aug 2025 10:00:00 GMT")
		w.Write(payload)
	}))
	defer srv.Close()

	c := New(fastOptions())
	ctx := context.Background()
	b, st, err := c.Get(ctx, srv.URL+"/feed.json", vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := readAll(t, b); !bytes.Equal(got, payload) {
		t.Fatalf("body = %q", got)
	}
	if b.Size != int64(len(payload)) || b.Checksum != sum(payload) {
		t.Fatalf("size %d checksum %s", b.Size, b.Checksum)
	}
	if st.ETag != etag || st.LastModified != "Mon, 25 Aug 2025 10:00:00 GMT" || st.Checksum != sum(payload) {
		t.Fatalf("state = %+v", st)
	}
	// ReadAt works independently of Read.
	p := make([]byte, 5)
	if _, err := b.ReadAt(p, 2); err != nil || string(p) != "hello" {
		t.Fatalf("ReadAt = %q, %v", p, err)
	}

	_, st2, err := c.Get(ctx, srv.URL+"/feed.json", st)
	if !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("second Get: err = %v, want ErrNotModified", err)
	}
	if conditional.Load() != 1 {
		t.Fatalf("server saw %d conditional requests", conditional.Load())
	}
	if st2 != st {
		t.Fatalf("state after 304 = %+v, want %+v", st2, st)
	}
}

func TestIfModifiedSince(t *testing.T) {
	const lm = "Tue, 26 Aug 2025 08:00:00 GMT"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-Modified-Since") == lm {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Last-Modified", lm)
		io.WriteString(w, "data")
	}))
	defer srv.Close()
	c := New(fastOptions())
	b, st, err := c.Get(context.Background(), srv.URL, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, _, err := c.Get(context.Background(), srv.URL, st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("err = %v, want ErrNotModified", err)
	}
}

func TestUnchangedChecksumWithoutValidators(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "same content")
	}))
	defer srv.Close()
	c := New(fastOptions())
	b, st, err := c.Get(context.Background(), srv.URL, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if st.ETag != "" || st.Checksum != sum([]byte("same content")) {
		t.Fatalf("state = %+v", st)
	}
	if _, _, err := c.Get(context.Background(), srv.URL, st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("err = %v, want ErrNotModified", err)
	}
}

func TestRetriesServerErrors(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "finally")
	}))
	defer srv.Close()
	c := New(fastOptions())
	b, _, err := c.Get(context.Background(), srv.URL, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := string(readAll(t, b)); got != "finally" {
		t.Fatalf("body %q", got)
	}
	if calls.Load() != 3 {
		t.Fatalf("calls = %d, want 3", calls.Load())
	}
}

func TestPersistent500IsReportedWithURL(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := New(fastOptions())
	_, _, err := c.Get(context.Background(), srv.URL+"/x.json", vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/x.json") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v", err)
	}
	if calls.Load() != 4 {
		t.Fatalf("calls = %d, want 1 + 3 retries", calls.Load())
	}
}

func TestClientErrorNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	_, _, err := New(fastOptions()).Get(context.Background(), srv.URL, vulndb.FetchState{})
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
		t.Fatalf("err = %v, want an HTTPError 404", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("calls = %d, want 1", calls.Load())
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var first atomic.Int64
	var gap atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now().UnixNano()
		if first.CompareAndSwap(0, now) {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		gap.Store(now - first.Load())
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	// Backoff alone would retry after a millisecond; Retry-After says 1 s.
	b, _, err := New(fastOptions()).Get(context.Background(), srv.URL, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	if time.Duration(gap.Load()) < time.Second {
		t.Fatalf("retried after %v, Retry-After asked for 1s", time.Duration(gap.Load()))
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 8, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"-3", 0},
		{"Mon, 25 Aug 2025 10:00:30 GMT", 30 * time.Second},
		{"Mon, 25 Aug 2025 09:00:00 GMT", 0},
		{"soon", 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestHangingServerTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	opts := fastOptions()
	opts.Retries = -1
	opts.StallTimeout = 100 * time.Millisecond
	_, _, err := New(opts).Get(context.Background(), srv.URL, vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "no response within") {
		t.Fatalf("err = %v", err)
	}
}

func TestStalledBodyTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	opts := fastOptions()
	opts.Retries = 1
	opts.StallTimeout = 100 * time.Millisecond
	_, _, err := New(opts).Get(context.Background(), srv.URL, vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "stalled") {
		t.Fatalf("err = %v", err)
	}
}

func TestWholeAttemptTimeout(t *testing.T) {
	// A server that trickles bytes forever never stalls, but the attempt
	// timeout still ends it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				io.WriteString(w, "x")
				w.(http.Flusher).Flush()
			}
		}
	}))
	defer srv.Close()
	opts := fastOptions()
	opts.Retries = -1
	opts.Timeout = 200 * time.Millisecond
	_, _, err := New(opts).Get(context.Background(), srv.URL, vulndb.FetchState{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestOversizeBody(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 4096)
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"content-length", func(w http.ResponseWriter, r *http.Request) { w.Write(big) }},
		{"chunked", func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < 4; i++ {
				w.Write(big[:1024])
				w.(http.Flusher).Flush()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				tc.handler(w, r)
			}))
			defer srv.Close()
			opts := fastOptions()
			opts.MaxBodySize = 1000
			_, _, err := New(opts).Get(context.Background(), srv.URL+"/big.json", vulndb.FetchState{})
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), srv.URL+"/big.json") {
				t.Fatalf("err = %v", err)
			}
			if calls.Load() != 1 {
				t.Fatalf("an oversize body was retried: %d calls", calls.Load())
			}
		})
	}
}

func TestBodyExactlyAtCap(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("b"), 1000))
	}))
	defer srv.Close()
	opts := fastOptions()
	opts.MaxBodySize = 1000
	b, _, err := New(opts).Get(context.Background(), srv.URL, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

func TestGzipFixtureOverHTTP(t *testing.T) {
	path := testutil.Fixture(t, "feeds/amazon/vuln-list-update/fixtures/updateinfo_AL2023.xml.gz")
	want := gunzipFile(t, path)
	srv := httptest.NewServer(http.FileServer(http.Dir(filepath.Dir(path))))
	defer srv.Close()
	b, st, err := New(fastOptions()).Get(context.Background(), srv.URL+"/updateinfo_AL2023.xml.gz", vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := readAll(t, b); !bytes.Equal(got, want) {
		t.Fatalf("decompressed body differs: %d bytes, want %d", len(got), len(want))
	}
	if st.Checksum != sum(want) || st.LastModified == "" {
		t.Fatalf("state = %+v", st)
	}
}

func TestGzipBombRefused(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(make([]byte, 10<<20)) // 10 MiB of zeros compress to ~10 KiB
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(buf.Bytes())
	}))
	defer srv.Close()
	opts := fastOptions()
	opts.MaxBodySize = 1 << 20
	_, _, err := New(opts).Get(context.Background(), srv.URL+"/bomb.gz", vulndb.FetchState{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestTruncatedGzip(t *testing.T) {
	path := testutil.Fixture(t, "feeds/amazon/vuln-list-update/fixtures/updateinfo_AL2022.xml.gz")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.xml.gz")
	if err := os.WriteFile(cut, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = New(fastOptions()).Get(context.Background(), cut, vulndb.FetchState{})
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("err = %v", err)
	}
}

func TestLocalFileAndFileURL(t *testing.T) {
	path := testutil.Fixture(t, "enrichment/epss/vunnel-example-1.csv")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := New(fastOptions())
	for _, src := range []string{path, "file://" + path} {
		b, st, err := c.Get(context.Background(), src, vulndb.FetchState{})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := readAll(t, b); !bytes.Equal(got, want) {
			t.Fatalf("%s: content differs", src)
		}
		b.Close()
		if st.Checksum != sum(want) {
			t.Fatalf("%s: checksum %s", src, st.Checksum)
		}
		if _, _, err := c.Get(context.Background(), src, st); !errors.Is(err, vulndb.ErrNotModified) {
			t.Fatalf("%s: second Get err = %v, want ErrNotModified", src, err)
		}
	}
	if _, _, err := c.Get(context.Background(), filepath.Join(t.TempDir(), "missing.json"), vulndb.FetchState{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
}

func TestLocalGzipFile(t *testing.T) {
	path := testutil.Fixture(t, "feeds/amazon/vuln-list-update/fixtures/updateinfo_2_items.xml.gz")
	want := gunzipFile(t, path)
	b, _, err := New(fastOptions()).Get(context.Background(), path, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := readAll(t, b); !bytes.Equal(got, want) {
		t.Fatal("decompressed content differs")
	}
}

func TestDirectory(t *testing.T) {
	dir := t.TempDir()
	src := testutil.Fixture(t, "feeds/osv/records")
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := New(fastOptions())
	b, st, err := c.Get(context.Background(), dir, vulndb.FetchState{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Dir != dir || st.Checksum == "" {
		t.Fatalf("body = %+v state = %+v", b, st)
	}
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Fatal("reading a directory body succeeded")
	}
	b.Close()
	if _, _, err := c.Get(context.Background(), "file://"+dir, st); !errors.Is(err, vulndb.ErrNotModified) {
		t.Fatalf("unchanged dir: err = %v", err)
	}
	// Any change to a file's content is seen.
	if err := os.WriteFile(filepath.Join(dir, entries[0].Name()), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, st2, err := c.Get(context.Background(), dir, st)
	if err != nil {
		t.Fatalf("changed dir: %v", err)
	}
	b.Close()
	if st2.Checksum == st.Checksum {
		t.Fatal("checksum unchanged after a file changed")
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	opts := fastOptions()
	opts.Backoff = time.Hour
	opts.MaxBackoff = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := New(opts).Get(ctx, srv.URL, vulndb.FetchState{})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Get did not return after cancel")
	}
}

func TestRedactsPassword(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1)
	_, _, err := New(fastOptions()).Get(context.Background(), u, vulndb.FetchState{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("err = %v", err)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	c := New(Options{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	for attempt, max := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		max *= time.Millisecond
		for i := 0; i < 50; i++ {
			d := c.backoff(attempt)
			if d < max/2 || d >= max {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v)", attempt, d, max/2, max)
			}
		}
	}
}
