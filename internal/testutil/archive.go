package testutil

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// GunzipFixture decompresses a .gz fixture (rel as for Fixture) into the
// test's temporary directory and returns the path of the copy, for tools
// and libraries that read an uncompressed file.
func GunzipFixture(t testing.TB, rel string) string {
	t.Helper()
	zr := gunzip(t, rel)
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(rel), ".gz"))
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, zr); err != nil {
		w.Close()
		t.Fatalf("fixture %s: %v", rel, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TarGzFile returns the content of the file name (a path inside the
// archive, with or without a leading "./") of a .tar.gz fixture, read
// with the standard library alone. It fails the test when the archive
// has no such file.
func TarGzFile(t testing.TB, rel, name string) []byte {
	t.Helper()
	zr := gunzip(t, rel)
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("fixture %s has no %s", rel, name)
		}
		if err != nil {
			t.Fatalf("fixture %s: %v", rel, err)
		}
		if strings.TrimPrefix(h.Name, "./") == strings.TrimPrefix(name, "./") {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("fixture %s: %s: %v", rel, name, err)
			}
			return b
		}
	}
}

// gunzip opens a .gz fixture for reading its decompressed content; the
// file is closed when the test ends.
func gunzip(t testing.TB, rel string) io.Reader {
	t.Helper()
	f, err := os.Open(Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("fixture %s: %v", rel, err)
	}
	return zr
}
