// Package store is Drydock's metadata store: one database handle over SQLite
// (the embedded default, in WAL mode) or PostgreSQL (scale-out), with
// transactions that retry on contention and embedded, per-domain migrations.
//
// Queries are written once with '?' placeholders; the handle rewrites them to
// PostgreSQL's $n form. SQL used by both backends sticks to the common subset
// (ON CONFLICT, RETURNING, CTEs); a migration may ship a dialect-specific
// variant where the two genuinely differ (see Migrate).
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL backend behind a DB.
type Dialect int

const (
	// SQLite is the embedded default.
	SQLite Dialect = iota
	// Postgres is PostgreSQL, for many replicas sharing one store.
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DB is a handle on the metadata store. It is safe for concurrent use.
type DB struct {
	sql     *sql.DB
	dialect Dialect
	// location is a printable description of where the data lives, without
	// credentials.
	location string
	// ckpt checkpoints a SQLite store's WAL in the background (nil on
	// PostgreSQL).
	ckpt *checkpointer
}

// DefaultFile is the SQLite file name inside the data directory.
const DefaultFile = "drydock.db"

// Open opens the store named by dsn. An empty dsn means SQLite in
// dataDir/drydock.db; "sqlite:PATH" or a plain path means SQLite at PATH;
// "postgres://..." or "postgresql://..." means PostgreSQL.
func Open(ctx context.Context, dsn, dataDir string) (*DB, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	case dsn == "":
		if dataDir == "" {
			return nil, errors.New("store: neither a store URL nor a data directory was given")
		}
		return openSQLite(ctx, filepath.Join(dataDir, DefaultFile))
	default:
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	}
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory for %s: %w", path, err)
	}
	// The store holds key material: create the file owner-only before SQLite
	// does (SQLite gives its -wal and -shm files the database file's mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: create %s: %w", path, err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("store: create %s: %w", path, err)
	}
	// The path goes into a file: URI, so characters that URIs reserve must
	// be escaped or "a#b/drydock.db" would open "a".
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	if fi.Size() == 0 {
		if err := initSQLite(ctx, uri); err != nil {
			return nil, fmt.Errorf("store: create %s: %w", path, err)
		}
	}
	// WAL lets readers proceed beside the single writer; synchronous=FULL
	// makes every commit durable across power loss, not only process death.
	// _txlock=immediate takes the write lock at BEGIN, so two writers never
	// deadlock on a read-to-write upgrade; busy_timeout queues them instead.
	// A 32 MiB page cache per connection (SQLite's default is 2 MiB) keeps a
	// large transaction's pages (re-evaluation writes thousands of findings
	// in one) in memory instead of spilling and re-reading them.
	// temp_store=MEMORY keeps statement journals (multi-row upserts inside
	// a transaction write one) in memory rather than in temporary files.
	// wal_autocheckpoint is only a backstop: the checkpointer copies the
	// WAL into the database file in the background (see checkpointer).
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)", "cache_size(-32768)", "temp_store(MEMORY)",
		fmt.Sprintf("wal_autocheckpoint(%d)", walBackstop)} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	conn, err := sql.Open("sqlite", uri+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	conn.SetMaxOpenConns(8)
	conn.SetConnMaxIdleTime(5 * time.Minute)
	if err := conn.PingContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	return &DB{sql: conn, dialect: SQLite, location: "sqlite:" + path, ckpt: startCheckpointer(conn)}, nil
}

// sqlitePageSize is the page size of new SQLite stores. SQLite's default
// is 4 KiB; a finding row with its JSON is over 1 KiB and re-evaluation
// writes thousands in one transaction, and every page is one frame (two
// writes) in the WAL at commit and one more at checkpoint: 16 KiB pages
// write the same rows in a quarter of the frames, with shallower trees.
// A store created with another page size keeps it (changing it needs a
// VACUUM outside WAL mode).
const sqlitePageSize = 16384

// initSQLite gives a new, empty database file its page size and WAL mode;
// both are fixed once the first page is written.
func initSQLite(ctx context.Context, uri string) error {
	conn, err := sql.Open("sqlite", uri)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, p := range []string{fmt.Sprintf("PRAGMA page_size = %d", sqlitePageSize), "PRAGMA journal_mode = WAL"} {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	conn, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	conn.SetMaxOpenConns(32)
	conn.SetConnMaxIdleTime(5 * time.Minute)
	if err := conn.PingContext(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: connect to postgres %s: %w", redact(dsn), err)
	}
	return &DB{sql: conn, dialect: Postgres, location: redact(dsn)}, nil
}

// redact removes the password from a URL so it can be logged.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparseable URL)"
	}
	return u.Redacted()
}

// Dialect reports which backend this DB uses.
func (db *DB) Dialect() Dialect { return db.dialect }

// Location describes where the data lives, safe to log.
func (db *DB) Location() string { return db.location }

// SQL returns the underlying database/sql handle, for code that needs it
// directly (bulk loaders, LISTEN/NOTIFY). Queries through it are not rebound.
func (db *DB) SQL() *sql.DB { return db.sql }

// Close closes the store.
func (db *DB) Close() error {
	if db.ckpt != nil {
		db.ckpt.stop()
	}
	return db.sql.Close()
}

// ExecContext runs a statement that returns no rows.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return db.sql.ExecContext(ctx, db.Rebind(query), args...)
}

// QueryContext runs a query that returns rows.
func (db *DB) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return db.sql.QueryContext(ctx, db.Rebind(query), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (db *DB) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return db.sql.QueryRowContext(ctx, db.Rebind(query), args...)
}

// Tx is a transaction on the store; its methods rebind placeholders like DB's.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
}

// Dialect reports which backend this transaction runs on.
func (tx *Tx) Dialect() Dialect { return tx.dialect }

// ExecContext runs a statement that returns no rows.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(ctx, rebind(tx.dialect, query), args...)
}

// QueryContext runs a query that returns rows.
func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(ctx, rebind(tx.dialect, query), args...)
}

// QueryRowContext runs a query that returns at most one row.
func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, rebind(tx.dialect, query), args...)
}

// SQL returns the underlying *sql.Tx. Queries through it are not rebound.
func (tx *Tx) SQL() *sql.Tx { return tx.tx }

// maxAttempts bounds how often InTx retries a transaction that lost a race.
const maxAttempts = 8

// InTx runs fn in a transaction and commits it if fn returns nil. A
// transaction that fails on a transient conflict (SQLite busy, PostgreSQL
// serialization failure or deadlock) is retried from the start with backoff,
// so fn must be safe to run more than once and must not keep state between
// attempts.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.inTx(ctx, db.sql, fn)
}

// beginner starts transactions: the pool (*sql.DB) or one connection
// (*sql.Conn).
type beginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

func (db *DB) inTx(ctx context.Context, on beginner, fn func(tx *Tx) error) error {
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := db.inTxOnce(ctx, on, fn)
		if err == nil || attempt == maxAttempts || !IsTransient(err) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (while retrying after: %v)", ctx.Err(), err)
		case <-t.C:
		}
		backoff *= 2
	}
}

func (db *DB) inTxOnce(ctx context.Context, on beginner, fn func(tx *Tx) error) (err error) {
	sqlTx, err := on.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = sqlTx.Rollback()
		}
	}()
	if err := fn(&Tx{tx: sqlTx, dialect: db.dialect}); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	if db.ckpt != nil {
		db.ckpt.committed()
	}
	return nil
}

// Conn is one connection of the store, held until Close. Transactions
// run on it one after another keep its SQLite page cache: SQLite drops a
// connection's cache when another connection wrote since it was last
// used, so a long series of write transactions taking connections from
// the pool, beside readers, keeps reading back the pages it just wrote.
type Conn struct {
	db   *DB
	conn *sql.Conn
	// relaxed is set while commits on the connection do not wait for the
	// disk (see RelaxDurability).
	relaxed bool
}

// Conn takes a connection from the pool; Close returns it.
func (db *DB) Conn(ctx context.Context) (*Conn, error) {
	c, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: connection: %w", err)
	}
	return &Conn{db: db, conn: c}, nil
}

// InTx is DB.InTx on this connection.
func (c *Conn) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	return c.db.inTx(ctx, c.conn, fn)
}

// RelaxDurability lets the connection's commits return before they are
// on disk (SQLite: synchronous=NORMAL, PostgreSQL: synchronous_commit
// off) until Close. A crash or power loss may then undo the last of them,
// whole and in order, never half of one; the first later commit made with
// full durability, on any connection, makes them durable as well, since
// both write-ahead logs are sequential. It suits work that a durable job
// runs again until it completes, such as re-evaluation's batches: a
// commit undone is redone by the next run.
func (c *Conn) RelaxDurability(ctx context.Context) error {
	q := `PRAGMA synchronous = NORMAL`
	if c.db.dialect == Postgres {
		q = `SET synchronous_commit = off`
	}
	if _, err := c.conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("store: relax durability: %w", err)
	}
	c.relaxed = true
	return nil
}

// Close returns the connection to the pool, with full durability again:
// if that cannot be restored, the connection is closed instead.
func (c *Conn) Close() error {
	if c.relaxed {
		q := `PRAGMA synchronous = FULL`
		if c.db.dialect == Postgres {
			q = `RESET synchronous_commit`
		}
		// The context of the work may be done; restoring must not be.
		if _, err := c.conn.ExecContext(context.Background(), q); err != nil {
			_ = c.conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		c.relaxed = false
	}
	return c.conn.Close()
}

// IsTransient reports whether err is a conflict that succeeds when retried.
func IsTransient(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
		return false
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		switch sqlErr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// IsUniqueViolation reports whether err is a unique or primary key conflict.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqlErr *sqlite.Error
	if errors.As(err, &sqlErr) {
		c := sqlErr.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// Indexed returns table for a FROM clause, naming index on SQLite
// (INDEXED BY) so that its planner reads through it. Without statistics
// SQLite's planner prefers a unique index or one with more equality terms
// even where the other index is covering or far more selective; callers
// name the index where that was measured to matter. PostgreSQL's planner
// keeps statistics and gets the table alone.
func (db *DB) Indexed(table, index string) string {
	if db.dialect == SQLite {
		return table + " INDEXED BY " + index
	}
	return table
}

// Rebind rewrites '?' placeholders for this DB's dialect.
func (db *DB) Rebind(query string) string { return rebind(db.dialect, query) }

// rebind turns '?' placeholders into $1, $2, ... for PostgreSQL, leaving
// question marks inside quoted strings and identifiers alone.
func rebind(d Dialect, query string) string {
	if d != Postgres || strings.IndexByte(query, '?') < 0 {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
