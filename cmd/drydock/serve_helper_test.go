package main

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

// served is a `drydock serve` running in the test's process.
type served struct {
	addr   string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan int
}

var servingRE = regexp.MustCompile(`msg="drydock serving" addr=(\S+)`)

// startServe runs `drydock serve --addr 127.0.0.1:0 ARGS...` with getenv
// (nil: no environment) and waits until it logs its address. The server
// stops when the test ends, if stop was not called before.
func startServe(t *testing.T, getenv func(string) string, args ...string) *served {
	t.Helper()
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{logs: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	e := &env{stdin: strings.NewReader(""), stdout: &syncBuffer{}, stderr: s.logs,
		log: slog.New(slog.NewTextHandler(s.logs, nil)), getenv: getenv}
	go func() { s.done <- run(ctx, e, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := servingRE.FindStringSubmatch(s.logs.String()); m != nil {
			s.addr = m[1]
			return s
		}
		select {
		case code := <-s.done:
			t.Fatalf("serve exited with %d:\n%s", code, s.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", s.logs)
		}
	}
}

// stop shuts the server down and returns its exit status.
func (s *served) stop() int {
	s.cancel()
	code := <-s.done
	s.done <- code // for the cleanup
	return code
}
