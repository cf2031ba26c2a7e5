package index_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/apk"
	"github.com/drydockhq/drydock/internal/index/dpkg"
	"github.com/drydockhq/drydock/internal/testutil"
)

func osCatalogers() []index.Cataloger { return []index.Cataloger{dpkg.New(), apk.New()} }

// memLayer makes a layer from blob bytes, with their real digest.
func memLayer(blob []byte) index.Layer {
	sum := sha256.Sum256(blob)
	return index.Layer{
		Digest: "sha256:" + hex.EncodeToString(sum[:]),
		Size:   int64(len(blob)),
		Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(blob)), nil
		},
	}
}

type tarFile struct {
	name string
	body string
	typ  byte
	link string
}

func makeTar(t testing.TB, files ...tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: f.typ, Linkname: f.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(f.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return zw.EncodeAll(b, nil)
}

// apkDB reads lib/apk/db/installed out of a minirootfs with the standard
// library.
func apkDB(t testing.TB, fixture string) []byte {
	t.Helper()
	return testutil.TarGzFile(t, fixture, "lib/apk/db/installed")
}

// records splits an apk database into its records.
func records(db []byte) []string {
	return strings.Split(strings.TrimSpace(string(db)), "\n\n")
}

func field(rec, letter string) string {
	for _, l := range strings.Split(rec, "\n") {
		if strings.HasPrefix(l, letter+":") {
			return l[2:]
		}
	}
	return ""
}

func byName(inv *index.Inventory) map[string]index.Package {
	m := map[string]index.Package{}
	for _, p := range inv.Packages {
		m[p.Name] = p
	}
	return m
}

func fixtureLayer(t testing.TB, rel string) index.Layer {
	b, err := os.ReadFile(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return memLayer(b)
}

// TestLayersAndWhiteouts builds images on the real Alpine 3.18
// minirootfs: an upper layer that upgrades one package and removes
// another, one that deletes the database with a whiteout, and one that
// replaces the directory with an opaque marker.
func TestLayersAndWhiteouts(t *testing.T) {
	ctx := context.Background()
	base := fixtureLayer(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	db := apkDB(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	recs := records(db)
	if len(recs) < 10 {
		t.Fatalf("only %d records", len(recs))
	}
	removed := field(recs[len(recs)-1], "P")
	upgraded := field(recs[0], "P")
	oldVersion := field(recs[0], "V")
	newVersion := oldVersion + "9"
	var upper []string
	upper = append(upper, strings.Replace(recs[0], "\nV:"+oldVersion+"\n", "\nV:"+newVersion+"\n", 1))
	upper = append(upper, recs[1:len(recs)-1]...)
	upperDB := strings.Join(upper, "\n\n") + "\n\n"

	ix := &index.Indexer{Catalogers: osCatalogers()}

	t.Run("base", func(t *testing.T) {
		inv, err := ix.Index(ctx, &index.Image{Name: "t", Layers: []index.Layer{base}})
		if err != nil {
			t.Fatal(err)
		}
		if inv.OS == nil || inv.OS.Ecosystem != "Alpine:v3.18" {
			t.Fatalf("os = %v", inv.OS)
		}
		if len(inv.Packages) != len(recs) {
			t.Fatalf("%d packages, the database has %d", len(inv.Packages), len(recs))
		}
		for _, rec := range recs {
			p, ok := byName(inv)[field(rec, "P")]
			if !ok || p.Version != field(rec, "V") || p.SourceName != field(rec, "o") || p.Layer != base.Digest ||
				p.Path != "lib/apk/db/installed" || p.Ecosystem != "Alpine:v3.18" {
				t.Errorf("%s: %+v", field(rec, "P"), p)
			}
		}
		musl := byName(inv)["musl"]
		if want := "pkg:apk/alpine/musl@" + musl.Version + "?arch=x86_64&distro=alpine-3.18.9"; musl.PURL != want {
			t.Errorf("purl %s, want %s", musl.PURL, want)
		}
	})

	for name, wrap := range map[string]func(testing.TB, []byte) []byte{
		"gzip": gzipped, "zstd": zstded, "plain": func(_ testing.TB, b []byte) []byte { return b },
	} {
		t.Run("upgrade and remove/"+name, func(t *testing.T) {
			l2 := memLayer(wrap(t, makeTar(t, tarFile{name: "lib/apk/db/installed", body: upperDB})))
			inv, err := ix.Index(ctx, &index.Image{Layers: []index.Layer{base, l2}})
			if err != nil {
				t.Fatal(err)
			}
			pk := byName(inv)
			if _, ok := pk[removed]; ok {
				t.Errorf("%s was removed by the upper layer", removed)
			}
			if p := pk[upgraded]; p.Version != newVersion || p.Layer != l2.Digest {
				t.Errorf("upgraded %s: %+v", upgraded, p)
			}
			if p := pk[field(recs[1], "P")]; p.Layer != base.Digest {
				t.Errorf("unchanged package moved to layer %s", p.Layer)
			}
			if len(inv.Packages) != len(recs)-1 {
				t.Errorf("%d packages", len(inv.Packages))
			}
		})
	}

	t.Run("whiteout", func(t *testing.T) {
		l2 := memLayer(makeTar(t, tarFile{name: "lib/apk/db/.wh.installed"}))
		inv, err := ix.Index(ctx, &index.Image{Layers: []index.Layer{base, l2}})
		if err != nil {
			t.Fatal(err)
		}
		if len(inv.Packages) != 0 || inv.OS == nil {
			t.Errorf("%d packages, os %v", len(inv.Packages), inv.OS)
		}
		// Deleting a parent directory deletes it too.
		l2 = memLayer(makeTar(t, tarFile{name: "./lib/.wh.apk"}))
		inv, err = ix.Index(ctx, &index.Image{Layers: []index.Layer{base, l2}})
		if err != nil || len(inv.Packages) != 0 {
			t.Errorf("%v, %d packages", err, len(inv.Packages))
		}
	})

	t.Run("opaque", func(t *testing.T) {
		one := recs[2] + "\n\n"
		l2 := memLayer(makeTar(t,
			tarFile{name: "lib/apk/db/", typ: tar.TypeDir},
			tarFile{name: "lib/apk/db/.wh..wh..opq"},
			tarFile{name: "lib/apk/db/installed", body: one}))
		inv, err := ix.Index(ctx, &index.Image{Layers: []index.Layer{base, l2}})
		if err != nil {
			t.Fatal(err)
		}
		// The same record re-declared keeps its original layer.
		if len(inv.Packages) != 1 || inv.Packages[0].Name != field(recs[2], "P") || inv.Packages[0].Layer != base.Digest {
			t.Errorf("%+v", inv.Packages)
		}
		// An opaque marker over the root hides the OS release files too.
		l3 := memLayer(makeTar(t, tarFile{name: ".wh..wh..opq"}))
		inv, err = ix.Index(ctx, &index.Image{Layers: []index.Layer{base, l3}})
		if err != nil || inv.OS != nil || len(inv.Packages) != 0 || inv.OSNote == "" {
			t.Errorf("%v %v %d", err, inv.OS, len(inv.Packages))
		}
	})

	t.Run("symlink replaces database", func(t *testing.T) {
		l2 := memLayer(makeTar(t, tarFile{name: "lib/apk/db/installed", typ: tar.TypeSymlink, link: "/dev/null"}))
		inv, err := ix.Index(ctx, &index.Image{Layers: []index.Layer{base, l2}})
		if err != nil || len(inv.Packages) != 0 {
			t.Errorf("%v %d", err, len(inv.Packages))
		}
	})

	t.Run("digest mismatch", func(t *testing.T) {
		l := memLayer(makeTar(t, tarFile{name: "a", body: "x"}))
		l.Digest = "sha256:" + strings.Repeat("0", 64)
		if _, err := ix.Index(ctx, &index.Image{Layers: []index.Layer{l}}); err == nil || !strings.Contains(err.Error(), "digest") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestSortedStable(t *testing.T) {
	ps := []index.Package{{Type: "dpkg", Name: "b"}, {Type: "apk", Name: "z"}, {Type: "dpkg", Name: "a"}}
	index.SortPackages(ps)
	var got []string
	for _, p := range ps {
		got = append(got, string(p.Type)+"/"+p.Name)
	}
	if !sort.StringsAreSorted(got) {
		t.Errorf("%v", got)
	}
}

// TestHardLinkToLowerLayer: an upper layer hard-links the package
// database path to another database path a lower layer holds.
func TestHardLinkToLowerLayer(t *testing.T) {
	db := apkDB(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
	lower := memLayer(makeTar(t,
		tarFile{name: "etc/alpine-release", body: "3.18.9\n"},
		tarFile{name: "lib/apk/db/installed", body: string(db)},
		tarFile{name: "usr/lib/apk/db/installed", body: records(db)[0] + "\n\n"},
	))
	upper := memLayer(makeTar(t,
		tarFile{name: "usr/lib/apk/db/.wh.installed"},
		tarFile{name: "lib/apk/db/installed", typ: tar.TypeLink, link: "usr/lib/apk/db/installed"}))
	inv, err := (&index.Indexer{Catalogers: osCatalogers()}).Index(context.Background(), &index.Image{Layers: []index.Layer{lower, upper}})
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Packages) != 1 || inv.Packages[0].Name != field(records(db)[0], "P") || inv.Packages[0].Path != "lib/apk/db/installed" {
		t.Fatalf("%+v", inv.Packages)
	}
}
