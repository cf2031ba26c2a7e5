package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// leftovers lists every file under the blob store's uploads directory: an
// upload removed with its data leaves none (neither bytes nor hash state).
func (e *env) leftovers() []string {
	e.t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(e.blobs.Root(), "uploads"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return files
}

// TestMaxBlobSize: an upload that would pass the maximum blob size is
// answered 413 SIZE_INVALID, whichever way the bytes come (declared up
// front or found while streaming), and the upload is removed with its
// data; a blob of exactly the maximum is stored.
func TestMaxBlobSize(t *testing.T) {
	const max = 1000
	e := newEnv(t, storetest.SQLite(t), registry.Options{MaxBlobSize: max})
	e.createRepo("capped")
	exact := randomBytes(t, max)
	over := randomBytes(t, max+1)

	// streamed sends body with no Content-Length (chunked encoding), so the
	// server learns the size only by reading.
	streamed := func(method, url string, hdr map[string]string, body []byte) resp {
		t.Helper()
		req, _ := http.NewRequest(method, e.srv.URL+url, io.MultiReader(bytes.NewReader(body)))
		req.ContentLength = -1
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return resp{status: res.StatusCode, header: res.Header, body: b}
	}
	start := func() string {
		t.Helper()
		r := e.do("POST", "/v2/capped/blobs/uploads/", nil, nil)
		e.expect(r, http.StatusAccepted, "")
		return r.header.Get("Location")
	}
	gone := func(loc string) {
		t.Helper()
		e.expect(e.do("GET", loc, nil, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
		if files := e.leftovers(); len(files) != 0 {
			t.Fatalf("files left after an oversized upload: %v", files)
		}
	}

	t.Run("monolithic declared", func(t *testing.T) {
		r := e.do("POST", "/v2/capped/blobs/uploads/?digest="+digest.FromBytes(over).String(), nil, over)
		e.expect(r, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
		if files := e.leftovers(); len(files) != 0 {
			t.Fatalf("files left: %v", files)
		}
	})
	t.Run("monolithic streamed", func(t *testing.T) {
		r := streamed("POST", "/v2/capped/blobs/uploads/?digest="+digest.FromBytes(over).String(), nil, over)
		e.expect(r, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
		if files := e.leftovers(); len(files) != 0 {
			t.Fatalf("files left: %v", files)
		}
	})
	t.Run("second chunk declared", func(t *testing.T) {
		loc := start()
		e.expect(e.do("PATCH", loc, map[string]string{"Content-Range": "0-599"}, over[:600]), http.StatusAccepted, "")
		r := e.do("PATCH", loc, map[string]string{"Content-Range": "600-1000"}, over[600:])
		e.expect(r, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
		gone(loc)
	})
	t.Run("stream", func(t *testing.T) {
		loc := start()
		e.expect(streamed("PATCH", loc, nil, over), http.StatusRequestEntityTooLarge, "SIZE_INVALID")
		gone(loc)
	})
	t.Run("last chunk in the PUT", func(t *testing.T) {
		loc := start()
		e.expect(e.do("PATCH", loc, nil, over[:max]), http.StatusAccepted, "")
		r := streamed("PUT", loc+"?digest="+digest.FromBytes(over).String(), nil, over[max:])
		e.expect(r, http.StatusRequestEntityTooLarge, "SIZE_INVALID")
		gone(loc)
		e.expect(e.do("HEAD", "/v2/capped/blobs/"+digest.FromBytes(over).String(), nil, nil), http.StatusNotFound, "")
	})
	t.Run("exactly the maximum", func(t *testing.T) {
		d := digest.FromBytes(exact)
		loc := start()
		e.expect(streamed("PATCH", loc, nil, exact[:500]), http.StatusAccepted, "")
		e.expect(streamed("PUT", loc+"?digest="+d.String(), nil, exact[500:]), http.StatusCreated, "")
		r := e.do("GET", "/v2/capped/blobs/"+d.String(), nil, nil)
		e.expect(r, http.StatusOK, "")
		if !bytes.Equal(r.body, exact) {
			t.Fatal("stored blob differs")
		}
		r = e.do("POST", "/v2/capped/blobs/uploads/?digest="+digest.FromBytes(exact[1:]).String(), nil, exact[1:])
		e.expect(r, http.StatusCreated, "")
	})
}

// TestUploadsInFlightReturnsToZero runs a real server (with
// --max-blob-size) and reads its
// drydock_registry_uploads_in_flight gauge: it counts the upload requests
// being served, and is back at 0 after uploads that completed, failed,
// were cancelled, were abandoned after POST, or whose client went away in
// the middle of the body.
func TestUploadsInFlightReturnsToZero(t *testing.T) {
	dataDir := t.TempDir()
	drydock(t, "repo", "create", "--data-dir", dataDir, "gauge/app")
	srv := startServer(t, dataDir, "--max-blob-size", "4096")
	pw := srv.password(t)
	gaugeRe := regexp.MustCompile(`(?m)^drydock_registry_uploads_in_flight (\S+)$`)
	gauge := func() string {
		t.Helper()
		m := gaugeRe.FindStringSubmatch(scrapeMetrics(t, srv.URL))
		if m == nil {
			t.Fatal("no drydock_registry_uploads_in_flight in /metrics")
		}
		return m[1]
	}
	waitGauge := func(want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for got := gauge(); got != want; got = gauge() {
			if time.Now().After(deadline) {
				t.Fatalf("uploads in flight: %s, want %s", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	do := func(method, path string, body io.Reader, n int64) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, body)
		req.SetBasicAuth("AWS", pw)
		if body != nil {
			req.ContentLength = n
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	start := func() string {
		t.Helper()
		res := do("POST", "/v2/gauge/app/blobs/uploads/", nil, 0)
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("POST: %d", res.StatusCode)
		}
		return res.Header.Get("Location")
	}
	data := []byte("some layer bytes")
	d := digest.FromBytes(data)

	// Completed, chunked.
	loc := start()
	do("PATCH", loc, bytes.NewReader(data), int64(len(data)))
	if res := do("PUT", loc+"?digest="+d.String(), nil, 0); res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", res.StatusCode)
	}
	// Failed: wrong digest.
	loc = start()
	if res := do("PUT", loc+"?digest="+digest.FromString("other").String(), bytes.NewReader(data), int64(len(data))); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT with a wrong digest: %d", res.StatusCode)
	}
	// Cancelled, and abandoned right after POST.
	loc = start()
	if res := do("DELETE", loc, nil, 0); res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", res.StatusCode)
	}
	start()
	// Monolithic, and one over --max-blob-size.
	if res := do("POST", "/v2/gauge/app/blobs/uploads/?digest="+d.String(), bytes.NewReader(data), int64(len(data))); res.StatusCode != http.StatusCreated {
		t.Fatalf("monolithic POST: %d", res.StatusCode)
	}
	big := bytes.Repeat([]byte("y"), 4097)
	if res := do("POST", "/v2/gauge/app/blobs/uploads/?digest="+digest.FromBytes(big).String(), bytes.NewReader(big), int64(len(big))); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("monolithic POST over --max-blob-size: %d", res.StatusCode)
	}
	waitGauge("0")

	// Aborted: the client sends part of a chunk, is seen in flight, then
	// goes away.
	loc = start()
	pr, pwr := io.Pipe()
	req, _ := http.NewRequest("PATCH", srv.URL+loc, pr)
	req.SetBasicAuth("AWS", pw)
	req.ContentLength = 4000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req = req.WithContext(ctx)
	done := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			err = errors.New("the aborted PATCH got an answer: " + res.Status)
		}
		done <- err
	}()
	if _, err := pwr.Write(bytes.Repeat([]byte("x"), 1000)); err != nil {
		t.Fatal(err)
	}
	waitGauge("1")
	cancel()
	pwr.CloseWithError(errors.New("client went away"))
	if err := <-done; err == nil {
		t.Fatal("the aborted PATCH did not fail on the client")
	}
	waitGauge("0")
	// The upload is still there, without the aborted chunk, to resume.
	if res := do("GET", loc, nil, 0); res.StatusCode != http.StatusNoContent || res.Header.Get("Range") != "0-0" {
		t.Fatalf("upload after the aborted chunk: %d, Range %q", res.StatusCode, res.Header.Get("Range"))
	}
}
