package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestServeDeliversEvents runs `drydock serve` in-process with a webhook
// target added by `drydock events targets add`, pushes an image with
// go-containerregistry and checks the webhook gets its signed event.
func TestServeDeliversEvents(t *testing.T) {
	dir := t.TempDir()
	const secret = "serve-test-secret"
	var mu sync.Mutex
	var bodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ts, sig string
		for _, part := range strings.Split(r.Header.Get("X-Drydock-Signature"), ",") {
			k, v, _ := strings.Cut(part, "=")
			if k == "t" {
				ts = v
			} else if k == "v1" {
				sig = v
			}
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "." + string(body)))
		if given, err := hex.DecodeString(sig); err != nil || !hmac.Equal(given, mac.Sum(nil)) {
			w.WriteHeader(http.StatusUnauthorized)
			t.Errorf("bad signature %q", r.Header.Get("X-Drydock-Signature"))
			return
		}
		mu.Lock()
		bodies = append(bodies, body)
		mu.Unlock()
	}))
	defer hook.Close()
	if code, _, errOut := runDrydock(t, "events", "targets", "add", "--data-dir", dir, "--name", "hook", "--url", hook.URL,
		"--secret", secret, "--pattern", `{"detail-type":["ECR Image Action"]}`); code != 0 {
		t.Fatalf("targets add: %s", errOut)
	}

	srv := startServe(t, nil, "--data-dir", dir, "--create-on-push", "--scan-workers", "1")
	addr, logs := srv.addr, srv.logs
	code, pw, errOut := runDrydock(t, "login-password", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("login-password: %s", errOut)
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(addr+"/apps/web:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "AWS", Password: strings.TrimSpace(pw)})); err != nil {
		t.Fatal(err)
	}
	dg, _ := img.Digest()

	for deadline := time.Now().Add(60 * time.Second); ; {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event delivered:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := srv.stop(); code != 0 {
		t.Errorf("serve exit %d:\n%s", code, logs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("%d events delivered, want 1", len(bodies))
	}
	var ev struct {
		DetailType string `json:"detail-type"`
		Detail     map[string]any
	}
	if err := json.Unmarshal(bodies[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DetailType != "ECR Image Action" || ev.Detail["repository-name"] != "apps/web" || ev.Detail["image-digest"] != dg.String() ||
		ev.Detail["image-tag"] != "v1" || ev.Detail["action-type"] != "PUSH" {
		t.Errorf("event %s", bodies[0])
	}
}
