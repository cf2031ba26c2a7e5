// Package apk reads the packages installed by apk-tools (Alpine, Wolfi,
// Chainguard) from /lib/apk/db/installed.
package apk

import (
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/stanza"
)

// dbPaths are where apk-tools keeps its installed database (apk-tools 3
// moved it under /usr).
var dbPaths = map[string]bool{
	"lib/apk/db/installed":     true,
	"usr/lib/apk/db/installed": true,
}

// maxLine bounds one line of the database.
const maxLine = 1 << 20

// Cataloger reads apk installed databases.
type Cataloger struct{}

// New returns the apk cataloger.
func New() Cataloger { return Cataloger{} }

// Name implements index.Cataloger.
func (Cataloger) Name() string { return "apk" }

// Version implements index.Cataloger.
func (Cataloger) Version() int { return 1 }

// MaxSize implements index.Cataloger.
func (Cataloger) MaxSize() int64 { return 64 << 20 }

// Wants implements index.Cataloger.
func (Cataloger) Wants(p string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && dbPaths[p]
}

// Catalog implements index.Cataloger.
func (Cataloger) Catalog(ctx context.Context, f index.File) ([]index.Package, error) {
	entries, err := Parse(f.Reader)
	if err != nil {
		return nil, fmt.Errorf("apk database %s: %w", f.Path, err)
	}
	pkgs := make([]index.Package, 0, len(entries))
	for _, e := range entries {
		p := index.Package{
			Type:          index.TypeApk,
			Name:          e.Name,
			Version:       e.Version,
			SourceName:    e.Origin,
			SourceVersion: e.Version,
			Arch:          e.Arch,
			Path:          f.Path,
		}
		if e.License != "" {
			p.Licenses = []string{e.License}
		}
		if e.Commit != "" {
			p.Metadata = map[string]string{"commit": e.Commit}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// Entry is one package record of the apk database.
type Entry struct {
	Name    string // P:
	Version string // V:
	Arch    string // A:
	Origin  string // o: the source package (aport) it was built from
	License string // L:
	Commit  string // c: the aports commit
}

// Parse reads an apk installed database: records of "X:value" lines, one
// letter per field, separated by blank lines. A package without an origin
// is its own origin.
func Parse(r io.Reader) ([]Entry, error) {
	var (
		out []Entry
		cur Entry
	)
	field := func(n int, b []byte) error {
		if len(b) < 2 || b[1] != ':' {
			return fmt.Errorf("line %d: not a field: %.60q", n, b)
		}
		v := string(b[2:])
		switch b[0] {
		case 'P':
			cur.Name = v
		case 'V':
			cur.Version = v
		case 'A':
			cur.Arch = v
		case 'o':
			cur.Origin = v
		case 'L':
			cur.License = v
		case 'c':
			cur.Commit = v
		}
		return nil
	}
	end := func() error {
		if cur.Name == "" || cur.Version == "" {
			return fmt.Errorf("record %d has no P: or V: line", len(out)+1)
		}
		if cur.Origin == "" {
			cur.Origin = cur.Name
		}
		out = append(out, cur)
		cur = Entry{}
		return nil
	}
	err := stanza.Read(r, maxLine, field, end)
	return out, err
}
