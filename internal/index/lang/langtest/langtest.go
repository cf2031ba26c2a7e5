// Package langtest builds real content for tests (Debian packages of this
// and older releases, npm installs, Go builds, Go modules' files) and caches
// it between runs under the user cache directory, and walks a directory the
// way the indexer walks a layer. The indexer's own tests can use it to make
// layers from real packages.
package langtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/testutil"
)

// Cached returns a directory under the user cache directory named by key,
// calling build to fill it the first time. build writes into a fresh
// directory that is renamed into place only when it succeeds, so a failed or
// concurrent run never leaves a half-built cache entry.
func Cached(t testing.TB, key string, build func(dir string) error) string {
	t.Helper()
	base, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("cache directory: %v", err)
	}
	dir := filepath.Join(base, "drydock-test", filepath.FromSlash(key))
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		t.Fatalf("building test content %s: %v", key, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Another run got there first: use its result.
		if _, err2 := os.Stat(filepath.Join(dir, ".complete")); err2 != nil {
			t.Fatalf("caching %s: %v", key, err)
		}
	}
	return dir
}

// Run runs a program in dir and returns its standard output; a failure
// fails the test with the program's standard error.
func Run(t testing.TB, dir, name string, args ...string) []byte {
	t.Helper()
	out, err := run(dir, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func run(dir, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &runError{cmd: name + " " + strings.Join(args, " "), err: err, stderr: stderr.String()}
	}
	return out, nil
}

type runError struct {
	cmd, stderr string
	err         error
}

func (e *runError) Error() string { return e.cmd + ": " + e.err.Error() + "\n" + e.stderr }

// Deb is a Debian package downloaded and unpacked for a test.
type Deb struct {
	Name, Version string
	// File is the .deb; Root is the directory it was unpacked into with
	// dpkg-deb -x, laid out like an image root.
	File, Root string
}

// Debian downloads the candidate version of a Debian package with apt-get
// download and unpacks it, caching both by name and version.
func Debian(t testing.TB, name string) Deb {
	t.Helper()
	return debian(t, "", nil, name)
}

// DebianSuite is Debian for a package of another Debian release (such as
// "bullseye", whose Go programs were built by Go before 1.18), read from the
// mirror the system's apt sources name, with package lists kept in the test
// cache: the system's apt configuration is not touched.
func DebianSuite(t testing.TB, suite, name string) Deb {
	t.Helper()
	testutil.RequireTool(t, "apt-get")
	var uri string
	if b, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "URIs:"); ok && uri == "" {
				uri = strings.TrimSpace(v)
			}
		}
	}
	if uri == "" {
		t.Fatal("no Debian mirror in /etc/apt/sources.list.d/debian.sources")
	}
	var opts []string
	dir := Cached(t, "apt/"+suite, func(dir string) error {
		opts = aptOptions(dir)
		if err := os.MkdirAll(filepath.Join(dir, "lists", "partial"), 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, "cache", "archives", "partial"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "sources.list"), []byte("deb "+uri+" "+suite+" main\n"), 0o644); err != nil {
			return err
		}
		_, err := run(dir, "apt-get", append(opts, "-q", "update")...)
		return err
	})
	return debian(t, suite, aptOptions(dir), name)
}

// aptOptions points apt at a sources list, package lists and cache under
// dir.
func aptOptions(dir string) []string {
	return []string{
		"-o", "Dir::Etc::sourcelist=" + filepath.Join(dir, "sources.list"),
		"-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
	}
}

func debian(t testing.TB, suite string, opts []string, name string) Deb {
	t.Helper()
	testutil.RequireTool(t, "apt-get")
	testutil.RequireTool(t, "dpkg-deb")
	version := candidate(t, suite, opts, name)
	key := "deb/" + name + "_" + strings.ReplaceAll(version, ":", "%3a")
	if suite != "" {
		key = "deb-" + suite + "/" + name + "_" + strings.ReplaceAll(version, ":", "%3a")
	}
	dir := Cached(t, key, func(dir string) error {
		if _, err := run(dir, "apt-get", append(opts, "download", "-q", name+"="+version)...); err != nil {
			return err
		}
		debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
		if len(debs) != 1 {
			return &runError{cmd: "apt-get download " + name, err: fs.ErrNotExist}
		}
		_, err := run(dir, "dpkg-deb", "-x", debs[0], filepath.Join(dir, "root"))
		return err
	})
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("cached package %s has no .deb", dir)
	}
	return Deb{Name: name, Version: version, File: debs[0], Root: filepath.Join(dir, "root")}
}

// candidates remembers apt-cache's answers for the life of the test binary:
// asking costs about a second on a loaded machine.
var candidates sync.Map

// aptUpdate runs apt-get update at most once per test binary.
var aptUpdate sync.Once

// candidate returns the version apt-get would download.
func candidate(t testing.TB, suite string, opts []string, name string) string {
	t.Helper()
	if v, ok := candidates.Load(suite + "/" + name); ok {
		return v.(string)
	}
	policy := func() (string, string) {
		pol := string(Run(t, "", "apt-cache", append(opts, "policy", name)...))
		var version string
		for line := range strings.Lines(pol) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
				version = strings.TrimSpace(v)
			}
		}
		return pol, version
	}
	pol, version := policy()
	if (version == "" || version == "(none)") && opts == nil {
		// A fresh machine has no package lists yet.
		aptUpdate.Do(func() { _, _ = run("", "apt-get", "update", "-qq") })
		pol, version = policy()
	}
	if version == "" || version == "(none)" {
		t.Fatalf("apt-cache policy %s: no candidate version (run apt-get update):\n%s", name, pol)
	}
	candidates.Store(suite+"/"+name, version)
	return version
}

// NPM installs npm packages (name@version specs) into a fresh project
// directory with the real npm client, without running install scripts, and
// returns the directory (node_modules and package-lock.json inside).
func NPM(t testing.TB, specs ...string) string {
	t.Helper()
	testutil.RequireTool(t, "npm")
	key := "npm/" + strings.NewReplacer("/", "%2f", "@", "_").Replace(strings.Join(specs, "+"))
	return Cached(t, key, func(dir string) error {
		if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"drydock-fixture","version":"1.0.0","private":true}`), 0o644); err != nil {
			return err
		}
		args := append([]string{"install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"}, specs...)
		_, err := run(dir, "npm", args...)
		return err
	})
}

// Walk offers every regular file under root to the cataloger the way the
// indexer does (Wants, then Catalog with a reader bounded by MaxSize) and
// returns the packages found, sorted by path, name and version. A cataloger
// error fails the test: real content must parse.
func Walk(t testing.TB, c index.Cataloger, root string) []index.Package {
	t.Helper()
	pkgs, errs := WalkErrors(t, c, root)
	for _, err := range errs {
		t.Error(err)
	}
	return pkgs
}

// WalkErrors is Walk that returns the cataloger's errors instead of failing.
func WalkErrors(t testing.TB, c index.Cataloger, root string) ([]index.Package, []error) {
	t.Helper()
	var pkgs []index.Package
	var errs []error
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == ".complete" {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !c.Wants(rel, info.Mode(), info.Size()) || info.Size() > c.MaxSize() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		found, err := c.Catalog(context.Background(), index.File{Path: rel, Mode: info.Mode(), Size: info.Size(), Reader: f})
		if err != nil {
			errs = append(errs, &walkError{path: rel, err: err})
		}
		pkgs = append(pkgs, found...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	Sort(pkgs)
	return pkgs, errs
}

type walkError struct {
	path string
	err  error
}

func (e *walkError) Error() string { return e.path + ": " + e.err.Error() }
func (e *walkError) Unwrap() error { return e.err }

// Sort orders packages by path, name and version.
func Sort(pkgs []index.Package) {
	slices.SortFunc(pkgs, func(a, b index.Package) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
}

// Key is a package's ecosystem, name and version, for comparing inventories.
type Key struct{ Ecosystem, Name, Version string }

// Keys returns the set of keys of pkgs.
func Keys(pkgs []index.Package) map[Key]bool {
	m := make(map[Key]bool, len(pkgs))
	for _, p := range pkgs {
		m[Key{p.Ecosystem, p.Name, p.Version}] = true
	}
	return m
}

// GoModule downloads a Go module with the go command (through the module
// proxy) and returns its directory in the module cache. Tests use the real
// files some modules carry (lock files of other ecosystems in their test
// data), read in place.
func GoModule(t testing.TB, module string) string {
	t.Helper()
	goTool := testutil.RequireTool(t, "go")
	cmd := exec.Command(goTool, "mod", "download", "-json", module)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v\n%s", module, err, out)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", module, err, info.Error)
	}
	return info.Dir
}

// The Go program GoProgram builds depends on old module versions
// (golang.org/x/text v0.3.7 has known advisories) and replaces one of them,
// so the build information carries a replace directive.
const (
	goMod = `module example.com/drydock/fixture

go 1.22

require (
	golang.org/x/text v0.3.7
	github.com/google/uuid v1.3.0
)

replace github.com/google/uuid => github.com/google/uuid v1.2.0
`
	goMain = `package main

import (
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/text/language"
)

func main() { fmt.Println(language.English, uuid.Nil) }
`
)

// GoProgram builds the program for Linux (ELF, stripped and not), macOS
// (Mach-O) and Windows (PE) with the real toolchain, fetching the modules
// from the module proxy, and caches the binaries. It returns the directory
// holding bin/app-linux, bin/app-stripped, bin/app-darwin and bin/app.exe.
func GoProgram(t testing.TB) string {
	t.Helper()
	goTool := testutil.RequireTool(t, "go")
	return Cached(t, "gobuild/"+runtime.Version()+"-uuid-text-1", func(dir string) error {
		src := filepath.Join(dir, "src")
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(goMod), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(goMain), 0o644); err != nil {
			return err
		}
		for _, b := range []struct{ goos, name, ldflags string }{
			{"linux", "app-linux", ""},
			{"linux", "app-stripped", "-s -w -buildid="},
			{"darwin", "app-darwin", ""},
			{"windows", "app.exe", ""},
		} {
			cmd := exec.Command(goTool, "build", "-mod=mod", "-trimpath", "-ldflags="+b.ldflags, "-o", filepath.Join(dir, "bin", b.name), ".")
			cmd.Dir = src
			cmd.Env = append(os.Environ(), "GOOS="+b.goos, "GOARCH=amd64", "CGO_ENABLED=0", "GOFLAGS=", "GOTOOLCHAIN=local")
			if out, err := cmd.CombinedOutput(); err != nil {
				return &runError{cmd: "go build", err: err, stderr: string(out)}
			}
		}
		return nil
	})
}
