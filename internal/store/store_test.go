package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func migrations() fstest.MapFS {
	read := func(name string) *fstest.MapFile {
		b, err := os.ReadFile("testdata/migrations/" + name)
		if err != nil {
			panic(err)
		}
		return &fstest.MapFile{Data: b}
	}
	return fstest.MapFS{
		"0001_things.sql":      read("0001_things.sql"),
		"0002_more.sql":        read("0002_more.sql"),
		"0002_more.sqlite.sql": read("0002_more.sqlite.sql"),
	}
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = db.Migrate(ctx, "test", migrations())
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("migrate: %v", err)
			}
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE domain = ?`, "test").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("schema_migrations has %d rows for domain test, want 2", n)
		}
		// The dialect-specific variant was chosen: BYTEA does not exist in SQLite's
		// affinity rules but is accepted, so check by inserting bytes on both.
		if _, err := db.ExecContext(ctx, `INSERT INTO blobs_test (k, v) VALUES (?, ?)`, "a", []byte{0, 1, 2}); err != nil {
			t.Fatal(err)
		}
		var v []byte
		if err := db.QueryRowContext(ctx, `SELECT v FROM blobs_test WHERE k = ?`, "a").Scan(&v); err != nil || len(v) != 3 {
			t.Fatalf("read back bytes: %v %v", v, err)
		}
	})
}

func TestInTxRollsBackOnError(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "test", migrations()); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO things (id, n) VALUES (?, ?)`, "x", 1); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx error = %v, want boom", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM things`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("rows after rollback = %d (%v), want 0", n, err)
		}
	})
}

func TestConcurrentIncrementsAreSerialised(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "test", migrations()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO things (id, n) VALUES ('c', 0)`); err != nil {
			t.Fatal(err)
		}
		const workers, each = 4, 25
		var wg sync.WaitGroup
		errc := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					err := db.InTx(ctx, func(tx *store.Tx) error {
						_, err := tx.ExecContext(ctx, `UPDATE things SET n = n + 1 WHERE id = ?`, "c")
						return err
					})
					if err != nil {
						errc <- fmt.Errorf("increment: %w", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT n FROM things WHERE id = 'c'`).Scan(&n); err != nil || n != workers*each {
			t.Fatalf("counter = %d (%v), want %d", n, err, workers*each)
		}
	})
}

func TestUniqueViolationIsRecognised(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, "test", migrations()); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO things (id, n) VALUES ('u', 1)`); err != nil {
			t.Fatal(err)
		}
		_, err := db.ExecContext(ctx, `INSERT INTO things (id, n) VALUES ('u', 2)`)
		if !store.IsUniqueViolation(err) {
			t.Fatalf("IsUniqueViolation(%v) = false", err)
		}
	})
}

func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background(), "test", migrations()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{store.DefaultFile, store.DefaultFile + "-wal"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want owner-only", name, perm)
		}
	}
}

func TestSQLitePathWithURIReservedCharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b?c%d")
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(context.Background(), "test", migrations()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, store.DefaultFile))
	if err != nil {
		t.Fatalf("the store is not where it was asked to be: %v", err)
	}
	if fi.Size() == 0 {
		t.Fatalf("%s is empty: the tables went elsewhere", fi.Name())
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "a")); err == nil {
		t.Fatal("a stray file named after the path's prefix was created")
	}
}
