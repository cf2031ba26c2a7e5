package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func compact(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return err.Error()
	}
	return out.String()
}

func TestEventsCommands(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runDrydock(t, "events", "targets", "add", "--data-dir", dir, "--name", "ci", "--url", "http://127.0.0.1:9/hook",
		"--pattern", `{"source":["aws.ecr"]}`)
	if code != 0 {
		t.Fatalf("targets add: exit %d: %s", code, errOut)
	}
	if secret := strings.TrimSpace(out); len(secret) != 64 {
		t.Errorf("generated secret %q, want 64 hex digits", secret)
	}
	if code, _, _ := runDrydock(t, "events", "targets", "add", "--data-dir", dir, "--name", "bad", "--url", "http://127.0.0.1:9/", "--pattern", `{"source":"aws.ecr"}`); code != 1 {
		t.Errorf("a bad pattern: exit %d, want 1", code)
	}
	if code, _, _ := runDrydock(t, "events", "targets", "add", "--data-dir", dir, "--name", "x"); code != 2 {
		t.Errorf("missing --url: exit %d, want 2", code)
	}
	code, out, errOut = runDrydock(t, "events", "targets", "list", "--data-dir", dir, "--json")
	var ts []struct {
		Name    string
		URL     string
		Enabled bool
		Pattern json.RawMessage
	}
	if code != 0 || json.Unmarshal([]byte(out), &ts) != nil || len(ts) != 1 || ts[0].Name != "ci" || !ts[0].Enabled || compact(ts[0].Pattern) != `{"source":["aws.ecr"]}` {
		t.Fatalf("targets list: exit %d %s %s", code, out, errOut)
	}
	if strings.Contains(out, "secret") {
		t.Error("targets list shows the secret")
	}
	if code, _, errOut := runDrydock(t, "events", "targets", "disable", "--data-dir", dir, "ci"); code != 0 {
		t.Fatalf("targets disable: %s", errOut)
	}
	if code, out, _ := runDrydock(t, "events", "targets", "list", "--data-dir", dir); code != 0 || !strings.Contains(out, "false") {
		t.Errorf("targets list after disable: %s", out)
	}

	// tail prints what the outboxes hold, as JSON lines.
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	push := func(repo string) {
		p, _ := json.Marshal(store.ImagePushed{Repository: repo, Digest: "sha256:" + strings.Repeat("a", 64), MediaType: "application/vnd.oci.image.manifest.v1+json", Tags: []string{"v1"}})
		if _, err := db.ExecContext(context.Background(), `INSERT INTO registry_outbox (created_at, kind, payload) VALUES (?, ?, ?)`,
			time.Now().UnixMilli(), store.OutboxImagePushed, string(p)); err != nil {
			t.Fatal(err)
		}
	}
	push("one")
	code, out, errOut = runDrydock(t, "events", "tail", "--data-dir", dir)
	var ev struct {
		DetailType string `json:"detail-type"`
		Account    string
		Detail     struct {
			Repo string `json:"repository-name"`
		}
	}
	if code != 0 || json.Unmarshal([]byte(out), &ev) != nil || ev.DetailType != "ECR Image Action" || ev.Detail.Repo != "one" || len(ev.Account) != 12 {
		t.Fatalf("tail: exit %d %q %s", code, out, errOut)
	}

	// tail --follow starts at the end and prints new events as they come.
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	e := &env{stdin: strings.NewReader(""), stdout: stdout, stderr: &syncBuffer{}, log: slog.New(slog.DiscardHandler), getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, e, []string{"events", "tail", "--data-dir", dir, "--follow", "--poll", "10ms"})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), `"two"`) {
		if time.Now().After(deadline) {
			t.Fatalf("tail --follow printed %q", stdout.String())
		}
		push("two") // until the tail has started, the first pushes may precede it
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("tail --follow: exit %d", code)
	}
	if strings.Contains(stdout.String(), `"one"`) {
		t.Error("tail --follow printed an event from before it started")
	}

	code, out, _ = runDrydock(t, "events", "dead-letters", "--data-dir", dir, "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("dead-letters: exit %d %q", code, out)
	}
	if code, _, _ := runDrydock(t, "events", "targets", "remove", "--data-dir", dir, "ci"); code != 0 {
		t.Error("targets remove failed")
	}
	if code, _, _ := runDrydock(t, "events", "targets", "remove", "--data-dir", dir, "ci"); code != 1 {
		t.Error("removing a missing target succeeded")
	}
}
