package index

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is how a layer blob is compressed, as recognised from its
// first bytes (media types lie often enough that they are not trusted).
type Compression string

// The compressions a layer may use.
const (
	CompressionNone  Compression = "none"
	CompressionGzip  Compression = "gzip"
	CompressionZstd  Compression = "zstd"
	CompressionBzip2 Compression = "bzip2"
)

// Limits bound what reading one layer may cost, whatever the layer holds.
type Limits struct {
	// MaxUncompressed is the most tar bytes read from one layer.
	MaxUncompressed int64
	// MaxRatio refuses a layer whose tar stream grows past MaxRatio times
	// its compressed size once it is larger than BombFloor: real layers
	// compress 2-10 times, a decompression bomb thousands of times.
	MaxRatio  int64
	BombFloor int64
	// MaxEntries is the most tar entries read from one layer.
	MaxEntries int
	// MaxZstdWindow bounds the memory a zstd frame may ask for.
	MaxZstdWindow uint64
}

// DefaultLimits are generous for real images and stop hostile ones.
var DefaultLimits = Limits{
	MaxUncompressed: 64 << 30,
	MaxRatio:        200,
	BombFloor:       1 << 30,
	MaxEntries:      2_000_000,
	MaxZstdWindow:   64 << 20,
}

// ErrBomb is returned for a layer that decompresses far beyond any real
// layer's ratio or past the configured size.
var ErrBomb = errors.New("layer refused as a decompression bomb")

// sniff reports the compression of the stream behind br from its magic
// bytes.
func sniff(br *bufio.Reader) (Compression, error) {
	head, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return CompressionGzip, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return CompressionZstd, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return CompressionBzip2, nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X'}):
		return "", errors.New("xz-compressed layers are not supported")
	}
	return CompressionNone, nil
}

// decompressor returns the tar stream inside a layer blob and a function
// that releases the decoder.
func decompressor(src io.Reader, lim Limits) (io.Reader, Compression, func(), error) {
	br := bufio.NewReaderSize(src, 64<<10)
	c, err := sniff(br)
	if err != nil {
		return nil, "", nil, fmt.Errorf("read layer header: %w", err)
	}
	switch c {
	case CompressionGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, c, func() { zr.Close() }, nil
	case CompressionZstd:
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(lim.MaxZstdWindow),
			zstd.WithDecoderMaxMemory(uint64(lim.MaxUncompressed)))
		if err != nil {
			return nil, c, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, c, zr.Close, nil
	case CompressionBzip2:
		return bzip2.NewReader(br), c, func() {}, nil
	}
	return br, c, func() {}, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// boundedReader fails with ErrBomb once the tar stream outgrows the limits
// relative to the compressed bytes read so far.
type boundedReader struct {
	r          io.Reader
	n          int64
	compressed *countingReader
	lim        Limits
}

func (b *boundedReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.lim.MaxUncompressed {
		return n, fmt.Errorf("%w: more than %d bytes uncompressed", ErrBomb, b.lim.MaxUncompressed)
	}
	if b.n > b.lim.BombFloor && b.lim.MaxRatio > 0 && b.n > b.lim.MaxRatio*max(b.compressed.n, 1) {
		return n, fmt.Errorf("%w: %d bytes from %d compressed (ratio above %d)", ErrBomb, b.n, b.compressed.n, b.lim.MaxRatio)
	}
	return n, err
}

// entry is one tar entry with its path made safe.
type entry struct {
	hdr *tar.Header
	// path is relative to the image root: slash-separated, cleaned, no
	// leading slash, no ".." element.
	path string
	// escaped is set when the name in the archive was absolute or climbed
	// out with "..": it is read where container runtimes put it.
	escaped bool
	// whiteout is "" for an ordinary entry, or names the path a whiteout
	// entry deletes; opaque is set for an opaque-directory marker, with
	// path naming the directory.
	whiteout string
	opaque   bool
}

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// cleanPath maps a tar entry name to a path relative to the image root the
// way container runtimes apply layers (joined to the root after cleaning,
// so "../../etc/x" and "/etc/x" both land on "etc/x"). escaped reports that
// the name tried to leave the root or was absolute.
func cleanPath(name string) (p string, escaped bool) {
	name = strings.TrimPrefix(name, "./")
	escaped = strings.HasPrefix(name, "/")
	if !escaped {
		for _, el := range strings.Split(name, "/") {
			if el == ".." {
				escaped = true
				break
			}
		}
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), escaped
}

// classify fills in an entry's path and whiteout meaning.
func classify(h *tar.Header) entry {
	p, escaped := cleanPath(h.Name)
	e := entry{hdr: h, path: p, escaped: escaped}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	switch {
	case base == whiteoutOpaque:
		e.opaque, e.path = true, dir
	case strings.HasPrefix(base, whiteoutMeta):
		// Other AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content.
		e.whiteout = ""
		e.path = ""
	case strings.HasPrefix(base, whiteoutPrefix):
		e.whiteout = path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))
	}
	return e
}

// isRegular reports whether a tar entry carries file content.
func isRegular(h *tar.Header) bool {
	// archive/tar reports the old TypeRegA as TypeReg already.
	return h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeGNUSparse
}

// walkTar calls fn for every entry of the tar stream r, in order. fn may
// read the entry's content from body; unread content is skipped.
func walkTar(ctx context.Context, r io.Reader, lim Limits, fn func(e entry, body io.Reader) error) error {
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if lim.MaxEntries > 0 && n >= lim.MaxEntries {
			return fmt.Errorf("layer has more than %d entries", lim.MaxEntries)
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar entry %d: %w", n, err)
		}
		e := classify(h)
		if e.path == "" && !e.opaque {
			continue // the root directory itself, or AUFS metadata
		}
		if err := fn(e, tr); err != nil {
			return err
		}
	}
}

// fileMode returns the fs.FileMode of a tar entry, with its type bits.
func fileMode(h *tar.Header) fs.FileMode { return h.FileInfo().Mode() }

// fileHeader describes a file of a directory tree as a tar entry, so
// directories go through the same path as layers.
func fileHeader(name string, info fs.FileInfo) *tar.Header {
	h, err := tar.FileInfoHeader(info, "")
	if err != nil {
		h = &tar.Header{Typeflag: tar.TypeReg, Size: info.Size(), Mode: int64(info.Mode().Perm())}
	}
	h.Name = name
	return h
}
