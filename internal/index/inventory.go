package index

import (
	"sort"
	"strconv"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/drydockhq/drydock/internal/index/osrel"
)

// Inventory is the package list of one image: its layers applied in order
// with whiteouts honoured, each package carrying the layer that
// introduced it in its current version and the file that declared it.
type Inventory struct {
	Name     string `json:"name"`
	Digest   string `json:"digest,omitempty"`
	Platform string `json:"platform,omitempty"`
	// OS is nil when the image has no operating system (scratch,
	// distroless static, busybox); OSNote then says so.
	OS       *osrel.Distro `json:"os,omitempty"`
	OSNote   string        `json:"os_note,omitempty"`
	Layers   []LayerStat   `json:"layers"`
	Packages []Package     `json:"packages"`
	// Catalogers is the cataloger set that produced the inventory.
	Catalogers string   `json:"catalogers"`
	Warnings   []string `json:"warnings,omitempty"`
}

// placed is one file of the merged filesystem and the layer it came from.
type placed struct {
	layer int
	file  FileResult
	// origin is, per package of file, the layer that introduced it.
	origin []int
}

// Assemble merges layer results, bottom layer first, into an inventory:
// a whiteout or opaque directory in a layer removes what lower layers had
// under it; a file in a layer replaces the same path below. A package
// that a replacing file declares again with the same identity keeps the
// layer that introduced it.
func Assemble(layers []*LayerResult) *Inventory {
	fsys := map[string]*placed{}
	for li, lr := range layers {
		// A layer that deletes a path and writes it again (an opaque
		// directory with new content) replaces it: what it declares again
		// unchanged keeps its origin.
		removed := map[string]*placed{}
		for _, dir := range lr.Opaque {
			removeUnder(fsys, removed, dir, false)
		}
		for _, p := range lr.Whiteouts {
			removeUnder(fsys, removed, p, true)
		}
		for _, f := range lr.Files {
			pl := &placed{layer: li, file: f, origin: make([]int, len(f.Packages))}
			prev := fsys[f.Path]
			if prev == nil {
				prev = removed[f.Path]
			}
			for i := range f.Packages {
				pl.origin[i] = li
				if prev == nil {
					continue
				}
				for j := range prev.file.Packages {
					if sameIdentity(&prev.file.Packages[j], &f.Packages[i]) {
						pl.origin[i] = prev.origin[j]
						break
					}
				}
			}
			fsys[f.Path] = pl
		}
		// A hard link to a lower layer's file declares what that file
		// declares, from the layer that introduced it.
		for link, target := range lr.Links {
			src, ok := fsys[target]
			if !ok {
				// The layer may delete the target beside linking to it.
				src, ok = removed[target]
			}
			if !ok || src.layer == li {
				continue
			}
			f := src.file
			f.Path = link
			f.Packages = append([]Package(nil), f.Packages...)
			for i := range f.Packages {
				if f.Packages[i].Path == target {
					f.Packages[i].Path = link
				}
			}
			fsys[link] = &placed{layer: src.layer, file: f, origin: src.origin}
		}
	}

	files := osrel.Files{Content: map[string][]byte{}, Present: map[string]bool{}}
	for p, pl := range fsys {
		if pl.file.Content != nil {
			files.Content[p] = pl.file.Content
		}
		if pl.file.Marker {
			files.Present[p] = true
		}
	}
	distro, note := osrel.Detect(files)
	inv := &Inventory{OS: distro, OSNote: note}

	for _, pl := range fsys {
		for i, p := range pl.file.Packages {
			if d := layers[pl.origin[i]].Digest; d != "" {
				p.Layer = d
			}
			if p.Type.IsOS() {
				setOSIdentity(&p, distro)
			}
			inv.Packages = append(inv.Packages, p)
		}
	}
	for _, lr := range layers {
		inv.Warnings = append(inv.Warnings, lr.Warnings...)
	}
	SortPackages(inv.Packages)
	if distro == nil {
		for _, p := range inv.Packages {
			if p.Type.IsOS() {
				inv.Warnings = append(inv.Warnings, "OS packages found but no OS release file: their ecosystem is unknown")
				break
			}
		}
	}
	return inv
}

// removeUnder deletes p (when self) and everything below it, keeping what
// it deleted in removed.
func removeUnder(fsys, removed map[string]*placed, p string, self bool) {
	p = cleanRel(p)
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for k := range fsys {
		if (self && k == p) || strings.HasPrefix(k, prefix) {
			removed[k] = fsys[k]
			delete(fsys, k)
		}
	}
}

// sameIdentity reports whether two declarations name the same package
// version.
func sameIdentity(a, b *Package) bool {
	return a.Type == b.Type && a.Name == b.Name && a.Version == b.Version && a.Arch == b.Arch &&
		a.Release == b.Release && a.SourceName == b.SourceName
}

// SortPackages orders packages by type, name, version and path, so
// inventories compare and print stably.
func SortPackages(ps []Package) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := &ps[i], &ps[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if a.Arch != b.Arch {
			return a.Arch < b.Arch
		}
		return a.Path < b.Path
	})
}

// setOSIdentity fills an OS package's ecosystem and purl from the
// detected distribution.
func setOSIdentity(p *Package, d *osrel.Distro) {
	if d != nil {
		p.Ecosystem = d.Ecosystem
	}
	p.PURL = OSPackageURL(p, d)
}

// OSPackageURL returns the purl of an OS package: pkg:deb/debian/NAME@VER,
// pkg:apk/alpine/NAME@VER, pkg:rpm/rhel/NAME@VER-REL with arch, epoch,
// the source package (upstream) and the distro qualifier.
func OSPackageURL(p *Package, d *osrel.Distro) string {
	var typ, ns string
	version := p.Version
	q := map[string]string{}
	switch p.Type {
	case TypeDpkg:
		typ, ns = packageurl.TypeDebian, "debian"
	case TypeApk:
		typ, ns = packageurl.TypeApk, "alpine"
	case TypeRPM:
		typ = packageurl.TypeRPM
		// The rpm purl carries the epoch as a qualifier.
		if _, rest, ok := strings.Cut(version, ":"); ok && p.Epoch != nil {
			version = rest
		}
		if p.Epoch != nil && *p.Epoch != 0 {
			q["epoch"] = strconv.Itoa(*p.Epoch)
		}
	default:
		return p.PURL
	}
	if d != nil {
		ns = d.PURLNamespace()
		q["distro"] = d.DistroQualifier()
	}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	if src := upstream(p); src != "" {
		q["upstream"] = src
	}
	return packageurl.NewPackageURL(typ, ns, p.Name, version, packageurl.QualifiersFromMap(q), "").ToString()
}

// upstream names the source package when it differs from the binary
// package ("util-linux@2.38.1-5" for bsdutils), so the binary-to-source
// mapping survives an SBOM exchange.
func upstream(p *Package) string {
	if p.SourceName == "" {
		return ""
	}
	if p.Type == TypeRPM {
		return p.Metadata["sourcerpm"] // the source RPM file name says it all
	}
	if p.SourceName == p.Name && (p.SourceVersion == "" || p.SourceVersion == p.Version) {
		return ""
	}
	if p.SourceVersion == "" || p.SourceVersion == p.Version {
		return p.SourceName
	}
	return p.SourceName + "@" + p.SourceVersion
}
