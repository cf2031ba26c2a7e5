package python

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/langtest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// debs are real Debian packages that install Python distributions in
// dist-packages, as egg-info directories and as dist-info directories.
var debs = []string{"python3-requests", "python3-urllib3", "python3-six", "python3-yaml", "python3-cryptography", "python3-debian"}

// importlibScript lists the distributions in a directory with Python's own
// importlib.metadata, and the PEP 503 name by the PEP's own expression.
const importlibScript = `
import importlib.metadata, re, sys
for d in importlib.metadata.distributions(path=[sys.argv[1]]):
    n = d.metadata["Name"]
    print(n, d.version, re.sub(r"[-_.]+", "-", n).lower(), sep="\t")
`

func TestDebianDistPackages(t *testing.T) {
	py := testutil.RequireTool(t, "python3")
	c := New()
	for _, name := range debs {
		t.Run(name, func(t *testing.T) {
			deb := langtest.Debian(t, name)
			site := filepath.Join(deb.Root, "usr", "lib", "python3", "dist-packages")
			out := langtest.Run(t, "", py, "-c", importlibScript, site)
			want := map[langtest.Key]string{} // key → purl
			for line := range strings.Lines(string(out)) {
				f := strings.Split(strings.TrimSpace(line), "\t")
				if len(f) != 3 {
					t.Fatalf("importlib output %q", line)
				}
				want[langtest.Key{Ecosystem: "PyPI", Name: f[0], Version: f[1]}] = "pkg:pypi/" + f[2] + "@" + f[1]
			}
			if len(want) == 0 {
				t.Fatalf("importlib found no distribution in %s", site)
			}
			got := langtest.Walk(t, c, deb.Root)
			// Debian's python3-cryptography installs both a dist-info and an
			// unversioned egg-info directory for the same distribution:
			// both are reported (two declaring files), importlib lists one.
			if keys := langtest.Keys(got); len(keys) != len(want) {
				t.Errorf("found %d distinct packages, importlib finds %d: %+v", len(keys), len(want), got)
			}
			for _, p := range got {
				k := langtest.Key{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version}
				purl, ok := want[k]
				if !ok {
					t.Errorf("unexpected package %+v", p)
					continue
				}
				if p.PURL != purl {
					t.Errorf("%s: purl %q, want %q", p.Name, p.PURL, purl)
				}
				if "pkg:pypi/"+NormalizeName(p.Name)+"@"+p.Version != purl {
					t.Errorf("NormalizeName(%q) = %q disagrees with PEP 503 (%s)", p.Name, NormalizeName(p.Name), purl)
				}
				if p.Type != index.TypePython || !strings.HasPrefix(p.Path, "usr/lib/python3/dist-packages/") {
					t.Errorf("%s: type %q path %q", p.Name, p.Type, p.Path)
				}
			}
		})
	}
}

func TestWants(t *testing.T) {
	c := New()
	for _, tc := range []struct {
		path string
		mode fs.FileMode
		want bool
	}{
		{"usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA", 0o644, true},
		{"usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO", 0o644, true},
		{"usr/lib/python2.7/lib-dynload/Python-2.7.18-py2.7.egg-info", 0o644, true},
		{"usr/lib/python3.11/site-packages/foo-1.0-py3.11.egg/EGG-INFO/PKG-INFO", 0o644, true},
		{"usr/lib/python3/dist-packages/requests-2.28.1.egg-info", fs.ModeDir | 0o755, false},
		{"usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/RECORD", 0o644, false},
		{"usr/share/doc/foo/METADATA", 0o644, false},
		{"src/PKG-INFO", 0o644, false},
		{"usr/lib/python3/dist-packages/x.dist-info/METADATA", fs.ModeSymlink | 0o777, false},
	} {
		if got := c.Wants(tc.path, tc.mode, 100); got != tc.want {
			t.Errorf("Wants(%q, %v) = %v, want %v", tc.path, tc.mode, got, tc.want)
		}
	}
}

func TestParseMetadata(t *testing.T) {
	long := strings.Repeat("x", 10000)
	for _, tc := range []struct {
		name, in     string
		wantName     string
		wantVersion  string
		wantLicenses []string
		wantErr      bool
	}{
		{name: "expression wins", in: "Metadata-Version: 2.4\nName: Foo_Bar\nVersion: 1.0\nLicense: MIT License\nLicense-Expression: MIT OR Apache-2.0\n\nbody\nName: nope\n",
			wantName: "Foo_Bar", wantVersion: "1.0", wantLicenses: []string{"MIT OR Apache-2.0"}},
		{name: "crlf and classifiers", in: "Name: a\r\nVersion: 2\r\nLicense: UNKNOWN\r\nClassifier: License :: OSI Approved :: BSD License\r\nClassifier: Topic :: X\r\n",
			wantName: "a", wantVersion: "2", wantLicenses: []string{"BSD License"}},
		{name: "multi-line license text falls back to none", in: "Name: a\nVersion: 2\nLicense: Copyright x\n        all rights\n",
			wantName: "a", wantVersion: "2"},
		{name: "long header line", in: "Summary: " + long + "\nName: a\nVersion: 3\n", wantName: "a", wantVersion: "3"},
		{name: "binary", in: "Name: a\x00\nVersion: 1\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMetadata(strings.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if m.Name != tc.wantName || m.Version != tc.wantVersion || strings.Join(m.Licenses(), "|") != strings.Join(tc.wantLicenses, "|") {
				t.Errorf("got %q %q %q", m.Name, m.Version, m.Licenses())
			}
		})
	}
}

func TestCatalogRefusesIncomplete(t *testing.T) {
	_, err := New().Catalog(context.Background(), index.File{Path: "x.egg-info", Reader: strings.NewReader("Name: a\n\nVersion: 1\n")})
	if err == nil {
		t.Fatal("metadata without Version accepted")
	}
	_, err = ParseMetadata(strings.NewReader(strings.Repeat("Summary: x\n", maxHeaderBytes/10)))
	if err == nil {
		t.Fatal("unbounded header block accepted")
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{"Foo_Bar": "foo-bar", "a.-_b": "a-b", "PyYAML": "pyyaml", "x--": "x-"} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseMetadata(f *testing.F) {
	for _, name := range debs {
		deb := langtest.Debian(f, name)
		files, _ := filepath.Glob(filepath.Join(deb.Root, "usr/lib/python3/dist-packages/*/*"))
		for _, p := range files {
			if b := filepath.Base(p); b == "METADATA" || b == "PKG-INFO" {
				data, err := os.ReadFile(p)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(data)
			}
		}
	}
	c := New()
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := c.Catalog(context.Background(), index.File{Path: "a.dist-info/METADATA", Size: int64(len(data)), Reader: bytes.NewReader(data)})
		if err == nil && (len(pkgs) != 1 || pkgs[0].Name == "" || pkgs[0].Version == "") {
			t.Fatalf("no error but %+v", pkgs)
		}
	})
}

func BenchmarkCatalog(b *testing.B) {
	deb := langtest.Debian(b, "python3-urllib3") // a 46 KB PKG-INFO
	p, _ := filepath.Glob(filepath.Join(deb.Root, "usr/lib/python3/dist-packages/*.egg-info/PKG-INFO"))
	data, err := os.ReadFile(p[0])
	if err != nil {
		b.Fatal(err)
	}
	c := New()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Catalog(context.Background(), index.File{Path: "x.egg-info/PKG-INFO", Reader: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}
