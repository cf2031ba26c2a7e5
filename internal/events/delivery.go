package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/drydockhq/drydock/internal/store"
)

// Delivery states.
const (
	statusPending   = "pending"
	statusDelivered = "delivered"
	statusDead      = "dead"
)

// Signature and id headers of every delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>",
	// the HMAC keyed by the target's secret over "<t>.<body>".
	SignatureHeader = "X-Drydock-Signature"
	// EventIDHeader repeats the envelope's id, for de-duplication.
	EventIDHeader = "X-Drydock-Event-Id"
	// AttemptHeader is the 1-based attempt number.
	AttemptHeader = "X-Drydock-Delivery-Attempt"
)

// Sign returns the signature header value for body at time t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Poll reads new rows of both outboxes past the stored cursors and
// enqueues a delivery for every enabled target whose pattern matches, in
// one transaction with the cursors' move. It returns how many deliveries
// it enqueued.
func (s *Service) Poll(ctx context.Context) (int, error) {
	targets, err := s.Targets(ctx)
	if err != nil {
		return 0, err
	}
	type compiled struct {
		name string
		p    *Pattern
	}
	var live []compiled
	for _, t := range targets {
		if !t.Enabled {
			continue
		}
		p, err := CompilePattern(t.Pattern)
		if err != nil {
			s.log.Warn("events: target with a bad pattern skipped", "target", t.Name, "err", err)
			continue
		}
		live = append(live, compiled{t.Name, p})
	}
	total := 0
	for _, outbox := range []string{RegistryOutbox, ScanOutbox} {
		cursor, err := s.cursor(ctx, outbox)
		if err != nil {
			return total, err
		}
		rows, err := s.read(ctx, outbox, cursor, 500)
		if err != nil {
			return total, err
		}
		rows = s.untilGap(rows, cursor)
		if len(rows) == 0 {
			continue
		}
		type delivery struct {
			id, target, detailType string
			body                   []byte
		}
		var ds []delivery
		for _, r := range rows {
			for _, ev := range r.events {
				body, err := json.Marshal(ev)
				if err != nil {
					return total, fmt.Errorf("events: encode event: %w", err)
				}
				for _, t := range live {
					if t.p.Match(body) {
						ds = append(ds, delivery{ev.ID, t.name, ev.DetailType, body})
					}
				}
			}
		}
		last := rows[len(rows)-1].id
		now := ms(s.now())
		err = s.db.InTx(ctx, func(tx *store.Tx) error {
			for _, d := range ds {
				if _, err := tx.ExecContext(ctx, `INSERT INTO events_deliveries
					(event_id, target, detail_type, body, status, attempts, next_attempt, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (event_id, target) DO NOTHING`,
					d.id, d.target, d.detailType, string(d.body), statusPending, now, now, now); err != nil {
					return err
				}
			}
			// Another replica may have moved further: never move back.
			_, err := tx.ExecContext(ctx, `INSERT INTO events_cursors (name, position) VALUES (?, ?)
				ON CONFLICT (name) DO UPDATE SET position = excluded.position
				WHERE events_cursors.position < excluded.position`, outbox, last)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("events: enqueue deliveries: %w", err)
		}
		total += len(ds)
	}
	return total, nil
}

// untilGap keeps the rows up to the first hole in the ids that a
// transaction still in flight may fill (one younger than GapWait).
func (s *Service) untilGap(rows []row, cursor int64) []row {
	now := s.now()
	for i, r := range rows {
		prev := cursor
		if i > 0 {
			prev = rows[i-1].id
		}
		if r.id != prev+1 && prev != 0 && now.Sub(r.created) < s.opts.GapWait {
			return rows[:i]
		}
	}
	return rows
}

func (s *Service) cursor(ctx context.Context, name string) (int64, error) {
	var pos int64
	err := s.db.QueryRowContext(ctx, `SELECT position FROM events_cursors WHERE name = ?`, name).Scan(&pos)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("events: cursor %s: %w", name, err)
	}
	return pos, nil
}

// claimed is a delivery leased by one worker.
type claimed struct {
	eventID, target string
	body            []byte
	attempts        int
	owner           string
}

// claim leases up to n due deliveries of enabled targets. The lease is the
// row's next_attempt moved past the longest a try can take, so a worker
// that dies leaves the delivery to be retried after it expires.
// PostgreSQL replicas skip each other's locked rows; SQLite serialises
// the statement.
func (s *Service) claim(ctx context.Context, n int) ([]claimed, error) {
	now := s.now()
	owner := uuid.NewString()
	lock := ""
	if s.db.Dialect() == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	lease := now.Add(2*s.opts.Timeout + 5*time.Second)
	rows, err := s.db.QueryContext(ctx, `UPDATE events_deliveries
		SET next_attempt = ?, lease_owner = ?, attempts = attempts + 1, updated_at = ?
		WHERE (event_id, target) IN (SELECT event_id, target FROM events_deliveries
			WHERE status = ? AND next_attempt <= ?
			AND target IN (SELECT name FROM events_targets WHERE enabled = 1)
			ORDER BY next_attempt LIMIT ?`+lock+`)
		RETURNING event_id, target, body, attempts`,
		ms(lease), owner, ms(now), statusPending, ms(now), n)
	if err != nil {
		return nil, fmt.Errorf("events: claim deliveries: %w", err)
	}
	defer rows.Close()
	var out []claimed
	for rows.Next() {
		c := claimed{owner: owner}
		var body string
		if err := rows.Scan(&c.eventID, &c.target, &body, &c.attempts); err != nil {
			return nil, fmt.Errorf("events: claim deliveries: %w", err)
		}
		c.body = []byte(body)
		out = append(out, c)
	}
	return out, rows.Err()
}

// errPermanent marks an answer that retrying will not change.
var errPermanent = errors.New("permanent failure")

// send POSTs one delivery.
func (s *Service) send(ctx context.Context, t Target, c claimed) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(c.body))
	if err != nil {
		return fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "drydock-events/1")
	req.Header.Set(EventIDHeader, c.eventID)
	req.Header.Set(AttemptHeader, strconv.Itoa(c.attempts))
	req.Header.Set(SignatureHeader, Sign(t.Secret, s.now(), c.body))
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	default:
		return fmt.Errorf("%w: HTTP %d", errPermanent, resp.StatusCode)
	}
}

// backoff is the wait before try attempts+1: BaseBackoff doubled per try,
// capped at MaxBackoff, drawn from [d/2, d].
func (s *Service) backoff(attempts int) time.Duration {
	d := s.opts.BaseBackoff
	for i := 1; i < attempts && d < s.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, s.opts.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// finish records the outcomes of a batch of tries in one transaction
// (one commit instead of one per delivery), each only if its lease is
// still this worker's.
func (s *Service) finish(ctx context.Context, cs []claimed, sendErrs []error) error {
	now := s.now()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		for i, c := range cs {
			sendErr := sendErrs[i]
			var err error
			switch {
			case sendErr == nil:
				_, err = tx.ExecContext(ctx, `UPDATE events_deliveries SET status = ?, last_error = '', updated_at = ?
					WHERE event_id = ? AND target = ? AND lease_owner = ? AND status = ?`,
					statusDelivered, ms(now), c.eventID, c.target, c.owner, statusPending)
			case errors.Is(sendErr, errPermanent) || c.attempts >= s.opts.MaxAttempts:
				_, err = tx.ExecContext(ctx, `UPDATE events_deliveries SET status = ?, last_error = ?, updated_at = ?
					WHERE event_id = ? AND target = ? AND lease_owner = ? AND status = ?`,
					statusDead, truncate(sendErr.Error(), 500), ms(now), c.eventID, c.target, c.owner, statusPending)
			default:
				_, err = tx.ExecContext(ctx, `UPDATE events_deliveries SET next_attempt = ?, last_error = ?, updated_at = ?
					WHERE event_id = ? AND target = ? AND lease_owner = ? AND status = ?`,
					ms(now.Add(s.backoff(c.attempts))), truncate(sendErr.Error(), 500), ms(now), c.eventID, c.target, c.owner, statusPending)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("events: record deliveries: %w", err)
	}
	for i, c := range cs {
		if err := sendErrs[i]; err != nil && (errors.Is(err, errPermanent) || c.attempts >= s.opts.MaxAttempts) {
			s.log.Warn("events: delivery failed for good", "target", c.target, "event_id", c.eventID, "attempts", c.attempts, "err", err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// DeliverDue claims up to n due deliveries, sends them concurrently and
// records the outcomes. It returns how many it claimed.
func (s *Service) DeliverDue(ctx context.Context, n int) (int, error) {
	cs, err := s.claim(ctx, n)
	if err != nil || len(cs) == 0 {
		return 0, err
	}
	targets := map[string]Target{}
	for _, c := range cs {
		if _, ok := targets[c.target]; ok {
			continue
		}
		t, err := s.target(ctx, c.target)
		if err != nil {
			return 0, err
		}
		targets[c.target] = t
	}
	var wg sync.WaitGroup
	sendErrs := make([]error, len(cs))
	for i, c := range cs {
		wg.Go(func() { sendErrs[i] = s.send(ctx, targets[c.target], c) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		// Stopping: the leases expire and the deliveries are tried again.
		return len(cs), nil
	}
	return len(cs), s.finish(ctx, cs, sendErrs)
}

// Prune deletes the records of deliveries that succeeded before cutoff.
// Dead letters stay until their target is re-created or an operator
// removes them. It returns how many records it deleted.
func (s *Service) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM events_deliveries WHERE status = ? AND updated_at < ?`, statusDelivered, ms(before))
	if err != nil {
		return 0, fmt.Errorf("events: prune deliveries: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// RunOptions tune Run.
type RunOptions struct {
	// Poll is how often the outboxes and the queue are checked (default
	// 250 ms).
	Poll time.Duration
	// Concurrency is how many deliveries are sent at once (default 8).
	Concurrency int
	// Keep is how long records of successful deliveries are kept
	// (default 7 days); they are pruned once an hour.
	Keep time.Duration
}

// Run polls the outboxes and delivers events until ctx is cancelled.
// Errors are logged and retried on the next tick.
func (s *Service) Run(ctx context.Context, o RunOptions) error {
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Keep <= 0 {
		o.Keep = 7 * 24 * time.Hour
	}
	t := time.NewTicker(o.Poll)
	defer t.Stop()
	var pruned time.Time
	for {
		if now := s.now(); now.Sub(pruned) >= time.Hour {
			if _, err := s.Prune(ctx, now.Add(-o.Keep)); err != nil && ctx.Err() == nil {
				s.log.Error("events: prune", "err", err)
			}
			pruned = now
		}
		if _, err := s.Poll(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("events: read outboxes", "err", err)
		}
		for ctx.Err() == nil {
			n, err := s.DeliverDue(ctx, o.Concurrency)
			if err != nil && ctx.Err() == nil {
				s.log.Error("events: deliver", "err", err)
			}
			if n < o.Concurrency || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Delivery is a delivery's record.
type Delivery struct {
	EventID    string
	Target     string
	DetailType string
	Status     string
	Attempts   int
	LastError  string
	UpdatedAt  time.Time
	Body       json.RawMessage
}

// DeadLetters lists deliveries that failed for good, newest first.
func (s *Service) DeadLetters(ctx context.Context, limit int) ([]Delivery, error) {
	return s.deliveries(ctx, `WHERE status = ? ORDER BY updated_at DESC, event_id LIMIT ?`, statusDead, limit)
}

// Deliveries lists every delivery record of a target, oldest first.
func (s *Service) Deliveries(ctx context.Context, target string) ([]Delivery, error) {
	return s.deliveries(ctx, `WHERE target = ? ORDER BY created_at, event_id`, target)
}

func (s *Service) deliveries(ctx context.Context, where string, args ...any) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT event_id, target, detail_type, status, attempts, last_error, updated_at, body
		FROM events_deliveries `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("events: deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var updated int64
		var body string
		if err := rows.Scan(&d.EventID, &d.Target, &d.DetailType, &d.Status, &d.Attempts, &d.LastError, &updated, &body); err != nil {
			return nil, fmt.Errorf("events: deliveries: %w", err)
		}
		d.UpdatedAt, d.Body = time.UnixMilli(updated).UTC(), json.RawMessage(body)
		out = append(out, d)
	}
	return out, rows.Err()
}
