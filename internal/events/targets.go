package events

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// Target is a webhook that receives the events matching its pattern.
type Target struct {
	Name string
	URL  string
	// Secret keys the HMAC-SHA256 signature of every delivery.
	Secret string
	// Pattern is an EventBridge event pattern (JSON); empty matches all.
	Pattern   string
	Enabled   bool
	CreatedAt time.Time
}

// ErrTargetExists and ErrNoTarget are returned by AddTarget and
// RemoveTarget.
var (
	ErrTargetExists = errors.New("events: a target with that name exists")
	ErrNoTarget     = errors.New("events: no such target")
)

var targetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// NewSecret returns a random signing secret (32 bytes, hex).
func NewSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("events: secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// AddTarget stores a new target after checking its name, URL and pattern.
func (s *Service) AddTarget(ctx context.Context, t Target) error {
	if !targetName.MatchString(t.Name) {
		return fmt.Errorf("events: target name %q: use 1-64 letters, digits, '.', '_' or '-'", t.Name)
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("events: target URL %q: want an http or https URL", t.URL)
	}
	if t.Secret == "" {
		return errors.New("events: target secret is empty")
	}
	if _, err := CompilePattern(t.Pattern); err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO events_targets (name, url, secret, pattern, enabled, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, t.Name, t.URL, t.Secret, t.Pattern, boolInt(t.Enabled), ms(s.now()))
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %s", ErrTargetExists, t.Name)
	}
	if err != nil {
		return fmt.Errorf("events: add target: %w", err)
	}
	return nil
}

// RemoveTarget deletes a target. Its pending deliveries are dropped; its
// dead letters stay for inspection.
func (s *Service) RemoveTarget(ctx context.Context, name string) error {
	return s.db.InTx(ctx, func(tx *store.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM events_targets WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("events: remove target: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: %s", ErrNoTarget, name)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM events_deliveries WHERE target = ? AND status = ?`, name, statusPending); err != nil {
			return fmt.Errorf("events: remove target: %w", err)
		}
		return nil
	})
}

// SetEnabled enables or disables a target.
func (s *Service) SetEnabled(ctx context.Context, name string, enabled bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE events_targets SET enabled = ? WHERE name = ?`, boolInt(enabled), name)
	if err != nil {
		return fmt.Errorf("events: update target: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrNoTarget, name)
	}
	return nil
}

// Targets lists the targets by name.
func (s *Service) Targets(ctx context.Context) ([]Target, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, url, secret, pattern, enabled, created_at FROM events_targets ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("events: targets: %w", err)
	}
	defer rows.Close()
	var out []Target
	for rows.Next() {
		var t Target
		var enabled, created int64
		if err := rows.Scan(&t.Name, &t.URL, &t.Secret, &t.Pattern, &enabled, &created); err != nil {
			return nil, fmt.Errorf("events: targets: %w", err)
		}
		t.Enabled, t.CreatedAt = enabled != 0, time.UnixMilli(created).UTC()
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *Service) target(ctx context.Context, name string) (Target, error) {
	var t Target
	var enabled int64
	err := s.db.QueryRowContext(ctx, `SELECT name, url, secret, enabled FROM events_targets WHERE name = ?`, name).
		Scan(&t.Name, &t.URL, &t.Secret, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("%w: %s", ErrNoTarget, name)
	}
	t.Enabled = enabled != 0
	return t, err
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func ms(t time.Time) int64 { return t.UnixMilli() }
