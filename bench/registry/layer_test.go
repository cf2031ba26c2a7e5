package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"testing"
	"testing/iotest"
)

func TestRandomReader(t *testing.T) {
	for _, n := range []int64{0, 1, 7, 8, 9, 1000, 1 << 16} {
		want, err := io.ReadAll(newRandomReader(42, n))
		if err != nil || int64(len(want)) != n {
			t.Fatalf("n=%d: read %d bytes, %v", n, len(want), err)
		}
		// The same seed gives the same bytes whatever the read sizes.
		got, err := io.ReadAll(iotest.OneByteReader(newRandomReader(42, n)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("n=%d: byte-at-a-time reads differ", n)
		}
		if err := iotest.TestReader(newRandomReader(42, n), want); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
	}
	// Pages a pool length apart start from the same pool bytes but differ.
	long, _ := io.ReadAll(newRandomReader(3, 3*maxPool))
	if bytes.Equal(long[:pageSize], long[maxPool:maxPool+pageSize]) {
		t.Error("pages one pool apart are equal")
	}
	a, _ := io.ReadAll(newRandomReader(1, 4096))
	b, _ := io.ReadAll(newRandomReader(2, 4096))
	if bytes.Equal(a, b) {
		t.Error("different seeds gave the same bytes")
	}
}

func TestRandomLayerIsATar(t *testing.T) {
	const size = 100_001
	l, err := newRandomLayer(7, size)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	blob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := l.Size()
	if int64(len(blob)) != n || len(blob)%512 != 0 {
		t.Fatalf("blob is %d bytes, Size says %d; want a multiple of 512", len(blob), n)
	}
	d, _ := l.Digest()
	if sum := fmt.Sprintf("%x", sha256.Sum256(blob)); sum != d.Hex {
		t.Fatalf("digest %s, content hashes to %s", d.Hex, sum)
	}
	tr := tar.NewReader(bytes.NewReader(blob))
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(tr)
	if err != nil || h.Size != size || len(data) != size {
		t.Fatalf("tar entry %q of %d bytes (read %d, %v), want %d", h.Name, h.Size, len(data), err, size)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("after the one file: %v, want EOF", err)
	}
}

func TestReadProc(t *testing.T) {
	ps, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ps.cpuSeconds < 0 || ps.peakRSS <= 0 {
		t.Fatalf("own process: %+v", ps)
	}
	if _, err := readProc(-1); err == nil {
		t.Error("a missing process gave no error")
	}
}

func BenchmarkRandomReader(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	r := newRandomReader(1, int64(b.N)*int64(len(buf)))
	for i := 0; i < b.N; i++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(err)
		}
	}
}
