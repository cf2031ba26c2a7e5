// Package dotnet catalogs .NET applications from their *.deps.json files:
// the runtime libraries of type "package" are the NuGet packages the
// application was built with.
package dotnet

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

// maxSize bounds a deps.json; large applications have a few megabytes.
const maxSize = 32 << 20

// Cataloger finds NuGet packages in deps.json files. The zero value is
// ready to use.
type Cataloger struct{}

// New returns a .NET cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements index.Cataloger.
func (*Cataloger) Name() string { return "dotnet" }

// Version implements index.Cataloger.
func (*Cataloger) Version() int { return 1 }

// MaxSize implements index.Cataloger.
func (*Cataloger) MaxSize() int64 { return maxSize }

// Wants implements index.Cataloger.
func (*Cataloger) Wants(p string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && strings.HasSuffix(p, ".deps.json")
}

type depsFile struct {
	Libraries map[string]struct {
		Type string `json:"type"`
	} `json:"libraries"`
}

// Catalog implements index.Cataloger. Libraries of type "project" (the
// application's own projects) and "reference" are not NuGet packages and
// are left out.
func (*Cataloger) Catalog(_ context.Context, f index.File) ([]index.Package, error) {
	data, err := langutil.ReadAll(f.Reader, maxSize, f.Size)
	if err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		// Other tools use the same suffix (WordPress lists a script's
		// dependencies as a JSON array): not a .NET file.
		return nil, nil
	}
	var d depsFile
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("deps.json: %w", err)
	}
	pkgs := make([]index.Package, 0, len(d.Libraries))
	for key, lib := range d.Libraries {
		if lib.Type != "package" {
			continue
		}
		i := strings.LastIndexByte(key, '/')
		if i <= 0 || i == len(key)-1 {
			continue
		}
		name, version := key[:i], key[i+1:]
		pkgs = append(pkgs, index.Package{
			Type:      index.TypeDotnet,
			Ecosystem: "NuGet",
			Name:      name,
			Version:   version,
			PURL:      langutil.PURL("nuget", "", name, version),
			Path:      f.Path,
		})
	}
	return pkgs, nil
}
