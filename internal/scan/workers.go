package scan

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Handler runs one claimed job. It may complete the job itself inside its
// own transaction (Queue.CompleteTx, then MarkFinished); otherwise a nil
// error completes it and an error fails it (retried with backoff).
type Handler func(ctx context.Context, j *Job) error

// MarkFinished tells the workers the handler completed the job itself.
func (j *Job) MarkFinished() { j.finished = true }

// Workers run jobs from a Queue, at most Concurrency at a time, woken by
// Queue.Wake and by the poll interval (for jobs enqueued by other
// processes, retries coming due and expired leases).
type Workers struct {
	Queue   *Queue
	Handler Handler
	// Concurrency is how many jobs run at once (default 2).
	Concurrency int
	// Poll is how often the queue is checked without a wake-up (default
	// 2 s).
	Poll time.Duration
	// OnDead, when set, is told about each job that died because its
	// lease expired on its last attempt.
	OnDead func(ctx context.Context, j Job)
	// Yield, when set, says that foreground work (a push) wants the
	// machine: the workers claim no new job while it holds, for at most
	// MaxYield at a time (default 2 s), so scans never starve.
	Yield    func() bool
	MaxYield time.Duration
	Log      *slog.Logger
}

// yield waits while Yield holds, up to MaxYield. It reports false when ctx
// ended.
func (w *Workers) yield(ctx context.Context) bool {
	if w.Yield == nil || !w.Yield() {
		return true
	}
	max := w.MaxYield
	if max <= 0 {
		max = 2 * time.Second
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for w.Yield() {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return true
		case <-tick.C:
		}
	}
	return true
}

// Run claims and runs jobs until ctx is cancelled, then waits for the
// running jobs: each is given back to the queue (Release) unless it
// finished.
func (w *Workers) Run(ctx context.Context) error {
	n := w.Concurrency
	if n <= 0 {
		n = 2
	}
	poll := w.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	slots := make(chan struct{}, n)
	var wg sync.WaitGroup
	defer wg.Wait()
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		// Fill the free slots with ready jobs.
		for {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			if !w.yield(ctx) {
				<-slots
				return nil
			}
			j, err := w.Queue.Claim(ctx)
			if err != nil || j == nil {
				<-slots
				if err != nil && ctx.Err() == nil {
					log.Error("scan: claim", "err", err)
				}
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				w.run(ctx, log, j)
				// A finished job frees a slot: look for more at once.
				w.Queue.Wake()
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.Queue.Woken():
		case <-ticker.C:
			dead, err := w.Queue.ReapExpired(ctx)
			if err != nil && ctx.Err() == nil {
				log.Error("scan: reap", "err", err)
			}
			for _, j := range dead {
				log.Warn("scan: job dead after its last lease expired", "job", j.ID, "repository", j.Repository, "digest", j.Digest)
				if w.OnDead != nil {
					w.OnDead(ctx, j)
				}
			}
		}
	}
}

func (w *Workers) run(parent context.Context, log *slog.Logger, j *Job) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	// Heartbeat: extend the lease at a third of its length; stop the job
	// when the lease is lost (another worker owns it now).
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(w.Queue.opts.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := w.Queue.Extend(ctx, j); err != nil {
					if ctx.Err() == nil {
						log.Warn("scan: lease lost", "job", j.ID, "err", err)
						cancel()
					}
					return
				}
			}
		}
	}()
	err := w.Handler(ctx, j)
	cancel()
	<-hbDone
	// The job's own context is gone; finish its bookkeeping on one that
	// survives shutdown for a moment.
	bctx, bcancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
	defer bcancel()
	switch {
	case j.finished:
	case err == nil:
		if err := w.Queue.Complete(bctx, j); err != nil {
			log.Error("scan: complete job", "job", j.ID, "err", err)
		}
	case parent.Err() != nil:
		if err := w.Queue.Release(bctx, j); err != nil && !errors.Is(err, ErrLeaseLost) {
			log.Error("scan: release job", "job", j.ID, "err", err)
		}
	default:
		dead, ferr := w.Queue.Fail(bctx, j, err)
		if ferr != nil && !errors.Is(ferr, ErrLeaseLost) {
			log.Error("scan: fail job", "job", j.ID, "err", ferr)
		}
		log.Warn("scan: job failed", "job", j.ID, "repository", j.Repository, "digest", j.Digest,
			"attempt", j.Attempts, "dead", dead, "err", err)
	}
}
