package auth

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// capturedRequest is one line of the contract's logs/*/requests.jsonl:
// a request as a real AWS client (CLI v1, CLI v2, aws-sdk-go-v2) sent it.
type capturedRequest struct {
	Seq     int         `json:"seq"`
	Method  string      `json:"method"`
	Path    string      `json:"path"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
	file    string
}

// capturedRequests reads every captured request of the shared contract.
func capturedRequests(t testing.TB) []capturedRequest {
	t.Helper()
	dir := filepath.Join(filepath.Dir(testutil.Fixtures(t)), "contract", "logs")
	files, err := filepath.Glob(filepath.Join(dir, "*", "requests.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captured requests under %s: %v", dir, err)
	}
	var reqs []capturedRequest
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var c capturedRequest
			if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			c.file = filepath.Base(filepath.Dir(file))
			reqs = append(reqs, c)
		}
		f.Close()
	}
	return reqs
}

func (c capturedRequest) header(name string) string {
	for _, h := range c.Headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// request rebuilds the request as a net/http server would present it.
func (c capturedRequest) request(body string) *http.Request {
	r := httptest.NewRequest(c.Method, c.Path, strings.NewReader(body))
	r.Header = http.Header{}
	for _, h := range c.Headers {
		if strings.EqualFold(h[0], "Host") {
			r.Host = h[1]
			continue
		}
		r.Header.Add(h[0], h[1])
	}
	r.ContentLength = int64(len(body))
	return r
}

// TestSigV4CapturedRequests verifies every signature the contract captured
// from the real AWS CLI v1, CLI v2 and aws-sdk-go-v2 (all signed with the
// access key "test" and secret "test"), and refuses each of them once its
// body or a signed header is changed.
func TestSigV4CapturedRequests(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	f := newFixture(t, db, Options{})
	if _, err := db.ExecContext(ctx, `INSERT INTO auth_principals (name, created_at) VALUES ('capture', 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO auth_keys (id, principal, secret, disabled, created_at) VALUES ('test', 'capture', 'test', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	verified := 0
	for _, c := range capturedRequests(t) {
		if c.header("Authorization") == "" {
			continue // --no-sign-request
		}
		at, err := time.Parse(amzDateFormat, c.header("X-Amz-Date"))
		if err != nil {
			t.Fatalf("%s #%d: X-Amz-Date: %v", c.file, c.Seq, err)
		}
		f.clock.Set(at.Add(3 * time.Second))
		r := c.request(c.Body)
		if _, err := f.svc.Authenticate(r); err != nil {
			t.Errorf("%s #%d %s %s: %v", c.file, c.Seq, c.Method, c.Path, err)
			continue
		}
		verified++
		// Body tampering (an extra space keeps the JSON meaning).
		if _, err := f.svc.Authenticate(c.request(c.Body + " ")); err == nil {
			t.Errorf("%s #%d: a changed body still verifies", c.file, c.Seq)
		}
		// Header tampering.
		r = c.request(c.Body)
		r.Header.Set("X-Amz-Date", at.Add(time.Second).Format(amzDateFormat))
		if _, err := f.svc.Authenticate(r); err == nil {
			t.Errorf("%s #%d: a changed X-Amz-Date still verifies", c.file, c.Seq)
		}
	}
	// The contract's sigv4_verify.py re-derived 202 signatures.
	if verified != 202 {
		t.Errorf("verified %d captured signatures, want 202", verified)
	}
}
