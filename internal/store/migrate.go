package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrate applies the migrations of one domain (a package that owns a set
// of tables, such as "registry" or "vulndb") that are not applied yet.
//
// Each migration is a file NNNN_name.sql at the top of fsys, applied in
// order of NNNN, each in its own transaction together with its record in
// schema_migrations. A file NNNN_name.sqlite.sql or NNNN_name.postgres.sql
// replaces the plain one on that backend. A migration, once released, is
// never edited: changes come as new files. Concurrent callers (several
// replicas starting at once) are serialised by a lock, so each migration
// runs once.
func (db *DB) Migrate(ctx context.Context, domain string, fsys fs.FS) error {
	migs, err := loadMigrations(fsys, db.dialect)
	if err != nil {
		return fmt.Errorf("store: migrations of %s: %w", domain, err)
	}
	// CREATE TABLE IF NOT EXISTS is not safe against itself on PostgreSQL:
	// two replicas creating the table at once can fail on the catalog
	// ("type already exists"). The migration lock serialises them.
	err = db.InTx(ctx, func(tx *Tx) error {
		if err := lockMigrations(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			domain TEXT NOT NULL,
			version INTEGER NOT NULL,
			name TEXT NOT NULL,
			applied_at BIGINT NOT NULL,
			PRIMARY KEY (domain, version))`)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: create schema_migrations: %w", err)
	}
	for _, m := range migs {
		err := db.InTx(ctx, func(tx *Tx) error {
			if err := lockMigrations(ctx, tx); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE domain = ? AND version = ?`,
				domain, m.version).Scan(&n); err != nil {
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (domain, version, name, applied_at) VALUES (?, ?, ?, ?)`,
				domain, m.version, m.name, time.Now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", domain, err)
		}
	}
	return nil
}

// lockMigrations serialises migrations across the processes sharing a
// PostgreSQL store, until the transaction ends. SQLite needs nothing: its
// transactions take the write lock when they begin.
func lockMigrations(ctx context.Context, tx *Tx) error {
	if tx.dialect != Postgres {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte("drydock-migrate"))
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, int64(h.Sum64()>>1)); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	return nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(fsys fs.FS, d Dialect) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	byVersion := map[int]migration{}
	specific := map[int]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			continue
		}
		base := strings.TrimSuffix(name, ".sql")
		variant := ""
		for _, v := range []string{SQLite.String(), Postgres.String()} {
			if strings.HasSuffix(base, "."+v) {
				variant, base = v, strings.TrimSuffix(base, "."+v)
			}
		}
		if variant != "" && variant != d.String() {
			continue
		}
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %q is not named NNNN_name.sql", name)
		}
		if prev, dup := byVersion[version]; dup && specific[version] == (variant != "") {
			return nil, fmt.Errorf("migrations %q and %q share version %d", prev.name, name, version)
		}
		if specific[version] && variant == "" {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		byVersion[version] = migration{version: version, name: name, sql: string(body)}
		specific[version] = variant != ""
	}
	if len(byVersion) == 0 {
		return nil, errors.New("no migrations found")
	}
	out := make([]migration, 0, len(byVersion))
	for _, m := range byVersion {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}
