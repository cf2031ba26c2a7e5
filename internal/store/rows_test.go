package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

func TestExecRows(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE rows_test (k TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		count := func() (n, sum int) {
			t.Helper()
			if err := db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(n), 0) FROM rows_test`).Scan(&n, &sum); err != nil {
				t.Fatal(err)
			}
			return n, sum
		}
		upsert := `ON CONFLICT (k) DO UPDATE SET n = rows_test.n + excluded.n`
		row := func(i int) ([]any, error) { return []any{fmt.Sprint("k", i%300), 1, "x"}, nil }
		for _, c := range []struct {
			name              string
			n                 int
			tail              string
			wantRows, wantSum int
		}{
			{"none", 0, "", 0, 0},
			{"one", 1, "", 1, 1},
			{"more rows than one statement holds", 250, "", 250, 250},
			{"upsert tail", 400, upsert, 300, 400},
		} {
			t.Run(c.name, func(t *testing.T) {
				if _, err := db.ExecContext(ctx, `DELETE FROM rows_test`); err != nil {
					t.Fatal(err)
				}
				err := db.InTx(ctx, func(tx *store.Tx) error {
					_, err := tx.ExecRows(ctx, `INSERT INTO rows_test (k, n, note)`, c.tail, 3, c.n, row)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				if n, sum := count(); n != c.wantRows || sum != c.wantSum {
					t.Errorf("%d rows summing to %d, want %d and %d", n, sum, c.wantRows, c.wantSum)
				}
			})
		}

		// A failing row stops the work with its error, and a row of the
		// wrong width is refused; the transaction writes nothing.
		before, _ := count()
		stop := errors.New("stop here")
		for _, bad := range []func(i int) ([]any, error){
			func(i int) ([]any, error) {
				if i == 150 {
					return nil, stop
				}
				return []any{fmt.Sprint("new", i), 1, "x"}, nil
			},
			func(i int) ([]any, error) { return []any{fmt.Sprint("new", i), 1}, nil },
		} {
			err := db.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.ExecRows(ctx, `INSERT INTO rows_test (k, n, note)`, "", 3, 200, bad)
				return err
			})
			if err == nil {
				t.Error("a bad row went through")
			}
		}
		if n, _ := count(); n != before {
			t.Errorf("%d rows after failed inserts, want %d", n, before)
		}
		err := db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecRows(ctx, `INSERT INTO rows_test (k, n, note)`, "", 3, 1, func(int) ([]any, error) { return nil, stop })
			return err
		})
		if !errors.Is(err, stop) {
			t.Errorf("row error came back as %v", err)
		}
	})
}

func TestConnInTx(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE conn_test (k BIGINT PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := c.InTx(ctx, func(tx *store.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO conn_test (k) VALUES (?)`, i)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		// A failed transaction on the connection rolls back, and the
		// connection stays usable.
		if err := c.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO conn_test (k) VALUES (?)`, 10); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO conn_test (k) VALUES (?)`, 0)
			return err
		}); err == nil {
			t.Fatal("a duplicate key went through")
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM conn_test`).Scan(&n); err != nil || n != 3 {
			t.Errorf("%d rows seen through the pool (%v), want 3", n, err)
		}
	})
}

func TestRelaxDurability(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		q, full, relaxed := `PRAGMA synchronous`, "2", "1"
		if db.Dialect() == store.Postgres {
			q, full, relaxed = `SHOW synchronous_commit`, "on", "off"
		}
		setting := func(c interface {
			QueryRowContext(context.Context, string, ...any) *sql.Row
		}) string {
			t.Helper()
			var v string
			if err := c.QueryRowContext(ctx, q).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		if _, err := db.ExecContext(ctx, `CREATE TABLE relax_test (k BIGINT PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.RelaxDurability(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.InTx(ctx, func(tx *store.Tx) error {
			if v := setting(tx); v != relaxed {
				t.Errorf("%s = %s on the relaxed connection, want %s", q, v, relaxed)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO relax_test (k) VALUES (1)`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		// Every connection of the pool, the one given back among them, is
		// fully durable again.
		var held []*sql.Conn
		defer func() {
			for _, h := range held {
				h.Close()
			}
		}()
		for range db.SQL().Stats().MaxOpenConnections {
			h, err := db.SQL().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, h)
			if v := setting(h); v != full {
				t.Errorf("%s = %s on a pooled connection after Close, want %s", q, v, full)
			}
		}
		var n int
		if err := held[0].QueryRowContext(ctx, `SELECT COUNT(*) FROM relax_test`).Scan(&n); err != nil || n != 1 {
			t.Errorf("%d rows committed on the relaxed connection (%v), want 1", n, err)
		}
	})
}
