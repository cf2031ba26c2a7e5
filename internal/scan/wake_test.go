package scan

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// TestNotifyPushWakesThePoller: with a push poll interval of an hour, an
// image pushed after Run's first read of the outbox is picked up at once
// when NotifyPush is called (and never otherwise within the test).
func TestNotifyPushWakesThePoller(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := New(ctx, Options{Store: db})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutRegistryScanningConfiguration(ctx, Config{ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("*")}}}); err != nil {
			t.Fatal(err)
		}
		// Notifications never block, with or without a poller.
		for range 100 {
			s.NotifyPush()
		}
		push := func(repo string) {
			t.Helper()
			p, _ := json.Marshal(store.ImagePushed{Repository: repo, Digest: "sha256:" + repo, MediaType: "application/vnd.oci.image.manifest.v1+json",
				ArtifactType: "application/vnd.oci.image.config.v1+json"})
			if _, err := db.ExecContext(ctx, `INSERT INTO registry_outbox (created_at, kind, payload) VALUES (?, ?, ?)`,
				time.Now().UnixMilli(), store.OutboxImagePushed, string(p)); err != nil {
				t.Fatal(err)
			}
		}
		queued := func(repo string) {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := s.queue.State(ctx, repo, "sha256:"+repo, kindScan); err == nil {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no scan job for %s after 30 s", repo)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		push("first")
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, RunOptions{PushPoll: time.Hour, QueuePoll: time.Hour}) }()
		// Run reads the outbox as it starts: once the first image's job
		// exists, that read is over and the poller waits for its hour.
		queued("first")
		push("second")
		s.NotifyPush()
		queued("second")
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
