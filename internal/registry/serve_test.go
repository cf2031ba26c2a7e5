package registry_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeOperations checks /healthz and /metrics, and that SIGTERM lets
// a request in flight (an upload still streaming its body) finish before
// the process exits cleanly.
func TestServeOperations(t *testing.T) {
	dataDir := t.TempDir()
	drydock(t, "repo", "create", "--data-dir", dataDir, "ops/app")
	srv := startServer(t, dataDir)
	pw := srv.password(t)

	res, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("healthz: %d %q", res.StatusCode, body)
	}

	req, _ := http.NewRequest("POST", srv.URL+"/v2/ops/app/blobs/uploads/", nil)
	req.SetBasicAuth("AWS", pw)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")

	// A PATCH whose body arrives in two halves, with SIGTERM in between.
	pr, pwr := io.Pipe()
	req, _ = http.NewRequest("PATCH", srv.URL+loc, pr)
	req.SetBasicAuth("AWS", pw)
	req.ContentLength = 8
	type result struct {
		res *http.Response
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		done <- result{res, err}
	}()
	if _, err := pwr.Write([]byte("half")); err != nil {
		t.Fatal(err)
	}
	// The server must have the request before it is told to stop: wait
	// until the uploads gauge or the in-flight gauge shows it.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(scrapeMetrics(t, srv.URL), "drydock_http_requests_in_flight 2") {
		if time.Now().After(deadline) {
			t.Fatal("the PATCH never showed up as in flight")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := pwr.Write([]byte("rest")); err != nil {
		t.Fatal(err)
	}
	pwr.Close()
	r := <-done
	if r.err != nil {
		t.Fatalf("in-flight PATCH failed during shutdown: %v", r.err)
	}
	r.res.Body.Close()
	if r.res.StatusCode != 202 || r.res.Header.Get("Range") != "0-7" {
		t.Fatalf("in-flight PATCH: %d range %q", r.res.StatusCode, r.res.Header.Get("Range"))
	}
	select {
	case <-srv.done:
	case <-time.After(30 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, srv.log)
	}
	if !strings.Contains(srv.log.String(), "stopped") {
		t.Fatalf("no clean stop in the log:\n%s", srv.log)
	}
}

// scrapeMetrics returns the /metrics exposition (it needs no credentials).
func scrapeMetrics(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !bytes.Contains(b, []byte("drydock_http_requests_total")) {
		t.Fatalf("metrics: %d\n%s", res.StatusCode, b)
	}
	return string(b)
}

// TestAnonymousPull checks --anonymous-pull: reads work without
// credentials, writes still need them.
func TestAnonymousPull(t *testing.T) {
	dataDir := t.TempDir()
	drydock(t, "repo", "create", "--data-dir", dataDir, "public/app")
	srv := startServer(t, dataDir, "--anonymous-pull")
	pw := srv.password(t)
	blob := []byte("public bytes")
	d := "sha256:" + sha256hex(blob)
	req, _ := http.NewRequest("POST", srv.URL+"/v2/public/app/blobs/uploads/?digest="+d, bytes.NewReader(blob))
	req.SetBasicAuth("AWS", pw)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("authenticated push: %d", res.StatusCode)
	}
	res, err = http.Get(srv.URL + "/v2/public/app/blobs/" + d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, blob) {
		t.Fatalf("anonymous pull: %d %q", res.StatusCode, got)
	}
	res, err = http.Post(srv.URL+"/v2/public/app/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("anonymous push: %d %v", res.StatusCode, res.Header)
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
