// Package rust catalogs Rust crates: from Cargo.lock files, and from the
// dependency list cargo-auditable embeds in binaries (decoded here, found
// by the streaming scanner in package binary).
package rust

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/internal/langutil"
)

// MaxAuditData bounds the decompressed cargo-auditable JSON.
const MaxAuditData = 16 << 20

// maxLockFile bounds a Cargo.lock.
const maxLockFile = 16 << 20

// Cataloger finds Cargo.lock files. The zero value is ready to use.
type Cataloger struct{}

// New returns a Cargo.lock cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements index.Cataloger.
func (*Cataloger) Name() string { return "cargo-lock" }

// Version implements index.Cataloger.
func (*Cataloger) Version() int { return 1 }

// MaxSize implements index.Cataloger.
func (*Cataloger) MaxSize() int64 { return maxLockFile }

// Wants implements index.Cataloger.
func (*Cataloger) Wants(p string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && path.Base(p) == "Cargo.lock"
}

type lockFile struct {
	Package []struct {
		Name    string `toml:"name"`
		Version string `toml:"version"`
		Source  string `toml:"source"`
	} `toml:"package"`
}

// Catalog implements index.Cataloger. Crates from a registry or a git
// repository are reported; path crates (the workspace's own) are not.
func (*Cataloger) Catalog(_ context.Context, f index.File) ([]index.Package, error) {
	data, err := langutil.ReadAll(f.Reader, maxLockFile, f.Size)
	if err != nil {
		return nil, err
	}
	var lf lockFile
	if _, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&lf); err != nil {
		return nil, fmt.Errorf("parsing Cargo.lock: %w", err)
	}
	pkgs := make([]index.Package, 0, len(lf.Package))
	for _, p := range lf.Package {
		if p.Name == "" || p.Version == "" || p.Source == "" {
			continue
		}
		var meta map[string]string
		if !isCratesIO(p.Source) {
			meta = map[string]string{"source": p.Source}
		}
		pkgs = append(pkgs, newPackage(p.Name, p.Version, f.Path, meta))
	}
	return pkgs, nil
}

// isCratesIO reports whether a Cargo.lock source is the crates.io index
// (through git or the sparse protocol).
func isCratesIO(source string) bool {
	return source == "registry+https://github.com/rust-lang/crates.io-index" ||
		source == "sparse+https://index.crates.io/"
}

// auditData is the JSON cargo-auditable embeds.
type auditData struct {
	Packages []struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Source  string `json:"source"`
		Kind    string `json:"kind"`
	} `json:"packages"`
}

// AuditPackages returns the crates of a cargo-auditable dependency list
// found in the binary at path. Local crates (the program's own workspace)
// are not reported; build-time dependencies are, marked kind=build.
func AuditPackages(data []byte, path string) ([]index.Package, error) {
	var ad auditData
	if err := json.Unmarshal(data, &ad); err != nil {
		return nil, fmt.Errorf("cargo-auditable data: %w", err)
	}
	pkgs := make([]index.Package, 0, len(ad.Packages))
	for _, p := range ad.Packages {
		if p.Name == "" || p.Version == "" || p.Source == "local" {
			continue
		}
		var meta map[string]string
		if p.Source != "crates.io" && p.Source != "" {
			meta = map[string]string{"source": p.Source}
		}
		if p.Kind == "build" {
			if meta == nil {
				meta = map[string]string{}
			}
			meta["kind"] = "build"
		}
		pkgs = append(pkgs, newPackage(p.Name, p.Version, path, meta))
	}
	return pkgs, nil
}

func newPackage(name, version, path string, meta map[string]string) index.Package {
	return index.Package{
		Type:      index.TypeCargo,
		Ecosystem: "crates.io",
		Name:      name,
		Version:   strings.TrimSpace(version),
		PURL:      langutil.PURL("cargo", "", name, version),
		Path:      path,
		Metadata:  meta,
	}
}
