package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// randomReader yields n bytes of pseudo-random content, deterministic for
// a seed. The harness shares two cores with the servers it measures, so the
// content must cost next to nothing: a pool of up to 1 MiB comes from
// ChaCha8 (crypto/rand or a per-word generator would cost more CPU than the
// server under test), and the stream repeats the pool with the first 8
// bytes of every 4 KiB page mixed with the page number, so no two pages of
// a layer are equal and the whole stays incompressible.
type randomReader struct {
	pool []byte
	pos  int64
	size int64
}

const (
	maxPool  = 1 << 20
	pageSize = 4096
)

func newRandomReader(seed uint64, n int64) *randomReader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	poolLen := int64(maxPool)
	if n < poolLen {
		poolLen = n
	}
	pool := make([]byte, poolLen)
	rand.NewChaCha8(key).Read(pool)
	return &randomReader{pool: pool, size: n}
}

// pageMix is the value XORed into the first 8 bytes of a page.
func pageMix(page int64) uint64 {
	z := uint64(page) + 0x9e3779b97f4a7c15 // splitmix64
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *randomReader) Read(p []byte) (int, error) {
	left := r.size - r.pos
	if left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	n := 0
	for n < len(p) {
		off := (r.pos + int64(n)) % int64(len(r.pool))
		n += copy(p[n:], r.pool[off:])
	}
	// Mix the page heads that fall inside [pos, pos+n).
	start, end := r.pos, r.pos+int64(n)
	for page := start / pageSize; page*pageSize < end; page++ {
		m := pageMix(page)
		for i := int64(0); i < 8; i++ {
			x := page*pageSize + i
			if x >= start && x < end {
				p[x-start] ^= byte(m >> (8 * i))
			}
		}
	}
	r.pos = end
	return n, nil
}

// randomLayer is an uncompressed tar layer holding one file of
// pseudo-random content, generated on the fly from a seed (nothing is kept
// in memory or on disk). It is a valid tar, so a scanner that indexes it
// sees one ordinary file.
type randomLayer struct {
	seed   uint64
	header []byte // tar header of the file
	data   int64  // file size
	tail   []byte // padding to a block, then the two zero end blocks
	digest v1.Hash
}

// newRandomLayer builds the layer and computes its digest by generating it
// once.
func newRandomLayer(seed uint64, size int64) (*randomLayer, error) {
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("bench/%016x.bin", seed), Mode: 0o644, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	pad := (512 - size%512) % 512
	l := &randomLayer{seed: seed, header: hdr.Bytes(), data: size, tail: make([]byte, pad+1024)}
	h := sha256.New()
	if _, err := io.Copy(h, l.reader()); err != nil {
		return nil, err
	}
	l.digest = v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
	return l, nil
}

func (l *randomLayer) reader() io.Reader {
	return io.MultiReader(bytes.NewReader(l.header), newRandomReader(l.seed, l.data), bytes.NewReader(l.tail))
}

func (l *randomLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *randomLayer) DiffID() (v1.Hash, error) { return l.digest, nil }
func (l *randomLayer) Size() (int64, error) {
	return int64(len(l.header)) + l.data + int64(len(l.tail)), nil
}
func (l *randomLayer) MediaType() (types.MediaType, error) { return types.OCIUncompressedLayer, nil }
func (l *randomLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(l.reader()), nil
}
func (l *randomLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }

var _ v1.Layer = (*randomLayer)(nil)
