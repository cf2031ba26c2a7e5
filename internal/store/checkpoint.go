package store

import (
	"context"
	"database/sql"
)

// walBackstop is the WAL size, in pages, at which a committing connection
// checkpoints by itself (SQLite's wal_autocheckpoint); below it the
// checkpointer does it in the background. SQLite's default is 1000.
const walBackstop = 4096

// checkpointer copies committed pages from the WAL into the database file
// in the background, after commits, so that a commit does not do it
// itself: with SQLite's automatic checkpoints, the transaction whose
// commit crosses 1000 WAL pages pays for copying all of them (and an
// fsync of the database file) before it returns, inside the write lock.
// Its checkpoints are PASSIVE: they never wait for, or block, readers or
// writers, and copy what they can. Commits coalesce: a burst of them wakes
// it once.
type checkpointer struct {
	db     *sql.DB
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func startCheckpointer(db *sql.DB) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go c.run(ctx)
	return c
}

// committed tells the checkpointer a write transaction committed.
func (c *checkpointer) committed() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		// A failed checkpoint loses nothing: the pages stay in the WAL,
		// the next wake tries again, and walBackstop bounds the WAL.
		var busy, frames, copied int
		_ = c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	}
}

// stop ends the checkpointer and waits for it.
func (c *checkpointer) stop() {
	c.cancel()
	<-c.done
}
