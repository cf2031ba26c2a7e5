// Package testutil holds helpers shared by Drydock's tests: locating the
// shared fixtures and the external programs the tests drive.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RepoRoot returns the root of the Drydock checkout.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the source tree")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Fixtures returns the path of ../shared/fixtures beside the checkout (CI
// lays it there too), or of DRYDOCK_FIXTURES when set. Tests read fixtures
// in place and copy them to a temporary directory before changing them.
func Fixtures(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("DRYDOCK_FIXTURES")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "fixtures")
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("fixtures not found at %s (set DRYDOCK_FIXTURES): %v", dir, err)
	}
	return dir
}

// Fixture returns the path of one file or directory under the fixtures.
func Fixture(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Fixtures(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture %s: %v", rel, err)
	}
	return p
}

// RequireTool returns the path of an external program the test drives. A
// missing program fails the test: scripts/test installs every one of them,
// so a skip would hide a broken set-up.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			t.Fatalf("%s is missing; run scripts/install-test-deps: %v", name, err)
		}
		return name
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if gp := filepath.Join(goBin(), name); fileExists(gp) {
			return gp
		}
		t.Fatalf("%s is not installed; run scripts/install-test-deps: %v", name, err)
	}
	return p
}

func goBin() string {
	if b := os.Getenv("GOBIN"); b != "" {
		return b
	}
	gp := os.Getenv("GOPATH")
	if gp == "" {
		home, _ := os.UserHomeDir()
		gp = filepath.Join(home, "go")
	}
	return filepath.Join(gp, "bin")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
