// Package php catalogs PHP packages installed by Composer: the
// vendor/composer/installed.json it writes (Composer 1: a JSON array;
// Composer 2: an object with "packages"), and composer.lock files of
// applications (outside vendor directories).
package php

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/internal/langutil"
)

// maxSize bounds installed.json and composer.lock.
const maxSize = 32 << 20

// Cataloger finds Composer packages. The zero value is ready to use.
type Cataloger struct{}

// New returns a PHP cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements index.Cataloger.
func (*Cataloger) Name() string { return "php" }

// Version implements index.Cataloger.
func (*Cataloger) Version() int { return 1 }

// MaxSize implements index.Cataloger.
func (*Cataloger) MaxSize() int64 { return maxSize }

// Wants implements index.Cataloger.
func (*Cataloger) Wants(p string, mode fs.FileMode, _ int64) bool {
	if !mode.IsRegular() {
		return false
	}
	return isInstalled(p) || isLock(p)
}

func isInstalled(p string) bool {
	return p == "vendor/composer/installed.json" || strings.HasSuffix(p, "/vendor/composer/installed.json")
}

func isLock(p string) bool {
	return path.Base(p) == "composer.lock" && !strings.HasPrefix(p, "vendor/") && !strings.Contains(p, "/vendor/")
}

// composerPackage is one package entry of installed.json or composer.lock.
type composerPackage struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	License json.RawMessage `json:"license"`
}

// Catalog implements index.Cataloger. Development packages are reported
// from installed.json (they are installed, marked dev=true) but not from
// composer.lock (a production install leaves them out).
func (*Cataloger) Catalog(_ context.Context, f index.File) ([]index.Package, error) {
	data, err := langutil.ReadAll(f.Reader, maxSize, f.Size)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimSpace(data)
	var list []composerPackage
	dev := map[string]bool{}
	switch {
	case isInstalled(f.Path) && len(data) > 0 && data[0] == '[':
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("installed.json: %w", err)
		}
	case isInstalled(f.Path):
		var v2 struct {
			Packages []composerPackage `json:"packages"`
			DevNames []string          `json:"dev-package-names"`
		}
		if err := json.Unmarshal(data, &v2); err != nil {
			return nil, fmt.Errorf("installed.json: %w", err)
		}
		list = v2.Packages
		for _, n := range v2.DevNames {
			dev[n] = true
		}
	default:
		var lock struct {
			Packages []composerPackage `json:"packages"`
		}
		if err := json.Unmarshal(data, &lock); err != nil {
			return nil, fmt.Errorf("composer.lock: %w", err)
		}
		list = lock.Packages
	}
	pkgs := make([]index.Package, 0, len(list))
	for _, c := range list {
		vendor, name, ok := strings.Cut(c.Name, "/")
		if !ok || vendor == "" || name == "" || c.Version == "" {
			continue
		}
		p := index.Package{
			Type:      index.TypeComposer,
			Ecosystem: "Packagist",
			Name:      c.Name,
			Version:   c.Version,
			Licenses:  licenses(c.License),
			PURL:      langutil.PURL("composer", vendor, name, c.Version),
			Path:      f.Path,
		}
		if dev[c.Name] {
			p.Metadata = map[string]string{"dev": "true"}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// licenses reads a "license" field: an array of SPDX identifiers or one
// string.
func licenses(raw json.RawMessage) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if raw[0] == '[' && json.Unmarshal(raw, &list) == nil {
		return list
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil && s != "" {
		return []string{s}
	}
	return nil
}
