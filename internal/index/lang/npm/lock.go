package npm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/drydockhq/drydock/internal/index"
)

// Lock files list what an install of the application puts in
// node_modules. Development dependencies are left out where the lock file
// tells them apart (package-lock.json and pnpm-lock.yaml 5 and 6 mark them;
// for pnpm-lock.yaml 9 the production set is what the importers'
// dependencies reach through the snapshots): a production image does not
// install them, and when it does, their package.json files under
// node_modules report them. yarn.lock does not tell them apart: every
// package is reported.

// lockSet collects a lock file's packages once per name and version.
type lockSet struct {
	path string
	seen map[string]bool
	pkgs []index.Package
}

func newLockSet(path string, n int) *lockSet {
	return &lockSet{path: path, seen: make(map[string]bool, n), pkgs: make([]index.Package, 0, n)}
}

func (s *lockSet) add(name, version string) {
	if name == "" || version == "" || !isRegistryVersion(version) {
		return
	}
	k := name + "@" + version
	if s.seen[k] {
		return
	}
	s.seen[k] = true
	s.pkgs = append(s.pkgs, newPackage(name, version, s.path))
}

// isRegistryVersion rejects versions that are not registry versions (file:,
// git URLs, links, tarball URLs).
func isRegistryVersion(v string) bool {
	return v[0] >= '0' && v[0] <= '9'
}

// packageLock is package-lock.json or npm-shrinkwrap.json.
type packageLock struct {
	LockfileVersion int                       `json:"lockfileVersion"`
	Packages        map[string]lockPackage    `json:"packages"`
	Dependencies    map[string]lockDependency `json:"dependencies"`
}

// lockPackage is an entry of "packages" (lock file versions 2 and 3).
type lockPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Dev     bool   `json:"dev"`
	Link    bool   `json:"link"`
}

// lockDependency is an entry of "dependencies" (version 1), nested.
type lockDependency struct {
	Version      string                    `json:"version"`
	Dev          bool                      `json:"dev"`
	Dependencies map[string]lockDependency `json:"dependencies"`
}

func parsePackageLock(data []byte, path string) ([]index.Package, error) {
	var lock packageLock
	if err := json.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("package-lock.json: %w", err)
	}
	if lock.Packages != nil {
		set := newLockSet(path, len(lock.Packages))
		for key, p := range lock.Packages {
			i := strings.LastIndex(key, "node_modules/")
			if i < 0 || p.Link || p.Dev {
				continue // the root, a workspace, a link to one, or dev
			}
			name := key[i+len("node_modules/"):]
			if p.Name != "" {
				name = p.Name // an alias installed under another name
			}
			set.add(name, p.Version)
		}
		return set.pkgs, nil
	}
	set := newLockSet(path, len(lock.Dependencies))
	var walk func(map[string]lockDependency, int) error
	walk = func(deps map[string]lockDependency, depth int) error {
		if depth > 64 {
			return fmt.Errorf("package-lock.json: dependencies nested deeper than 64")
		}
		for name, d := range deps {
			if d.Dev {
				continue
			}
			version := d.Version
			if alias, ok := strings.CutPrefix(version, "npm:"); ok {
				// "npm:real-name@1.2.3" installs real-name under an alias.
				if at := strings.LastIndexByte(alias, '@'); at > 0 {
					name, version = alias[:at], alias[at+1:]
				}
			}
			set.add(name, version)
			if err := walk(d.Dependencies, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(lock.Dependencies, 0); err != nil {
		return nil, err
	}
	return set.pkgs, nil
}

// parseYarnLock reads yarn.lock: the classic format (version 1, a format of
// its own) or the YAML of Yarn 2 and later ("berry").
func parseYarnLock(data []byte, path string) ([]index.Package, error) {
	if bytes.Contains(data[:min(len(data), 4096)], []byte("__metadata:")) {
		return parseBerryLock(data, path)
	}
	set := newLockSet(path, 64)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var name string // package of the current entry
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] != ' ' {
			// An entry: `"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.10.4":`
			spec, _, _ := strings.Cut(strings.TrimSuffix(line, ":"), ",")
			name = specName(strings.Trim(strings.TrimSpace(spec), `"`))
			continue
		}
		if v, ok := strings.CutPrefix(line, "  version "); ok && name != "" {
			set.add(name, strings.Trim(strings.TrimSpace(v), `"`))
			name = ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("yarn.lock: %w", err)
	}
	return set.pkgs, nil
}

// specName returns the package of a dependency spec ("lodash@^4.17.15",
// "@babel/core@npm:^7.0.0" → "lodash", "@babel/core").
func specName(spec string) string {
	if len(spec) < 2 {
		return ""
	}
	at := strings.IndexByte(spec[1:], '@')
	if at < 0 {
		return ""
	}
	return spec[:at+1]
}

// berryEntry is one resolved package of a Yarn 2+ lock file.
type berryEntry struct {
	Version    string `yaml:"version"`
	Resolution string `yaml:"resolution"`
}

func parseBerryLock(data []byte, path string) ([]index.Package, error) {
	var entries map[string]berryEntry
	if err := yaml.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("yarn.lock: %w", err)
	}
	set := newLockSet(path, len(entries))
	for key, e := range entries {
		if key == "__metadata" || e.Resolution == "" {
			continue
		}
		name := specName(e.Resolution)
		protocol := e.Resolution[len(name)+1:]
		if !strings.HasPrefix(protocol, "npm:") && !strings.HasPrefix(protocol, "patch:") {
			continue // workspace:, link:, portal:, file:, git and URLs
		}
		set.add(name, e.Version)
	}
	return set.pkgs, nil
}

// pnpmLock is pnpm-lock.yaml.
type pnpmLock struct {
	LockfileVersion any                     `yaml:"lockfileVersion"`
	Packages        map[string]pnpmPackage  `yaml:"packages"`
	Importers       map[string]pnpmImporter `yaml:"importers"`
	Snapshots       map[string]pnpmSnapshot `yaml:"snapshots"`
}

// pnpmImporter is one project of the workspace (version 9).
type pnpmImporter struct {
	Dependencies         map[string]pnpmDep `yaml:"dependencies"`
	OptionalDependencies map[string]pnpmDep `yaml:"optionalDependencies"`
}

type pnpmDep struct {
	Version string `yaml:"version"`
}

// pnpmSnapshot is a resolved package with its peers (version 9): its
// dependencies map names to versions.
type pnpmSnapshot struct {
	Dependencies         map[string]string `yaml:"dependencies"`
	OptionalDependencies map[string]string `yaml:"optionalDependencies"`
}

type pnpmPackage struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
	Dev     bool   `yaml:"dev"`
}

func parsePnpmLock(data []byte, path string) ([]index.Package, error) {
	var lock pnpmLock
	if err := yaml.Unmarshal(data, &lock); err != nil {
		return nil, fmt.Errorf("pnpm-lock.yaml: %w", err)
	}
	// Versions 5.x key packages "/name/1.0.0_peers"; 6.x "/name@1.0.0(peers)";
	// 9.x "name@1.0.0(peers)".
	v5 := strings.HasPrefix(fmt.Sprint(lock.LockfileVersion), "5")
	prod := pnpmProduction(&lock)
	set := newLockSet(path, len(lock.Packages))
	for key, p := range lock.Packages {
		if p.Dev || prod != nil && !prod[key] {
			continue
		}
		name, version := p.Name, p.Version
		if name == "" || version == "" {
			name, version = pnpmKey(key, v5)
		}
		set.add(name, version)
	}
	return set.pkgs, nil
}

// pnpmKey splits a packages key into name and version.
func pnpmKey(key string, v5 bool) (name, version string) {
	key = strings.TrimPrefix(key, "/")
	if i := strings.IndexByte(key, '('); i >= 0 {
		key = key[:i]
	}
	sep := byte('@')
	if v5 {
		sep = '/'
	}
	i := strings.LastIndexByte(key, sep)
	if i <= 0 {
		return "", ""
	}
	name, version = key[:i], key[i+1:]
	if v5 {
		if j := strings.IndexByte(version, '_'); j >= 0 {
			version = version[:j]
		}
	}
	return name, version
}

// pnpmProduction returns the packages keys (version 9) that the importers'
// production and optional dependencies reach through the snapshots, or nil
// when the lock file has no snapshots (versions 5 and 6 mark dev instead).
func pnpmProduction(lock *pnpmLock) map[string]bool {
	if lock.Snapshots == nil || lock.Importers == nil {
		return nil
	}
	seen := make(map[string]bool, len(lock.Snapshots))
	var queue []string
	push := func(name, version string) {
		key := name + "@" + version
		if at := strings.LastIndexByte(version, '@'); at > 0 && !isRegistryVersion(version) {
			key = version // an alias: "other-name@1.0.0"
		}
		if !seen[key] {
			seen[key] = true
			queue = append(queue, key)
		}
	}
	for _, imp := range lock.Importers {
		for name, d := range imp.Dependencies {
			push(name, d.Version)
		}
		for name, d := range imp.OptionalDependencies {
			push(name, d.Version)
		}
	}
	for len(queue) > 0 {
		snap := lock.Snapshots[queue[0]]
		queue = queue[1:]
		for name, v := range snap.Dependencies {
			push(name, v)
		}
		for name, v := range snap.OptionalDependencies {
			push(name, v)
		}
	}
	prod := make(map[string]bool, len(seen))
	for key := range seen {
		if i := strings.IndexByte(key, '('); i >= 0 {
			key = key[:i] // packages keys carry no peer suffix
		}
		prod[key] = true
	}
	return prod
}
