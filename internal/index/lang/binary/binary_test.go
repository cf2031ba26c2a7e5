package binary

import (
	"bytes"
	"compress/zlib"
	"context"
	"debug/buildinfo"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/langtest"
	"github.com/drydockhq/drydock/internal/testutil"
)

func goBinaries(t testing.TB) string {
	t.Helper()
	return langtest.GoProgram(t)
}

// goVersionM runs `go version -m` on a binary and returns the packages it
// lists, in the cataloger's terms: main module, dependencies (replaced ones
// under their replacement) and the toolchain as stdlib.
func goVersionM(t testing.TB, bin string) map[langtest.Key]bool {
	t.Helper()
	out := string(langtest.Run(t, "", testutil.RequireTool(t, "go"), "version", "-m", bin))
	want := map[langtest.Key]bool{}
	var last *langtest.Key
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if i == 0 {
			_, gv, _ := strings.Cut(line, ": ")
			want[langtest.Key{Ecosystem: "Go", Name: "stdlib", Version: strings.TrimPrefix(gv, "go")}] = true
			continue
		}
		switch f[0] {
		case "mod", "dep":
			k := langtest.Key{Ecosystem: "Go", Name: f[1], Version: f[2]}
			want[k] = true
			last = &k
		case "=>":
			delete(want, *last)
			want[langtest.Key{Ecosystem: "Go", Name: f[1], Version: f[2]}] = true
		}
	}
	return want
}

func TestGoBinaries(t *testing.T) {
	dir := goBinaries(t)
	pkgs := langtest.Walk(t, New(), dir)
	byPath := map[string][]index.Package{}
	for _, p := range pkgs {
		byPath[p.Path] = append(byPath[p.Path], p)
	}
	for _, name := range []string{"app-linux", "app-stripped", "app-darwin", "app.exe"} {
		rel := "bin/" + name
		want := goVersionM(t, filepath.Join(dir, rel))
		got := langtest.Keys(byPath[rel])
		if !maps(got, want) {
			t.Errorf("%s:\n got %v\nwant %v (go version -m)", rel, got, want)
		}
		for _, p := range byPath[rel] {
			switch p.Name {
			case "github.com/google/uuid":
				if p.Version != "v1.2.0" || p.Metadata["replaces"] != "github.com/google/uuid@v1.3.0" || p.PURL != "pkg:golang/github.com/google/uuid@v1.2.0" {
					t.Errorf("%s: replaced module %+v", rel, p)
				}
			case "example.com/drydock/fixture":
				if p.Metadata["main"] != "true" {
					t.Errorf("%s: main module not marked: %+v", rel, p)
				}
			}
			if p.Type != index.TypeGoBinary {
				t.Errorf("type %q", p.Type)
			}
		}
	}
}

func maps(a, b map[langtest.Key]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// TestInstalledGoPrograms reads the Go programs on this machine: the go
// command itself holds the build information magic as a constant (it reads
// build information), which must not be taken for its header.
func TestInstalledGoPrograms(t *testing.T) {
	for _, tool := range []string{"go", "staticcheck"} {
		bin, err := filepath.EvalSymlinks(testutil.RequireTool(t, tool))
		if err != nil {
			t.Fatal(err)
		}
		want := goVersionM(t, bin)
		got := langtest.Keys(catalogFile(t, bin))
		if !maps(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", bin, got, want)
		}
	}
}

// TestGoBefore118 reads a Go program Debian bullseye built with Go 1.15,
// whose build information is behind pointers.
func TestGoBefore118(t *testing.T) {
	deb := langtest.DebianSuite(t, "bullseye", "direnv")
	bin := filepath.Join(deb.Root, "usr/bin/direnv")
	want := goVersionM(t, bin)
	if !want[langtest.Key{Ecosystem: "Go", Name: "stdlib", Version: "1.15.8"}] {
		t.Fatalf("go version -m: %v", want)
	}
	got := langtest.Keys(catalogFile(t, bin))
	if !maps(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func catalogFile(t testing.TB, p string) []index.Package {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Stat()
	pkgs, err := New().Catalog(context.Background(), index.File{Path: p, Mode: info.Mode(), Size: info.Size(), Reader: f})
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return pkgs
}

// TestOtherExecutables checks that the system's own ELF programs and
// shared libraries (C, C++) yield nothing and no error.
func TestOtherExecutables(t *testing.T) {
	var n int
	for _, dir := range []string{"/usr/bin", "/usr/lib/x86_64-linux-gnu"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !New().Wants(e.Name(), info.Mode(), info.Size()) || n > 300 {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if isGo(t, p) {
				continue
			}
			n++
			if pkgs := catalogFile(t, p); len(pkgs) > 0 {
				t.Errorf("%s: %d packages from a non-Go, non-auditable program: %+v", p, len(pkgs), pkgs[0])
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d programs checked", n)
	}
}

// isGo asks the go command whether a file is a Go binary.
func isGo(t testing.TB, p string) bool {
	// go version prints nothing for a file that is not a Go binary (with
	// -m it errs); both exit 0 or 1 inconsistently across releases.
	out, _ := exec.Command("go", "version", p).Output()
	return len(bytes.TrimSpace(out)) > 0
}

// auditJSON is a dependency list in cargo-auditable's format.
const auditJSON = `{"packages":[{"name":"hello","version":"0.1.0","source":"local","dependencies":[1,2],"root":true},{"name":"smallvec","version":"1.6.0","source":"crates.io"},{"name":"cc","version":"1.0.79","source":"crates.io","kind":"build"}]}`

// TestAuditableRust puts a cargo-auditable section into a real ELF program
// with objcopy, where cargo-auditable's linker step puts it.
func TestAuditableRust(t *testing.T) {
	objcopy := testutil.RequireTool(t, "objcopy")
	dir := t.TempDir()
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, 7)
	zw.Write([]byte(auditJSON))
	zw.Close()
	sec := filepath.Join(dir, "dep")
	if err := os.WriteFile(sec, z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	langtest.Run(t, "", objcopy, "--add-section", ".dep-v0="+sec, "--set-section-flags", ".dep-v0=noload,readonly", "/usr/bin/dpkg", bin)
	got := catalogFile(t, bin)
	want := []string{"cc@1.0.79 kind=build pkg:cargo/cc@1.0.79", "smallvec@1.6.0  pkg:cargo/smallvec@1.6.0"}
	var gs []string
	for _, p := range got {
		k := ""
		if p.Metadata["kind"] != "" {
			k = "kind=" + p.Metadata["kind"]
		}
		gs = append(gs, p.Name+"@"+p.Version+" "+k+" "+p.PURL)
		if p.Ecosystem != "crates.io" || p.Type != index.TypeCargo {
			t.Errorf("%+v", p)
		}
	}
	slices.Sort(gs)
	if !slices.Equal(gs, want) {
		t.Errorf("got %q\nwant %q", gs, want)
	}
}

func TestWants(t *testing.T) {
	c := New()
	if c.Wants("usr/bin/x", 0o644, 1<<20) || !c.Wants("usr/bin/x", 0o755, 1<<20) || c.Wants("usr/bin/x", 0o755, 100) || c.Wants("usr/bin/x", fs.ModeSymlink|0o777, 1<<20) {
		t.Error("Wants")
	}
}

// TestTruncated cuts a Go binary inside its build information: no panic,
// and a short read of the stream is an error or nothing.
func TestTruncated(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(goBinaries(t), "bin/app-linux"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("\xff Go buildinf:"))
	for _, n := range []int{i + 10, i + 33, i + 40, i + 200} {
		pkgs, _ := New().Catalog(context.Background(), index.File{Path: "x", Reader: bytes.NewReader(data[:n])})
		if len(pkgs) > 1 {
			t.Errorf("cut at %d: %d packages", n, len(pkgs))
		}
	}
}

func FuzzCatalog(f *testing.F) {
	data, err := os.ReadFile(filepath.Join(goBinaries(f), "bin/app-linux"))
	if err != nil {
		f.Fatal(err)
	}
	i := bytes.Index(data, []byte("\xff Go buildinf:"))
	// The ELF header and the block, as one small seed.
	f.Add(append(append([]byte{}, data[:64]...), data[i&^15:min(len(data), i+4096)]...))
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write([]byte(auditJSON))
	zw.Close()
	f.Add(append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"), z.Bytes()...))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _ := New().Catalog(context.Background(), index.File{Path: "x", Size: int64(len(data)), Reader: bytes.NewReader(data)})
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("incomplete %+v", p)
			}
		}
	})
}

func benchFile(b *testing.B, p string) {
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	c := New()
	for b.Loop() {
		if _, err := c.Catalog(context.Background(), index.File{Path: "x", Size: int64(len(data)), Reader: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoBinary scans the go command (about 15 MB, build information
// near its end).
func BenchmarkGoBinary(b *testing.B) {
	p, _ := filepath.EvalSymlinks(testutil.RequireTool(b, "go"))
	benchFile(b, p)
}

// BenchmarkNonGo scans a large C++ shared library end to end.
func BenchmarkNonGo(b *testing.B) {
	libs, _ := filepath.Glob("/usr/lib/x86_64-linux-gnu/libstdc++.so.6.*")
	if len(libs) == 0 {
		b.Fatal("no libstdc++")
	}
	benchFile(b, libs[0])
}

// BenchmarkStdlibBuildinfo is the alternative measured against the stream
// scan: debug/buildinfo over the whole binary held in memory (the cost of
// buffering it is not counted).
func BenchmarkStdlibBuildinfo(b *testing.B) {
	p, _ := filepath.EvalSymlinks(testutil.RequireTool(b, "go"))
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := buildinfo.Read(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
