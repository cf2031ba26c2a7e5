// Package binary catalogs executables: Go binaries (their embedded build
// information) and Rust binaries built with cargo-auditable (their
// zlib-compressed dependency list). Executables are many and large, so each
// is read once, as a stream, in one pass shared by both kinds: a file that
// is not ELF, Mach-O or PE is dropped after its first bytes; the others are
// scanned chunk by chunk for the two markers without being buffered whole.
//
// The standard library's debug/buildinfo and debug/elf need random access
// (an io.ReaderAt over the whole file): buffering every executable of a
// layer would cost memory proportional to the largest binary. Scanning the
// stream finds the same data: Go 1.18 and later write the build information
// inline after a 16-byte-aligned header, and the cargo-auditable section is
// one zlib stream whose decompressed start is fixed JSON.
package binary

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/golang"
	"github.com/drydockhq/drydock/internal/index/lang/rust"
)

// maxSize bounds the executables scanned. They are streamed, so the limit
// bounds time rather than memory.
const maxSize = 2 << 30

// chunkSize is the scanning window.
const chunkSize = 256 << 10

// minSize is the smallest executable worth reading: a Go binary is over a
// megabyte, an auditable Rust binary hundreds of kilobytes.
const minSize = 64 << 10

// Cataloger finds Go and auditable Rust binaries. The zero value is ready
// to use; it must not be copied after first use.
type Cataloger struct {
	windows sync.Pool // of *[]byte, chunkSize each: an image has hundreds of executables
}

// New returns a binary cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements index.Cataloger.
func (*Cataloger) Name() string { return "binary" }

// Version implements index.Cataloger.
func (*Cataloger) Version() int { return 2 }

// MaxSize implements index.Cataloger.
func (*Cataloger) MaxSize() int64 { return maxSize }

// Wants implements index.Cataloger: regular files with an execute bit,
// large enough to be a Go or Rust program, except names that say they are
// archives or scripts (a jar with an execute bit is the java cataloger's).
func (*Cataloger) Wants(p string, mode fs.FileMode, size int64) bool {
	return mode.IsRegular() && mode&0o111 != 0 && size >= minSize && !notProgram(p)
}

// notProgram reports file name extensions of executable files that are
// not programs.
func notProgram(p string) bool {
	i := strings.LastIndexByte(p, '.')
	if i < 0 || len(p)-i > 5 || strings.IndexByte(p[i:], '/') >= 0 {
		return false
	}
	switch p[i+1:] {
	case "jar", "war", "ear", "hpi", "jpi", "sh", "py", "pl", "rb", "js":
		return true
	}
	return false
}

// isExecutable reports whether head starts like an ELF, Mach-O (thin or
// universal) or PE file.
func isExecutable(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	switch string(head[:4]) {
	case "\x7fELF",
		"\xfe\xed\xfa\xce", "\xce\xfa\xed\xfe", // Mach-O 32-bit
		"\xfe\xed\xfa\xcf", "\xcf\xfa\xed\xfe", // Mach-O 64-bit
		"\xca\xfe\xba\xbe": // Mach-O universal
		return true
	}
	return head[0] == 'M' && head[1] == 'Z'
}

// Catalog implements index.Cataloger.
func (c *Cataloger) Catalog(ctx context.Context, f index.File) ([]index.Package, error) {
	var head [4]byte
	if _, err := io.ReadFull(f.Reader, head[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, nil
		}
		return nil, err
	}
	if !isExecutable(head[:]) {
		return nil, nil
	}
	bp, _ := c.windows.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, chunkSize)
		bp = &b
	}
	s := &scanner{r: f.Reader, buf: append((*bp)[:0], head[:]...)}
	pkgs, err := s.scan(ctx, f.Path)
	if cap(s.buf) == chunkSize {
		// Packages hold no reference to the window: it can be reused.
		*bp = s.buf[:0]
		c.windows.Put(bp)
	}
	return pkgs, err
}

// scanner holds a window of the stream: buf[0] is at file offset base.
type scanner struct {
	r    io.Reader
	buf  []byte
	base int64
	eof  bool
	fl   io.ReadCloser // reused for trial inflation
	old  legacy        // for build information of Go before 1.18
}

// fill reads until buf holds at least n bytes or the stream ends, growing
// buf when n is past its capacity.
func (s *scanner) fill(n int) error {
	if n > cap(s.buf) {
		nb := make([]byte, len(s.buf), n)
		copy(nb, s.buf)
		s.buf = nb
	}
	for len(s.buf) < n && !s.eof {
		m, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+m]
		if err == io.EOF {
			s.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// advance drops all but the last keep bytes of the window and reads the
// next chunk after them.
func (s *scanner) advance(keep int) error {
	keep = min(keep, len(s.buf))
	drop := len(s.buf) - keep
	copy(s.buf, s.buf[drop:])
	s.buf = s.buf[:keep]
	s.base += int64(drop)
	return s.fill(cap(s.buf))
}

// zlibHeaders are the second bytes of a zlib header with a 32 KiB window,
// no preset dictionary and a valid check, for each compression level class.
var zlibHeaders = [4]byte{0x01, 0x5e, 0x9c, 0xda}

// overlap is kept between windows so a marker split by a window boundary is
// still found.
const overlap = len(golang.Magic) - 1

var errNotAudit = errors.New("not cargo-auditable data")

// scan looks for the Go build information header and the cargo-auditable
// zlib stream; the first found decides what the binary is.
func (s *scanner) scan(ctx context.Context, path string) ([]index.Package, error) {
	if err := s.fill(cap(s.buf)); err != nil {
		return nil, err
	}
	s.keepHead()
	for chunks := 0; ; chunks++ {
		if chunks%64 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := s.collect(); err != nil {
			return nil, err
		}
		// goAt is the next Go header candidate at or after pos, found once
		// per window; zlib candidates before it are tried first.
		goAt := -1
		for pos := 0; pos < len(s.buf); {
			if goAt < pos {
				goAt = len(s.buf)
				if j := bytes.Index(s.buf[pos:], []byte(golang.Magic)); j >= 0 {
					goAt = pos + j
				}
			}
			if i := bytes.IndexByte(s.buf[pos:goAt], 'x'); i >= 0 {
				at := pos + i
				if at+1 < len(s.buf) && isZlibFlag(s.buf[at+1]) {
					pkgs, err := s.audit(at, path)
					if err != errNotAudit {
						return pkgs, err
					}
				}
				pos = at + 1
				continue
			}
			if goAt == len(s.buf) {
				break
			}
			if (s.base+int64(goAt))%16 == 0 {
				pkgs, err := s.goBlock(goAt, path)
				if err != errNotGo {
					return pkgs, err
				}
			}
			pos = goAt + 1
		}
		if s.eof {
			return nil, nil
		}
		if err := s.advance(overlap); err != nil {
			return nil, err
		}
		if len(s.buf) <= overlap && s.eof {
			return nil, nil
		}
	}
}

func isZlibFlag(b byte) bool {
	return b == zlibHeaders[0] || b == zlibHeaders[1] || b == zlibHeaders[2] || b == zlibHeaders[3]
}

var errNotGo = errors.New("not a Go build information block")

// goBlock decodes the build information block at buf[at].
func (s *scanner) goBlock(at int, path string) ([]index.Package, error) {
	for {
		goVersion, modinfo, need, err := golang.DecodeBlock(s.buf[at:])
		switch {
		case errors.Is(err, golang.ErrNotInline):
			return s.oldBlock(at, path)
		case err != nil:
			return nil, errNotGo
		case need == 0:
			return golang.Packages(goVersion, modinfo, path)
		case need > golang.MaxBlock+64 || s.eof && at+need > len(s.buf):
			return nil, errNotGo
		}
		if err := s.fill(at + need); err != nil {
			return nil, err
		}
	}
}

// auditPrefix starts the JSON that cargo-auditable compresses.
const auditPrefix = `{"packages":[`

// audit tries the zlib stream at buf[at]: a cheap trial inflation of its
// first bytes, then, if they are cargo-auditable JSON, the whole stream.
func (s *scanner) audit(at int, path string) ([]index.Package, error) {
	if err := s.fill(at + 512); err != nil {
		return nil, err
	}
	src := bytes.NewReader(s.buf[at+2:])
	if s.fl == nil {
		s.fl = flate.NewReader(src)
	} else if err := s.fl.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, errNotAudit
	}
	var head [len(auditPrefix)]byte
	if _, err := io.ReadFull(s.fl, head[:]); err != nil || string(head[:]) != auditPrefix {
		return nil, errNotAudit
	}
	// The stream may run past the window: continue from the rest of the
	// file.
	zr, err := zlib.NewReader(io.MultiReader(bytes.NewReader(s.buf[at:]), s.r))
	if err != nil {
		return nil, errNotAudit
	}
	data, err := io.ReadAll(io.LimitReader(zr, rust.MaxAuditData+1))
	if err != nil {
		return nil, fmt.Errorf("cargo-auditable data: %w", err)
	}
	if len(data) > rust.MaxAuditData {
		return nil, fmt.Errorf("cargo-auditable data over %d bytes", rust.MaxAuditData)
	}
	return rust.AuditPackages(data, path)
}
