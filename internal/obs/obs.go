// Package obs is Drydock's observability: Prometheus metrics on a registry
// owned by each server (never the global default one), HTTP middleware that
// counts requests, latencies and bytes by route class, and the /metrics and
// /healthz handlers.
package obs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds one server's Prometheus registry and the HTTP and registry
// metrics recorded into it. A nil *Metrics records nothing, so code that
// takes one works without it.
type Metrics struct {
	reg      *prometheus.Registry
	log      *slog.Logger
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesIn  *prometheus.CounterVec
	bytesOut *prometheus.CounterVec
	inFlight prometheus.Gauge
	uploads  prometheus.Gauge
	// uploading mirrors uploads for Uploading (a gauge cannot be read).
	uploading atomic.Int64
}

// New returns Metrics on a fresh registry that also carries the Go runtime
// and process collectors. logger (slog.Default() when nil) receives a line
// per request at debug level, and server errors at warning level.
func New(logger *slog.Logger) *Metrics {
	if logger == nil {
		logger = slog.Default()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		log: logger,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drydock_http_requests_total",
			Help: "HTTP requests served, by method, route class and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "drydock_http_request_duration_seconds",
			Help: "Time from receiving a request to the end of its response, by method and route class.",
			// 1 ms to about 65 s: small API calls to multi-GiB blob transfers.
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"method", "route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drydock_http_request_bytes_total",
			Help: "Request body bytes read, by route class.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drydock_http_response_bytes_total",
			Help: "Response body bytes written, by route class.",
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drydock_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		uploads: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drydock_registry_uploads_in_flight",
			Help: "Blob upload requests (PATCH, PUT, POST with the whole blob) being served.",
		}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.bytesIn, m.bytesOut, m.inFlight, m.uploads,
	)
	return m
}

// Registry is the registry the metrics live in, for other parts of the
// server (scan workers, the store) to register their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// UploadStarted counts a blob upload request started.
func (m *Metrics) UploadStarted() {
	if m != nil {
		m.uploads.Inc()
		m.uploading.Add(1)
	}
}

// UploadFinished counts a blob upload request ended, however it ended.
func (m *Metrics) UploadFinished() {
	if m != nil {
		m.uploads.Dec()
		m.uploading.Add(-1)
	}
}

// Uploading reports whether a blob upload request is being served (so
// background work can give pushes the machine first).
func (m *Metrics) Uploading() bool { return m != nil && m.uploading.Load() > 0 }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, ErrorLog: slogAdapter{m.log}})
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.l.Error("metrics: " + fmt.Sprint(v...)) }

// Middleware records every request that passes through next. classify
// maps a request to a route class, a short label of bounded cardinality
// (RouteClass when nil); never use raw paths, which hold repository names
// and digests.
func (m *Metrics) Middleware(classify func(*http.Request) string, next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	if classify == nil {
		classify = RouteClass
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		route := classify(r)
		method := methodLabel(r.Method)
		m.inFlight.Inc()
		var body *countingBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		rw := &responseWriter{ResponseWriter: w}
		defer func() {
			m.inFlight.Dec()
			status := rw.status
			if status == 0 {
				// Nothing written: net/http answers 200 with an empty body.
				status = http.StatusOK
			}
			d := time.Since(start)
			m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(method, route).Observe(d.Seconds())
			var in int64
			if body != nil {
				in = body.n.Load()
			}
			m.bytesIn.WithLabelValues(route).Add(float64(in))
			m.bytesOut.WithLabelValues(route).Add(float64(rw.written))
			level := slog.LevelDebug
			if status >= 500 {
				level = slog.LevelWarn
			}
			if m.log.Enabled(r.Context(), level) {
				m.log.LogAttrs(r.Context(), level, "http request",
					slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
					slog.Int("status", status), slog.Duration("duration", d),
					slog.Int64("bytes_in", in), slog.Int64("bytes_out", rw.written))
			}
		}()
		next.ServeHTTP(rw, r)
	})
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// countingBody counts the bytes read from a request body. Handlers may
// read it from another goroutine, hence the atomic.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// responseWriter records the status and counts the body bytes of a
// response. It forwards io.ReaderFrom (so serving a file still uses
// sendfile) and Flush, and unwraps for http.ResponseController.
type responseWriter struct {
	http.ResponseWriter
	status  int
	written int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, r)
	}
	w.written += n
	return n, err
}

// writerOnly hides every method but Write, so io.Copy does not loop back
// into ReadFrom.
type writerOnly struct{ io.Writer }

func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// HealthHandler answers 200 "ok" when check (which may be nil) passes
// within 5 seconds, and 503 with the error otherwise. Use check to ping the
// metadata store.
func HealthHandler(check func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if check != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
			defer cancel()
			if err := check(ctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					err = errors.New("health check timed out")
				}
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "unhealthy: %v\n", err)
				return
			}
		}
		io.WriteString(w, "ok\n")
	})
}
