// Package imagetest builds test images from the shared fixtures with
// go-containerregistry: the real alpine:3.10 image, and copies of it whose
// apk database names other package versions (the fixture's documented
// positive case is openssl at 1.1.1c-r0).
package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydockhq/drydock/internal/testutil"
)

// APKInstalled is where apk keeps its database of installed packages.
const APKInstalled = "lib/apk/db/installed"

// Alpine310 loads the real alpine:3.10 `docker save` archive of the
// fixtures (gunzipped into the test's temporary directory).
func Alpine310(t testing.TB) v1.Image {
	t.Helper()
	img, err := tarball.ImageFromPath(testutil.GunzipFixture(t, "images/alpine-3.10-docker-archive.tar.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ReadFile returns the content of the file at name (relative to the image
// root) as the topmost layer holding it has it, read with archive/tar,
// independently of Drydock's indexer. It fails the test when no layer has
// the file.
func ReadFile(t testing.TB, img v1.Image, name string) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var content []byte
	found := false
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimPrefix(h.Name, "./") == name {
				if content, err = io.ReadAll(tr); err != nil {
					t.Fatal(err)
				}
				found = true
			}
		}
		rc.Close()
	}
	if !found {
		t.Fatalf("no layer of the image has %s", name)
	}
	return content
}

// WithAPKVersions returns img with a layer on top whose apk database gives
// the named packages (binary package names) the versions in versions. It
// fails the test when the image's database lacks one of them.
func WithAPKVersions(t testing.TB, img v1.Image, versions map[string]string) v1.Image {
	t.Helper()
	var lines []string
	pkg := ""
	changed := map[string]bool{}
	for _, line := range strings.Split(string(ReadFile(t, img, APKInstalled)), "\n") {
		if p, ok := strings.CutPrefix(line, "P:"); ok {
			pkg = p
		}
		if v, ok := versions[pkg]; ok && strings.HasPrefix(line, "V:") {
			line = "V:" + v
			changed[pkg] = true
		}
		lines = append(lines, line)
	}
	for name := range versions {
		if !changed[name] {
			t.Fatalf("the image's apk database has no package %s", name)
		}
	}
	body := []byte(strings.Join(lines, "\n"))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"lib/", "lib/apk/", "lib/apk/db/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: APKInstalled, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
