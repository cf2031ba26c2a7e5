package match

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/semver"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/langtest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// goGitVersion is the old go-git the test binary is built against: the
// real Go vulnerability database has several advisories whose ranges
// include it.
const goGitVersion = "v5.16.0"

// goBinary builds (once, cached) a program that depends on go-git at
// goGitVersion, with the local toolchain, and returns its path.
func goBinary(t *testing.T) string {
	t.Helper()
	goTool := testutil.RequireTool(t, "go")
	dir := langtest.Cached(t, "match/gobin-go-git-"+goGitVersion+"-"+runtime.Version(), func(dir string) error {
		files := map[string]string{
			"go.mod":  "module example.com/scanme\n\ngo 1.24\n",
			"main.go": "package main\n\nimport git \"github.com/go-git/go-git/v5\"\n\nfunc main() { _, _ = git.PlainOpen(\".\") }\n",
		}
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				return err
			}
		}
		env := []string{"GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "GOWORK=off", "CGO_ENABLED=0"}
		if _, err := runErr(dir, env, goTool, "get", "github.com/go-git/go-git/v5@"+goGitVersion); err != nil {
			return err
		}
		_, err := runErr(dir, env, goTool, "build", "-o", filepath.Join(dir, "root", "app", "scanme"), ".")
		return err
	})
	return filepath.Join(dir, "root", "app", "scanme")
}

// goModules reads what `go version -m` says the binary holds: the
// toolchain version and each dependency's module path and version (the
// replacement's, when replaced).
func goModules(t *testing.T, bin string) (toolchain string, mods map[string]string) {
	t.Helper()
	out := string(run(t, "", nil, testutil.RequireTool(t, "go"), "version", "-m", bin))
	mods = map[string]string{}
	for i, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if i == 0 {
			toolchain = f[len(f)-1]
			continue
		}
		switch {
		case len(f) >= 3 && f[0] == "dep":
			mods[f[1]] = f[2]
		case len(f) >= 3 && f[0] == "=>": // replacement of the previous dep
			last := strings.Fields(strings.Split(out, "\n")[i-1])[1]
			mods[last] = f[2]
		}
	}
	return toolchain, mods
}

// semverAffected evaluates OSV SEMVER/ECOSYSTEM events (sorted, as the Go
// database publishes them) with golang.org/x/mod/semver.
func semverAffected(t *testing.T, v string, events []map[string]string) bool {
	t.Helper()
	in := false
	for _, e := range events {
		switch {
		case e["introduced"] != "":
			if e["introduced"] == "0" || semver.Compare(v, "v"+e["introduced"]) >= 0 {
				in = true
			}
		case e["fixed"] != "":
			if semver.Compare(v, "v"+e["fixed"]) >= 0 {
				in = false
			}
		case e["last_affected"] != "":
			if semver.Compare(v, "v"+e["last_affected"]) > 0 {
				in = false
			}
		default:
			t.Fatalf("event %v", e)
		}
	}
	return in
}

// A Go binary built against an old go-git matches exactly the real Go
// advisories whose ranges include one of its modules' versions or its
// toolchain's version, as golang.org/x/mod/semver evaluates them on the
// records read with encoding/json.
func TestAccuracyGoBinary(t *testing.T) {
	bin := goBinary(t)
	toolchain, mods := goModules(t, bin)
	if mods["github.com/go-git/go-git/v5"] != goGitVersion {
		t.Fatalf("binary holds go-git %q, want %s", mods["github.com/go-git/go-git/v5"], goGitVersion)
	}
	versions := map[string]string{"stdlib": "v" + strings.TrimPrefix(toolchain, "go")}
	if !semver.IsValid(versions["stdlib"]) {
		t.Fatalf("toolchain %q", toolchain)
	}
	for m, v := range mods {
		versions[m] = v
	}
	var want []string
	for _, r := range readOSVZip(t, "feeds/osv/Go/all.zip") {
		if r.Withdraw != "" {
			continue
		}
		for _, a := range r.Affected {
			v, ok := versions[a.Package.Name]
			if !ok {
				continue
			}
			for _, rg := range a.Ranges {
				if rg.Type == "SEMVER" && semverAffected(t, v, rg.Events) {
					want = append(want, r.ID+"@"+a.Package.Name)
				}
			}
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)

	inv := indexDir(t, filepath.Dir(filepath.Dir(bin)))
	res, _ := matchInventory(t, inv, osvAdvisories(t, "feeds/osv/Go/all.zip"), nil)
	got := findingKeys(res, func(p *index.Package) bool { return p.Path == "app/scanme" })
	if !slices.Equal(got, want) {
		t.Errorf("findings differ from x/mod/semver's evaluation:\n got %v\nwant %v", got, want)
	}
	var goGit int
	for _, k := range want {
		if strings.HasSuffix(k, "@github.com/go-git/go-git/v5") {
			goGit++
		}
	}
	t.Logf("%d modules, toolchain %s: %d findings, %d of them go-git", len(mods), toolchain, len(want), goGit)
	if goGit == 0 || len(res.Warnings) != 0 {
		t.Errorf("no go-git finding expected from the database (%d), warnings %v", goGit, res.Warnings)
	}
}

// pythonDebs are Debian packages whose dist-info names projects the real
// PyPI sample has advisories for.
var pythonDebs = []string{
	"python3-django", "python3-jinja2", "python3-pil", "python3-aiohttp", "python3-mako", "python3-waitress",
	"python3-requests", "python3-twisted", "python3-redis", "python3-ujson", "python3-docutils", "python3-pip",
}

// pepOracle is Python's packaging evaluating the PyPI sample's ranges and
// version lists for the distributions importlib.metadata finds under the
// given directories; it prints "ID@canonical-name" per affected pair.
const pepOracle = `
import json, sys, zipfile
from importlib.metadata import distributions
from packaging.utils import canonicalize_name
from packaging.version import Version, InvalidVersion

sample, paths = sys.argv[1], sys.argv[2:]
installed = {}
for d in distributions(path=paths):
    installed[canonicalize_name(d.metadata["Name"])] = d.version

def affected(v, events):
    inside = False
    for e in events:
        if "introduced" in e:
            if e["introduced"] == "0" or v >= Version(e["introduced"]):
                inside = True
        elif "fixed" in e:
            if v >= Version(e["fixed"]):
                inside = False
        elif "last_affected" in e:
            if v > Version(e["last_affected"]):
                inside = False
    return inside

out = set()
with zipfile.ZipFile(sample) as z:
    for n in z.namelist():
        r = json.loads(z.read(n))
        if r.get("withdrawn"):
            continue
        for a in r.get("affected", []):
            name = canonicalize_name(a["package"]["name"])
            if a["package"]["ecosystem"] != "PyPI" or name not in installed:
                continue
            raw = installed[name]
            v = Version(raw)
            hit = raw in a.get("versions", [])
            for x in a.get("versions", []):
                try:
                    hit = hit or Version(x) == v
                except InvalidVersion:
                    pass
            for rg in a.get("ranges", []):
                if rg["type"] == "ECOSYSTEM":
                    hit = hit or affected(v, rg["events"])
            if hit:
                out.add(r["id"] + "@" + name)
for k in sorted(out):
    print(k)
print("#installed", " ".join(sorted(n + "=" + v for n, v in installed.items())), file=sys.stderr)
`

// Debian's own python3 packages (their dist-info, as installed) match the
// real PyPI sample advisories whose ranges or version lists include their
// versions, and only those, as Python's packaging evaluates them.
func TestAccuracyDebianPythonPackages(t *testing.T) {
	python := testutil.RequireTool(t, "/usr/bin/python3")
	root := t.TempDir()
	for _, deb := range pythonDebs {
		debRoot := langtest.Debian(t, deb).Root
		// One image root holding every package, as they would be
		// installed together.
		if err := os.CopyFS(root, os.DirFS(debRoot)); err != nil {
			t.Fatalf("%s: %v", deb, err)
		}
	}
	sitePaths := []string{filepath.Join(root, "usr/lib/python3/dist-packages")}
	sample := testutil.Fixture(t, "feeds/osv/PyPI/sample.zip")
	out := string(run(t, "", nil, python, append([]string{"-c", pepOracle, sample}, sitePaths...)...))
	want := strings.Fields(out)

	inv := indexDir(t, root)
	res, _ := matchInventory(t, inv, osvAdvisories(t, "feeds/osv/PyPI/sample.zip"), nil)
	var got []string
	pythonPkgs := 0
	for _, p := range inv.Packages {
		if p.Ecosystem == "PyPI" {
			pythonPkgs++
		}
	}
	for _, f := range res.Findings {
		if f.Package.Ecosystem == "PyPI" {
			got = append(got, f.ID()+"@"+vulndb.NormalizeName("PyPI", f.Package.Name))
		}
	}
	slices.Sort(got)
	got = slices.Compact(got)
	if !slices.Equal(got, want) {
		t.Errorf("findings differ from packaging's evaluation:\n got %v\nwant %v", got, want)
	}
	t.Logf("%d Python distributions, %d findings: %v", pythonPkgs, len(want), want)
	if len(want) == 0 || len(res.Warnings) != 0 {
		t.Errorf("the chosen packages should have findings in the sample; warnings %v", res.Warnings)
	}
}
