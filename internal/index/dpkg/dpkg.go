// Package dpkg reads the packages installed by dpkg (Debian, Ubuntu and
// distroless images) from /var/lib/dpkg/status and from the one-file-per-
// package /var/lib/dpkg/status.d/ directory distroless images use.
package dpkg

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/stanza"
)

const (
	statusFile = "var/lib/dpkg/status"
	statusDir  = "var/lib/dpkg/status.d/"
	// maxLine bounds one line of the database (long Depends, Conffiles).
	maxLine = 1 << 20
)

// Cataloger reads dpkg status databases.
type Cataloger struct{}

// New returns the dpkg cataloger.
func New() Cataloger { return Cataloger{} }

// Name implements index.Cataloger.
func (Cataloger) Name() string { return "dpkg" }

// Version implements index.Cataloger.
func (Cataloger) Version() int { return 1 }

// MaxSize implements index.Cataloger: the status file of a large image is
// a few MiB.
func (Cataloger) MaxSize() int64 { return 64 << 20 }

// Wants implements index.Cataloger.
func (Cataloger) Wants(p string, mode fs.FileMode, _ int64) bool {
	if !mode.IsRegular() {
		return false
	}
	if p == statusFile {
		return true
	}
	if rest, ok := strings.CutPrefix(p, statusDir); ok {
		// status.d holds NAME and NAME.md5sums files.
		return rest != "" && !strings.Contains(rest, "/") && !strings.HasSuffix(rest, ".md5sums")
	}
	return false
}

// Catalog implements index.Cataloger.
func (Cataloger) Catalog(ctx context.Context, f index.File) ([]index.Package, error) {
	entries, err := Parse(f.Reader)
	if err != nil {
		return nil, fmt.Errorf("dpkg database %s: %w", f.Path, err)
	}
	pkgs := make([]index.Package, 0, len(entries))
	for _, e := range entries {
		if !e.Installed() {
			continue
		}
		pkgs = append(pkgs, e.Package(f.Path))
	}
	return pkgs, nil
}

// Entry is one stanza of a dpkg database, with the fields Drydock uses.
type Entry struct {
	Name          string
	Status        string
	Version       string
	Architecture  string
	SourceName    string
	SourceVersion string
	Maintainer    string
}

// Installed reports whether the package's files are on disk: its status
// is neither "not-installed" nor "config-files" (removed, configuration
// kept).
func (e Entry) Installed() bool {
	f := strings.Fields(e.Status)
	if len(f) != 3 {
		return false
	}
	switch f[2] {
	case "installed", "half-configured", "unpacked", "half-installed", "triggers-awaited", "triggers-pending":
		return true
	}
	return false
}

// Package converts the entry to an index.Package declared by path.
func (e Entry) Package(path string) index.Package {
	p := index.Package{
		Type:          index.TypeDpkg,
		Name:          e.Name,
		Version:       e.Version,
		SourceName:    e.SourceName,
		SourceVersion: e.SourceVersion,
		Arch:          e.Architecture,
		Path:          path,
	}
	if ep, _, ok := strings.Cut(e.Version, ":"); ok {
		if n, err := strconv.Atoi(ep); err == nil {
			p.Epoch = &n
		}
	}
	if e.Maintainer != "" {
		p.Metadata = map[string]string{"maintainer": e.Maintainer}
	}
	return p
}

// Parse reads a dpkg status database: stanzas of "Field: value" lines
// (continuation lines start with a space) separated by blank lines.
// Source defaults to the package itself; "Source: name (version)" gives
// the source version, which otherwise is the binary version.
func Parse(r io.Reader) ([]Entry, error) {
	var (
		out []Entry
		cur Entry
	)
	field := func(n int, b []byte) error {
		if b[0] == ' ' || b[0] == '\t' {
			return nil // continuation of a multi-line field we do not keep
		}
		k, v, ok := strings.Cut(string(b), ":")
		if !ok {
			return fmt.Errorf("line %d: not a field: %.60q", n, b)
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.Name = v
		case "Status":
			cur.Status = v
		case "Version":
			cur.Version = v
		case "Architecture":
			cur.Architecture = v
		case "Maintainer":
			cur.Maintainer = v
		case "Source":
			name, ver, hasVer := strings.Cut(v, " ")
			cur.SourceName = name
			if hasVer {
				ver = strings.TrimSpace(ver)
				if !strings.HasPrefix(ver, "(") || !strings.HasSuffix(ver, ")") {
					return fmt.Errorf("line %d: malformed Source field %.60q", n, v)
				}
				cur.SourceVersion = strings.TrimSpace(ver[1 : len(ver)-1])
			}
		}
		return nil
	}
	end := func() error {
		if cur.Name == "" {
			return fmt.Errorf("stanza %d has no Package field", len(out)+1)
		}
		if cur.SourceName == "" {
			cur.SourceName = cur.Name
		}
		if cur.SourceVersion == "" {
			cur.SourceVersion = cur.Version
		}
		out = append(out, cur)
		cur = Entry{}
		return nil
	}
	err := stanza.Read(r, maxLine, field, end)
	return out, err
}
