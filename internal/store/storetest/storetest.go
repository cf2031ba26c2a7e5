// Package storetest gives tests a fresh, empty metadata store on each
// backend: SQLite in a temporary directory, and PostgreSQL in a throwaway
// cluster the test binary starts itself (or the server named by
// DRYDOCK_TEST_POSTGRES_URL), one new database per test.
//
// A package whose tests use it calls Main from TestMain, so the cluster is
// started at most once per test binary and removed when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// EnvPostgresURL names an existing PostgreSQL server to use instead of
// starting one. The role must be allowed to create databases.
const EnvPostgresURL = "DRYDOCK_TEST_POSTGRES_URL"

// pgBinDir is where Debian's postgresql package puts the server binaries.
const pgBinDir = "/usr/lib/postgresql/15/bin"

// harness holds the PostgreSQL server shared by the tests of one binary.
// It is the only package-level state, and it exists only in test binaries.
var harness struct {
	once    sync.Once
	baseURL string // admin URL, database "postgres"
	stop    func()
	err     error
}

// Main runs the tests and then stops the PostgreSQL cluster if one was
// started. Use it from TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	if harness.stop != nil {
		harness.stop()
	}
	return code
}

// Each runs fn as a subtest once per backend ("sqlite", "postgres"), each
// with a fresh, empty store.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a fresh SQLite store in a temporary directory.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Postgres returns a store on a fresh, empty PostgreSQL database.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), PostgresURL(t), "")
	if err != nil {
		t.Fatalf("open postgres store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL creates a fresh database and returns its URL. The database is
// dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	harness.once.Do(startServer)
	if harness.err != nil {
		t.Fatalf("postgres for tests: %v", harness.err)
	}
	admin, err := sql.Open("pgx", harness.baseURL)
	if err != nil {
		t.Fatalf("postgres admin connection: %v", err)
	}
	defer admin.Close()
	var b [6]byte
	rand.Read(b[:])
	name := "drydock_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", harness.baseURL)
		if err != nil {
			return
		}
		defer admin.Close()
		_, _ = admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, _ := url.Parse(harness.baseURL)
	u.Path = "/" + name
	return u.String()
}

func startServer() {
	if u := os.Getenv(EnvPostgresURL); u != "" {
		harness.baseURL = u
		return
	}
	harness.baseURL, harness.stop, harness.err = startCluster()
}

// startCluster runs initdb and pg_ctl as the unprivileged postgres user (the
// server refuses to run as root) on a free loopback port.
func startCluster() (string, func(), error) {
	initdb := filepath.Join(pgBinDir, "initdb")
	if _, err := os.Stat(initdb); err != nil {
		return "", nil, fmt.Errorf("PostgreSQL server binaries not found in %s (install Debian's postgresql package, or set %s): %w",
			pgBinDir, EnvPostgresURL, err)
	}
	dir, err := os.MkdirTemp("", "drydock-pg-")
	if err != nil {
		return "", nil, err
	}
	cleanupDir := func() { os.RemoveAll(dir) }
	var asUser []string
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			cleanupDir()
			return "", nil, fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := chownTree(dir, uid, gid); err != nil {
			cleanupDir()
			return "", nil, err
		}
		asUser = []string{"runuser", "-u", "postgres", "--"}
	}
	port, err := freePort()
	if err != nil {
		cleanupDir()
		return "", nil, err
	}
	data := filepath.Join(dir, "data")
	run := func(args ...string) error {
		full := append(append([]string{}, asUser...), args...)
		cmd := exec.Command(full[0], full[1:]...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", filepath.Base(args[0]), err, out)
		}
		return nil
	}
	if err := run(initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"); err != nil {
		cleanupDir()
		return "", nil, err
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c max_connections=400", port, dir)
	pgctl := filepath.Join(pgBinDir, "pg_ctl")
	if err := run(pgctl, "-D", data, "-l", filepath.Join(dir, "log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		cleanupDir()
		return "", nil, err
	}
	stop := func() {
		_ = run(pgctl, "-D", data, "-m", "immediate", "-w", "stop")
		cleanupDir()
	}
	base := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := waitReady(base); err != nil {
		stop()
		return "", nil, err
	}
	return base, stop, nil
}

func waitReady(u string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := sql.Open("pgx", u)
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("listener has no TCP address")
	}
	return addr.Port, nil
}
