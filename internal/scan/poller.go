package scan

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

const pushCursor = "registry_outbox"

// gapWait is how long the poller waits for a hole in the registry outbox's
// ids to fill: on PostgreSQL an id is taken before its transaction commits,
// so a lower id can appear after a higher one. A hole older than this is
// an id whose transaction rolled back.
const gapWait = 10 * time.Second

// ConsumePushes starts the scans for the images pushed since the last call
// (Run calls it on its push poll interval) and returns how many outbox
// events it consumed.
func (s *Service) ConsumePushes(ctx context.Context) (int, error) { return s.pollPushes(ctx, 500) }

// pollPushes reads the registry outbox's image-pushed events after the
// stored cursor and starts the scans the configuration asks for, in one
// transaction with the cursor's move. It returns how many events it
// consumed.
func (s *Service) pollPushes(ctx context.Context, limit int) (int, error) {
	if err := s.announceCoverageIfDue(ctx); err != nil {
		return 0, err
	}
	var cursor int64
	err := s.db.QueryRowContext(ctx, `SELECT position FROM scan_cursors WHERE name = ?`, pushCursor).Scan(&cursor)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("scan: outbox cursor: %w", err)
	}
	events, err := s.reg.Outbox(ctx, cursor, limit)
	if err != nil || len(events) == 0 {
		return 0, err
	}
	now := s.opts.Now()
	// Consume events up to the first hole that may still fill.
	n := 0
	for i, e := range events {
		prev := cursor
		if i > 0 {
			prev = events[i-1].ID
		}
		if e.ID != prev+1 && now.Sub(e.CreatedAt) < gapWait && prev != 0 {
			break
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	events = events[:n]
	cfg, err := s.RegistryScanningConfiguration(ctx)
	if err != nil {
		return 0, err
	}
	// Decide outside the transaction (repository settings may live in
	// other domains' tables).
	type start struct {
		repo, digest string
		p            payload
		change       *registryChange // a deletion or creation, applied in order (deletes.go)
	}
	var starts []start
	for _, e := range events {
		if c := s.changeOf(e); c != nil {
			starts = append(starts, start{change: c})
			continue
		}
		if e.Kind != store.OutboxImagePushed {
			continue
		}
		var ev store.ImagePushed
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			s.log.Warn("scan: unreadable outbox event", "id", e.ID, "err", err)
			continue
		}
		if !scannable(ev.MediaType, ev.ArtifactType) {
			continue
		}
		onPush, err := s.repoScanOnPush(ctx, cfg, ev.Repository)
		if err != nil {
			return 0, err
		}
		eff := cfg.Effective(ev.Repository, onPush)
		if eff.ScanFrequency == Manual {
			continue
		}
		starts = append(starts, start{ev.Repository, ev.Digest, payload{ScanType: cfg.ScanType, Frequency: eff.ScanFrequency, Trigger: "push", Tags: ev.Tags, Replaces: replacedDigests(ev)}, nil})
	}
	last := events[len(events)-1].ID
	queued := 0
	moved := false
	err = s.db.InTx(ctx, func(tx *store.Tx) error {
		queued, moved = 0, false
		// Several replicas may poll at once: hold the cursor's row and
		// give up this round if another replica moved it meanwhile.
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_cursors (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING`, pushCursor); err != nil {
			return err
		}
		lock := ""
		if tx.Dialect() == store.Postgres {
			lock = " FOR UPDATE"
		}
		var pos int64
		if err := tx.QueryRowContext(ctx, `SELECT position FROM scan_cursors WHERE name = ?`+lock, pushCursor).Scan(&pos); err != nil {
			return err
		}
		if pos != cursor {
			moved = true
			return nil
		}
		for _, st := range starts {
			if st.change != nil {
				if err := s.applyChangeTx(ctx, tx, cfg, st.change, now); err != nil {
					return err
				}
				continue
			}
			if err := s.reinstateTx(ctx, tx, st.repo, st.digest, now); err != nil {
				return err
			}
			err := s.startTx(ctx, tx, st.repo, st.digest, st.p, now)
			if errors.Is(err, ErrLimitExceeded) {
				// Pushed again inside its window (a new tag on the same
				// image): the image's scan stands.
				continue
			}
			if err != nil {
				return err
			}
			queued++
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO scan_cursors (name, position) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET position = excluded.position`, pushCursor, last)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("scan: start scans on push: %w", err)
	}
	if moved {
		return 0, nil
	}
	if queued > 0 {
		s.queue.Wake()
	}
	return n, nil
}

// RunOptions tune Run.
type RunOptions struct {
	// Concurrency is how many scans run at once (default 2).
	Concurrency int
	// PushPoll is how often the registry outbox is read (default 200 ms);
	// NotifyPush makes Run read it at once.
	PushPoll time.Duration
	// QueuePoll is how often the queue is checked without a wake-up
	// (default 2 s).
	QueuePoll time.Duration
	// VulnRefresh is how often the vulnerability index is brought to the
	// store's current generation (default 30 s).
	VulnRefresh time.Duration
	// ReindexRate is how many images per minute are re-indexed when the
	// indexer's catalogers are newer than their inventories' (default
	// DefaultReindexRate; negative: never).
	ReindexRate int
	// Yield, when set, says a push is being served: scan workers start no
	// new scan while it holds (up to 2 s at a time), so pushes keep their
	// throughput beside a backlog of scans.
	Yield func() bool
	// WindowSweep is how often the monitoring windows are enforced
	// (SweepWindows; default 1 min, and once at start).
	WindowSweep time.Duration
}

// Run starts scans for pushed images and runs the scan workers until ctx
// is cancelled.
func (s *Service) Run(ctx context.Context, o RunOptions) error {
	if o.PushPoll <= 0 {
		o.PushPoll = 200 * time.Millisecond
	}
	if o.VulnRefresh <= 0 {
		o.VulnRefresh = 30 * time.Second
	}
	w := &Workers{Queue: s.queue, Handler: s.handle, Concurrency: o.Concurrency, Poll: o.QueuePoll, Log: s.log, OnDead: s.jobDied, Yield: o.Yield}
	defer s.startReindexer(ctx, o)()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t := time.NewTicker(o.PushPoll)
	defer t.Stop()
	lastRefresh := time.Time{} // refresh and check re-evaluation at once
	sweepWindows := s.windowSweeper(o.WindowSweep)
	var lastPoll time.Time // the last outbox read, and how many events it found
	var found int
	for {
		sweepWindows(ctx)
		if s.opts.Vulns != nil && time.Since(lastRefresh) >= o.VulnRefresh {
			lastRefresh = time.Now()
			if _, err := s.opts.Vulns.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("scan: refresh vulnerability index", "err", err)
			}
			// Queue re-evaluation whenever the index is ahead of the
			// cursor: after a new generation, and after a restart that
			// interrupted one.
			if err := s.queueReevaluationIfBehind(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("scan: queue re-evaluation", "err", err)
			}
		}
		lastPoll, found = time.Now(), 0
		for {
			n, err := s.pollPushes(ctx, 500)
			found += n
			if err != nil {
				if ctx.Err() == nil {
					s.log.Error("scan: read pushes", "err", err)
				}
				break
			}
			if n < 500 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return <-done
		case <-t.C:
		case <-s.queue.pushed:
			// A push after a quiet read is read at once. In a burst (the
			// last read found several events) reads come at most every
			// pushCoalesce, in batches, so that their commits do not
			// crowd out the pushes' own.
			if d := pushCoalesce - time.Since(lastPoll); found > 1 && d > 0 {
				select {
				case <-ctx.Done():
					return <-done
				case <-time.After(d):
				}
			}
		}
	}
}
