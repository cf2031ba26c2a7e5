package npm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/langtest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// lockManifest is the application each package manager resolves: two
// production dependencies (one scoped) and a development one.
const lockManifest = `{"name":"drydock-lock-fixture","version":"1.0.0","license":"MIT",
"dependencies":{"express":"4.17.1","@babel/runtime":"7.12.5"},"devDependencies":{"lodash":"4.17.15"}}`

// lockTool is one real package manager writing its lock file.
type lockTool struct {
	name, file string
	// args run in the project directory (npx fetches the tool itself).
	args [][]string
	// marksDev says whether the lock file tells development dependencies apart
	// (they are then left out, and so from the truth too).
	marksDev bool
	// truth lists what the package manager says it resolved.
	truth func(t *testing.T, dir string, prodOnly bool) map[string]bool
}

var lockTools = []lockTool{
	{name: "npm-v1", file: "package-lock.json", marksDev: true, truth: npmLsLock,
		args: [][]string{{"npm", "install", "--package-lock-only", "--lockfile-version=1", "--no-audit", "--no-fund", "--loglevel=error"}}},
	{name: "npm-v2", file: "package-lock.json", marksDev: true, truth: npmLsLock,
		args: [][]string{{"npm", "install", "--package-lock-only", "--lockfile-version=2", "--no-audit", "--no-fund", "--loglevel=error"}}},
	{name: "npm-v3", file: "package-lock.json", marksDev: true, truth: npmLsLock,
		args: [][]string{{"npm", "install", "--package-lock-only", "--lockfile-version=3", "--no-audit", "--no-fund", "--loglevel=error"}}},
	{name: "yarn-v1", file: "yarn.lock", truth: npmLsTree,
		args: [][]string{{"npx", "--yes", "yarn@1.22.22", "install", "--ignore-scripts", "--non-interactive", "--silent"}}},
	{name: "yarn-berry", file: "yarn.lock", truth: npmLsTree,
		args: [][]string{{"touch", "yarn.lock"}, {"npx", "--yes", "-p", "@yarnpkg/cli-dist@4.9.2", "yarn", "install"}}},
	{name: "pnpm-v9", file: "pnpm-lock.yaml", marksDev: true, truth: pnpmList("9.15.9"),
		args: [][]string{{"npx", "--yes", "pnpm@9.15.9", "install", "--ignore-scripts", "--reporter=silent"}}},
	{name: "pnpm-v6", file: "pnpm-lock.yaml", marksDev: true, truth: pnpmList("8.15.9"),
		args: [][]string{{"npx", "--yes", "pnpm@8.15.9", "install", "--ignore-scripts", "--reporter=silent"}}},
	{name: "pnpm-v5", file: "pnpm-lock.yaml", marksDev: true, truth: pnpmList("7.33.7"),
		args: [][]string{{"npx", "--yes", "pnpm@7.33.7", "install", "--ignore-scripts", "--reporter=silent"}}},
}

// lockProject has the tool resolve lockManifest, cached by tool.
func lockProject(t testing.TB, tool lockTool) string {
	t.Helper()
	testutil.RequireTool(t, "npm")
	testutil.RequireTool(t, "npx")
	registry := strings.TrimSpace(string(langtest.Run(t, "", "npm", "config", "get", "registry")))
	return langtest.Cached(t, "npm-lock/"+tool.name, func(dir string) error {
		if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(lockManifest), 0o644); err != nil {
			return err
		}
		// Yarn 2+ uses its own registry setting; point it at npm's.
		yarnrc := fmt.Sprintf("nodeLinker: node-modules\nnpmRegistryServer: %q\nenableTelemetry: false\nenableGlobalCache: false\n", registry)
		if err := os.WriteFile(filepath.Join(dir, ".yarnrc.yml"), []byte(yarnrc), 0o644); err != nil {
			return err
		}
		for _, a := range tool.args {
			cmd := exec.Command(a[0], a[1:]...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "YARN_ENABLE_TELEMETRY=0", "COREPACK_ENABLE_STRICT=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%s: %v\n%s", strings.Join(a, " "), err, out)
			}
		}
		return nil
	})
}

// npmLsLock asks npm what a package-lock.json resolves, without
// node_modules.
func npmLsLock(t *testing.T, dir string, prodOnly bool) map[string]bool {
	args := []string{"ls", "--package-lock-only", "--all", "--parseable", "--long"}
	if prodOnly {
		args = append(args, "--omit=dev")
	}
	return parseableLs(t, dir, langtest.Run(t, dir, "npm", args...))
}

// npmLsTree asks npm what the node_modules tree another package manager
// installed holds.
func npmLsTree(t *testing.T, dir string, _ bool) map[string]bool {
	return parseableLs(t, dir, langtest.Run(t, dir, "npm", "ls", "--all", "--parseable", "--long"))
}

func parseableLs(t *testing.T, dir string, out []byte) map[string]bool {
	t.Helper()
	want := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		p, nv, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || filepath.Clean(p) == filepath.Clean(dir) {
			continue
		}
		want[nv] = true
	}
	return want
}

// pnpmList asks pnpm (the version that wrote the lock file) what it
// installed.
func pnpmList(version string) func(t *testing.T, dir string, prodOnly bool) map[string]bool {
	return func(t *testing.T, dir string, prodOnly bool) map[string]bool {
		args := []string{"--yes", "pnpm@" + version, "list", "--json", "--depth", "Infinity"}
		if prodOnly {
			args = append(args, "--prod")
		}
		var projects []struct {
			Dependencies    map[string]pnpmNode `json:"dependencies"`
			DevDependencies map[string]pnpmNode `json:"devDependencies"`
		}
		out := langtest.Run(t, dir, "npx", args...)
		if err := json.Unmarshal(out, &projects); err != nil {
			t.Fatalf("pnpm list: %v\n%s", err, out)
		}
		want := map[string]bool{}
		var walk func(map[string]pnpmNode)
		walk = func(deps map[string]pnpmNode) {
			for name, d := range deps {
				want[name+"@"+d.Version] = true
				walk(d.Dependencies)
			}
		}
		for _, p := range projects {
			walk(p.Dependencies)
			walk(p.DevDependencies)
		}
		return want
	}
}

type pnpmNode struct {
	Version      string              `json:"version"`
	Dependencies map[string]pnpmNode `json:"dependencies"`
}

func TestLockFiles(t *testing.T) {
	for _, tool := range lockTools {
		t.Run(tool.name, func(t *testing.T) {
			dir := lockProject(t, tool)
			data, err := os.ReadFile(filepath.Join(dir, tool.file))
			if err != nil {
				t.Fatal(err)
			}
			p := "app/" + tool.file
			c := New()
			if !c.Wants(p, 0o644, int64(len(data))) {
				t.Fatalf("%s not wanted", p)
			}
			pkgs, err := c.Catalog(context.Background(), index.File{Path: p, Size: int64(len(data)), Reader: bytes.NewReader(data)})
			if err != nil {
				t.Fatal(err)
			}
			want := tool.truth(t, dir, tool.marksDev)
			if len(want) < 40 {
				t.Fatalf("the package manager lists only %d packages", len(want))
			}
			got := map[string]bool{}
			for _, pkg := range pkgs {
				got[pkg.Name+"@"+pkg.Version] = true
				if pkg.Path != p || pkg.Type != index.TypeNPM || pkg.PURL == "" {
					t.Errorf("%+v", pkg)
				}
			}
			if len(got) != len(pkgs) {
				t.Errorf("%d packages, %d distinct", len(pkgs), len(got))
			}
			for k := range want {
				if !got[k] {
					t.Errorf("missing %s", k)
				}
			}
			for k := range got {
				if !want[k] {
					t.Errorf("unexpected %s", k)
				}
			}
			if tool.marksDev && got["lodash@4.17.15"] {
				t.Error("development dependency lodash reported")
			}
		})
	}
}

func TestLockWants(t *testing.T) {
	c := New()
	for p, want := range map[string]bool{
		"app/package-lock.json":                   true,
		"package-lock.json":                       true,
		"app/yarn.lock":                           true,
		"app/pnpm-lock.yaml":                      true,
		"app/npm-shrinkwrap.json":                 true,
		"app/node_modules/.package-lock.json":     false,
		"app/node_modules/x/package-lock.json":    false,
		"app/node_modules/x/yarn.lock":            false,
		"usr/lib/node_modules/npm/pnpm-lock.yaml": false,
	} {
		if c.Wants(p, 0o644, 100) != want {
			t.Errorf("Wants(%q) != %v", p, want)
		}
	}
}

func FuzzLockFiles(f *testing.F) {
	for _, tool := range lockTools {
		data, err := os.ReadFile(filepath.Join(lockProject(f, tool), tool.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tool.file, data)
	}
	c := New()
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		p := "app/" + name
		if !c.Wants(p, 0o644, int64(len(data))) {
			return
		}
		pkgs, _ := c.Catalog(context.Background(), index.File{Path: p, Size: int64(len(data)), Reader: bytes.NewReader(data)})
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("incomplete %+v", p)
			}
		}
	})
}

func BenchmarkLockFiles(b *testing.B) {
	for _, tool := range lockTools {
		data, err := os.ReadFile(filepath.Join(lockProject(b, tool), tool.file))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tool.name, func(b *testing.B) {
			c := New()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Catalog(context.Background(), index.File{Path: "app/" + tool.file, Reader: bytes.NewReader(data)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
