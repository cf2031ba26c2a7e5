// Package index finds the packages in container images: it streams each
// layer once, hands the files that catalogers ask for to them, caches each
// layer's result by digest, and assembles an image's inventory by applying
// its layers in order.
package index

import (
	"context"
	"io"
	"io/fs"
)

// Type is the kind of package database or artifact a package came from.
type Type string

// The package types Drydock knows.
const (
	TypeDpkg     Type = "dpkg"
	TypeApk      Type = "apk"
	TypeRPM      Type = "rpm"
	TypePython   Type = "python"
	TypeNPM      Type = "npm"
	TypeJava     Type = "java"
	TypeGoBinary Type = "gobinary"
	TypeGoMod    Type = "gomod"
	TypeDotnet   Type = "dotnet"
	TypeGem      Type = "gem"
	TypeCargo    Type = "cargo"
	TypeComposer Type = "composer"
)

// IsOS reports whether packages of this type are operating system packages
// (scanned by basic scanning) rather than language libraries.
func (t Type) IsOS() bool { return t == TypeDpkg || t == TypeApk || t == TypeRPM }

// Package is one installed package found in an image.
type Package struct {
	Type Type `json:"type"`
	// Ecosystem is the OSV ecosystem the package belongs to, with the
	// distribution release for OS packages once the OS is known
	// ("Debian:12", "Alpine:v3.18", "AlmaLinux:9", "PyPI", "npm", "Maven",
	// "Go", ...). Catalogers of OS packages leave it empty; inventory
	// assembly fills it from the detected OS.
	Ecosystem string `json:"ecosystem,omitempty"`
	// Name is the package name as its ecosystem spells it (Maven:
	// "groupId:artifactId"; Go: the module path, or "stdlib" for the
	// toolchain).
	Name    string `json:"name"`
	Version string `json:"version"`
	// SourceName and SourceVersion name the source package an OS binary
	// package was built from (dpkg Source, apk origin, source RPM); empty
	// when it is the package itself.
	SourceName    string `json:"source_name,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	// Epoch, Release and Arch are the RPM (and dpkg arch) parts, kept apart
	// as the database stores them; Version is the full comparable version
	// ("1:2.3-4.el9" for RPM, "1:2.3-4" for dpkg).
	Epoch   *int   `json:"epoch,omitempty"`
	Release string `json:"release,omitempty"`
	Arch    string `json:"arch,omitempty"`
	// Modularity is the RPM modularity label (name:stream:version:context).
	Modularity string   `json:"modularity,omitempty"`
	Licenses   []string `json:"licenses,omitempty"`
	// PURL is the package URL, with distro qualifiers for OS packages.
	PURL string `json:"purl"`
	// Layer is the digest of the layer that introduced the package in its
	// current version.
	Layer string `json:"layer,omitempty"`
	// Path is the file that declared the package, relative to the image
	// root without a leading slash ("var/lib/dpkg/status",
	// "usr/lib/node_modules/npm/package.json", "app/server" for a Go binary,
	// "opt/app.jar!/BOOT-INF/lib/x.jar" inside archives).
	Path string `json:"path"`
	// Metadata carries cataloger-specific facts that matching does not need.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// File is one file of a layer offered to a cataloger. Reader yields at most
// the cataloger's byte limit; the file is never written to disk.
type File struct {
	// Path is relative to the image root, slash-separated, cleaned, with no
	// leading slash and no ".." element.
	Path   string
	Mode   fs.FileMode
	Size   int64
	Reader io.Reader
}

// Cataloger recognises one kind of package database or artifact.
type Cataloger interface {
	// Name identifies the cataloger ("dpkg", "python", "java", ...).
	Name() string
	// Version changes whenever the cataloger's output for the same input
	// can change; cached layer results made by an older version are
	// re-indexed.
	Version() int
	// Wants reports whether the cataloger needs the file's content. It is
	// called for every regular file of every layer (mode carries no type
	// bits then) and must be cheap. It may also be called with mode 0 and
	// size 0 for a link or device at a path, to learn whether that entry
	// hides a wanted file of a lower layer.
	Wants(path string, mode fs.FileMode, size int64) bool
	// MaxSize is the largest file the cataloger reads; bigger files are
	// skipped with a warning.
	MaxSize() int64
	// Catalog reads one wanted file and returns the packages it declares.
	// An error means the file was corrupt; the indexer records a warning
	// and goes on with the rest of the layer.
	Catalog(ctx context.Context, f File) ([]Package, error)
}
