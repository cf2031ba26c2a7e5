package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// openedEncoder turns a finding's stored encoding into the encoding of
// the same finding opened at a given time: the bytes json.Marshal gives
// for it with status ACTIVE and firstObservedAt, lastObservedAt and
// updatedAt set. Those ledger fields end a Finding's encoding and are zero
// in the stored one (the store keeps them in columns), so the conversion
// replaces the encoding's tail. Re-evaluation stores and announces
// thousands of opened findings; this halves their encoding.
type openedEncoder struct {
	now          time.Time
	zero, opened []byte
}

// ledgerStart begins the encoded ledger fields of a Finding.
var ledgerStart = []byte(`,"status":`)

func newOpenedEncoder(now time.Time) (*openedEncoder, error) {
	zero, err := json.Marshal(&Finding{})
	if err != nil {
		return nil, err
	}
	opened, err := json.Marshal(&Finding{Status: FindingActive, FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now})
	if err != nil {
		return nil, err
	}
	i, j := bytes.LastIndex(zero, ledgerStart), bytes.LastIndex(opened, ledgerStart)
	if i < 0 || j < 0 {
		return nil, errors.New("scan: a finding's encoding has no status field")
	}
	return &openedEncoder{now: now, zero: zero[i:], opened: opened[j:]}, nil
}

// encode returns f, whose stored encoding is body, encoded as opened.
func (e *openedEncoder) encode(f *Finding, body []byte) ([]byte, error) {
	if f.Status != "" || !f.FirstObservedAt.IsZero() || !f.LastObservedAt.IsZero() || !f.UpdatedAt.IsZero() ||
		!f.FixAvailableSince.IsZero() || !f.ClosedAt.IsZero() || f.ClosedReason != "" || !bytes.HasSuffix(body, e.zero) {
		g := *f
		g.Status, g.FirstObservedAt, g.LastObservedAt, g.UpdatedAt = FindingActive, e.now, e.now, e.now
		out, err := json.Marshal(&g)
		if err != nil {
			return nil, fmt.Errorf("scan: encode finding: %w", err)
		}
		return out, nil
	}
	head := body[:len(body)-len(e.zero)]
	out := make([]byte, 0, len(head)+len(e.opened))
	return append(append(out, head...), e.opened...), nil
}
