package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// TestOutboxPacking writes runs of events and reads them back: runs of
// one source and detail type share rows (at most packMaxEvents each), a
// lone event keeps a row of its own, order and content survive, and a
// read returns whole rows.
func TestOutboxPacking(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
		enc, err := newPacker()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
		var events []event
		events = append(events, event{SourceInspector2, DetailInspector2Scan, map[string]any{"scan-status": "INITIAL_SCAN_COMPLETE"}})
		for i := range 2500 {
			events = append(events, event{SourceInspector2, DetailInspector2Finding, json.RawMessage(fmt.Sprintf(`{"id":"f%d","status":"ACTIVE"}`, i))})
		}
		events = append(events, event{SourceECR, DetailECRScanResourceChange, map[string]any{"n": 1}}, event{SourceECR, DetailECRScanResourceChange, map[string]any{"n": 2}})
		if err := db.InTx(ctx, func(tx *store.Tx) error { return insertEvents(ctx, tx, enc, events, now) }); err != nil {
			t.Fatal(err)
		}
		var rows int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_outbox`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		// The scan event, 1024 + 1024 + 452 findings, the two changes.
		if rows != 5 {
			t.Errorf("%d rows, want 5", rows)
		}
		got, err := ReadOutbox(ctx, db, 0, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(events) {
			t.Fatalf("read %d events, wrote %d", len(got), len(events))
		}
		for i, e := range got {
			want, err := encodeDetail(events[i].detail)
			if err != nil {
				t.Fatal(err)
			}
			if e.Source != events[i].source || e.DetailType != events[i].detailType || !bytes.Equal(e.Detail, want) || !e.CreatedAt.Equal(now) {
				t.Fatalf("event %d: %+v, want %s %s %s", i, e, events[i].source, events[i].detailType, want)
			}
		}
		if got[1].ID != got[1024].ID || got[1].Index != 0 || got[1024].Index != 1023 || got[1025].ID == got[1024].ID || got[1025].Index != 0 {
			t.Errorf("rows and places: %d/%d %d/%d %d/%d", got[1].ID, got[1].Index, got[1024].ID, got[1024].Index, got[1025].ID, got[1025].Index)
		}
		// Whole rows: a limit of 10 after the scan event reads one row of
		// 1024 events.
		part, err := ReadOutbox(ctx, db, got[0].ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(part) != 1024 || part[0].ID != got[1].ID {
			t.Errorf("limit 10 read %d events", len(part))
		}

		// A row that cannot be unpacked gives one event that is not JSON.
		if _, err := db.ExecContext(ctx, `INSERT INTO scan_outbox (created_at, source, detail_type, detail, packed) VALUES (?, ?, ?, '', ?)`,
			ms(now), SourceInspector2, DetailInspector2Finding, []byte("not zstd")); err != nil {
			t.Fatal(err)
		}
		bad, err := ReadOutbox(ctx, db, got[len(got)-1].ID, 10)
		if err != nil || len(bad) != 1 || json.Valid(bad[0].Detail) {
			t.Errorf("unreadable row: %+v, %v", bad, err)
		}
	})
}

// FuzzUnpackDetails feeds packed outbox rows, valid and not, to the
// reader: it returns details or an error, never panics, and gives back
// exactly what was packed.
func FuzzUnpackDetails(f *testing.F) {
	enc, err := newPacker()
	if err != nil {
		f.Fatal(err)
	}
	dec, err := newUnpacker()
	if err != nil {
		f.Fatal(err)
	}
	defer dec.Close()
	f.Add(packDetails(enc, [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)}), []byte("x\x00y"))
	f.Add([]byte{}, []byte(`{}`))
	f.Add(enc.EncodeAll([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, nil), []byte{})
	f.Fuzz(func(t *testing.T, packed, detail []byte) {
		if details, err := unpackDetails(dec, packed); err == nil && len(details) == 0 {
			t.Fatal("no details and no error")
		}
		in := [][]byte{detail, bytes.Repeat(detail, 3), {}}
		out, err := unpackDetails(dec, packDetails(enc, in))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != len(in) {
			t.Fatalf("%d details back, packed %d", len(out), len(in))
		}
		for i := range in {
			if !bytes.Equal(out[i], in[i]) {
				t.Fatalf("detail %d: %q, packed %q", i, out[i], in[i])
			}
		}
	})
}
