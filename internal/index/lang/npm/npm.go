// Package npm catalogs Node.js packages: the package.json of every package
// installed under a node_modules directory, at any depth, and the lock files
// of applications (package-lock.json, yarn.lock, pnpm-lock.yaml) found
// outside node_modules.
package npm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/internal/langutil"
)

// maxSize bounds a package.json or a lock file. Large monorepo lock files
// reach tens of megabytes; package.json files are small, but some old
// packages embed their whole README.
const maxSize = 64 << 20

// Cataloger finds npm packages. The zero value is ready to use.
type Cataloger struct{}

// New returns an npm cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements index.Cataloger.
func (*Cataloger) Name() string { return "npm" }

// Version implements index.Cataloger.
func (*Cataloger) Version() int { return 2 }

// MaxSize implements index.Cataloger.
func (*Cataloger) MaxSize() int64 { return maxSize }

// fileKind is what a wanted file is.
type fileKind int

const (
	notWanted fileKind = iota
	installedManifest
	packageLockFile
	yarnLockFile
	pnpmLockFile
)

// Wants implements index.Cataloger.
func (*Cataloger) Wants(p string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && kind(p) != notWanted
}

// kind classifies a path by its name alone.
func kind(p string) fileKind {
	dir, base := p, p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, base = p[:i], p[i+1:]
	} else {
		dir = ""
	}
	switch base {
	case "package.json":
		if isInstalledDir(dir) {
			return installedManifest
		}
	case "package-lock.json", "npm-shrinkwrap.json":
		if !inNodeModules(dir) {
			return packageLockFile
		}
	case "yarn.lock":
		if !inNodeModules(dir) {
			return yarnLockFile
		}
	case "pnpm-lock.yaml":
		if !inNodeModules(dir) {
			return pnpmLockFile
		}
	}
	return notWanted
}

// isInstalledDir reports whether dir is the directory of an installed
// package: node_modules/NAME or node_modules/@SCOPE/NAME.
func isInstalledDir(dir string) bool {
	i := strings.LastIndexByte(dir, '/')
	if i < 0 {
		return false
	}
	parent, name := dir[:i], dir[i+1:]
	if name == "" || name[0] == '.' {
		return false
	}
	if isNodeModules(parent) {
		return name[0] != '@'
	}
	j := strings.LastIndexByte(parent, '/')
	if j < 0 || parent[j+1] != '@' {
		return false
	}
	return isNodeModules(parent[:j])
}

// isNodeModules reports whether the last element of dir is node_modules.
func isNodeModules(dir string) bool {
	return dir == "node_modules" || strings.HasSuffix(dir, "/node_modules")
}

// inNodeModules reports whether dir is inside a node_modules directory.
func inNodeModules(dir string) bool {
	return isNodeModules(dir) || strings.Contains(dir, "node_modules/") || strings.HasPrefix(dir, "node_modules/")
}

// Catalog implements index.Cataloger.
func (c *Cataloger) Catalog(_ context.Context, f index.File) ([]index.Package, error) {
	data, err := langutil.ReadAll(f.Reader, maxSize, f.Size)
	if err != nil {
		return nil, err
	}
	switch kind(f.Path) {
	case installedManifest:
		p, err := parseManifest(data, f.Path)
		if err != nil || p == nil {
			return nil, err
		}
		return []index.Package{*p}, nil
	case packageLockFile:
		return parsePackageLock(data, f.Path)
	case yarnLockFile:
		return parseYarnLock(data, f.Path)
	case pnpmLockFile:
		return parsePnpmLock(data, f.Path)
	}
	return nil, fmt.Errorf("%s: not an npm file", f.Path)
}

// manifest is the part of package.json Drydock reads.
type manifest struct {
	Name     string          `json:"name"`
	Version  string          `json:"version"`
	Private  bool            `json:"private"`
	License  json.RawMessage `json:"license"`
	Licenses json.RawMessage `json:"licenses"`
}

// parseManifest reads an installed package's package.json. A manifest
// without name or version (some packages ship stub package.json files in
// sub-directories) declares no package and is not an error.
func parseManifest(data []byte, path string) (*index.Package, error) {
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("package.json: %w", err)
	}
	if m.Name == "" || m.Version == "" {
		return nil, nil
	}
	p := newPackage(m.Name, m.Version, path)
	p.Licenses = licenses(m.License, m.Licenses)
	if m.Private {
		// A private package cannot come from the registry (a workspace
		// package or an application's own code copied into
		// node_modules). It is in the image, so it is reported; the
		// flag lets matching treat a registry package of the same name
		// with suspicion.
		p.Metadata = map[string]string{"private": "true"}
	}
	return &p, nil
}

// newPackage makes an npm package with its package URL.
func newPackage(name, version, path string) index.Package {
	ns, n := langutil.SplitLast(name)
	return index.Package{
		Type:      index.TypeNPM,
		Ecosystem: "npm",
		Name:      name,
		Version:   version,
		PURL:      langutil.PURL("npm", ns, n, version),
		Path:      path,
	}
}

// licenses reads the "license" field (an SPDX expression, or the
// deprecated {"type": ...} object) and the deprecated "licenses" array.
func licenses(license, list json.RawMessage) []string {
	var out []string
	add := func(raw json.RawMessage) {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 {
			return
		}
		var s string
		if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
			if s != "" {
				out = append(out, s)
			}
			return
		}
		var o struct {
			Type string `json:"type"`
		}
		if raw[0] == '{' && json.Unmarshal(raw, &o) == nil && o.Type != "" {
			out = append(out, o.Type)
		}
	}
	add(license)
	if l := bytes.TrimSpace(list); len(l) > 0 && l[0] == '[' {
		var items []json.RawMessage
		if json.Unmarshal(l, &items) == nil {
			for _, it := range items {
				add(it)
			}
		}
	}
	return out
}
