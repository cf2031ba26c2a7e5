package blob

import (
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// BenchmarkUpload measures appending and committing a 256 MiB blob: the
// server-side cost of a push, without the network.
func BenchmarkUpload(b *testing.B) {
	const size = 256 << 20
	chunk := make([]byte, 1<<20)
	if _, err := rand.Read(chunk); err != nil {
		b.Fatal(err)
	}
	h := digest.SHA256.Digester()
	for i := 0; i < size/len(chunk); i++ {
		h.Hash().Write(chunk)
	}
	d := h.Digest()
	s, err := NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id, err := s.NewUpload(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		up, err := s.OpenUpload(ctx, "bench", id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := up.Append(ctx, &repeatReader{chunk: chunk, left: size}, digest.SHA256); err != nil {
			b.Fatal(err)
		}
		if _, err := up.Commit(ctx, d, nil); err != nil {
			b.Fatal(err)
		}
		up.Close()
		if err := s.Delete(ctx, d, farFuture, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// repeatReader yields chunk over and over until left bytes are read,
// whatever the sizes of the reads.
type repeatReader struct {
	chunk []byte
	left  int
	off   int // position in chunk
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.left)], r.chunk[r.off:])
	r.off = (r.off + n) % len(r.chunk)
	r.left -= n
	return n, nil
}

var farFuture = time.Now().Add(24 * time.Hour)
