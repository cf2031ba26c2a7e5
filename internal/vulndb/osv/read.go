package osv

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/drydockhq/drydock/internal/vulndb"
)

// Limits bound what one feed may hold, so a hostile or broken archive
// cannot exhaust memory (a decompression bomb is refused, not inflated).
type Limits struct {
	// MaxRecordSize bounds one record, decompressed.
	MaxRecordSize int64
	// MaxTotalSize bounds all records of the feed together, decompressed.
	MaxTotalSize int64
	// MaxRecords bounds how many records a feed may hold.
	MaxRecords int
}

// DefaultLimits are generous for OSV's largest per-ecosystem archives
// (Debian and Ubuntu: a few hundred thousand records, a few GB of JSON).
var DefaultLimits = Limits{MaxRecordSize: MaxRecordSize, MaxTotalSize: 16 << 30, MaxRecords: 4_000_000}

// ErrTooLarge is wrapped by the error for a feed over its Limits.
var ErrTooLarge = errors.New("feed exceeds its size limits")

// item is one record to parse: its name in the feed and a way to read it.
type item struct {
	name string
	size int64 // declared size, -1 when unknown
	open func() (io.ReadCloser, error)
	// crc is the CRC-32 an archive declares for the entry.
	crc uint32
	// unchanged, when set, is the id of the advisory the record held in
	// the previous fetch: the record is the same bytes and is not read.
	unchanged string
}

// ReadZip reads an OSV all.zip: every *.json entry is one record. Records
// that fail to parse or validate are listed in Rejected; an archive that
// cannot be read at all (truncated, not a zip) is an error.
func ReadZip(ctx context.Context, r io.ReaderAt, size int64, source string, lim Limits) (*vulndb.FeedData, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("osv %s: read zip: %w", source, err)
	}
	data, _, err := parseItems(ctx, zipItems(zr, nil), source, lim)
	return data, err
}

// zipItems lists the *.json entries of an archive. Entries whose name,
// CRC-32 and size match an entry of prev (the previous fetch) are marked
// unchanged.
func zipItems(zr *zip.Reader, prev map[string]entryInfo) []item {
	items := make([]item, 0, len(zr.File))
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(f.Name, ".json") {
			continue
		}
		it := item{name: f.Name, size: int64(f.UncompressedSize64), crc: f.CRC32, open: f.Open}
		if e, ok := prev[f.Name]; ok && e.crc == f.CRC32 && e.size == f.UncompressedSize64 {
			it.unchanged = e.id
		}
		items = append(items, it)
	}
	return items
}

// ReadDir reads a directory tree of OSV JSON records (*.json files, at any
// depth). Symbolic links leading out of dir are not followed.
func ReadDir(ctx context.Context, dir, source string, lim Limits) (*vulndb.FeedData, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("osv %s: %w", source, err)
	}
	defer root.Close()
	fsys := root.FS()
	var items []item
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(p, ".json") || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		size := int64(-1)
		if fi, err := d.Info(); err == nil {
			size = fi.Size()
		}
		items = append(items, item{name: p, size: size, open: func() (io.ReadCloser, error) { return root.Open(p) }})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("osv %s: walk %s: %w", source, dir, err)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].name < items[j].name })
	data, _, err := parseItems(ctx, items, source, lim)
	return data, err
}

// ReadRecords reads JSON holding one OSV record, or an array of records.
// name identifies the input in errors.
func ReadRecords(data []byte, name, source string) (*vulndb.FeedData, error) {
	out := &vulndb.FeedData{}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("osv %s: %s: %w", source, name, err)
		}
		seen := map[string]bool{}
		for i, raw := range raws {
			a, err := Parse(raw, source)
			add(out, seen, fmt.Sprintf("%s[%d]", name, i), a, err, source)
		}
		return out, nil
	}
	a, err := Parse(trimmed, source)
	add(out, map[string]bool{}, name, a, err, source)
	return out, nil
}

// ReadPath reads a local OSV source: a zip archive, a directory of
// records, or a JSON file with one record or an array of them.
func ReadPath(ctx context.Context, p, source string, lim Limits) (*vulndb.FeedData, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("osv %s: %w", source, err)
	}
	if fi.IsDir() {
		return ReadDir(ctx, p, source, lim)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("osv %s: %w", source, err)
	}
	defer f.Close()
	return ReadReaderAt(ctx, f, fi.Size(), path.Base(p), source, lim)
}

// ReadReaderAt reads a zip archive or a JSON file (one record or an array),
// telling them apart by their first bytes.
func ReadReaderAt(ctx context.Context, r io.ReaderAt, size int64, name, source string, lim Limits) (*vulndb.FeedData, error) {
	var magic [4]byte
	n, _ := r.ReadAt(magic[:], 0)
	if n == 4 && (string(magic[:]) == "PK\x03\x04" || string(magic[:]) == "PK\x05\x06") {
		return ReadZip(ctx, r, size, source, lim)
	}
	if size > lim.MaxRecordSize && size > lim.MaxTotalSize {
		return nil, fmt.Errorf("osv %s: %s: %w (%d bytes)", source, name, ErrTooLarge, size)
	}
	data, err := io.ReadAll(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, fmt.Errorf("osv %s: read %s: %w", source, name, err)
	}
	return ReadRecords(data, name, source)
}

// add records one parse result: the advisory, or the reason it was
// refused. It reports whether the advisory was kept.
func add(out *vulndb.FeedData, seen map[string]bool, name string, a vulndb.Advisory, err error, source string) bool {
	if err == nil && seen[a.ID] {
		err = fmt.Errorf("%w: duplicate id %s", ErrInvalid, a.ID)
	}
	if err != nil {
		out.Rejected = append(out.Rejected, vulndb.RecordError{Feed: source, Record: name, Err: err})
		return false
	}
	seen[a.ID] = true
	out.Advisories = append(out.Advisories, a)
	return true
}

// parseItems reads and parses the records with a few workers, keeping the
// feed's order in the result. ids[i] is the id item i yielded (read or
// unchanged), "" when it was rejected.
func parseItems(ctx context.Context, items []item, source string, lim Limits) (*vulndb.FeedData, []string, error) {
	if lim.MaxRecords > 0 && len(items) > lim.MaxRecords {
		return nil, nil, fmt.Errorf("osv %s: %w: %d records, limit %d", source, ErrTooLarge, len(items), lim.MaxRecords)
	}
	type result struct {
		a   vulndb.Advisory
		err error
	}
	results := make([]result, len(items))
	workers := min(runtime.GOMAXPROCS(0), 4, max(1, len(items)))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		total   int64
		fatal   error
		next    = make(chan int)
		readBuf = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				it := items[i]
				buf := readBuf.Get().(*bytes.Buffer)
				buf.Reset()
				n, err := readItem(it, buf, lim.MaxRecordSize)
				mu.Lock()
				total += n
				if lim.MaxTotalSize > 0 && total > lim.MaxTotalSize && fatal == nil {
					fatal = fmt.Errorf("osv %s: %w: more than %d bytes of records", source, ErrTooLarge, lim.MaxTotalSize)
				}
				mu.Unlock()
				if err == nil {
					results[i].a, err = Parse(buf.Bytes(), source)
				}
				results[i].err = err
				readBuf.Put(buf)
			}
		}()
	}
	var ctxErr error
feed:
	for i := range items {
		if items[i].unchanged != "" {
			continue
		}
		mu.Lock()
		stop := fatal != nil
		mu.Unlock()
		if stop {
			break
		}
		select {
		case next <- i:
		case <-ctx.Done():
			ctxErr = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctxErr != nil {
		return nil, nil, fmt.Errorf("osv %s: %w", source, ctxErr)
	}
	if fatal != nil {
		return nil, nil, fatal
	}
	out := &vulndb.FeedData{Advisories: make([]vulndb.Advisory, 0, len(items))}
	ids := make([]string, len(items))
	seen := make(map[string]bool, len(items))
	for i, r := range results {
		if id := items[i].unchanged; id != "" {
			if seen[id] {
				out.Rejected = append(out.Rejected, vulndb.RecordError{Feed: source, Record: items[i].name, Err: fmt.Errorf("%w: duplicate id %s", ErrInvalid, id)})
				continue
			}
			seen[id] = true
			out.Unchanged = append(out.Unchanged, id)
			ids[i] = id
			continue
		}
		if add(out, seen, items[i].name, r.a, r.err, source) {
			ids[i] = r.a.ID
		}
	}
	return out, ids, nil
}

// readItem reads one record into buf, refusing more than max bytes
// whatever the archive declares.
func readItem(it item, buf *bytes.Buffer, max int64) (int64, error) {
	if max > 0 && it.size > max {
		return 0, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrTooLarge, it.size, max)
	}
	rc, err := it.open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if it.size > 0 {
		buf.Grow(int(it.size))
	}
	var r io.Reader = rc
	if max > 0 {
		r = io.LimitReader(rc, max+1)
	}
	n, err := buf.ReadFrom(r)
	if err != nil {
		return n, fmt.Errorf("read: %w", err)
	}
	if max > 0 && n > max {
		return n, fmt.Errorf("%w: record exceeds %d bytes", ErrTooLarge, max)
	}
	return n, nil
}
