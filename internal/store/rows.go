package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// maxRowParams bounds the parameters of one multi-row statement, well
// inside PostgreSQL's 65,535 and SQLite's 32,766.
const maxRowParams = 500

// ExecRows runs head + " VALUES (...), (...)" + tail for n rows of cols
// values each, row(i) giving the values of row i, and returns how many rows
// the statements affected. Rows go many to a statement, up to
// maxRowParams values, each statement prepared once.
//
// On PostgreSQL every statement is a round trip. On SQLite a statement
// that writes several rows and may fail on a constraint keeps a statement
// journal (a copy of the pages it changes that the transaction had
// changed before), but each statement also costs its own setup, and an
// AUTOINCREMENT table updates its sequence once per statement. Measured
// on re-evaluation's 14,000 findings and their events in four
// transactions, 29 and 125 rows to a statement are about 10% faster in
// all than one; the outbox rows alone, 2.6 times faster.
func (tx *Tx) ExecRows(ctx context.Context, head, tail string, cols, n int, row func(i int) ([]any, error)) (int64, error) {
	per := max(1, min(n, maxRowParams/cols))
	stmtFor := func(rows int) string {
		one := "(" + Placeholders(cols) + ")"
		return head + " VALUES " + strings.TrimSuffix(strings.Repeat(one+",", rows), ",") + " " + tail
	}
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	var affected int64
	args := make([]any, 0, per*cols)
	for start := 0; start < n; start += per {
		end := min(start+per, n)
		args = args[:0]
		for i := start; i < end; i++ {
			r, err := row(i)
			if err != nil {
				return affected, err
			}
			if len(r) != cols {
				return affected, fmt.Errorf("store: row %d has %d values, want %d", i, len(r), cols)
			}
			args = append(args, r...)
		}
		var res sql.Result
		var err error
		if end-start == per {
			if full == nil {
				if full, err = tx.tx.PrepareContext(ctx, rebind(tx.dialect, stmtFor(per))); err != nil {
					return affected, err
				}
			}
			res, err = full.ExecContext(ctx, args...)
		} else {
			res, err = tx.tx.ExecContext(ctx, rebind(tx.dialect, stmtFor(end-start)), args...)
		}
		if err != nil {
			return affected, err
		}
		if k, err := res.RowsAffected(); err == nil {
			affected += k
		}
	}
	return affected, nil
}
