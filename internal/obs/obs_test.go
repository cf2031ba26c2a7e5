package obs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches /metrics from srv and parses it with Prometheus' own
// text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMiddlewareCounts(t *testing.T) {
	var logs bytes.Buffer
	m := New(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	blob := bytes.Repeat([]byte("drydock"), 100_000) // 700,000 bytes
	blobFile := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(blobFile, blob, 0o600); err != nil {
		t.Fatal(err)
	}
	app := http.NewServeMux()
	app.HandleFunc("PATCH /v2/team/app/blobs/uploads/{id}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Range", "0-"+strconv.FormatInt(n-1, 10))
		w.WriteHeader(http.StatusAccepted)
	})
	app.HandleFunc("GET /v2/team/app/blobs/{digest}", func(w http.ResponseWriter, r *http.Request) {
		// ServeContent copies the file through io.ReaderFrom (sendfile):
		// the wrapper must still count it.
		f, err := os.Open(blobFile)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	})
	app.HandleFunc("GET /v2/team/app/manifests/{ref}", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	mux.Handle("/healthz", HealthHandler(nil))
	mux.Handle("/", m.Middleware(nil, app))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	upload := strings.Repeat("x", 12345)
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("PATCH", srv.URL+"/v2/team/app/blobs/uploads/abc", strings.NewReader(upload))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("upload: %s", resp.Status)
		}
	}
	resp, err := http.Get(srv.URL + "/v2/team/app/blobs/sha256:abc")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, blob) {
		t.Fatalf("blob: got %d bytes", len(got))
	}
	resp, err = http.Get(srv.URL + "/v2/team/app/manifests/latest")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m.UploadStarted()
	m.UploadStarted()
	m.UploadFinished()

	fams := scrape(t, srv.URL)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"drydock_http_requests_total", map[string]string{"method": "PATCH", "route": "blob_upload", "code": "202"}, 3},
		{"drydock_http_requests_total", map[string]string{"method": "GET", "route": "blob", "code": "200"}, 1},
		{"drydock_http_requests_total", map[string]string{"method": "GET", "route": "manifest", "code": "500"}, 1},
		{"drydock_http_request_bytes_total", map[string]string{"route": "blob_upload"}, 3 * 12345},
		{"drydock_http_response_bytes_total", map[string]string{"route": "blob"}, float64(len(blob))},
		{"drydock_http_request_duration_seconds", map[string]string{"method": "PATCH", "route": "blob_upload"}, 3},
		{"drydock_registry_uploads_in_flight", nil, 1},
		{"drydock_http_requests_in_flight", nil, 0},
	} {
		v, ok := value(fams, c.name, c.labels)
		if !ok || v != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("Go runtime metrics missing")
	}
	if _, ok := fams["process_resident_memory_bytes"]; !ok {
		t.Error("process metrics missing")
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"http request"`) {
		t.Errorf("the 500 was not logged as a warning:\n%s", logs.String())
	}
	// Two servers in one process do not share metrics.
	if n := testutil.ToFloat64(New(nil).uploads); n != 0 {
		t.Errorf("a new Metrics starts with %v uploads in flight", n)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.UploadStarted()
	m.UploadFinished()
	h := m.Middleware(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v2/", nil))
	if rec.Code != 204 {
		t.Errorf("status %d", rec.Code)
	}
}

func TestHealth(t *testing.T) {
	ok := httptest.NewRecorder()
	HealthHandler(func(context.Context) error { return nil }).ServeHTTP(ok, httptest.NewRequest("GET", "/healthz", nil))
	if ok.Code != 200 || ok.Body.String() != "ok\n" {
		t.Errorf("healthy: %d %q", ok.Code, ok.Body)
	}
	bad := httptest.NewRecorder()
	HealthHandler(func(context.Context) error { return errors.New("store unreachable") }).ServeHTTP(bad, httptest.NewRequest("GET", "/healthz", nil))
	if bad.Code != 503 || !strings.Contains(bad.Body.String(), "store unreachable") {
		t.Errorf("unhealthy: %d %q", bad.Code, bad.Body)
	}
}

func TestRouteClass(t *testing.T) {
	for _, c := range []struct {
		method, path, target, want string
	}{
		{"GET", "/v2/", "", "v2"},
		{"GET", "/v2", "", "v2"},
		{"GET", "/v2/_catalog", "", "catalog"},
		{"HEAD", "/v2/team/app/api/blobs/sha256:abc", "", "blob"},
		{"POST", "/v2/team/app/blobs/uploads/", "", "blob_upload"},
		{"PATCH", "/v2/a/blobs/uploads/0f3c-11", "", "blob_upload"},
		{"PUT", "/v2/a/b/c/manifests/v1.0", "", "manifest"},
		{"GET", "/v2/manifests/manifests/latest", "", "manifest"},
		{"GET", "/v2/blobs/tags/list", "", "tags"},
		{"GET", "/v2/x/referrers/sha256:abc", "", "referrers"},
		{"GET", "/v2/x", "", "other"},
		{"POST", "/", "AmazonEC2ContainerRegistry_V20150921.DescribeImages", "ecr"},
		{"POST", "/findings/list", "", "api"},
		{"GET", "/metrics", "", "metrics"},
		{"GET", "/healthz", "", "healthz"},
		{"GET", "/console", "", "other"},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if c.target != "" {
			r.Header.Set("X-Amz-Target", c.target)
		}
		if got := RouteClass(r); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// TestMiddlewareKeepsResponseController: handlers behind the middleware
// can still flush, set deadlines and enable full duplex (uploads that
// answer while the body streams in) through http.ResponseController.
func TestMiddlewareKeepsResponseController(t *testing.T) {
	m := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	errs := make(chan error, 3)
	h := m.Middleware(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		errs <- rc.EnableFullDuplex()
		errs <- rc.SetReadDeadline(time.Now().Add(time.Minute))
		w.WriteHeader(http.StatusAccepted)
		errs <- rc.Flush()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v2/a/blobs/uploads/", "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Errorf("response controller through the middleware: %v", err)
		}
	}
}
