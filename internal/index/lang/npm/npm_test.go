package npm

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
)

// installSpecs are real npm packages at old versions: express 4.17.1 brings
// a few dozen dependencies, some nested (send/node_modules/ms), and
// @babel/runtime is scoped.
var installSpecs = []string{"lodash@4.17.15", "express@4.17.1", "@babel/runtime@7.12.5"}

// npmLs returns what the real npm client says is installed: the package.json
// path of each installed package, relative to dir, and its name@version.
func npmLs(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := langtest.Run(t, dir, "npm", "ls", "--all", "--parseable", "--long")
	want := map[string]string{}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		p, nv, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("npm ls line %q", line)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		if rel == "." {
			continue // the application itself
		}
		want[filepath.ToSlash(rel)+"/package.json"] = nv
	}
	return want
}

func TestInstalledPackages(t *testing.T) {
	dir := langtest.NPM(t, installSpecs...)
	want := npmLs(t, dir)
	if len(want) < 50 {
		t.Fatalf("npm ls lists only %d packages", len(want))
	}
	var got []index.Package
	for _, p := range langtest.Walk(t, New(), dir) {
		if strings.HasSuffix(p.Path, "/package.json") {
			got = append(got, p)
		}
	}
	seen := map[string]bool{}
	for _, p := range got {
		if p.Type != index.TypeNPM || p.Ecosystem != "npm" {
			t.Errorf("%s: type %q ecosystem %q", p.Path, p.Type, p.Ecosystem)
		}
		nv, ok := want[p.Path]
		if !ok {
			t.Errorf("unexpected package %s@%s at %s", p.Name, p.Version, p.Path)
			continue
		}
		seen[p.Path] = true
		if p.Name+"@"+p.Version != nv {
			t.Errorf("%s: %s@%s, npm ls says %s", p.Path, p.Name, p.Version, nv)
		}
	}
	for path, nv := range want {
		if !seen[path] {
			t.Errorf("missing %s at %s", nv, path)
		}
	}
	for _, p := range got {
		switch p.Name {
		case "@babel/runtime":
			// The purl spec percent-encodes the scope's '@'.
			if p.PURL != "pkg:npm/%40babel/runtime@7.12.5" {
				t.Errorf("purl %q", p.PURL)
			}
		case "lodash":
			if p.PURL != "pkg:npm/lodash@4.17.15" || strings.Join(p.Licenses, ",") != "MIT" {
				t.Errorf("lodash: purl %q licenses %q", p.PURL, p.Licenses)
			}
		}
	}
}

func TestWants(t *testing.T) {
	c := New()
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"app/node_modules/lodash/package.json", true},
		{"node_modules/lodash/package.json", true},
		{"usr/lib/node_modules/npm/node_modules/@npmcli/arborist/package.json", true},
		{"app/node_modules/send/node_modules/ms/package.json", true},
		{"app/node_modules/.pnpm/lodash@4.17.21/node_modules/lodash/package.json", true},
		{"app/package.json", false},
		{"package.json", false},
		{"app/node_modules/lodash/fp/package.json", false},
		{"app/node_modules/@babel/package.json", false},
		{"app/node_modules/.bin/package.json", false},
		{"app/node_modules/@scope/x/lib/package.json", false},
		{"app/my_node_modules/x/package.json", false},
	} {
		if got := c.Wants(tc.path, 0o644, 100); got != tc.want {
			t.Errorf("Wants(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
	if c.Wants("app/node_modules/x/package.json", fs.ModeSymlink, 10) {
		t.Error("symlink wanted")
	}
}

func TestManifest(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		private        bool
		licenses       string
		err            bool
	}{
		{name: "object license", in: `{"name":"a","version":"1.0.0","license":{"type":"BSD"}}`, want: "a@1.0.0", licenses: "BSD"},
		{name: "licenses array", in: `{"name":"a","version":"1.0.0","licenses":[{"type":"MIT"},"ISC"]}`, want: "a@1.0.0", licenses: "MIT,ISC"},
		{name: "private", in: `{"name":"@corp/app","version":"0.1.0","private":true}`, want: "@corp/app@0.1.0", private: true},
		{name: "no version is no package", in: `{"name":"a"}`},
		{name: "odd field types", in: `{"name":"a","version":"1","license":42,"licenses":"x"}`, want: "a@1"},
		{name: "not json", in: `{"name":`, err: true},
		{name: "wrong type", in: `{"name":1,"version":"1"}`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkgs, err := New().Catalog(context.Background(), index.File{Path: "node_modules/a/package.json", Reader: strings.NewReader(tc.in)})
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			var got, lic string
			var private bool
			if len(pkgs) == 1 {
				got, lic, private = pkgs[0].Name+"@"+pkgs[0].Version, strings.Join(pkgs[0].Licenses, ","), pkgs[0].Metadata["private"] == "true"
			}
			if got != tc.want || lic != tc.licenses || private != tc.private {
				t.Errorf("got %q licenses %q private %v", got, lic, private)
			}
		})
	}
}

func FuzzCatalog(f *testing.F) {
	dir := langtest.NPM(f, installSpecs...)
	for _, rel := range []string{"node_modules/lodash/package.json", "node_modules/express/package.json", "node_modules/@babel/runtime/package.json", "package-lock.json"} {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			f.Fatal(err)
		}
		f.Add("node_modules/x/package.json", data)
		f.Add(rel, data)
	}
	c := New()
	f.Fuzz(func(t *testing.T, path string, data []byte) {
		if !c.Wants(path, 0o644, int64(len(data))) {
			return
		}
		pkgs, err := c.Catalog(context.Background(), index.File{Path: path, Size: int64(len(data)), Reader: bytes.NewReader(data)})
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("incomplete package %+v", p)
			}
		}
	})
}

// BenchmarkInstalledTree catalogs every package.json of a real install of
// webpack 4 and express (several hundred packages).
func BenchmarkInstalledTree(b *testing.B) {
	dir := langtest.NPM(b, "webpack@4.46.0", "express@4.17.1")
	type file struct {
		path string
		data []byte
	}
	var files []file
	c := New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if c.Wants(filepath.ToSlash(rel), 0o644, 0) {
			data, err := os.ReadFile(p)
			files = append(files, file{filepath.ToSlash(rel), data})
			return err
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ReportMetric(float64(len(files)), "files/op")
	for b.Loop() {
		for _, f := range files {
			if _, err := c.Catalog(context.Background(), index.File{Path: f.path, Size: int64(len(f.data)), Reader: bytes.NewReader(f.data)}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
