package vulndb

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ExportFormat names Drydock's export files: gzip-compressed JSON lines —
// a header, one line per advisory and per enrichment record, and a trailer
// holding the record count and the SHA-256 of every line before it — so an
// air-gapped Drydock can be fed a whole generation from a connected one,
// and a damaged or truncated file is refused before anything is applied.
const ExportFormat = "drydock-vulndb-export"

// exportVersion is the version of the file layout.
const exportVersion = 1

// ExportHeader opens an export file.
type ExportHeader struct {
	Format     string         `json:"format"`
	Version    int            `json:"version"`
	Generation int64          `json:"generation"`
	CreatedAt  time.Time      `json:"created_at"`
	Sources    []ExportSource `json:"sources"`
}

// ExportSource describes one source in an export.
type ExportSource struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	URL         string    `json:"url"`
	Advisories  int       `json:"advisories"`
	Enrichment  int       `json:"enrichment"`
	LastSuccess time.Time `json:"last_success,omitzero"`
}

type exportLine struct {
	Header     *ExportHeader  `json:"header,omitempty"`
	Advisory   *Advisory      `json:"advisory,omitempty"`
	Source     string         `json:"source,omitempty"`
	Enrichment *Enrichment    `json:"enrichment,omitempty"`
	Trailer    *exportTrailer `json:"trailer,omitempty"`
}

type exportTrailer struct {
	Records int    `json:"records"`
	SHA256  string `json:"sha256"`
}

// ExportSummary says what an export wrote.
type ExportSummary struct {
	Generation int64
	Advisories int
	Enrichment int
	// ContentSHA256 is the checksum recorded in the trailer (over the
	// uncompressed lines before it).
	ContentSHA256 string
}

// Export writes the current generation to w. The advisories and the
// enrichment are read in statements that each see one generation; when a
// sync commits between them, Export fails with ErrGenerationMoved and the
// caller starts over (ExportFile does).
func (db *DB) Export(ctx context.Context, w io.Writer) (*ExportSummary, error) {
	return db.exportOnce(ctx, w)
}

// ErrGenerationMoved is returned by Export when a sync committed a new
// generation while it read.
var ErrGenerationMoved = errors.New("vulndb: the generation changed during the export")

// ExportFile writes the current generation to path (through a temporary
// file renamed into place, so path is whole or absent) and its checksum to
// path.sha256 in sha256sum's format.
func (db *DB) ExportFile(ctx context.Context, path string) (*ExportSummary, string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	for attempt := 0; ; attempt++ {
		tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
		if err != nil {
			return nil, "", fmt.Errorf("vulndb: export: %w", err)
		}
		h := sha256.New()
		sum, err := db.Export(ctx, io.MultiWriter(tmp, h))
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp.Name())
			if errors.Is(err, ErrGenerationMoved) && attempt < 5 {
				continue
			}
			return nil, "", fmt.Errorf("vulndb: export: %w", err)
		}
		if err := os.Chmod(tmp.Name(), 0o644); err != nil {
			os.Remove(tmp.Name())
			return nil, "", err
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			os.Remove(tmp.Name())
			return nil, "", fmt.Errorf("vulndb: export: %w", err)
		}
		fileSum := hex.EncodeToString(h.Sum(nil))
		if err := os.WriteFile(path+".sha256", []byte(fileSum+"  "+base+"\n"), 0o644); err != nil {
			return nil, "", fmt.Errorf("vulndb: export: %w", err)
		}
		return sum, fileSum, nil
	}
}

func (db *DB) exportOnce(ctx context.Context, w io.Writer) (*ExportSummary, error) {
	gen, err := db.Generation(ctx)
	if err != nil {
		return nil, err
	}
	statuses, err := db.Sources(ctx)
	if err != nil {
		return nil, err
	}
	gz := gzip.NewWriter(w)
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(gz, h), 1<<16)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	head := &ExportHeader{Format: ExportFormat, Version: exportVersion, Generation: gen, CreatedAt: db.now().UTC().Truncate(time.Second)}
	for _, s := range statuses {
		if s.LastSuccess.IsZero() {
			continue // never synced: nothing of it to carry over
		}
		head.Sources = append(head.Sources, ExportSource{Name: s.Name, Kind: s.Kind, URL: s.URL, Advisories: s.Advisories, Enrichment: s.Enrichment, LastSuccess: s.LastSuccess})
	}
	if err := enc.Encode(exportLine{Header: head}); err != nil {
		return nil, err
	}
	sum := &ExportSummary{Generation: gen}
	seen, err := db.ForEachAdvisory(ctx, func(a *Advisory) error {
		sum.Advisories++
		return enc.Encode(exportLine{Advisory: a})
	})
	if err != nil {
		return nil, err
	}
	if seen != gen {
		return nil, ErrGenerationMoved
	}
	err = db.ForEachEnrichment(ctx, func(source string, e *Enrichment) error {
		sum.Enrichment++
		return enc.Encode(exportLine{Source: source, Enrichment: e})
	})
	if err != nil {
		return nil, err
	}
	if now, err := db.Generation(ctx); err != nil {
		return nil, err
	} else if now != gen {
		return nil, ErrGenerationMoved
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	sum.ContentSHA256 = hex.EncodeToString(h.Sum(nil))
	trailer, _ := json.Marshal(exportLine{Trailer: &exportTrailer{Records: sum.Advisories + sum.Enrichment, SHA256: sum.ContentSHA256}})
	if _, err := gz.Write(append(trailer, '\n')); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return sum, nil
}

// ErrBadExport is wrapped by the error for an export file that is damaged,
// truncated or not an export at all.
var ErrBadExport = errors.New("not a valid Drydock vulnerability database export")

// MaxExportLine bounds one line of an export file.
const MaxExportLine = 64 << 20

// ReadExport reads and verifies an export file: every record, then the
// trailer's count and checksum. Nothing is returned unless the whole file
// checks out. The result is one SourceUpdate per source of the header.
func ReadExport(r io.Reader) (*ExportHeader, []SourceUpdate, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadExport, err)
	}
	defer gz.Close()
	br := bufio.NewReaderSize(gz, 1<<16)
	h := sha256.New()
	var head *ExportHeader
	data := map[string]*FeedData{}
	records := 0
	for n := 1; ; n++ {
		line, err := readLine(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: line %d: %v", ErrBadExport, n, err)
		}
		var l exportLine
		if err := json.Unmarshal(line, &l); err != nil {
			return nil, nil, fmt.Errorf("%w: line %d: %v", ErrBadExport, n, err)
		}
		if l.Trailer != nil {
			if head == nil {
				return nil, nil, fmt.Errorf("%w: no header", ErrBadExport)
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != l.Trailer.SHA256 {
				return nil, nil, fmt.Errorf("%w: checksum %s, the trailer says %s (the file is damaged)", ErrBadExport, got, l.Trailer.SHA256)
			}
			if l.Trailer.Records != records {
				return nil, nil, fmt.Errorf("%w: %d records, the trailer says %d", ErrBadExport, records, l.Trailer.Records)
			}
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				return nil, nil, fmt.Errorf("%w: data after the trailer", ErrBadExport)
			}
			return head, exportUpdates(head, data), nil
		}
		h.Write(line)
		switch {
		case n == 1:
			if l.Header == nil || l.Header.Format != ExportFormat {
				return nil, nil, fmt.Errorf("%w: no export header", ErrBadExport)
			}
			if l.Header.Version != exportVersion {
				return nil, nil, fmt.Errorf("%w: version %d (this Drydock reads %d)", ErrBadExport, l.Header.Version, exportVersion)
			}
			head = l.Header
			for _, s := range head.Sources {
				data[s.Name] = &FeedData{}
			}
		case l.Advisory != nil:
			fd := data[l.Advisory.Source]
			if fd == nil {
				return nil, nil, fmt.Errorf("%w: line %d: advisory %s of a source the header does not list", ErrBadExport, n, l.Advisory.ID)
			}
			fd.Advisories = append(fd.Advisories, *l.Advisory)
			records++
		case l.Enrichment != nil:
			fd := data[l.Source]
			if fd == nil {
				return nil, nil, fmt.Errorf("%w: line %d: enrichment of a source the header does not list", ErrBadExport, n)
			}
			fd.Enrichment = append(fd.Enrichment, *l.Enrichment)
			records++
		default:
			return nil, nil, fmt.Errorf("%w: line %d: unknown record", ErrBadExport, n)
		}
	}
}

// readLine reads one line, newline included, of at most MaxExportLine
// bytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxExportLine {
			return nil, fmt.Errorf("line longer than %d bytes", MaxExportLine)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, errors.New("the file ends before its trailer (truncated)")
		default:
			return nil, err
		}
	}
}

func exportUpdates(head *ExportHeader, data map[string]*FeedData) []SourceUpdate {
	var out []SourceUpdate
	for _, s := range head.Sources {
		out = append(out, SourceUpdate{Name: s.Name, Kind: s.Kind, URL: s.URL, Data: data[s.Name]})
	}
	slices.SortFunc(out, func(a, b SourceUpdate) int { return strings.Compare(a.Name, b.Name) })
	return out
}
