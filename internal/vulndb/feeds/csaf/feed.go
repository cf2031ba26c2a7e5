package csaf

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
)

// DefaultURL is Red Hat's CSAF VEX directory: archive_latest.txt names a
// tar.zst of every VEX file, and changes.csv and deletions.csv list what
// changed since.
const DefaultURL = "https://security.access.redhat.com/data/csaf/v2/vex/"

// MaxDocumentSize bounds one CSAF document (Red Hat's largest VEX files
// are below 100 MB).
const MaxDocumentSize = 256 << 20

var (
	archiveName = regexp.MustCompile(`^csaf_vex_(\d{4}-\d{2}-\d{2})\.tar\.zst$`)
	docPath     = regexp.MustCompile(`^\d{4}/cve-\d{4}-\d+\.json$`)
)

// Feed is Red Hat CSAF as a vulndb.Feed.
type Feed struct {
	name   string
	url    string
	client *fetch.Client
}

// New returns the feed named name reading url, which is one of
//   - Red Hat's VEX directory (DefaultURL, or a mirror laid out the same
//     way): the archive named by archive_latest.txt, then every document
//     changes.csv lists as changed since the archive's date, less those in
//     deletions.csv;
//   - one CSAF document (a URL or path ending in .json);
//   - a local directory: every .json file below it (an unpacked archive,
//     for air-gapped sites).
func New(name, url string, client *fetch.Client) *Feed {
	return &Feed{name: name, url: url, client: client}
}

// Name returns the feed's configured name.
func (f *Feed) Name() string { return f.name }

// docs gathers parsed documents by path, with a checksum of each.
type docs struct {
	feed string
	data map[string]*vulndb.FeedData
	sums map[string]string
}

func (d *docs) add(p string, r io.Reader) error {
	h := sha256.New()
	data, err := Parse(io.TeeReader(r, h), d.feed)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	d.data[p] = data
	d.sums[p] = hex.EncodeToString(h.Sum(nil))
	return nil
}

func (d *docs) result() (*vulndb.FeedData, string) {
	paths := make([]string, 0, len(d.data))
	for p := range d.data {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out := &vulndb.FeedData{}
	h := sha256.New()
	for _, p := range paths {
		out.Advisories = append(out.Advisories, d.data[p].Advisories...)
		out.Rejected = append(out.Rejected, d.data[p].Rejected...)
		fmt.Fprintf(h, "%s %s\n", p, d.sums[p])
	}
	return out, hex.EncodeToString(h.Sum(nil))
}

// Fetch reads every document. The state is a checksum over all documents;
// an unchanged set returns vulndb.ErrNotModified. A document that is not
// CSAF fails the fetch (the set would be incomplete); records inside a
// document that cannot be read are rejected one by one.
func (f *Feed) Fetch(ctx context.Context, prev vulndb.FetchState) (*vulndb.FeedData, vulndb.FetchState, error) {
	d := &docs{feed: f.name, data: map[string]*vulndb.FeedData{}, sums: map[string]string{}}
	var err error
	switch {
	case strings.HasSuffix(strings.TrimSuffix(f.url, ".gz"), ".json"):
		err = f.single(ctx, d)
	case strings.HasPrefix(f.url, "http://") || strings.HasPrefix(f.url, "https://"):
		err = f.remote(ctx, d)
	default:
		err = f.local(ctx, d)
	}
	if err != nil {
		return nil, prev, fmt.Errorf("feed %s: %w", f.name, err)
	}
	data, sum := d.result()
	state := vulndb.FetchState{Checksum: sum}
	if prev.Checksum != "" && prev.Checksum == sum {
		return nil, state, vulndb.ErrNotModified
	}
	return data, state, nil
}

func (f *Feed) single(ctx context.Context, d *docs) error {
	body, _, err := f.client.Get(ctx, f.url, vulndb.FetchState{})
	if err != nil {
		return err
	}
	defer body.Close()
	return d.add(f.url, body)
}

func (f *Feed) local(ctx context.Context, d *docs) error {
	body, _, err := f.client.Get(ctx, f.url, vulndb.FetchState{})
	if err != nil {
		return err
	}
	body.Close()
	if body.Dir == "" {
		return fmt.Errorf("%s is neither a directory nor a .json document", f.url)
	}
	n := 0
	err = filepath.WalkDir(body.Dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !strings.HasSuffix(strings.TrimSuffix(e.Name(), ".gz"), ".json") {
			return nil
		}
		b, _, err := f.client.Get(ctx, p, vulndb.FetchState{})
		if err != nil {
			return err
		}
		defer b.Close()
		rel, _ := filepath.Rel(body.Dir, p)
		n++
		return d.add(filepath.ToSlash(rel), b)
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no .json documents in %s", body.Dir)
	}
	return nil
}

func (f *Feed) base() string { return strings.TrimSuffix(f.url, "/") + "/" }

func (f *Feed) small(ctx context.Context, name string) ([]byte, error) {
	body, _, err := f.client.Get(ctx, f.base()+name, vulndb.FetchState{})
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(io.LimitReader(body, 64<<20))
}

func (f *Feed) remote(ctx context.Context, d *docs) error {
	latest, err := f.small(ctx, "archive_latest.txt")
	if err != nil {
		return err
	}
	name := strings.TrimSpace(string(latest))
	m := archiveName.FindStringSubmatch(name)
	if m == nil {
		return fmt.Errorf("archive_latest.txt names %q, not a csaf_vex_DATE.tar.zst archive", name)
	}
	since, _ := time.Parse(time.DateOnly, m[1])
	body, _, err := f.client.Get(ctx, f.base()+name, vulndb.FetchState{})
	if err != nil {
		return err
	}
	defer body.Close()
	if err := f.readArchive(ctx, body, d); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	changes, err := f.small(ctx, "changes.csv")
	if err != nil {
		return err
	}
	changed, err := readIndex(changes, since)
	if err != nil {
		return fmt.Errorf("changes.csv: %w", err)
	}
	for _, p := range changed {
		b, _, err := f.client.Get(ctx, f.base()+p, vulndb.FetchState{})
		if err != nil {
			return err
		}
		err = d.add(p, io.LimitReader(b, MaxDocumentSize))
		b.Close()
		if err != nil {
			return err
		}
	}
	deletions, err := f.small(ctx, "deletions.csv")
	if err != nil {
		return err
	}
	deleted, err := readIndex(deletions, time.Time{})
	if err != nil {
		return fmt.Errorf("deletions.csv: %w", err)
	}
	for _, p := range deleted {
		delete(d.data, p)
		delete(d.sums, p)
	}
	return nil
}

// readArchive parses every VEX document of a tar.zst archive.
func (f *Feed) readArchive(ctx context.Context, r io.Reader, d *docs) error {
	zr, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(512<<20), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if h.Typeflag != tar.TypeReg || !docPath.MatchString(p) {
			continue
		}
		if h.Size > MaxDocumentSize {
			d.data[p] = &vulndb.FeedData{Rejected: []vulndb.RecordError{{Feed: f.name, Record: p, Err: fmt.Errorf("%d bytes exceeds the %d-byte cap", h.Size, MaxDocumentSize)}}}
			continue
		}
		if err := d.add(p, tr); err != nil {
			return err
		}
	}
}

// readIndex reads changes.csv or deletions.csv ("2023/cve-2023-38545.json",
// "2025-11-21T14:31:32+00:00") and returns the paths changed at or after
// since (every path when since is zero).
func readIndex(raw []byte, since time.Time) ([]string, error) {
	cr := csv.NewReader(strings.NewReader(string(raw)))
	cr.FieldsPerRecord = -1
	var out []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(rec) == 0 || rec[0] == "" {
			continue
		}
		p := path.Clean(strings.TrimSpace(rec[0]))
		if !docPath.MatchString(p) {
			return nil, fmt.Errorf("%q is not a VEX document path", rec[0])
		}
		if !since.IsZero() && len(rec) > 1 {
			t, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[1]))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if t.Before(since) {
				continue
			}
		}
		out = append(out, p)
	}
}
