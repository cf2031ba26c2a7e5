package scan

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/drydockhq/drydock/internal/store"
)

// The scan outbox stores a run of events of one source and detail type
// written together (a scan's or a re-evaluation batch's Inspector2
// Finding events) in one row: its packed column holds their details,
// each a uvarint length then the bytes, compressed with zstd, and its
// detail column is empty. Thousands of finding events differ in a few
// fields; compressed together they take about a thirteenth of their
// size, and writing one row instead of thousands is most of what
// announcing a re-evaluation's findings costs. Other rows hold one event,
// its detail in detail.
const (
	// packMin is the shortest run of events that shares a row.
	packMin = 2
	// packMaxEvents and packMaxBytes bound one packed row (its events, and
	// their details' bytes before compression).
	packMaxEvents = 1024
	packMaxBytes  = 8 << 20
	// unpackMaxBytes bounds what reading one packed row decompresses.
	unpackMaxBytes = 2 * packMaxBytes
)

// newPacker returns the encoder of packed outbox rows. EncodeAll may run
// on several goroutines at once.
func newPacker() (*zstd.Encoder, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("scan: outbox encoder: %w", err)
	}
	return enc, nil
}

// packDetails returns details packed for one outbox row.
func packDetails(enc *zstd.Encoder, details [][]byte) []byte {
	n := 0
	for _, d := range details {
		n += binary.MaxVarintLen64 + len(d)
	}
	raw := make([]byte, 0, n)
	for _, d := range details {
		raw = binary.AppendUvarint(raw, uint64(len(d)))
		raw = append(raw, d...)
	}
	return enc.EncodeAll(raw, make([]byte, 0, len(raw)/8))
}

// unpackDetails returns the details a packed outbox row holds.
func unpackDetails(dec *zstd.Decoder, packed []byte) ([][]byte, error) {
	raw, err := dec.DecodeAll(packed, nil)
	if err != nil {
		return nil, fmt.Errorf("scan: packed outbox row: %w", err)
	}
	var out [][]byte
	for len(raw) > 0 {
		n, k := binary.Uvarint(raw)
		if k <= 0 || n > uint64(len(raw)-k) {
			return nil, errors.New("scan: packed outbox row: bad length")
		}
		out = append(out, raw[k:k+int(n)])
		raw = raw[k+int(n):]
		if len(out) > packMaxEvents {
			return nil, fmt.Errorf("scan: packed outbox row: more than %d events", packMaxEvents)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("scan: packed outbox row: no events")
	}
	return out, nil
}

// newUnpacker returns a decoder of packed outbox rows.
func newUnpacker() (*zstd.Decoder, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(unpackMaxBytes))
	if err != nil {
		return nil, fmt.Errorf("scan: outbox decoder: %w", err)
	}
	return dec, nil
}

// insertEvent writes one event in a row of its own.
func insertEvent(ctx context.Context, tx *store.Tx, source, detailType string, detail any, now time.Time) error {
	d, err := encodeDetail(detail)
	if err != nil {
		return fmt.Errorf("scan: outbox: %w", err)
	}
	return insertOutboxRowsTx(ctx, tx, []outboxRow{{source, detailType, string(d), nil}}, now)
}

// insertEvents writes events, in order: runs of at least packMin events
// of one source and detail type share rows, packed by enc.
func insertEvents(ctx context.Context, tx *store.Tx, enc *zstd.Encoder, events []event, now time.Time) error {
	rows, err := outboxRows(enc, events)
	if err != nil {
		return err
	}
	return insertOutboxRowsTx(ctx, tx, rows, now)
}

// outboxRow is one scan_outbox row to write: one event's detail, or the
// packed details of several.
type outboxRow struct {
	source, detailType, detail string
	packed                     []byte
}

// outboxRows lays events out in rows (see insertEvents).
func outboxRows(enc *zstd.Encoder, events []event) ([]outboxRow, error) {
	rows := make([]outboxRow, 0, min(len(events), 16))
	for i := 0; i < len(events); {
		e := events[i]
		j := i + 1
		for j < len(events) && j-i < packMaxEvents && events[j].source == e.source && events[j].detailType == e.detailType {
			j++
		}
		if j-i < packMin {
			j = i + 1
		}
		details := make([][]byte, 0, j-i)
		size := 0
		for k := i; k < j; k++ {
			d, err := encodeDetail(events[k].detail)
			if err != nil {
				return nil, fmt.Errorf("scan: outbox: %w", err)
			}
			if size += len(d); size > packMaxBytes && k > i {
				j = k // the rest start the next row
				break
			}
			details = append(details, d)
		}
		if len(details) == 1 {
			rows = append(rows, outboxRow{e.source, e.detailType, string(details[0]), nil})
		} else {
			rows = append(rows, outboxRow{e.source, e.detailType, "", packDetails(enc, details)})
		}
		i = j
	}
	return rows, nil
}

// insertOutboxRowsTx writes rows to the scan outbox.
func insertOutboxRowsTx(ctx context.Context, tx *store.Tx, rows []outboxRow, now time.Time) error {
	_, err := tx.ExecRows(ctx, `INSERT INTO scan_outbox (created_at, source, detail_type, detail, packed)`, "", 5, len(rows), func(i int) ([]any, error) {
		r := rows[i]
		var packed any // NULL for a row of one event
		if r.packed != nil {
			packed = r.packed
		}
		return []any{ms(now), r.source, r.detailType, r.detail, packed}, nil
	})
	if err != nil {
		return fmt.Errorf("scan: outbox: %w", err)
	}
	return nil
}

// encodeDetail returns an event's detail as JSON; a json.RawMessage is
// already encoded.
func encodeDetail(detail any) ([]byte, error) {
	if raw, ok := detail.(json.RawMessage); ok {
		return raw, nil
	}
	b, err := json.Marshal(detail)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return b, nil
}

// ReadOutbox returns the scan outbox's events in rows with an id above
// after, oldest first: the events of whole rows, until there are at least
// limit (a packed row holds up to 1024). The events of one row share its
// ID and differ by Index. A packed row that cannot be unpacked gives one
// event with an empty Detail.
func ReadOutbox(ctx context.Context, db *store.DB, after int64, limit int) ([]Event, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, created_at, source, detail_type, detail, packed FROM scan_outbox
		WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("scan: events: %w", err)
	}
	defer rows.Close()
	var dec *zstd.Decoder
	defer func() {
		if dec != nil {
			dec.Close()
		}
	}()
	var out []Event
	for len(out) < limit && rows.Next() {
		var e Event
		var created int64
		var detail string
		var packed []byte
		if err := rows.Scan(&e.ID, &created, &e.Source, &e.DetailType, &detail, &packed); err != nil {
			return nil, fmt.Errorf("scan: events: %w", err)
		}
		e.CreatedAt = fromMS(created)
		if packed == nil {
			e.Detail = json.RawMessage(detail)
			out = append(out, e)
			continue
		}
		if dec == nil {
			if dec, err = newUnpacker(); err != nil {
				return nil, err
			}
		}
		details, err := unpackDetails(dec, packed)
		if err != nil {
			// A row that cannot be read must not stop its readers: it
			// gives one event whose empty detail is not JSON.
			details = [][]byte{nil}
		}
		for i, d := range details {
			e.Index, e.Detail = i, json.RawMessage(d)
			out = append(out, e)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scan: events: %w", err)
	}
	return out, nil
}
