// Package rpm reads the packages installed by rpm (RHEL, UBI, CentOS,
// Rocky, AlmaLinux, Oracle Linux, Fedora, Amazon Linux, SUSE, Photon,
// Azure Linux) from its database in any of its three on-disk formats:
// Berkeley DB (Packages), NDB (Packages.db) and SQLite (rpmdb.sqlite).
package rpm

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
)

// dbPaths are where rpm keeps its database: /var/lib/rpm, and
// /usr/lib/sysimage/rpm on SUSE and Fedora 36 and later.
var dbPaths = map[string]bool{
	"var/lib/rpm/Packages":              true,
	"var/lib/rpm/Packages.db":           true,
	"var/lib/rpm/rpmdb.sqlite":          true,
	"usr/lib/sysimage/rpm/Packages":     true,
	"usr/lib/sysimage/rpm/Packages.db":  true,
	"usr/lib/sysimage/rpm/rpmdb.sqlite": true,
}

// Cataloger reads rpm databases.
type Cataloger struct{}

// New returns the rpm cataloger.
func New() Cataloger { return Cataloger{} }

// Name implements index.Cataloger.
func (Cataloger) Name() string { return "rpm" }

// Version implements index.Cataloger.
func (Cataloger) Version() int { return 1 }

// MaxSize implements index.Cataloger. The database is read whole (all
// three formats need random access): a UBI image's is 5-30 MiB, a full
// Fedora's about 100 MiB.
func (Cataloger) MaxSize() int64 { return 256 << 20 }

// Wants implements index.Cataloger.
func (Cataloger) Wants(p string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && dbPaths[p]
}

// Catalog implements index.Cataloger.
func (Cataloger) Catalog(ctx context.Context, f index.File) ([]index.Package, error) {
	db, err := io.ReadAll(f.Reader)
	if err != nil {
		return nil, err
	}
	pkgs, err := Read(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("rpm database %s: %w", f.Path, err)
	}
	for i := range pkgs {
		pkgs[i].Path = f.Path
	}
	return pkgs, nil
}

// Read returns the installed packages of an rpm database held in memory.
// The gpg-pubkey entries rpm keeps for imported signing keys are not
// packages and are left out.
func Read(ctx context.Context, db []byte) ([]index.Package, error) {
	blobs, format, err := Blobs(ctx, db)
	if err != nil {
		return nil, err
	}
	pkgs := make([]index.Package, 0, len(blobs))
	for i, b := range blobs {
		h, err := ParseHeader(b)
		if err != nil {
			return nil, fmt.Errorf("%s database, header %d: %w", format, i+1, err)
		}
		if h.Name == "gpg-pubkey" {
			continue
		}
		pkgs = append(pkgs, h.Package())
	}
	return pkgs, nil
}

// Package converts a header to an index.Package. Version is the full
// comparable EVR ("1:2.3-4.el9", no epoch part when the package has
// none); SourceName and SourceVersion come from the source RPM's file
// name, with the binary's epoch.
func (h *Header) Package() index.Package {
	p := index.Package{
		Type:       index.TypeRPM,
		Name:       h.Name,
		Version:    evr(h.Epoch, h.Version, h.Release),
		Epoch:      h.Epoch,
		Release:    h.Release,
		Arch:       h.Arch,
		Modularity: h.Modularity,
	}
	if h.License != "" {
		p.Licenses = []string{h.License}
	}
	md := map[string]string{}
	if h.SourceRPM != "" {
		md["sourcerpm"] = h.SourceRPM
		if n, v, r, ok := splitSourceRPM(h.SourceRPM); ok {
			p.SourceName = n
			p.SourceVersion = evr(h.Epoch, v, r)
		}
	}
	if h.Vendor != "" {
		md["vendor"] = h.Vendor
	}
	if len(md) > 0 {
		p.Metadata = md
	}
	return p
}

func evr(epoch *int, version, release string) string {
	s := version
	if release != "" {
		s += "-" + release
	}
	if epoch != nil {
		s = strconv.Itoa(*epoch) + ":" + s
	}
	return s
}

// splitSourceRPM splits "util-linux-2.32.1-42.el8_8.src.rpm" into name,
// version and release (the name may contain dashes; version and release
// may not).
func splitSourceRPM(s string) (name, version, release string, ok bool) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, ".rpm"), ".src")
	s = strings.TrimSuffix(s, ".nosrc")
	r := strings.LastIndexByte(s, '-')
	if r <= 0 {
		return "", "", "", false
	}
	v := strings.LastIndexByte(s[:r], '-')
	if v <= 0 {
		return "", "", "", false
	}
	return s[:v], s[v+1 : r], s[r+1:], true
}
