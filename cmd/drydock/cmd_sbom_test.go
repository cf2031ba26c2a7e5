package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/testutil"
)

func sbomCmd(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{
		stdin:  strings.NewReader(""),
		stdout: &stdout,
		stderr: &stderr,
		log:    slog.New(slog.NewTextHandler(&stderr, nil)),
		getenv: func(string) string { return "" },
	}
	if code := run(context.Background(), e, append([]string{"sbom"}, args...)); code != 0 {
		t.Fatalf("drydock sbom %v: exit %d\n%s", args, code, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// dpkgStatus extracts var/lib/dpkg/status from the real Debian rootfs
// tarball with tar(1).
func dpkgStatus(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	fx := testutil.Fixture(t, "rootfs/debian-bookworm-12.15-minbase-amd64-rootfs.tar.gz")
	if out, err := exec.Command(testutil.RequireTool(t, "tar"), "-xzf", fx, "-C", dir, "./var/lib/dpkg/status").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dpkgQuery lists "name version source source-version" with the real
// dpkg-query over a status file.
func dpkgQuery(t *testing.T, status []byte) []string {
	t.Helper()
	admin := t.TempDir()
	if err := os.WriteFile(filepath.Join(admin, "status"), status, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(testutil.RequireTool(t, "dpkg-query"), "--admindir="+admin, "-W",
		"-f", "${Package} ${Version} ${source:Package} ${source:Version}\n").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(lines)
	return lines
}

// debianLayout writes an OCI layout whose first layer is the real Debian
// rootfs tarball and whose optional second layer holds a status file.
func debianLayout(t *testing.T, upperStatus []byte) string {
	t.Helper()
	base, err := tarball.LayerFromFile(testutil.Fixture(t, "rootfs/debian-bookworm-12.15-minbase-amd64-rootfs.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), base)
	if err != nil {
		t.Fatal(err)
	}
	if upperStatus != nil {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Mode: 0o644, Size: int64(len(upperStatus)), Typeflag: tar.TypeReg})
		tw.Write(upperStatus)
		tw.Close()
		layerTar := buf.Bytes()
		upper, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerTar)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, upper); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

func components(t *testing.T, out string) ([]string, map[string]map[string]string) {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(strings.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	var lines []string
	props := map[string]map[string]string{}
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeOS {
			continue
		}
		m := map[string]string{}
		for _, p := range *c.Properties {
			m[p.Name] = p.Value
		}
		src, srcVer := m["drydock:source_name"], m["drydock:source_version"]
		if src == "" {
			src, srcVer = c.Name, c.Version
		}
		lines = append(lines, strings.Join([]string{c.Name, c.Version, src, srcVer}, " "))
		props[c.Name] = m
	}
	sort.Strings(lines)
	return lines, props
}

// TestSBOMDebianAccuracy indexes the real Debian bookworm rootfs as an
// image and compares the CycloneDX output with dpkg-query; then adds a
// layer whose status file upgrades one package and removes another.
func TestSBOMDebianAccuracy(t *testing.T) {
	status := dpkgStatus(t)
	want := dpkgQuery(t, status)
	if len(want) != 88 {
		t.Fatalf("dpkg-query lists %d packages", len(want))
	}
	dir := debianLayout(t, nil)
	out, _ := sbomCmd(t, "oci:"+dir)
	got, props := components(t, out)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := props["bsdutils"]; p["drydock:ecosystem"] != "Debian:12" || p["drydock:file_path"] != "var/lib/dpkg/status" || !strings.HasPrefix(p["drydock:layer_digest"], "sha256:") {
		t.Errorf("bsdutils properties %v", p)
	}

	// Upper layer: bash upgraded (a made-up +b99 rebuild), adduser removed.
	stanzas := strings.Split(strings.TrimSpace(string(status)), "\n\n")
	var upper []string
	for _, s := range stanzas {
		switch {
		case strings.HasPrefix(s, "Package: adduser\n"):
			continue
		case strings.HasPrefix(s, "Package: bash\n"):
			s = strings.Replace(s, "\nVersion: 5.2.15-2+b13\n", "\nVersion: 5.2.15-2+b99\n", 1)
		}
		upper = append(upper, s)
	}
	upperStatus := []byte(strings.Join(upper, "\n\n") + "\n")
	want = dpkgQuery(t, upperStatus)
	dir = debianLayout(t, upperStatus)
	out, _ = sbomCmd(t, "-o", "json", "oci:"+dir)
	var invs []*index.Inventory
	if err := json.Unmarshal([]byte(out), &invs); err != nil {
		t.Fatal(err)
	}
	inv := invs[0]
	var lines []string
	for _, p := range inv.Packages {
		lines = append(lines, strings.Join([]string{p.Name, p.Version, p.SourceName, p.SourceVersion}, " "))
		wantLayer := inv.Layers[0].Digest
		if p.Name == "bash" {
			wantLayer = inv.Layers[1].Digest
		}
		if p.Layer != wantLayer {
			t.Errorf("%s %s introduced by %s, want %s", p.Name, p.Version, p.Layer, wantLayer)
		}
	}
	sort.Strings(lines)
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestSBOMCacheAndFormats(t *testing.T) {
	fx := "docker-archive:" + testutil.Fixture(t, "images/alpine-3.10-docker-archive.tar.gz")
	cache := filepath.Join(t.TempDir(), "cache.db")
	for i, wantCached := range []bool{false, true} {
		out, _ := sbomCmd(t, "-o", "json", "--cache", cache, fx)
		var invs []*index.Inventory
		if err := json.Unmarshal([]byte(out), &invs); err != nil {
			t.Fatal(err)
		}
		if len(invs) != 1 || len(invs[0].Packages) != 14 || invs[0].Layers[0].Cached != wantCached {
			t.Fatalf("run %d: %+v", i, invs[0].Layers)
		}
	}
	out, _ := sbomCmd(t, "-o", "spdx", fx)
	if !strings.Contains(out, `"spdxVersion": "SPDX-2.3"`) {
		t.Errorf("spdx output: %.200s", out)
	}
	out, _ = sbomCmd(t, "-o", "table", fx)
	if !strings.Contains(out, "libcrypto1.1") {
		t.Errorf("table: %s", out)
	}
	// No OS: said, not failed.
	_, errOut := sbomCmd(t, "-o", "table", "docker-archive:"+testutil.Fixture(t, "images/hello-world-v25.tar"))
	if !strings.Contains(errOut, "no operating system") {
		t.Errorf("stderr: %s", errOut)
	}
}
