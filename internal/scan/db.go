package scan

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the scan domain's migrations to db.
func Migrate(ctx context.Context, db *store.DB) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	if err := db.Migrate(ctx, "scan", sub); err != nil {
		return fmt.Errorf("scan: migrate: %w", err)
	}
	return migrateCoverage(ctx, db)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// loadConfig returns the stored registry scanning configuration, or the
// default when none was stored.
func loadConfig(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (Config, error) {
	var raw string
	err := q.QueryRowContext(ctx, `SELECT config FROM scan_config WHERE id = 1`).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("scan: read configuration: %w", err)
	}
	var c Config
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return Config{}, fmt.Errorf("scan: stored configuration: %w", err)
	}
	if c.Rules == nil {
		c.Rules = []Rule{}
	}
	return c, nil
}

func saveConfig(ctx context.Context, tx *store.Tx, c Config, now time.Time) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("scan: encode configuration: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO scan_config (id, config, updated_at) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at`, string(raw), ms(now)); err != nil {
		return fmt.Errorf("scan: store configuration: %w", err)
	}
	return nil
}
