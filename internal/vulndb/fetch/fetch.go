// Package fetch downloads vulnerability feeds: over HTTP(S) with
// conditional requests, timeouts, retries and a size cap, or from local
// files and directories for air-gapped sites. Every body is spooled to a
// temporary file, decompressed when it is gzip, and checksummed, so parsers
// get an io.ReaderAt with a known size and callers can tell an unchanged
// feed from a changed one.
package fetch

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/drydockhq/drydock/internal/vulndb"
)

// Defaults used when an Options field is zero.
const (
	DefaultTimeout       = 10 * time.Minute
	DefaultStallTimeout  = time.Minute
	DefaultRetries       = 4
	DefaultBackoff       = time.Second
	DefaultMaxBackoff    = 2 * time.Minute
	DefaultMaxBodySize   = 2 << 30 // 2 GiB: OSV's largest all.zip is well below
	DefaultMaxRetryAfter = 10 * time.Minute
	defaultUserAgent     = "drydock-vulndb"
)

// Options configure a Client. The zero value of each field selects its
// default.
type Options struct {
	// HTTPClient sends the requests; http.DefaultClient's transport when nil.
	// Its own Timeout, if any, also applies.
	HTTPClient *http.Client
	// Timeout bounds one attempt, from sending the request to the last
	// byte of the body.
	Timeout time.Duration
	// StallTimeout bounds how long an attempt may wait for the response
	// headers or for the next bytes of the body: a server that hangs fails
	// after this long, even when the whole-attempt Timeout is generous.
	StallTimeout time.Duration
	// Retries is how many times a failed attempt is repeated (network
	// errors, timeouts, 5xx, 429). Negative means none.
	Retries int
	// Backoff is the first delay between attempts; it doubles each time,
	// up to MaxBackoff, and is jittered. A Retry-After header overrides it,
	// up to MaxRetryAfter.
	Backoff       time.Duration
	MaxBackoff    time.Duration
	MaxRetryAfter time.Duration
	// MaxBodySize caps a body, before and after gzip decompression (a
	// decompression bomb is refused). Negative means no cap.
	MaxBodySize int64
	// TempDir holds the spooled bodies; os.TempDir() when empty.
	TempDir string
	// UserAgent is sent with each request.
	UserAgent string
	// Logger receives one line per retry and per download.
	Logger *slog.Logger
}

// Client fetches feed bodies. It is safe for concurrent use.
type Client struct {
	hc   *http.Client
	opts Options
	log  *slog.Logger
}

// New returns a Client with opts, defaults filled in.
func New(opts Options) *Client {
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.StallTimeout == 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	} else if opts.Retries < 0 {
		opts.Retries = 0
	}
	if opts.Backoff == 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxRetryAfter == 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.MaxBodySize == 0 {
		opts.MaxBodySize = DefaultMaxBodySize
	}
	if opts.UserAgent == "" {
		opts.UserAgent = defaultUserAgent
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{hc: opts.HTTPClient, opts: opts, log: log}
}

// MaxBodySize is the configured cap on a body (negative: none).
func (c *Client) MaxBodySize() int64 { return c.opts.MaxBodySize }

// Body is the content of one fetched source. A file or HTTP body is a
// spooled, decompressed copy readable with Read and ReadAt; a local
// directory is not copied: Dir names it and the caller reads its files.
// Close releases the temporary file.
type Body struct {
	// URL is the source as given to Get.
	URL string
	// Dir is set when the source is a local directory.
	Dir string
	// Size is the length of the (decompressed) content; 0 for a directory.
	Size int64
	// Checksum is the hex SHA-256 of the decompressed content; for a
	// directory, of the sorted list of its regular files' relative paths,
	// sizes and SHA-256 sums.
	Checksum string

	f *os.File
	r *io.SectionReader
}

// Read reads the content sequentially.
func (b *Body) Read(p []byte) (int, error) {
	if b.r == nil {
		return 0, fmt.Errorf("fetch %s: a directory has no body", b.URL)
	}
	return b.r.Read(p)
}

// ReadAt reads the content at off, independently of Read.
func (b *Body) ReadAt(p []byte, off int64) (int, error) {
	if b.r == nil {
		return 0, fmt.Errorf("fetch %s: a directory has no body", b.URL)
	}
	return b.r.ReadAt(p, off)
}

// Close releases the body's temporary file.
func (b *Body) Close() error {
	if b.f == nil {
		return nil
	}
	err := b.f.Close()
	b.f, b.r = nil, nil
	return err
}

// RequestOption adjusts one Get request.
type RequestOption func(*http.Request)

// WithHeader sets a request header (an API key, an Accept type). Header
// values are never logged.
func WithHeader(key, value string) RequestOption {
	return func(r *http.Request) { r.Header.Set(key, value) }
}

// Get fetches src: an http:// or https:// URL, a file:// URL, or a plain
// local path (file or directory). prev is the state of the last successful
// fetch: its ETag and Last-Modified go out as If-None-Match and
// If-Modified-Since, and a 304 answer returns vulndb.ErrNotModified. A body
// whose checksum equals prev.Checksum also returns vulndb.ErrNotModified,
// which covers local files and servers without validators. On
// ErrNotModified the returned state is the one to keep (a server may send
// new validators with its 304).
//
// Gzip content is decompressed (detected by its magic bytes, so both
// "x.json.gz" and gzip bodies served without Content-Encoding work).
func (c *Client) Get(ctx context.Context, src string, prev vulndb.FetchState, opts ...RequestOption) (*Body, vulndb.FetchState, error) {
	u, err := parseSource(src)
	if err != nil {
		return nil, prev, err
	}
	switch u.Scheme {
	case "http", "https":
		return c.getHTTP(ctx, src, u, prev, opts)
	case "file":
		return c.getLocal(ctx, src, u.Path, prev)
	default:
		return nil, prev, fmt.Errorf("fetch %s: unsupported scheme %q", redact(src), u.Scheme)
	}
}

// parseSource turns a URL or plain path into a URL; a plain path becomes a
// file URL.
func parseSource(src string) (*url.URL, error) {
	if src == "" {
		return nil, errors.New("fetch: empty source")
	}
	if !strings.Contains(src, "://") {
		p, err := filepath.Abs(src)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", src, err)
		}
		return &url.URL{Scheme: "file", Path: p}, nil
	}
	u, err := url.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("fetch: bad source URL: %w", err)
	}
	if u.Scheme == "file" && u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("fetch %s: file URL with a remote host", src)
	}
	return u, nil
}

// redact hides the password of a URL with user information.
func redact(src string) string {
	u, err := url.Parse(src)
	if err != nil || u.User == nil {
		return src
	}
	return u.Redacted()
}

// ErrTooLarge is wrapped by the error for a body over the size cap.
var ErrTooLarge = errors.New("body exceeds the size cap")

// HTTPError is a non-2xx, non-304 answer. Callers test for it with
// errors.As, e.g. to treat 404 as "this file does not exist".
type HTTPError struct {
	URL        string // with any password redacted
	StatusCode int
	// RetryAfter is the server's Retry-After, if it sent one.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("fetch %s: HTTP %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

func retryable(err error) bool {
	var se *HTTPError
	if errors.As(err, &se) {
		return se.StatusCode >= 500 || se.StatusCode == http.StatusTooManyRequests || se.StatusCode == http.StatusRequestTimeout
	}
	if errors.Is(err, ErrTooLarge) || errors.Is(err, errBadGzip) {
		return false
	}
	// Network errors, timeouts, truncated bodies.
	return true
}

func (c *Client) getHTTP(ctx context.Context, src string, u *url.URL, prev vulndb.FetchState, opts []RequestOption) (*Body, vulndb.FetchState, error) {
	name := redact(src)
	var lastErr error
	for attempt := 0; ; attempt++ {
		body, state, err := c.attempt(ctx, src, name, prev, opts)
		if err == nil || errors.Is(err, vulndb.ErrNotModified) {
			if err == nil {
				c.log.Info("feed downloaded", "url", name, "bytes", body.Size, "attempts", attempt+1)
			}
			return body, state, err
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, prev, fmt.Errorf("fetch %s: %w", name, ctx.Err())
		}
		if attempt >= c.opts.Retries || !retryable(err) {
			break
		}
		delay := c.backoff(attempt)
		var se *HTTPError
		if errors.As(err, &se) && se.RetryAfter > 0 {
			delay = min(se.RetryAfter, c.opts.MaxRetryAfter)
		}
		c.log.Warn("feed fetch failed, retrying", "url", name, "attempt", attempt+1, "delay", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, prev, fmt.Errorf("fetch %s: %w (last error: %v)", name, ctx.Err(), lastErr)
		case <-t.C:
		}
	}
	if c.opts.Retries > 0 && retryable(lastErr) {
		return nil, prev, fmt.Errorf("after %d attempts: %w", c.opts.Retries+1, lastErr)
	}
	return nil, prev, lastErr
}

// backoff is the jittered delay before retry number attempt+1: a random
// duration in [d/2, d) with d = Backoff·2^attempt capped at MaxBackoff.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.Backoff
	for i := 0; i < attempt && d < c.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.opts.MaxBackoff)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half)
}

// attempt sends one request and spools its body.
func (c *Client) attempt(ctx context.Context, src, name string, prev vulndb.FetchState, opts []RequestOption) (*Body, vulndb.FetchState, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	// The stall watchdog cancels the attempt when neither headers nor body
	// bytes arrive for StallTimeout.
	var stalled atomic.Bool
	watchdog := time.AfterFunc(c.opts.StallTimeout, func() { stalled.Store(true); cancel() })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, prev, fmt.Errorf("fetch %s: %w", name, err)
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if prev.ETag != "" {
		req.Header.Set("If-None-Match", prev.ETag)
	}
	if prev.LastModified != "" {
		req.Header.Set("If-Modified-Since", prev.LastModified)
	}
	for _, o := range opts {
		o(req)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if stalled.Load() {
			return nil, prev, fmt.Errorf("fetch %s: no response within %v", name, c.opts.StallTimeout)
		}
		return nil, prev, fmt.Errorf("fetch %s: %w", name, err)
	}
	defer resp.Body.Close()
	watchdog.Reset(c.opts.StallTimeout)

	state := vulndb.FetchState{
		ETag:         resp.Header.Get("ETag"),
		LastModified: resp.Header.Get("Last-Modified"),
	}
	switch {
	case resp.StatusCode == http.StatusNotModified:
		if state.ETag == "" {
			state.ETag = prev.ETag
		}
		if state.LastModified == "" {
			state.LastModified = prev.LastModified
		}
		state.Checksum = prev.Checksum
		return nil, state, vulndb.ErrNotModified
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, prev, &HTTPError{URL: name, StatusCode: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	if c.opts.MaxBodySize >= 0 && resp.ContentLength > c.opts.MaxBodySize {
		return nil, prev, fmt.Errorf("fetch %s: %w (Content-Length %d, cap %d)", name, ErrTooLarge, resp.ContentLength, c.opts.MaxBodySize)
	}
	r := &watchedReader{r: resp.Body, t: watchdog, d: c.opts.StallTimeout}
	body, err := c.spool(name, r)
	if err != nil {
		if stalled.Load() {
			return nil, prev, fmt.Errorf("fetch %s: body stalled for %v", name, c.opts.StallTimeout)
		}
		return nil, prev, err
	}
	body.URL = src
	state.Checksum = body.Checksum
	if prev.Checksum != "" && prev.Checksum == body.Checksum {
		body.Close()
		return nil, state, vulndb.ErrNotModified
	}
	return body, state, nil
}

// watchedReader pushes the stall watchdog back on every read that returns
// bytes.
type watchedReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (w *watchedReader) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.t.Reset(w.d)
	}
	return n, err
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

var errBadGzip = errors.New("corrupt gzip content")

// spool copies r into an unlinked temporary file, decompressing gzip, and
// returns the Body positioned at its start.
func (c *Client) spool(name string, r io.Reader) (*Body, error) {
	f, err := os.CreateTemp(c.opts.TempDir, "drydock-fetch-*")
	if err != nil {
		return nil, fmt.Errorf("fetch %s: spool: %w", name, err)
	}
	// The file stays readable through f; unlinking now leaves nothing
	// behind if the process dies.
	_ = os.Remove(f.Name())
	body, err := c.fill(name, f, r)
	if err != nil {
		f.Close()
		return nil, err
	}
	return body, nil
}

// fill writes the content of r (decompressed when gzip) into f, checking
// the cap, and returns the Body over f.
func (c *Client) fill(name string, f *os.File, r io.Reader) (*Body, error) {
	src := c.limit(r)
	br := newPeekReader(src)
	magic, _ := br.peek(2)
	var content io.Reader = br
	gz := len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
	if gz {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c.wrapReadErr(name, err, true)
		}
		defer zr.Close()
		content = c.limit(zr)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), content)
	if err != nil {
		return nil, c.wrapReadErr(name, err, gz)
	}
	return &Body{
		Size:     n,
		Checksum: hex.EncodeToString(h.Sum(nil)),
		f:        f,
		r:        io.NewSectionReader(f, 0, n),
	}, nil
}

func (c *Client) wrapReadErr(name string, err error, gz bool) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("fetch %s: %w (cap %d bytes)", name, ErrTooLarge, c.opts.MaxBodySize)
	}
	if gz && (errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum)) {
		return fmt.Errorf("fetch %s: %w: %v", name, errBadGzip, err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) && gz {
		return fmt.Errorf("fetch %s: truncated gzip content: %w", name, err)
	}
	return fmt.Errorf("fetch %s: reading body: %w", name, err)
}

// limit wraps r so that reading more than MaxBodySize bytes fails with
// ErrTooLarge.
func (c *Client) limit(r io.Reader) io.Reader {
	if c.opts.MaxBodySize < 0 {
		return r
	}
	return &capReader{r: r, left: c.opts.MaxBodySize}
}

type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Allow a clean EOF exactly at the cap.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// peekReader lets fill look at the first bytes without consuming them.
type peekReader struct {
	r   io.Reader
	buf []byte
}

func newPeekReader(r io.Reader) *peekReader { return &peekReader{r: r} }

func (p *peekReader) peek(n int) ([]byte, error) {
	for len(p.buf) < n {
		b := make([]byte, n-len(p.buf))
		m, err := p.r.Read(b)
		p.buf = append(p.buf, b[:m]...)
		if err != nil {
			return p.buf, err
		}
	}
	return p.buf[:n], nil
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.buf) > 0 {
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// getLocal reads a local file or directory.
func (c *Client) getLocal(ctx context.Context, src, path string, prev vulndb.FetchState) (*Body, vulndb.FetchState, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, prev, fmt.Errorf("fetch %s: %w", src, err)
	}
	var body *Body
	if fi.IsDir() {
		sum, err := c.dirChecksum(ctx, path)
		if err != nil {
			return nil, prev, fmt.Errorf("fetch %s: %w", src, err)
		}
		body = &Body{Dir: path, Checksum: sum}
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, prev, fmt.Errorf("fetch %s: %w", src, err)
		}
		body, err = c.spool(src, f)
		f.Close()
		if err != nil {
			return nil, prev, err
		}
	}
	body.URL = src
	state := vulndb.FetchState{Checksum: body.Checksum}
	if prev.Checksum != "" && prev.Checksum == body.Checksum {
		body.Close()
		return nil, state, vulndb.ErrNotModified
	}
	return body, state, nil
}

// dirChecksum hashes the regular files under dir: each one's slash path,
// size and SHA-256, in path order. Each file is held to the size cap.
func (c *Client) dirChecksum(ctx context.Context, dir string) (string, error) {
	type entry struct {
		rel  string
		size int64
		sum  string
	}
	var entries []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, c.limit(f))
		if errors.Is(err, ErrTooLarge) {
			return fmt.Errorf("%s: %w (cap %d bytes)", rel, ErrTooLarge, c.opts.MaxBodySize)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		entries = append(entries, entry{filepath.ToSlash(rel), n, hex.EncodeToString(h.Sum(nil))})
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].rel < entries[j].rel })
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", e.rel, e.size, e.sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
