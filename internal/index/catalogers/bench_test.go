package catalogers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/catalogers"
	"github.com/drydockhq/drydock/internal/testutil"
)

// BenchmarkIndexDebianColdAll indexes the Debian bookworm minbase image
// cold with every cataloger, language ones included (the binary cataloger
// looks at each executable).
func BenchmarkIndexDebianColdAll(b *testing.B) {
	p := testutil.Fixture(b, "rootfs/debian-bookworm-12.15-minbase-amd64-rootfs.tar.gz")
	blob, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(blob)
	l := index.Layer{
		Digest: "sha256:" + hex.EncodeToString(sum[:]),
		Size:   int64(len(blob)),
		Open:   func(context.Context) (io.ReadCloser, error) { return os.Open(p) },
	}
	ix := &index.Indexer{Catalogers: catalogers.All()}
	b.SetBytes(l.Size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inv, err := ix.Index(context.Background(), &index.Image{Layers: []index.Layer{l}})
		if err != nil || len(inv.Packages) < 88 {
			b.Fatalf("%v", err)
		}
	}
}
