package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// file is one regular file of a layer.
type file struct {
	name string
	body []byte
}

// tarLayer is a layer of files (with their parent directories), gzipped
// once in memory.
func tarLayer(files ...file) (v1.Layer, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	dirs := map[string]bool{}
	for _, f := range files {
		parts := strings.Split(f.name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/") + "/"
			if !dirs[d] {
				dirs[d] = true
				if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
					return nil, err
				}
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(f.body))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// ociImage is an OCI image of the layers.
func ociImage(layers ...v1.Layer) (v1.Image, error) {
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	return mutate.AppendLayers(base, layers...)
}

// markerLayer is a small layer that only makes an image's digest unique.
func markerLayer(id string) (v1.Layer, error) {
	return tarLayer(file{"etc/bench-marker", []byte(id + "\n")})
}

// log4jJar is a jar as Maven builds log4j-core 2.14.1 (manifest and
// pom.properties; the classes are left out).
func log4jJar() ([]byte, error) {
	var jar bytes.Buffer
	zw := zip.NewWriter(&jar)
	for _, f := range []file{
		{"META-INF/MANIFEST.MF", []byte("Manifest-Version: 1.0\r\nImplementation-Title: Apache Log4j Core\r\nImplementation-Version: 2.14.1\r\n\r\n")},
		{"META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties", []byte("groupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n")},
	} {
		w, err := zw.Create(f.name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return jar.Bytes(), nil
}

// appLayer is an application layer: the log4j-core jar and a real Go
// binary (this harness, whose build information lists its modules),
// written gzipped to a file in tmp once.
func appLayer(tmp string) (v1.Layer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		return nil, err
	}
	jar, err := log4jJar()
	if err != nil {
		return nil, err
	}
	l, err := tarLayer(file{"opt/app/lib/log4j-core-2.14.1.jar", jar}, file{"opt/app/bin/app", bin})
	if err != nil {
		return nil, err
	}
	// Keep the gzipped bytes in a file so that every read is a plain copy.
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	path := filepath.Join(tmp, "app.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return tarball.LayerFromFile(path)
}

// apkInstalled is where apk keeps its database of installed packages.
const apkInstalled = "lib/apk/db/installed"

// alpineBase loads the real alpine:3.10 `docker save` archive of the
// fixtures (gunzipped into tmp) and returns the image and its apk
// database.
func alpineBase(fixtures, tmp string) (v1.Image, string, error) {
	f, err := os.Open(filepath.Join(fixtures, "images/alpine-3.10-docker-archive.tar.gz"))
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(tmp, "alpine-3.10.tar")
	out, err := os.Create(path)
	if err != nil {
		return nil, "", err
	}
	if _, err := io.Copy(out, zr); err != nil {
		out.Close()
		return nil, "", err
	}
	if err := out.Close(); err != nil {
		return nil, "", err
	}
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return nil, "", err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, "", err
	}
	db := ""
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, "", err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return nil, "", err
			}
			if strings.TrimPrefix(h.Name, "./") == apkInstalled {
				b, err := io.ReadAll(tr)
				if err != nil {
					rc.Close()
					return nil, "", err
				}
				db = string(b)
			}
		}
		rc.Close()
	}
	if db == "" {
		return nil, "", fmt.Errorf("the alpine fixture has no %s", apkInstalled)
	}
	return img, db, nil
}

// apkVariant is the alpine image with a layer on top whose apk database
// gives the openssl libraries the version 1.1.1c-r<n> (distinct content,
// so a distinct image digest and a real scan for each n; the secdb's
// openssl fixes above 1.1.1c make each one vulnerable).
func apkVariant(base v1.Image, db string, n int) (v1.Image, error) {
	version := fmt.Sprintf("1.1.1c-r%d", n)
	var lines []string
	pkg, changed := "", 0
	for _, line := range strings.Split(db, "\n") {
		if p, ok := strings.CutPrefix(line, "P:"); ok {
			pkg = p
		}
		if (pkg == "libcrypto1.1" || pkg == "libssl1.1") && strings.HasPrefix(line, "V:") {
			line = "V:" + version
			changed++
		}
		lines = append(lines, line)
	}
	if changed != 2 {
		return nil, fmt.Errorf("the alpine apk database has %d openssl libraries, want 2", changed)
	}
	l, err := tarLayer(file{apkInstalled, []byte(strings.Join(lines, "\n"))})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(base, l)
}
