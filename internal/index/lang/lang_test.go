package lang

import (
	"io/fs"
	"testing"
)

// TestCatalogers checks the set: unique names, sane limits, and that no two
// catalogers want the same file (the indexer would buffer it for both).
func TestCatalogers(t *testing.T) {
	cs := Catalogers()
	names := map[string]bool{}
	for _, c := range cs {
		if names[c.Name()] {
			t.Errorf("duplicate cataloger %q", c.Name())
		}
		names[c.Name()] = true
		if c.Version() < 1 || c.MaxSize() <= 0 {
			t.Errorf("%s: version %d max size %d", c.Name(), c.Version(), c.MaxSize())
		}
	}
	for _, f := range []struct {
		path string
		mode fs.FileMode
		size int64
		want string
	}{
		{"usr/lib/python3/dist-packages/requests-2.28.1.egg-info/PKG-INFO", 0o644, 4000, "python"},
		{"app/node_modules/lodash/package.json", 0o644, 1000, "npm"},
		{"opt/app.jar", 0o644, 1 << 20, "java"},
		{"opt/app.jar", 0o755, 1 << 20, "java"},
		{"usr/local/bin/app", 0o755, 8 << 20, "binary"},
		{"app/App.deps.json", 0o644, 5000, "dotnet"},
		{"var/lib/gems/3.1.0/specifications/rack-2.2.4.gemspec", 0o644, 2000, "ruby"},
		{"src/Cargo.lock", 0o644, 5000, "cargo-lock"},
		{"srv/vendor/composer/installed.json", 0o644, 5000, "php"},
		{"etc/passwd", 0o644, 1000, ""},
		{"usr/bin/tiny.sh", 0o755, 100, ""},
	} {
		var got []string
		for _, c := range cs {
			if c.Wants(f.path, f.mode, f.size) {
				got = append(got, c.Name())
			}
		}
		if f.want == "" && len(got) > 0 || f.want != "" && (len(got) != 1 || got[0] != f.want) {
			t.Errorf("%s wanted by %v, want %q", f.path, got, f.want)
		}
	}
}

func BenchmarkWants(b *testing.B) {
	cs := Catalogers()
	paths := []string{
		"usr/share/doc/libc6/changelog.Debian.gz", "usr/lib/x86_64-linux-gnu/libc.so.6",
		"usr/lib/python3/dist-packages/requests/api.py", "app/node_modules/lodash/fp/map.js",
		"app/node_modules/lodash/package.json", "usr/bin/bash", "etc/ssl/certs/ca-certificates.crt",
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range paths {
			for _, c := range cs {
				c.Wants(p, 0o644, 4096)
			}
		}
	}
}
