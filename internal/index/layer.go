package index

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/drydockhq/drydock/internal/index/osrel"
)

// LayerResult is what one layer contributes to an image's inventory: the
// files the catalogers read with the packages each declared, the release
// files for OS detection, and the whiteouts that hide lower layers'
// files. It is what the layer cache stores, keyed by layer digest.
type LayerResult struct {
	Digest      string       `json:"digest,omitempty"`
	Compression Compression  `json:"compression,omitempty"`
	Files       []FileResult `json:"files,omitempty"`
	// Whiteouts are paths this layer deletes from the layers below.
	Whiteouts []string `json:"whiteouts,omitempty"`
	// Opaque are directories whose lower-layer content this layer hides.
	Opaque []string `json:"opaque,omitempty"`
	// Links are hard links at wanted paths to files of lower layers (by
	// path): the file at the key has the content of the file at the value.
	Links    map[string]string `json:"links,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
	Entries  int               `json:"entries"`
	// Bytes is the size of the uncompressed tar stream.
	Bytes int64 `json:"bytes"`
}

// FileResult is one file of a layer that matters to the inventory. A
// file with no packages still matters: it replaces the same path in lower
// layers (a package database emptied or replaced by a symlink).
type FileResult struct {
	Path     string    `json:"path"`
	Packages []Package `json:"packages,omitempty"`
	// Content is the file's content for OS release files.
	Content []byte `json:"content,omitempty"`
	// Marker is set for a file whose presence alone matters (bin/busybox).
	Marker bool `json:"marker,omitempty"`
}

// layerWalker gathers a LayerResult from the entries of one layer.
type layerWalker struct {
	ix   *Indexer
	res  *LayerResult
	seen map[string]int // path -> index in res.Files; a later entry wins
}

func (w *layerWalker) warnf(format string, args ...any) {
	const maxWarnings = 200
	if len(w.res.Warnings) < maxWarnings {
		w.res.Warnings = append(w.res.Warnings, fmt.Sprintf(format, args...))
	} else if len(w.res.Warnings) == maxWarnings {
		w.res.Warnings = append(w.res.Warnings, "further warnings omitted")
	}
}

// put records fr, replacing an earlier entry of the same path in this
// layer.
func (w *layerWalker) put(fr FileResult) {
	if i, ok := w.seen[fr.Path]; ok {
		w.res.Files[i] = fr
		return
	}
	w.seen[fr.Path] = len(w.res.Files)
	w.res.Files = append(w.res.Files, fr)
}

// wanting returns the catalogers that want a regular file.
func (w *layerWalker) wanting(p string, mode fs.FileMode, size int64) []Cataloger {
	var cs []Cataloger
	for _, c := range w.ix.Catalogers {
		if c.Wants(p, mode, size) {
			cs = append(cs, c)
		}
	}
	return cs
}

func (w *layerWalker) visit(ctx context.Context, e entry, body io.Reader) error {
	w.res.Entries++
	if e.escaped {
		w.warnf("entry %q is outside the image root; read as /%s, where container runtimes put it", e.hdr.Name, e.path)
	}
	switch {
	case e.opaque:
		w.res.Opaque = append(w.res.Opaque, e.path)
		return nil
	case e.whiteout != "":
		w.res.Whiteouts = append(w.res.Whiteouts, e.whiteout)
		return nil
	}
	h := e.hdr
	if !isRegular(h) {
		return w.visitSpecial(e)
	}
	mode := fileMode(h) &^ fs.ModeType // sparse and old regular types read as plain files
	if osrel.IsMarker(e.path) {
		w.put(FileResult{Path: e.path, Marker: true})
		return nil
	}
	if osrel.Wants(e.path) {
		if h.Size > osrel.MaxFileSize {
			w.warnf("%s: release file of %d bytes skipped", e.path, h.Size)
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(body, h.Size))
		if err != nil {
			return fmt.Errorf("read %s: %w", e.path, err)
		}
		w.put(FileResult{Path: e.path, Content: b})
		return nil
	}
	cs := w.wanting(e.path, mode, h.Size)
	if len(cs) == 0 {
		return nil
	}
	fr := FileResult{Path: e.path}
	var keep []Cataloger
	for _, c := range cs {
		if h.Size > c.MaxSize() {
			w.warnf("%s: %d bytes is over the %s cataloger's limit of %d; skipped", e.path, h.Size, c.Name(), c.MaxSize())
			continue
		}
		keep = append(keep, c)
	}
	var buf []byte
	if len(keep) > 1 {
		// Several catalogers read the same file: buffer it once.
		var err error
		buf, err = io.ReadAll(io.LimitReader(body, h.Size))
		if err != nil {
			return fmt.Errorf("read %s: %w", e.path, err)
		}
	}
	for _, c := range keep {
		var r io.Reader = io.LimitReader(body, h.Size)
		if buf != nil {
			r = bytes.NewReader(buf)
		}
		pkgs, err := w.ix.catalog(ctx, c, File{Path: e.path, Mode: mode, Size: h.Size, Reader: r})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if isStreamErr(err) {
				// The layer itself broke under the cataloger: the rest of
				// the layer cannot be read either.
				return fmt.Errorf("read %s: %w", e.path, err)
			}
			w.warnf("%s: %s: %v", e.path, c.Name(), err)
		}
		fr.Packages = append(fr.Packages, pkgs...)
	}
	w.put(fr)
	return nil
}

// visitSpecial handles links, directories and devices: a hard link to a
// file read in this layer declares what that file declared; anything else
// at a wanted path hides what lower layers had there.
func (w *layerWalker) visitSpecial(e entry) error {
	h := e.hdr
	if h.Typeflag == tar.TypeDir {
		return nil
	}
	if h.Typeflag == tar.TypeLink {
		target, _ := cleanPath(h.Linkname)
		if i, ok := w.seen[target]; ok {
			fr := w.res.Files[i]
			fr.Path = e.path
			fr.Packages = append([]Package(nil), fr.Packages...)
			for j := range fr.Packages {
				if fr.Packages[j].Path == target {
					fr.Packages[j].Path = e.path
				}
			}
			w.put(fr)
			return nil
		}
	}
	if osrel.Wants(e.path) || osrel.IsMarker(e.path) || len(w.wanting(e.path, 0, 0)) > 0 {
		w.put(FileResult{Path: e.path})
		if h.Typeflag == tar.TypeLink {
			// A link to a lower layer's file: resolved when layers are
			// combined.
			target, _ := cleanPath(h.Linkname)
			if w.res.Links == nil {
				w.res.Links = map[string]string{}
			}
			w.res.Links[e.path] = target
		}
	}
	return nil
}

// catalog runs one cataloger on one file, turning a panic in it into an
// error so a bug in one parser cannot take the indexer down.
func (ix *Indexer) catalog(ctx context.Context, c Cataloger, f File) (pkgs []Package, err error) {
	defer func() {
		if r := recover(); r != nil {
			pkgs, err = nil, fmt.Errorf("cataloger panicked: %v", r)
		}
	}()
	pkgs, err = c.Catalog(ctx, f)
	for i := range pkgs {
		if pkgs[i].Path == "" {
			pkgs[i].Path = f.Path
		}
	}
	return pkgs, err
}

// streamErr marks errors of the layer stream itself (as opposed to a
// cataloger's parse error), seen through a cataloger.
type streamErr struct{ err error }

func (e *streamErr) Error() string { return e.err.Error() }
func (e *streamErr) Unwrap() error { return e.err }

func isStreamErr(err error) bool {
	var se *streamErr
	return errors.As(err, &se)
}

// markingReader wraps the decompressed stream so errors from it are
// recognisable after passing through a cataloger.
type markingReader struct{ r io.Reader }

func (m markingReader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	if err != nil && err != io.EOF {
		err = &streamErr{err}
	}
	return n, err
}

// digestVerifier hashes the compressed blob as it is read, so a blob that
// does not match its digest is never cached under that digest. Hashing
// runs on its own goroutine, off the decompressor's critical path (it is
// about a tenth of a cold layer's CPU time); its buffers are bounded.
type digestVerifier struct {
	r    io.Reader
	want string
	h    hash.Hash
	free chan []byte
	full chan []byte
	done chan struct{}
	sum  string
}

const (
	hashBuffers   = 8
	hashBufferLen = 64 << 10
)

func newVerifier(digest string, r io.Reader) (*digestVerifier, error) {
	alg, hexPart, ok := strings.Cut(digest, ":")
	if !ok || alg != "sha256" || len(hexPart) != 64 {
		return nil, fmt.Errorf("layer digest %q is not a sha256 digest", digest)
	}
	v := &digestVerifier{r: r, want: hexPart, h: sha256.New(),
		free: make(chan []byte, hashBuffers), full: make(chan []byte, hashBuffers), done: make(chan struct{})}
	for i := 0; i < hashBuffers; i++ {
		v.free <- make([]byte, hashBufferLen)
	}
	go func() {
		defer close(v.done)
		for b := range v.full {
			v.h.Write(b)
			v.free <- b[:cap(b)]
		}
	}()
	return v, nil
}

// Read reads from the blob and hands a copy of the bytes to the hasher.
func (v *digestVerifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	for q := p[:n]; len(q) > 0; {
		b := <-v.free
		m := copy(b, q)
		v.full <- b[:m]
		q = q[m:]
	}
	return n, err
}

// finish stops the hasher; it is called once, whether or not reading
// succeeded.
func (v *digestVerifier) finish() {
	if v.sum == "" {
		close(v.full)
		<-v.done
		v.sum = hex.EncodeToString(v.h.Sum(nil))
	}
}

func (v *digestVerifier) check() error {
	v.finish()
	if v.sum != v.want {
		return fmt.Errorf("layer content does not match its digest: got sha256:%s", v.sum)
	}
	return nil
}

// indexStream reads one layer blob (compressed or not) and returns what
// the catalogers found. digest, when not empty, is verified.
func (ix *Indexer) indexStream(ctx context.Context, digest string, blob io.Reader) (*LayerResult, error) {
	lim := ix.limits()
	var ver *digestVerifier
	src := blob
	if digest != "" {
		var err error
		if ver, err = newVerifier(digest, blob); err != nil {
			return nil, err
		}
		defer ver.finish()
		src = ver
	}
	counted := &countingReader{r: src}
	tarStream, comp, release, err := decompressor(counted, lim)
	if err != nil {
		return nil, err
	}
	defer release()
	bounded := &boundedReader{r: tarStream, compressed: counted, lim: lim}
	res := &LayerResult{Digest: digest, Compression: comp}
	w := &layerWalker{ix: ix, res: res, seen: map[string]int{}}
	err = walkTar(ctx, markingReader{bounded}, lim, func(e entry, body io.Reader) error {
		return w.visit(ctx, e, body)
	})
	if err != nil {
		return nil, fmt.Errorf("%s layer: %w", comp, err)
	}
	// Read what follows the tar end marker, so the compressed stream's own
	// checksum is checked and the whole blob is hashed.
	if _, err := io.Copy(io.Discard, bounded); err != nil {
		return nil, fmt.Errorf("%s layer: after the tar end: %w", comp, err)
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	res.Bytes = bounded.n
	if ver != nil {
		if err := ver.check(); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// cleanRel is path.Clean for root-relative paths ("" for the root).
func cleanRel(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}
