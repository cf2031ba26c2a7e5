package scan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newTestQueue(t *testing.T, db *store.DB, opts QueueOptions) (*Queue, *clock) {
	t.Helper()
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	opts.Now = c.Now
	return NewQueue(db, opts), c
}

func TestQueueIdempotentEnqueue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q, _ := newTestQueue(t, db, QueueOptions{})
		j := NewJob{Repository: "r", Digest: "sha256:a", Kind: "basic"}
		for i, want := range []bool{true, false} {
			added, err := q.Enqueue(ctx, j)
			if err != nil || added != want {
				t.Fatalf("enqueue %d: added=%v err=%v, want %v", i, added, err, want)
			}
		}
		job, err := q.Claim(ctx)
		if err != nil || job == nil {
			t.Fatalf("claim: %v %v", job, err)
		}
		// Running: enqueue again changes nothing.
		if added, err := q.Enqueue(ctx, j); err != nil || added {
			t.Fatalf("enqueue while running: %v %v", added, err)
		}
		if again, err := q.Claim(ctx); err != nil || again != nil {
			t.Fatalf("second claim got %v %v", again, err)
		}
		if err := q.Complete(ctx, job); err != nil {
			t.Fatal(err)
		}
		// Done: enqueue queues it again.
		if added, err := q.Enqueue(ctx, j); err != nil || !added {
			t.Fatalf("enqueue after done: %v %v", added, err)
		}
		again, err := q.Claim(ctx)
		if err != nil || again == nil || again.ID != job.ID || again.Attempts != 1 {
			t.Fatalf("claim after re-enqueue: %+v %v", again, err)
		}
		// The old lease token is worthless now.
		if err := q.Complete(ctx, job); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("complete with stale token: %v", err)
		}
	})
}

// TestQueueKillAndReclaim: a worker claims a job and dies (never extends,
// completes or fails); once the lease expires another worker gets the job,
// and the dead worker's token no longer works.
func TestQueueKillAndReclaim(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q, clk := newTestQueue(t, db, QueueOptions{Lease: time.Minute, MaxAttempts: 3})
		if _, err := q.Enqueue(ctx, NewJob{Repository: "r", Digest: "sha256:a", Kind: "basic"}); err != nil {
			t.Fatal(err)
		}
		dead, err := q.Claim(ctx)
		if err != nil || dead == nil {
			t.Fatalf("claim: %v %v", dead, err)
		}
		clk.Add(59 * time.Second)
		if j, err := q.Claim(ctx); err != nil || j != nil {
			t.Fatalf("claimed inside the lease: %+v %v", j, err)
		}
		clk.Add(2 * time.Second)
		j, err := q.Claim(ctx)
		if err != nil || j == nil {
			t.Fatalf("expired lease not reclaimed: %v", err)
		}
		if j.ID != dead.ID || j.Attempts != 2 || j.LeaseToken == dead.LeaseToken {
			t.Fatalf("reclaimed job %+v (first claim %+v)", j, dead)
		}
		if err := q.Extend(ctx, dead); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("extend by the dead worker: %v", err)
		}
		// A heartbeat keeps the job past its first lease.
		clk.Add(50 * time.Second)
		if err := q.Extend(ctx, j); err != nil {
			t.Fatal(err)
		}
		clk.Add(50 * time.Second)
		if k, err := q.Claim(ctx); err != nil || k != nil {
			t.Fatalf("claimed a job whose lease was extended: %+v %v", k, err)
		}
		if err := q.Complete(ctx, j); err != nil {
			t.Fatal(err)
		}
		if s, _ := q.State(ctx, "r", "sha256:a", "basic"); s.State != jobDone {
			t.Fatalf("state %+v", s)
		}
	})
}

func TestQueueExpiredOnLastAttemptIsDead(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q, clk := newTestQueue(t, db, QueueOptions{Lease: time.Minute, MaxAttempts: 2})
		if _, err := q.Enqueue(ctx, NewJob{Repository: "r", Digest: "sha256:a", Kind: "basic"}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			if j, err := q.Claim(ctx); err != nil || j == nil {
				t.Fatalf("claim %d: %v", i, err)
			}
			clk.Add(2 * time.Minute)
		}
		if j, err := q.Claim(ctx); err != nil || j != nil {
			t.Fatalf("claimed beyond max attempts: %+v %v", j, err)
		}
		if dead, err := q.ReapExpired(ctx); err != nil || len(dead) != 1 || dead[0].Digest != "sha256:a" {
			t.Fatalf("reap: %+v %v", dead, err)
		}
		if s, _ := q.State(ctx, "r", "sha256:a", "basic"); s.State != jobDead {
			t.Fatalf("state %+v", s)
		}
	})
}

func TestQueueRetriesWithBackoff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q, clk := newTestQueue(t, db, QueueOptions{MaxAttempts: 3, Backoff: 10 * time.Second, MaxBackoff: time.Hour})
		if _, err := q.Enqueue(ctx, NewJob{Repository: "r", Digest: "sha256:a", Kind: "basic"}); err != nil {
			t.Fatal(err)
		}
		for attempt, wait := range []time.Duration{10 * time.Second, 20 * time.Second} {
			j, err := q.Claim(ctx)
			if err != nil || j == nil || j.Attempts != attempt+1 {
				t.Fatalf("attempt %d: %+v %v", attempt+1, j, err)
			}
			dead, err := q.Fail(ctx, j, fmt.Errorf("boom %d", attempt+1))
			if err != nil || dead {
				t.Fatalf("fail: dead=%v err=%v", dead, err)
			}
			s, _ := q.State(ctx, "r", "sha256:a", "basic")
			if s.State != jobQueued || !s.RunAt.Equal(clk.Now().Add(wait)) || s.LastError != fmt.Sprintf("boom %d", attempt+1) {
				t.Fatalf("after attempt %d: %+v, want run at %v", attempt+1, s, clk.Now().Add(wait))
			}
			clk.Add(wait - time.Millisecond)
			if k, _ := q.Claim(ctx); k != nil {
				t.Fatalf("claimed before its backoff ended")
			}
			clk.Add(time.Millisecond)
		}
		j, err := q.Claim(ctx)
		if err != nil || j == nil || j.Attempts != 3 {
			t.Fatalf("last attempt: %+v %v", j, err)
		}
		if dead, err := q.Fail(ctx, j, errors.New("final")); err != nil || !dead {
			t.Fatalf("last failure: dead=%v err=%v", dead, err)
		}
		clk.Add(24 * time.Hour)
		if k, _ := q.Claim(ctx); k != nil {
			t.Fatalf("a dead job was claimed")
		}
	})
}

// TestQueueConcurrentClaimers: many goroutines claim at once; every job is
// handed out exactly once.
func TestQueueConcurrentClaimers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q, _ := newTestQueue(t, db, QueueOptions{})
		const jobs = 60
		for i := 0; i < jobs; i++ {
			if _, err := q.Enqueue(ctx, NewJob{Repository: "r", Digest: fmt.Sprintf("sha256:%02d", i), Kind: "basic"}); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[int64]int{}
		var wg sync.WaitGroup
		var failures atomic.Int32
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				empty := 0
				for empty < 3 {
					j, err := q.Claim(ctx)
					if err != nil {
						t.Error(err)
						failures.Add(1)
						return
					}
					if j == nil {
						empty++
						continue
					}
					mu.Lock()
					seen[j.ID]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if failures.Load() > 0 {
			return
		}
		if len(seen) != jobs {
			t.Fatalf("claimed %d distinct jobs, want %d", len(seen), jobs)
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("job %d claimed %d times", id, n)
			}
		}
	})
}

// TestWorkers runs jobs through Workers: a failing job is retried, a
// cancelled run gives its jobs back, and at most Concurrency run at once.
func TestWorkers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		q := NewQueue(db, QueueOptions{Backoff: time.Millisecond, MaxAttempts: 3})
		var running, peak atomic.Int32
		var mu sync.Mutex
		done := map[string]int{}
		w := &Workers{Queue: q, Concurrency: 3, Poll: 50 * time.Millisecond, Handler: func(ctx context.Context, j *Job) error {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			if j.Digest == "sha256:flaky" && j.Attempts < 2 {
				return errors.New("flaky")
			}
			mu.Lock()
			done[j.Digest]++
			mu.Unlock()
			return nil
		}}
		errc := make(chan error, 1)
		go func() { errc <- w.Run(ctx) }()
		digests := []string{"sha256:flaky"}
		for i := 0; i < 20; i++ {
			digests = append(digests, fmt.Sprintf("sha256:%02d", i))
		}
		for _, d := range digests {
			if _, err := q.Enqueue(ctx, NewJob{Repository: "r", Digest: d, Kind: "basic"}); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			n := len(done)
			mu.Unlock()
			if n == len(digests) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d jobs ran", n, len(digests))
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if p := peak.Load(); p > 3 {
			t.Errorf("%d jobs ran at once, limit 3", p)
		}
		for d, n := range done {
			if n != 1 {
				t.Errorf("%s ran %d times", d, n)
			}
		}
		s, err := q.State(context.Background(), "r", "sha256:flaky", "basic")
		if err != nil || s.State != jobDone || s.Attempts != 2 {
			t.Errorf("flaky job: %+v %v", s, err)
		}
	})
}

// TestWorkersYield: while Yield holds, no job is claimed; a job runs once
// Yield lets go, and after MaxYield even if it never does.
func TestWorkersYield(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		q := NewQueue(db, QueueOptions{})
		for _, c := range []struct {
			name     string
			releases int64 // Yield holds for this many calls (-1: always)
			maxYield time.Duration
		}{{"released", 5, time.Minute}, {"starved", -1, 100 * time.Millisecond}} {
			var calls atomic.Int64
			yield := func() bool {
				n := calls.Add(1)
				return c.releases < 0 || n <= c.releases
			}
			ran := make(chan int64, 1)
			wctx, stop := context.WithCancel(ctx)
			w := &Workers{Queue: q, Concurrency: 1, Poll: 20 * time.Millisecond, Yield: yield, MaxYield: c.maxYield,
				Handler: func(ctx context.Context, j *Job) error { ran <- calls.Load(); return nil }}
			errc := make(chan error, 1)
			go func() { errc <- w.Run(wctx) }()
			if _, err := q.Enqueue(ctx, NewJob{Repository: "r", Digest: "sha256:" + c.name, Kind: "basic"}); err != nil {
				t.Fatal(err)
			}
			select {
			case n := <-ran:
				if c.releases >= 0 && n <= c.releases {
					t.Errorf("%s: the job ran while Yield held (call %d)", c.name, n)
				}
				if c.releases < 0 && n < 2 {
					t.Errorf("%s: the job ran without yielding (call %d)", c.name, n)
				}
			case <-time.After(60 * time.Second):
				t.Fatalf("%s: the job never ran", c.name)
			}
			stop()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
	})
}
