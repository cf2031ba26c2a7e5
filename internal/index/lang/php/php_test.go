package php

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/langtest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// composerProject runs the real Composer client on an application that
// requires one package and, for development, another, both served by local
// path repositories (no network): Composer writes vendor/composer/
// installed.json and composer.lock as it does for any install.
func composerProject(t testing.TB) string {
	t.Helper()
	composer := testutil.RequireTool(t, "composer")
	return langtest.Cached(t, "composer/semver-3.3.2+debug-4.4.44", func(dir string) error {
		files := map[string]string{
			"pkgs/semver/composer.json": `{"name":"composer/semver","license":"MIT"}`,
			"pkgs/debug/composer.json":  `{"name":"symfony/debug","license":["MIT"]}`,
			"app/composer.json": `{"name":"drydock/fixture","repositories":[{"packagist.org":false},
 {"type":"path","url":"../pkgs/semver","options":{"symlink":false,"versions":{"composer/semver":"3.3.2"}}},
 {"type":"path","url":"../pkgs/debug","options":{"symlink":false,"versions":{"symfony/debug":"v4.4.44"}}}],
 "require":{"composer/semver":"3.3.2"},"require-dev":{"symfony/debug":"v4.4.44"}}`,
		}
		for name, content := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
		cmd := exec.Command(composer, "install", "--no-interaction", "--no-plugins", "--no-scripts", "--no-progress")
		cmd.Dir = filepath.Join(dir, "app")
		cmd.Env = append(os.Environ(), "COMPOSER_HOME="+filepath.Join(dir, "home"))
		if out, err := cmd.CombinedOutput(); err != nil {
			return &cmdError{string(out), err}
		}
		return nil
	})
}

type cmdError struct {
	out string
	err error
}

func (e *cmdError) Error() string { return e.err.Error() + ": " + e.out }

// composerShow asks Composer what is installed (or locked) in the
// application.
func composerShow(t *testing.T, app string, args ...string) map[langtest.Key]bool {
	t.Helper()
	composer := testutil.RequireTool(t, "composer")
	out := langtest.Run(t, app, composer, append([]string{"show", "--format=json", "--no-interaction"}, args...)...)
	var shown map[string][]struct{ Name, Version string }
	if err := json.Unmarshal(out, &shown); err != nil {
		t.Fatalf("composer show: %v\n%s", err, out)
	}
	want := map[langtest.Key]bool{}
	for _, list := range shown {
		for _, p := range list {
			want[langtest.Key{Ecosystem: "Packagist", Name: p.Name, Version: p.Version}] = true
		}
	}
	if len(want) == 0 {
		t.Fatalf("composer show %v lists nothing", args)
	}
	return want
}

func TestComposer(t *testing.T) {
	dir := composerProject(t)
	app := filepath.Join(dir, "app")
	t.Setenv("COMPOSER_HOME", filepath.Join(dir, "home"))
	pkgs := langtest.Walk(t, New(), dir)
	byFile := map[string][]index.Package{}
	for _, p := range pkgs {
		byFile[p.Path] = append(byFile[p.Path], p)
		if p.Type != index.TypeComposer || !strings.HasPrefix(p.PURL, "pkg:composer/") || strings.Join(p.Licenses, ",") != "MIT" {
			t.Errorf("%+v", p)
		}
	}
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"app/vendor/composer/installed.json", nil},
		{"app/composer.lock", []string{"--locked", "--no-dev"}},
	} {
		want := composerShow(t, app, tc.args...)
		got := langtest.Keys(byFile[tc.file])
		if len(got) != len(want) {
			t.Errorf("%s: %v, composer show %v: %v", tc.file, got, tc.args, want)
		}
		for k := range want {
			if !got[k] {
				t.Errorf("%s: missing %v", tc.file, k)
			}
		}
	}
	for _, p := range byFile["app/vendor/composer/installed.json"] {
		if (p.Name == "symfony/debug") != (p.Metadata["dev"] == "true") {
			t.Errorf("dev marking: %+v", p)
		}
		if p.Name == "symfony/debug" && p.PURL != "pkg:composer/symfony/debug@v4.4.44" {
			t.Errorf("purl %q", p.PURL)
		}
	}
}

// TestComposer1 reads the installed.json of Composer 1, a bare array.
func TestComposer1(t *testing.T) {
	in := `[{"name":"monolog/monolog","version":"1.25.1","license":"MIT"},{"name":"bad"}]`
	pkgs, err := New().Catalog(context.Background(), index.File{Path: "srv/vendor/composer/installed.json", Reader: strings.NewReader(in)})
	if err != nil || len(pkgs) != 1 || pkgs[0].Name != "monolog/monolog" || pkgs[0].Version != "1.25.1" {
		t.Errorf("%+v %v", pkgs, err)
	}
	if New().Wants("app/vendor/foo/bar/composer.lock", 0o644, 1) || !New().Wants("vendor/composer/installed.json", 0o644, 1) {
		t.Error("Wants")
	}
}

func FuzzCatalog(f *testing.F) {
	dir := composerProject(f)
	for _, rel := range []string{"app/vendor/composer/installed.json", "app/composer.lock"} {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rel, data)
	}
	f.Add("vendor/composer/installed.json", []byte(`[{"name":"a/b","version":"1"}]`))
	f.Fuzz(func(t *testing.T, p string, data []byte) {
		if !New().Wants(p, 0o644, 1) {
			return
		}
		pkgs, _ := New().Catalog(context.Background(), index.File{Path: p, Reader: bytes.NewReader(data)})
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("%+v", p)
			}
		}
	})
}

func BenchmarkInstalledJSON(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(composerProject(b), "app/vendor/composer/installed.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New().Catalog(context.Background(), index.File{Path: "vendor/composer/installed.json", Reader: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
}
