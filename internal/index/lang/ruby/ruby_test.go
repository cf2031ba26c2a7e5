package ruby

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/langtest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// debs install gemspecs where Debian's rubygems-integration puts them, for
// pure-Ruby gems (rack) and native ones (nokogiri, json).
var debs = []string{"ruby-rack", "ruby-nokogiri", "ruby-json"}

// loadScript loads each gemspec with RubyGems itself (the truth; these are
// Debian's own files, trusted to run in a test).
const loadScript = `ARGV.each { |f| s = Gem::Specification.load(f); puts [f, s.name, s.version.to_s, s.licenses.join(",")].join("\t") }`

type spec struct{ name, version, licenses string }

func rubygems(t *testing.T, files []string) map[string]spec {
	t.Helper()
	out := langtest.Run(t, "", testutil.RequireTool(t, "ruby"), append([]string{"-e", loadScript}, files...)...)
	m := map[string]spec{}
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) != 4 {
			t.Fatalf("ruby output %q", line)
		}
		m[f[0]] = spec{f[1], f[2], f[3]}
	}
	return m
}

func check(t *testing.T, root string, want map[string]spec) {
	t.Helper()
	got := langtest.Walk(t, New(), root)
	if len(got) != len(want) {
		t.Errorf("%d gems, RubyGems loads %d", len(got), len(want))
	}
	for _, p := range got {
		w, ok := want[filepath.Join(root, p.Path)]
		if !ok {
			t.Errorf("unexpected %+v", p)
			continue
		}
		if p.Name != w.name || p.Version != w.version || strings.Join(p.Licenses, ",") != w.licenses {
			t.Errorf("%s: %s %s %q, RubyGems says %s %s %q", p.Path, p.Name, p.Version, p.Licenses, w.name, w.version, w.licenses)
		}
		if p.PURL != "pkg:gem/"+w.name+"@"+w.version || p.Ecosystem != "RubyGems" || p.Type != index.TypeGem {
			t.Errorf("%+v", p)
		}
	}
}

func TestDebianGems(t *testing.T) {
	for _, name := range debs {
		t.Run(name, func(t *testing.T) {
			deb := langtest.Debian(t, name)
			files, _ := filepath.Glob(filepath.Join(deb.Root, "usr/*/*/rubygems-integration/*/specifications/*.gemspec"))
			more, _ := filepath.Glob(filepath.Join(deb.Root, "usr/share/rubygems-integration/*/specifications/*.gemspec"))
			files = append(files, more...)
			if len(files) == 0 {
				t.Fatal("no gemspec in the package")
			}
			check(t, deb.Root, rubygems(t, files))
		})
	}
}

// TestDefaultGems reads the default gems of the Ruby installed here
// (specifications/default), the gems every Ruby image carries.
func TestDefaultGems(t *testing.T) {
	dirs, _ := filepath.Glob("/usr/lib/ruby/gems/*/specifications/default")
	if len(dirs) == 0 {
		t.Fatal("no default gems (is the ruby package installed?)")
	}
	root := filepath.Dir(filepath.Dir(dirs[0])) // .../gems/3.1.0
	files, _ := filepath.Glob(filepath.Join(dirs[0], "*.gemspec"))
	bundled, _ := filepath.Glob(filepath.Join(root, "specifications", "*.gemspec"))
	files = append(files, bundled...)
	if len(files) < 10 {
		t.Fatalf("only %d default gems", len(files))
	}
	check(t, root, rubygems(t, files))
}

func TestParseGemspec(t *testing.T) {
	for _, tc := range []struct{ in, name, version, licenses string }{
		{`Gem::Specification.new do |spec|
  spec.name = %q<rss>
  spec.version = "0.2.9"
  spec.license = "BSD-2-Clause".freeze
end`, "rss", "0.2.9", "BSD-2-Clause"},
		{`s.name = "x#{1}"
s.version = RSS::VERSION
s.licenses = ['MIT', "Ruby".freeze]`, "", "", "MIT,Ruby"},
		{"s.version == \"1\"\ns.name = 'a' if x", "a", "", ""},
	} {
		s := ParseGemspec([]byte(tc.in))
		if s.Name != tc.name || s.Version != tc.version || strings.Join(s.Licenses, ",") != tc.licenses {
			t.Errorf("%q: got %+v", tc.in, s)
		}
	}
	// A version that is not a literal falls back on the file name.
	pkgs, err := New().Catalog(context.Background(), index.File{Path: "gems/specifications/rss-0.2.9.gemspec", Reader: strings.NewReader(`s.name = "rss"` + "\ns.version = RSS::VERSION\n")})
	if err != nil || len(pkgs) != 1 || pkgs[0].Version != "0.2.9" {
		t.Errorf("file name fallback: %+v %v", pkgs, err)
	}
	if !New().Wants("var/lib/gems/3.1.0/specifications/rack-2.2.4.gemspec", 0o644, 1) ||
		!New().Wants("usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", 0o644, 1) ||
		New().Wants("app/rack.gemspec", 0o644, 1) {
		t.Error("Wants")
	}
}

func FuzzParseGemspec(f *testing.F) {
	for _, name := range debs {
		files, _ := filepath.Glob(filepath.Join(langtest.Debian(f, name).Root, "usr/*/*/rubygems-integration/*/specifications/*.gemspec"))
		more, _ := filepath.Glob(filepath.Join(langtest.Debian(f, name).Root, "usr/share/rubygems-integration/*/specifications/*.gemspec"))
		for _, p := range append(files, more...) {
			data, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := New().Catalog(context.Background(), index.File{Path: "specifications/x-1.gemspec", Reader: bytes.NewReader(data)})
		if err == nil && (len(pkgs) != 1 || pkgs[0].Name == "" || pkgs[0].Version == "") {
			t.Fatalf("%+v", pkgs)
		}
	})
}

func BenchmarkGemspec(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(langtest.Debian(b, "ruby-nokogiri").Root, "usr/*/*/rubygems-integration/*/specifications/*.gemspec"))
	if len(files) == 0 {
		b.Fatal("no gemspec")
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New().Catalog(context.Background(), index.File{Path: "specifications/nokogiri-1.13.10.gemspec", Reader: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}
