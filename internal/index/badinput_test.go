package index_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/rpm"
	"github.com/drydockhq/drydock/internal/testutil"
)

func allOS() []index.Cataloger { return append(osCatalogers(), rpm.New()) }

func TestTruncatedAndCorruptCompression(t *testing.T) {
	b, err := os.ReadFile(testutil.Fixture(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zs := zstded(t, func() []byte {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(zr)
		return raw
	}())
	corrupt := append([]byte(nil), b...)
	for i := len(corrupt) / 2; i < len(corrupt)/2+64; i++ {
		corrupt[i] ^= 0x5a
	}
	ix := &index.Indexer{Catalogers: allOS()}
	for name, blob := range map[string][]byte{
		"gzip truncated":       b[:len(b)/2],
		"gzip trailer cut":     b[:len(b)-4],
		"gzip corrupt":         corrupt,
		"zstd truncated":       zs[:len(zs)/2],
		"gzip header only":     b[:10],
		"not a tar":            []byte(strings.Repeat("this is not a tar archive\n", 100)),
		"empty gzip":           gzipped(t, nil),
		"tar missing its tail": makeTar(t, tarFile{name: "lib/apk/db/installed", body: strings.Repeat("P:x\nV:1\n\n", 1000)})[:3000],
	} {
		t.Run(name, func(t *testing.T) {
			inv, err := ix.Index(context.Background(), &index.Image{Layers: []index.Layer{memLayer(blob)}})
			if name == "empty gzip" {
				if err != nil || len(inv.Packages) != 0 {
					t.Errorf("an empty layer: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; %d packages", len(inv.Packages))
			}
			if !strings.Contains(err.Error(), "layer sha256:") {
				t.Errorf("the error does not name the layer: %v", err)
			}
		})
	}
}

func warned(inv *index.Inventory, substr string) bool {
	for _, w := range inv.Warnings {
		if strings.Contains(w, substr) {
			return true
		}
	}
	return false
}

func TestEscapingPaths(t *testing.T) {
	db := apkDB(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	rel, err := os.ReadFile(testutil.Fixture(t, "rootfs/bookworm-minbase.os-release"))
	if err != nil {
		t.Fatal(err)
	}
	l := memLayer(makeTar(t,
		tarFile{name: "../../../lib/apk/db/installed", body: string(db)},
		tarFile{name: "/etc/os-release", body: string(rel)},
	))
	inv, err := (&index.Indexer{Catalogers: allOS()}).Index(context.Background(), &index.Image{Layers: []index.Layer{l}})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Packages) != len(records(db)) || inv.Packages[0].Path != "lib/apk/db/installed" {
		t.Fatalf("%d packages at %q", len(inv.Packages), inv.Packages[0].Path)
	}
	if inv.OS == nil || inv.OS.ID != "debian" || !warned(inv, "outside the image root") {
		t.Errorf("os %v, warnings %v", inv.OS, inv.Warnings)
	}
}

func TestSymlinkLoops(t *testing.T) {
	l := memLayer(makeTar(t,
		tarFile{name: "a", typ: tar.TypeSymlink, link: "b"},
		tarFile{name: "b", typ: tar.TypeSymlink, link: "a"},
		tarFile{name: "lib/apk/db", typ: tar.TypeSymlink, link: "../../lib/apk/db"},
		tarFile{name: "etc/os-release", typ: tar.TypeSymlink, link: "os-release"},
		tarFile{name: "x", typ: tar.TypeLink, link: "x"},
	))
	inv, err := (&index.Indexer{Catalogers: allOS()}).Index(context.Background(), &index.Image{Layers: []index.Layer{l}})
	if err != nil || len(inv.Packages) != 0 || inv.OS != nil {
		t.Fatalf("%v %+v", err, inv)
	}
	// A directory tree with link loops.
	dir := t.TempDir()
	for _, p := range []string{"etc", "usr/lib"} {
		os.MkdirAll(filepath.Join(dir, p), 0o755)
	}
	os.Symlink("../etc", filepath.Join(dir, "etc", "loop"))
	os.Symlink("os-release", filepath.Join(dir, "etc", "os-release"))
	os.Symlink("/", filepath.Join(dir, "usr", "lib", "root"))
	done := make(chan error, 1)
	go func() {
		_, err := (&index.Indexer{Catalogers: allOS()}).IndexDir(context.Background(), dir)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("IndexDir did not finish")
	}
}

func TestCorruptDatabases(t *testing.T) {
	base := fixtureLayer(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	l := memLayer(makeTar(t,
		tarFile{name: "var/lib/dpkg/status", body: "Package: x\nthis line is not a field\n"},
		tarFile{name: "var/lib/rpm/Packages", body: strings.Repeat("\x00garbage", 300)},
		tarFile{name: "lib/apk/db/installed", body: "P:half a record\n"},
	))
	inv, err := (&index.Indexer{Catalogers: allOS()}).Index(context.Background(), &index.Image{Layers: []index.Layer{base, l}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"dpkg", "rpm", "apk"} {
		if !warned(inv, ": "+c+": ") {
			t.Errorf("no %s warning in %v", c, inv.Warnings)
		}
	}
	// The damaged apk database replaced the good one.
	if len(inv.Packages) != 0 || inv.OS == nil {
		t.Errorf("%d packages, os %v", len(inv.Packages), inv.OS)
	}
}

// TestSparseFile makes a real 10 GiB sparse file with GNU tar's sparse
// format: nobody wants it, so indexing costs nothing; at a path a
// cataloger wants it is over the size limit and skipped with a warning.
func TestSparseFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "var/lib/rpm"), 0o755)
	for _, p := range []string{"big.img", "var/lib/rpm/Packages"} {
		if out, err := exec.Command(testutil.RequireTool(t, "truncate"), "-s", "10G", filepath.Join(src, p)).CombinedOutput(); err != nil {
			t.Fatalf("truncate: %v %s", err, out)
		}
	}
	layer := filepath.Join(dir, "layer.tar")
	if out, err := exec.Command(testutil.RequireTool(t, "tar"), "--sparse", "-cf", layer, "-C", src, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	b, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 1<<20 {
		t.Fatalf("the sparse layer is %d bytes: tar did not write it sparse", len(b))
	}
	done := make(chan struct{})
	var inv *index.Inventory
	go func() {
		defer close(done)
		inv, err = (&index.Indexer{Catalogers: allOS()}).Index(context.Background(), &index.Image{Layers: []index.Layer{memLayer(gzipped(t, b))}})
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("indexing a sparse file did not finish")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !warned(inv, "var/lib/rpm/Packages: 10737418240 bytes is over the rpm cataloger's limit") {
		t.Errorf("warnings %v", inv.Warnings)
	}
}

// zeros is a reader of n zero bytes.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > z.n {
		p = p[:z.n]
	}
	clear(p)
	z.n -= int64(len(p))
	return len(p), nil
}

// bomb is a layer holding one file of n zero bytes, compressed.
func bomb(t *testing.T, n int64, useZstd bool) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	if useZstd {
		zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	} else {
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		w = zw
	}
	tw := tar.NewWriter(w)
	tw.WriteHeader(&tar.Header{Name: "zeros", Mode: 0o644, Size: n, Typeflag: tar.TypeReg})
	if _, err := io.Copy(tw, &zeros{n}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	w.Close()
	return buf.Bytes()
}

func TestDecompressionBomb(t *testing.T) {
	lim := index.DefaultLimits
	lim.BombFloor = 64 << 20
	ix := &index.Indexer{Catalogers: allOS(), Limits: &lim}
	for _, z := range []bool{false, true} {
		blob := bomb(t, 256<<20, z)
		_, err := ix.Index(context.Background(), &index.Image{Layers: []index.Layer{memLayer(blob)}})
		if !errors.Is(err, index.ErrBomb) {
			t.Errorf("zstd=%v: %d compressed bytes: err = %v", z, len(blob), err)
		}
	}
	// The absolute cap applies whatever the ratio.
	lim = index.DefaultLimits
	lim.MaxUncompressed = 1 << 20
	ix = &index.Indexer{Catalogers: allOS(), Limits: &lim}
	l := fixtureLayer(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	if _, err := ix.Index(context.Background(), &index.Image{Layers: []index.Layer{l}}); !errors.Is(err, index.ErrBomb) {
		t.Errorf("err = %v", err)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l := fixtureLayer(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	if _, err := (&index.Indexer{Catalogers: allOS()}).Index(ctx, &index.Image{Layers: []index.Layer{l}}); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v", err)
	}
}

// FuzzIndexLayer feeds arbitrary layer blobs to the walker and the OS
// catalogers; seeds are real content.
func FuzzIndexLayer(f *testing.F) {
	db := apkDB(f, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	rel, err := os.ReadFile(testutil.Fixture(f, "rootfs/bookworm-minbase.os-release"))
	if err != nil {
		f.Fatal(err)
	}
	status, err := os.ReadFile(testutil.Fixture(f, "rootfs/bookworm-minbase.dpkg-status"))
	if err != nil {
		f.Fatal(err)
	}
	small := makeTar(f,
		tarFile{name: "etc/os-release", body: string(rel)},
		tarFile{name: "lib/apk/db/installed", body: string(db[:2000])},
		tarFile{name: "var/lib/dpkg/status", body: string(status[:3000])},
		tarFile{name: "usr/.wh.share"},
		tarFile{name: "opt/.wh..wh..opq"},
		tarFile{name: "link", typ: tar.TypeLink, link: "etc/os-release"},
	)
	f.Add(small)
	f.Add(gzipped(f, small))
	f.Add(zstded(f, small))
	lim := index.DefaultLimits
	lim.MaxUncompressed = 16 << 20
	lim.BombFloor = 1 << 20
	lim.MaxEntries = 10000
	f.Fuzz(func(t *testing.T, blob []byte) {
		ix := &index.Indexer{Catalogers: allOS(), Limits: &lim}
		type result struct {
			inv *index.Inventory
			err error
		}
		done := make(chan result, 1)
		go func() {
			inv, err := ix.Index(context.Background(), &index.Image{Layers: []index.Layer{memLayer(blob)}})
			done <- result{inv, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("indexing a %d-byte layer did not finish", len(blob))
		}
		inv, err := r.inv, r.err
		if err != nil {
			return
		}
		for _, p := range inv.Packages {
			if strings.HasPrefix(p.Path, "/") || strings.Contains("/"+p.Path+"/", "/../") {
				t.Fatalf("unsafe path %q", p.Path)
			}
		}
	})
}
