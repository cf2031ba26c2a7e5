package scan

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// Job states.
const (
	jobQueued  = "queued"
	jobRunning = "running"
	jobDone    = "done"
	jobDead    = "dead"
)

// ErrLeaseLost is returned when a job's lease expired and another worker
// claimed it (or it was completed) before this holder acted on it.
var ErrLeaseLost = errors.New("scan: job lease lost")

// Job is a claimed job. Its lease token proves ownership to Extend,
// Complete, Fail and Release.
type Job struct {
	ID          int64
	Repository  string
	Digest      string
	Kind        string
	Payload     string
	Attempts    int
	MaxAttempts int
	LeaseToken  string
	LeaseUntil  time.Time
	finished    bool
}

// NewJob is a job to enqueue.
type NewJob struct {
	Repository string
	Digest     string
	Kind       string
	Payload    string
	// RunAt delays the job; zero means now.
	RunAt time.Time
}

// QueueOptions tune a Queue; zero values take the defaults.
type QueueOptions struct {
	// Lease is how long a claim holds a job without a heartbeat (default
	// 2 minutes).
	Lease time.Duration
	// MaxAttempts is how many times a job runs before it is dead
	// (default 5).
	MaxAttempts int
	// Backoff is the delay before the first retry, doubled for each
	// further one (default 1 s), up to MaxBackoff (default 5 minutes).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Now is the clock (default time.Now); tests move it to expire leases.
	Now func() time.Time
}

// Queue is the durable job queue in the metadata store. Enqueuing is
// idempotent per (repository, image digest, kind): a job already queued or
// running is left as it is; a done or dead one is queued again. Claims
// take a lease; a lease not extended expires and the job is claimed again,
// so a killed process loses no job.
type Queue struct {
	db   *store.DB
	opts QueueOptions
	wake chan struct{}
	// pushed carries the process's other wake-up: an image was pushed
	// (Service.NotifyPush), for the push poller.
	pushed chan struct{}
}

// NewQueue returns the queue on db (migrated with Migrate).
func NewQueue(db *store.DB, opts QueueOptions) *Queue {
	if opts.Lease <= 0 {
		opts.Lease = 2 * time.Minute
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Queue{db: db, opts: opts, wake: make(chan struct{}, 1), pushed: make(chan struct{}, 1)}
}

// Wake tells the workers of this process that a job may be ready.
func (q *Queue) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Woken is signalled by Wake.
func (q *Queue) Woken() <-chan struct{} { return q.wake }

// Enqueue adds a job and wakes the workers. It reports whether a job was
// queued (false: the same job was already queued or running).
func (q *Queue) Enqueue(ctx context.Context, j NewJob) (bool, error) {
	var added bool
	err := q.db.InTx(ctx, func(tx *store.Tx) error {
		var err error
		added, err = q.EnqueueTx(ctx, tx, j)
		return err
	})
	if err == nil && added {
		q.Wake()
	}
	return added, err
}

// EnqueueTx adds a job inside the caller's transaction; call Wake after the
// commit.
func (q *Queue) EnqueueTx(ctx context.Context, tx *store.Tx, j NewJob) (bool, error) {
	now := q.opts.Now()
	runAt := j.RunAt
	if runAt.IsZero() {
		runAt = now
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO scan_jobs
		(repository, image_digest, kind, state, payload, attempts, max_attempts, run_at, created_at, updated_at)
		VALUES (?, ?, ?, 'queued', ?, 0, ?, ?, ?, ?)
		ON CONFLICT (repository, image_digest, kind) DO UPDATE SET
			state = 'queued', attempts = 0, payload = excluded.payload, max_attempts = excluded.max_attempts,
			run_at = excluded.run_at, lease_token = '', lease_until = 0, last_error = '', updated_at = excluded.updated_at
		WHERE scan_jobs.state IN ('done', 'dead')`,
		j.Repository, j.Digest, j.Kind, j.Payload, q.opts.MaxAttempts, ms(runAt), ms(now), ms(now))
	if err != nil {
		return false, fmt.Errorf("scan: enqueue %s@%s: %w", j.Repository, j.Digest, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("scan: enqueue: %w", err)
	}
	return n > 0, nil
}

func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("scan: lease token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Claim takes the next ready job (queued and due, or running with an
// expired lease and attempts left) with a fresh lease, in one statement.
// It returns nil when no job is ready.
func (q *Queue) Claim(ctx context.Context) (*Job, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	now := q.opts.Now()
	until := now.Add(q.opts.Lease)
	// PostgreSQL: concurrent claimers skip each other's locked candidate
	// rows. SQLite: the statement runs under the database's single write
	// lock, so the pick and the update are one atomic step.
	lock := ""
	if q.db.Dialect() == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	ready := `((state = 'queued' AND run_at <= ?) OR (state = 'running' AND lease_until < ? AND attempts < max_attempts))`
	row := q.db.QueryRowContext(ctx, `UPDATE scan_jobs SET state = 'running', lease_token = ?, lease_until = ?,
		attempts = attempts + 1, updated_at = ?
		WHERE id = (SELECT id FROM scan_jobs WHERE `+ready+` ORDER BY run_at, id LIMIT 1`+lock+`) AND `+ready+`
		RETURNING id, repository, image_digest, kind, payload, attempts, max_attempts`,
		token, ms(until), ms(now), ms(now), ms(now), ms(now), ms(now))
	j := &Job{LeaseToken: token, LeaseUntil: fromMS(ms(until))}
	err = row.Scan(&j.ID, &j.Repository, &j.Digest, &j.Kind, &j.Payload, &j.Attempts, &j.MaxAttempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		if store.IsTransient(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("scan: claim job: %w", err)
	}
	return j, nil
}

// Extend renews the job's lease (the heartbeat of a long job).
func (q *Queue) Extend(ctx context.Context, j *Job) error {
	until := q.opts.Now().Add(q.opts.Lease)
	res, err := q.db.ExecContext(ctx, `UPDATE scan_jobs SET lease_until = ? WHERE id = ? AND state = 'running' AND lease_token = ?`,
		ms(until), j.ID, j.LeaseToken)
	if err != nil {
		return fmt.Errorf("scan: extend lease of job %d: %w", j.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	j.LeaseUntil = fromMS(ms(until))
	return nil
}

// CompleteTx marks the job done inside the caller's transaction, so the
// job's results and its completion commit together. It fails with
// ErrLeaseLost when the lease was lost, and the caller rolls back.
func (q *Queue) CompleteTx(ctx context.Context, tx *store.Tx, j *Job) error {
	res, err := tx.ExecContext(ctx, `UPDATE scan_jobs SET state = 'done', lease_token = '', lease_until = 0, last_error = '', updated_at = ?
		WHERE id = ? AND state = 'running' AND lease_token = ?`, ms(q.opts.Now()), j.ID, j.LeaseToken)
	if err != nil {
		return fmt.Errorf("scan: complete job %d: %w", j.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Complete marks the job done.
func (q *Queue) Complete(ctx context.Context, j *Job) error {
	return q.db.InTx(ctx, func(tx *store.Tx) error { return q.CompleteTx(ctx, tx, j) })
}

// Backoff is the delay before the retry that follows attempt n (1-based).
func (q *Queue) Backoff(n int) time.Duration {
	d := q.opts.Backoff
	for i := 1; i < n && d < q.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, q.opts.MaxBackoff)
}

// Fail records a failed attempt: the job is queued again after the backoff,
// or dead when it has used its attempts. It reports whether the job is dead.
func (q *Queue) Fail(ctx context.Context, j *Job, cause error) (dead bool, err error) {
	now := q.opts.Now()
	msg := cause.Error()
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	state := jobQueued
	if j.Attempts >= j.MaxAttempts {
		state = jobDead
	}
	res, err := q.db.ExecContext(ctx, `UPDATE scan_jobs SET state = ?, run_at = ?, lease_token = '', lease_until = 0,
		last_error = ?, updated_at = ? WHERE id = ? AND state = 'running' AND lease_token = ?`,
		state, ms(now.Add(q.Backoff(j.Attempts))), msg, ms(now), j.ID, j.LeaseToken)
	if err != nil {
		return false, fmt.Errorf("scan: fail job %d: %w", j.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, ErrLeaseLost
	}
	return state == jobDead, nil
}

// Release gives a job back unrun (a worker shutting down): it is queued at
// once and the attempt does not count.
func (q *Queue) Release(ctx context.Context, j *Job) error {
	res, err := q.db.ExecContext(ctx, `UPDATE scan_jobs SET state = 'queued', attempts = attempts - 1, lease_token = '',
		lease_until = 0, updated_at = ? WHERE id = ? AND state = 'running' AND lease_token = ?`, ms(q.opts.Now()), j.ID, j.LeaseToken)
	if err != nil {
		return fmt.Errorf("scan: release job %d: %w", j.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// ReapExpired marks dead the running jobs whose lease expired on their last
// attempt (their worker died each time) and returns them.
func (q *Queue) ReapExpired(ctx context.Context) ([]Job, error) {
	now := ms(q.opts.Now())
	rows, err := q.db.QueryContext(ctx, `UPDATE scan_jobs SET state = 'dead', lease_token = '', last_error = 'lease expired on the last attempt', updated_at = ?
		WHERE state = 'running' AND lease_until < ? AND attempts >= max_attempts
		RETURNING id, repository, image_digest, kind, payload, attempts, max_attempts`, now, now)
	if err != nil {
		return nil, fmt.Errorf("scan: reap expired jobs: %w", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		if err := rows.Scan(&j.ID, &j.Repository, &j.Digest, &j.Kind, &j.Payload, &j.Attempts, &j.MaxAttempts); err != nil {
			return nil, fmt.Errorf("scan: reap expired jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan: reap expired jobs: %w", err)
	}
	return out, nil
}

// JobState is a job's state as stored, for status pages and tests.
type JobState struct {
	State     string
	Attempts  int
	RunAt     time.Time
	LastError string
}

// State returns the stored state of the job for (repository, digest, kind).
func (q *Queue) State(ctx context.Context, repository, digest, kind string) (JobState, error) {
	var s JobState
	var runAt int64
	err := q.db.QueryRowContext(ctx, `SELECT state, attempts, run_at, last_error FROM scan_jobs
		WHERE repository = ? AND image_digest = ? AND kind = ?`, repository, digest, kind).Scan(&s.State, &s.Attempts, &runAt, &s.LastError)
	if errors.Is(err, sql.ErrNoRows) {
		return JobState{}, fmt.Errorf("scan: no job for %s@%s (%s)", repository, digest, kind)
	}
	if err != nil {
		return JobState{}, fmt.Errorf("scan: job state: %w", err)
	}
	s.RunAt = fromMS(runAt)
	return s, nil
}
