package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// TestBackgroundCheckpoint: committed pages reach the database file
// without a checkpoint in the committing transaction (SQLite's own
// automatic checkpoint waits for thousands of WAL pages; these commits
// write far fewer).
func TestBackgroundCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE ckpt_test (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, store.DefaultFile)
	size := func() int64 {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	value := strings.Repeat("v", 1000)
	for i := range 10 {
		err := db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecRows(ctx, `INSERT INTO ckpt_test (k, v)`, "", 2, 100, func(j int) ([]any, error) {
				return []any{i*100 + j, value}, nil
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// 1,000 rows of 1 KB: about 70 pages of 16 KiB.
	deadline := time.Now().Add(10 * time.Second)
	for size() < before+900_000 {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes (%d before the writes): the WAL was not checkpointed", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ckpt_test`).Scan(&n); err != nil || n != 1000 {
		t.Fatalf("%d rows: %v", n, err)
	}
}
