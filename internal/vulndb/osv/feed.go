package osv

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"path"
	"sync"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

// Feed is an OSV source: an all.zip (OSV publishes one per ecosystem), a
// JSON file with one record or an array of them, or a directory of
// records, at an http(s) URL, a file:// URL or a local path.
//
// Between fetches the feed remembers the name, CRC-32, size and advisory id
// of each archive entry (about 100 bytes per record, not the records), so
// a changed archive costs the changed records only: entries identical to
// the previous fetch's are reported in FeedData.Unchanged, unread. It does
// so only when prev is that fetch's state.
type Feed struct {
	name   string
	url    string
	client *fetch.Client
	limits Limits

	mu      sync.Mutex
	base    string // checksum of the archive entries came from
	entries map[string]entryInfo
}

// entryInfo is what the feed remembers of one archive entry.
type entryInfo struct {
	crc  uint32
	size uint64
	id   string
}

// NewFeed returns the OSV feed name reading url through client.
func NewFeed(name, url string, client *fetch.Client, lim Limits) *Feed {
	return &Feed{name: name, url: url, client: client, limits: lim}
}

// Name is the configured name of the feed.
func (f *Feed) Name() string { return f.name }

// URL is where the feed is read from.
func (f *Feed) URL() string { return f.url }

// Fetch downloads the feed (or learns it is unchanged: vulndb.ErrNotModified)
// and parses every record. Records that fail are in FeedData.Rejected; an
// archive that cannot be read at all is an error, and the database keeps
// what it had.
func (f *Feed) Fetch(ctx context.Context, prev vulndb.FetchState) (*vulndb.FeedData, vulndb.FetchState, error) {
	body, state, err := f.client.Get(ctx, f.url, prev)
	if err != nil {
		return nil, state, err
	}
	defer body.Close()
	var data *vulndb.FeedData
	var entries map[string]entryInfo
	switch {
	case body.Dir != "":
		data, err = ReadDir(ctx, body.Dir, f.name, f.limits)
	case isZip(body):
		data, entries, err = f.readZip(ctx, body, prev)
	default:
		data, err = ReadReaderAt(ctx, body, body.Size, path.Base(f.url), f.name, f.limits)
	}
	if err != nil {
		return nil, prev, fmt.Errorf("feed %s: %w", f.name, err)
	}
	f.mu.Lock()
	f.base, f.entries = state.Checksum, entries
	if entries == nil {
		f.base = ""
	}
	f.mu.Unlock()
	return data, state, nil
}

func isZip(r io.ReaderAt) bool {
	var magic [4]byte
	n, _ := r.ReadAt(magic[:], 0)
	return n == 4 && (string(magic[:]) == "PK\x03\x04" || string(magic[:]) == "PK\x05\x06")
}

// readZip reads an archive, skipping the entries unchanged since the fetch
// whose state is prev, and returns what to remember of this one.
func (f *Feed) readZip(ctx context.Context, body *fetch.Body, prev vulndb.FetchState) (*vulndb.FeedData, map[string]entryInfo, error) {
	zr, err := zip.NewReader(body, body.Size)
	if err != nil {
		return nil, nil, fmt.Errorf("read zip: %w", err)
	}
	f.mu.Lock()
	var known map[string]entryInfo
	if f.base != "" && f.base == prev.Checksum {
		known = f.entries
	}
	f.mu.Unlock()
	items := zipItems(zr, known)
	data, ids, err := parseItems(ctx, items, f.name, f.limits)
	if err != nil {
		return nil, nil, err
	}
	entries := make(map[string]entryInfo, len(items))
	for i, it := range items {
		if ids[i] == "" {
			continue // rejected: read again next time, to report it again
		}
		entries[it.name] = entryInfo{crc: it.crc, size: uint64(it.size), id: ids[i]}
	}
	return data, entries, nil
}
