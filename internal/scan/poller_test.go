package scan

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// TestPollerWaitsForOutboxHoles: an outbox id above a hole is not consumed
// until the hole is older than gapWait (on PostgreSQL the lower id may
// still commit); then it is, and the cursor never moves back.
func TestPollerWaitsForOutboxHoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.MigrateRegistry(ctx); err != nil {
			t.Fatal(err)
		}
		clk := &clock{t: time.Now().UTC()}
		s, err := New(ctx, Options{Store: db, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutRegistryScanningConfiguration(ctx, Config{ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("*")}}}); err != nil {
			t.Fatal(err)
		}
		insert := func(id int64, repo string) {
			t.Helper()
			p, _ := json.Marshal(store.ImagePushed{Repository: repo, Digest: "sha256:" + repo, MediaType: "application/vnd.oci.image.manifest.v1+json",
				ArtifactType: "application/vnd.oci.image.config.v1+json"})
			if _, err := db.ExecContext(ctx, `INSERT INTO registry_outbox (id, created_at, kind, payload) VALUES (?, ?, ?, ?)`,
				id, clk.Now().UnixMilli(), store.OutboxImagePushed, string(p)); err != nil {
				t.Fatal(err)
			}
		}
		cursor := func() int64 {
			var c int64
			if err := db.QueryRowContext(ctx, `SELECT position FROM scan_cursors WHERE name = ?`, pushCursor).Scan(&c); err != nil && err != sql.ErrNoRows {
				t.Fatal(err)
			}
			return c
		}
		insert(1, "a")
		insert(3, "c")
		if n, err := s.ConsumePushes(ctx); err != nil || n != 1 || cursor() != 1 {
			t.Fatalf("first poll: %d %v, cursor %d", n, err, cursor())
		}
		if n, err := s.ConsumePushes(ctx); err != nil || n != 0 {
			t.Fatalf("poll with a fresh hole: %d %v", n, err)
		}
		insert(2, "b") // the slow transaction commits
		if n, err := s.ConsumePushes(ctx); err != nil || n != 2 || cursor() != 3 {
			t.Fatalf("poll after the hole filled: %d %v, cursor %d", n, err, cursor())
		}
		insert(5, "e")
		clk.Add(gapWait + time.Second)
		if n, err := s.ConsumePushes(ctx); err != nil || n != 1 || cursor() != 5 {
			t.Fatalf("poll past an old hole: %d %v, cursor %d", n, err, cursor())
		}
		for _, repo := range []string{"a", "b", "c", "e"} {
			if _, err := s.queue.State(ctx, repo, "sha256:"+repo, kindScan); err != nil {
				t.Errorf("no scan job for %s: %v", repo, err)
			}
		}
	})
}

// TestPollerReplicas: two services polling one store start each pushed
// image's scan once. (The outcome also holds without the cursor row lock,
// thanks to the per-image window check; the test guards the outcome.)
func TestPollerReplicas(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var svcs []*Service
		for i := 0; i < 2; i++ {
			s, err := New(ctx, Options{Store: db})
			if err != nil {
				t.Fatal(err)
			}
			svcs = append(svcs, s)
		}
		if _, err := svcs[0].PutRegistryScanningConfiguration(ctx, Config{ScanType: Basic, Rules: []Rule{{ScanFrequency: ScanOnPush, RepositoryFilters: wild("*")}}}); err != nil {
			t.Fatal(err)
		}
		const events = 40
		for i := 1; i <= events; i++ {
			repo := fmt.Sprintf("r%02d", i)
			p, _ := json.Marshal(store.ImagePushed{Repository: repo, Digest: "sha256:" + repo, MediaType: "application/vnd.oci.image.manifest.v1+json"})
			if _, err := db.ExecContext(ctx, `INSERT INTO registry_outbox (created_at, kind, payload) VALUES (?, ?, ?)`,
				time.Now().UnixMilli(), store.OutboxImagePushed, string(p)); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, s := range svcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 40; i++ {
					if _, err := s.pollPushes(ctx, 3); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		var starts, jobs int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_starts`).Scan(&starts); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_jobs`).Scan(&jobs); err != nil {
			t.Fatal(err)
		}
		if starts != events || jobs != events {
			t.Fatalf("%d scan starts and %d jobs for %d pushes", starts, jobs, events)
		}
	})
}
