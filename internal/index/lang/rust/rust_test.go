package rust

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

// tokenizers is a Go module (Go bindings of a Rust library) that carries
// the Cargo.lock of its Rust part: 127 crates.
const tokenizers = "github.com/daulet/tokenizers@v1.20.2"

const cargoLockPath = "Cargo.lock"

// tomllibScript lists the crates of a Cargo.lock that have a source, read
// with Python's own TOML parser.
const tomllibScript = `
import sys, tomllib
for p in tomllib.load(open(sys.argv[1], "rb")).get("package", []):
    if p.get("source"):
        print(p["name"], p["version"], sep="\t")
`

func TestCargoLock(t *testing.T) {
	dir := langtest.GoModule(t, tokenizers)
	lock := filepath.Join(dir, cargoLockPath)
	out := langtest.Run(t, "", testutil.RequireTool(t, "python3"), "-c", tomllibScript, lock)
	want := map[langtest.Key]bool{}
	for line := range strings.Lines(string(out)) {
		n, v, _ := strings.Cut(strings.TrimSpace(line), "\t")
		want[langtest.Key{Ecosystem: "crates.io", Name: n, Version: v}] = true
	}
	if len(want) < 100 {
		t.Fatalf("tomllib lists %d crates", len(want))
	}
	c := New()
	if !c.Wants("app/Cargo.lock", 0o644, 10) || c.Wants("app/Cargo.toml", 0o644, 10) {
		t.Fatal("Wants")
	}
	data, err := os.ReadFile(lock)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := c.Catalog(context.Background(), index.File{Path: "src/Cargo.lock", Size: int64(len(data)), Reader: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	got := langtest.Keys(pkgs)
	if len(got) != len(want) {
		t.Errorf("%d crates, tomllib %d", len(got), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missing %v", k)
		}
	}
	for _, p := range pkgs {
		// The purl spec percent-encodes "+" in versions.
		if p.PURL != "pkg:cargo/"+p.Name+"@"+strings.ReplaceAll(p.Version, "+", "%2B") || p.Type != index.TypeCargo || p.Path != "src/Cargo.lock" {
			t.Errorf("%+v", p)
		}
	}
}

func TestAuditPackagesBad(t *testing.T) {
	for _, in := range []string{`{"packages":[`, `{"packages":{}}`, `[]`} {
		if _, err := AuditPackages([]byte(in), "x"); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func FuzzCargoLock(f *testing.F) {
	data, err := os.ReadFile(filepath.Join(langtest.GoModule(f, tokenizers), cargoLockPath))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"packages":[{"name":"a","version":"1","source":"crates.io"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _ := New().Catalog(context.Background(), index.File{Path: "Cargo.lock", Reader: bytes.NewReader(data)})
		more, _ := AuditPackages(data, "x")
		for _, p := range append(pkgs, more...) {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("%+v", p)
			}
		}
	})
}

func BenchmarkCargoLock(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(langtest.GoModule(b, tokenizers), cargoLockPath))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New().Catalog(context.Background(), index.File{Path: "Cargo.lock", Reader: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}
