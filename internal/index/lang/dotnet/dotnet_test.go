package dotnet

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

// syft's test data holds the deps.json a real .NET build wrote; osv-scalibr's
// holds a WordPress editor.deps.json, a JSON array that is not .NET's.
const (
	syft      = "github.com/anchore/syft@v1.20.0"
	depsPath  = "syft/pkg/cataloger/dotnet/test-fixtures/TestLibrary.deps.json"
	scalibr   = "github.com/google/osv-scalibr@v0.5.3"
	wordpress = "extractor/filesystem/language/dotnet/depsjson/testdata/editor.deps.json"
)

// pythonScript lists the package libraries of a deps.json with Python's
// json module.
const pythonScript = `
import json, sys
for key, lib in json.load(open(sys.argv[1]))["libraries"].items():
    if lib.get("type") == "package":
        name, _, version = key.rpartition("/")
        print(name, version, sep="\t")
`

func TestDepsJSON(t *testing.T) {
	file := filepath.Join(langtest.GoModule(t, syft), depsPath)
	out := langtest.Run(t, "", testutil.RequireTool(t, "python3"), "-c", pythonScript, file)
	want := map[langtest.Key]bool{}
	for line := range strings.Lines(string(out)) {
		n, v, _ := strings.Cut(strings.TrimSpace(line), "\t")
		want[langtest.Key{Ecosystem: "NuGet", Name: n, Version: v}] = true
	}
	if len(want) == 0 {
		t.Fatal("python lists no package")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c := New()
	if !c.Wants("app/editor.deps.json", 0o644, 1) || c.Wants("app/editor.runtimeconfig.json", 0o644, 1) {
		t.Fatal("Wants")
	}
	pkgs, err := c.Catalog(context.Background(), index.File{Path: "app/editor.deps.json", Reader: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	got := langtest.Keys(pkgs)
	if len(got) != len(want) || len(pkgs) != len(want) {
		t.Errorf("%d packages, python %d", len(pkgs), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missing %v", k)
		}
	}
	for _, p := range pkgs {
		if p.PURL != "pkg:nuget/"+p.Name+"@"+p.Version || p.Type != index.TypeDotnet {
			t.Errorf("%+v", p)
		}
	}
}

func TestNotDotnet(t *testing.T) {
	for _, in := range []string{"bogus deps.json", `{"libraries":[]}`} {
		if _, err := New().Catalog(context.Background(), index.File{Path: "a.deps.json", Reader: strings.NewReader(in)}); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	data, err := os.ReadFile(filepath.Join(langtest.GoModule(t, scalibr), wordpress))
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := New().Catalog(context.Background(), index.File{Path: "editor.deps.json", Reader: bytes.NewReader(data)})
	if err != nil || len(pkgs) != 0 {
		t.Errorf("WordPress deps file: %v %v", pkgs, err)
	}
}

func FuzzDepsJSON(f *testing.F) {
	data, err := os.ReadFile(filepath.Join(langtest.GoModule(f, syft), depsPath))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, _ := New().Catalog(context.Background(), index.File{Path: "a.deps.json", Reader: bytes.NewReader(data)})
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("%+v", p)
			}
		}
	})
}

func BenchmarkDepsJSON(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(langtest.GoModule(b, syft), depsPath))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New().Catalog(context.Background(), index.File{Path: "a.deps.json", Reader: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}
