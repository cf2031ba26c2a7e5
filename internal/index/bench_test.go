package index_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	stdgzip "compress/gzip"
	kgzip "github.com/klauspost/compress/gzip"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/apk"
	"github.com/drydockhq/drydock/internal/index/dpkg"
	"github.com/drydockhq/drydock/internal/index/rpm"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

const debianRootfs = "rootfs/debian-bookworm-12.15-minbase-amd64-rootfs.tar.gz"

// fileLayer is a layer read from a file on each Open, with its digest.
func fileLayer(b *testing.B, rel string) index.Layer {
	p := testutil.Fixture(b, rel)
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	return index.Layer{
		Digest: "sha256:" + hex.EncodeToString(h.Sum(nil)),
		Size:   n,
		Open:   func(context.Context) (io.ReadCloser, error) { return os.Open(p) },
	}
}

func benchCatalogers() []index.Cataloger {
	return []index.Cataloger{dpkg.New(), apk.New(), rpm.New()}
}

// BenchmarkIndexDebianCold indexes the Debian bookworm minbase image (one
// 48 MB gzip layer, 88 packages) with nothing cached.
func BenchmarkIndexDebianCold(b *testing.B) {
	l := fileLayer(b, debianRootfs)
	ix := &index.Indexer{Catalogers: benchCatalogers()}
	b.SetBytes(l.Size)
	b.ResetTimer()
	defer reportCPU(b, cpuTime(b))
	for i := 0; i < b.N; i++ {
		res, _, err := ix.IndexLayer(context.Background(), l)
		if err != nil || res.Bytes != 121415680 {
			b.Fatalf("%v; %d bytes decompressed", err, res.Bytes)
		}
		if inv := index.Assemble([]*index.LayerResult{res}); len(inv.Packages) != 88 {
			b.Fatalf("%d packages", len(inv.Packages))
		}
	}
}

// BenchmarkIndexDebianCached indexes the same image with its layer in the
// SQLite layer cache.
func BenchmarkIndexDebianCached(b *testing.B) {
	l := fileLayer(b, debianRootfs)
	cache, err := index.NewStoreCache(context.Background(), storetest.SQLite(b))
	if err != nil {
		b.Fatal(err)
	}
	ix := &index.Indexer{Catalogers: benchCatalogers(), Cache: cache}
	if _, err := ix.Index(context.Background(), &index.Image{Layers: []index.Layer{l}}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	defer reportCPU(b, cpuTime(b))
	for i := 0; i < b.N; i++ {
		inv, err := ix.Index(context.Background(), &index.Image{Layers: []index.Layer{l}})
		if err != nil || len(inv.Packages) != 88 || !inv.Layers[0].Cached {
			b.Fatalf("%v", err)
		}
	}
}

// BenchmarkGunzipDebianLayer is the floor for the cold case: decompressing
// the layer and nothing else, with klauspost's gzip (what the indexer
// uses) and the standard library's.
func BenchmarkGunzipDebianLayer(b *testing.B) {
	p := testutil.Fixture(b, debianRootfs)
	st, _ := os.Stat(p)
	for _, impl := range []string{"klauspost", "stdlib"} {
		b.Run(impl, func(b *testing.B) {
			b.SetBytes(st.Size())
			defer reportCPU(b, cpuTime(b))
			for i := 0; i < b.N; i++ {
				f, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				// The same 64 KiB read-ahead the indexer uses.
				br := bufio.NewReaderSize(f, 64<<10)
				var r io.Reader
				if impl == "klauspost" {
					r, err = kgzip.NewReader(br)
				} else {
					r, err = stdgzip.NewReader(br)
				}
				if err != nil {
					b.Fatal(err)
				}
				// Read into one buffer, as the tar reader does (io.Copy would
				// take the decompressor's WriteTo path instead).
				buf := make([]byte, 32<<10)
				for {
					_, err := r.Read(buf)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				f.Close()
			}
		})
	}
}

// BenchmarkHashDebianLayer is the cost of verifying the layer digest.
func BenchmarkHashDebianLayer(b *testing.B) {
	p := testutil.Fixture(b, debianRootfs)
	st, _ := os.Stat(p)
	b.SetBytes(st.Size())
	for i := 0; i < b.N; i++ {
		f, _ := os.Open(p)
		h := sha256.New()
		io.Copy(h, f)
		f.Close()
	}
}

// cpuTime is the process's user and system CPU time so far. Under a
// loaded machine it is a steadier measure than wall time (a goroutine more
// gets a larger share of the contended cores).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds a cpu-ms/op metric measured since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
