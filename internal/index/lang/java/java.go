// Package java catalogs Java archives (jar, war, ear and the Jenkins plugin
// forms hpi and jpi), including archives nested in them (Spring Boot's
// BOOT-INF/lib, WEB-INF/lib, an ear's modules) and shaded archives that
// carry the Maven metadata of several artifacts.
//
// Each archive is identified, in this order, by its
// META-INF/maven/GROUP/ARTIFACT/pom.properties files (one package each: the
// only source of a groupId that is certain), else by its MANIFEST.MF, else by
// its file name (name-version.jar). A package whose groupId is not known is
// reported under its artifactId alone and marked with the metadata
// groupId=unknown: matching needs "groupId:artifactId", and a guessed group
// would match the wrong advisories.
package java

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/internal/langutil"
)

// Limits. An archive needs random access (its directory is at its end), so
// the outermost one is read into memory; nested archives stored without
// compression are used in place, compressed ones are inflated into memory.
const (
	// maxArchive bounds an archive read from the layer. Spring Boot and
	// shaded application jars reach about 100 MiB.
	maxArchive = 128 << 20
	// maxNested bounds one nested archive once inflated.
	maxNested = 64 << 20
	// maxInflated bounds everything inflated from one outer archive
	// (nested archives and metadata files together): a decompression bomb
	// stops here.
	maxInflated = 256 << 20
	// maxDepth bounds nesting: an ear holding a war holding a jar is
	// depth 2.
	maxDepth = 3
	// maxEntries bounds the entries of one archive, checked before the
	// central directory is loaded (each entry costs about 200 bytes of
	// memory once loaded).
	maxEntries = 200_000
	// maxMetaFile bounds a pom.properties or MANIFEST.MF.
	maxMetaFile = 1 << 20
)

// Cataloger finds Java packages. The zero value is ready to use.
type Cataloger struct{}

// New returns a Java cataloger.
func New() *Cataloger { return &Cataloger{} }

// Name implements index.Cataloger.
func (*Cataloger) Name() string { return "java" }

// Version implements index.Cataloger.
func (*Cataloger) Version() int { return 1 }

// MaxSize implements index.Cataloger.
func (*Cataloger) MaxSize() int64 { return maxArchive }

// Wants implements index.Cataloger.
func (*Cataloger) Wants(p string, mode fs.FileMode, size int64) bool {
	return mode.IsRegular() && size >= 22 && isArchiveName(p)
}

// isArchiveName reports whether a file name has a Java archive extension.
func isArchiveName(p string) bool {
	i := strings.LastIndexByte(p, '.')
	if i < 0 || len(p)-i != 4 {
		return false
	}
	switch strings.ToLower(p[i+1:]) {
	case "jar", "war", "ear", "hpi", "jpi":
		return true
	}
	return false
}

// ErrBomb reports an archive whose entries would inflate past the limits.
var ErrBomb = errors.New("archive inflates past the size limits")

// Catalog implements index.Cataloger. Packages found before a nested
// archive was refused are returned with the error.
func (*Cataloger) Catalog(ctx context.Context, f index.File) ([]index.Package, error) {
	data, err := langutil.ReadAll(f.Reader, maxArchive, f.Size)
	if err != nil {
		return nil, err
	}
	w := &walker{ctx: ctx, budget: maxInflated}
	err = w.archive(data, f.Path, 0)
	return w.pkgs, errors.Join(append([]error{err}, w.errs...)...)
}

// walker catalogs one outer archive and those nested in it.
type walker struct {
	ctx    context.Context
	budget int64 // bytes that may still be inflated
	pkgs   []index.Package
	errs   []error // problems with nested archives, reported with the result
}

// archive catalogs the archive held in data, named p.
func (w *walker) archive(data []byte, p string, depth int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	n, err := entryCount(data)
	if err != nil {
		return err
	}
	if n > maxEntries {
		return fmt.Errorf("%d entries, more than the limit of %d", n, maxEntries)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// Names with ".." are harmless here: nothing is extracted.
		return fmt.Errorf("reading archive: %w", err)
	}
	var (
		poms     []pomProperties
		manifest map[string]string
		nested   []*zip.File
	)
	for _, zf := range zr.File {
		name := zf.Name
		switch {
		case strings.HasPrefix(name, "META-INF/maven/") && strings.HasSuffix(name, "/pom.properties"):
			b, err := w.readMeta(zf)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if pp := parsePomProperties(b); pp.valid() {
				pp.path = name
				poms = append(poms, pp)
			}
		case strings.EqualFold(name, "META-INF/MANIFEST.MF"):
			b, err := w.readMeta(zf)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			manifest = parseManifest(b)
		case isArchiveName(name) && !zf.FileInfo().IsDir():
			nested = append(nested, zf)
		}
	}
	if len(poms) > 0 {
		for _, pp := range poms {
			w.pkgs = append(w.pkgs, mavenPackage(pp.groupID, pp.artifactID, pp.version, p, "pom.properties"))
		}
	} else if pkg, ok := fallback(p, manifest); ok {
		w.pkgs = append(w.pkgs, pkg)
	}
	for _, zf := range nested {
		np := p + "!/" + zf.Name
		if depth+1 > maxDepth {
			w.errs = append(w.errs, fmt.Errorf("%s: nested deeper than %d archives; skipped", np, maxDepth))
			continue
		}
		b, err := w.nestedData(data, zf)
		if err == nil {
			err = w.archive(b, np, depth+1)
		}
		if err != nil {
			if w.ctx.Err() != nil {
				return w.ctx.Err()
			}
			w.errs = append(w.errs, fmt.Errorf("%s: %w", np, err))
		}
	}
	return nil
}

// readMeta reads a small metadata member, charging it to the budget.
func (w *walker) readMeta(zf *zip.File) ([]byte, error) {
	if zf.UncompressedSize64 > maxMetaFile {
		return nil, fmt.Errorf("%d bytes: %w", zf.UncompressedSize64, langutil.ErrTooBig)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := langutil.ReadAll(rc, maxMetaFile, int64(zf.UncompressedSize64))
	w.budget -= int64(len(b))
	return b, err
}

// nestedData returns the bytes of a nested archive: a slice of the outer
// archive when it is stored, else its inflated copy, within the limits.
func (w *walker) nestedData(outer []byte, zf *zip.File) ([]byte, error) {
	if zf.Method == zip.Store {
		off, err := zf.DataOffset()
		if err != nil {
			return nil, err
		}
		size := int64(zf.CompressedSize64)
		if off < 0 || size < 0 || off+size > int64(len(outer)) || zf.UncompressedSize64 != zf.CompressedSize64 {
			return nil, errors.New("stored entry overruns its archive")
		}
		return outer[off : off+size], nil
	}
	limit := min(int64(maxNested), w.budget)
	if zf.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%d bytes inflated: %w", zf.UncompressedSize64, ErrBomb)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// The declared size may lie: the read is bounded by the limit, not by
	// the header.
	b, err := langutil.ReadAll(rc, limit, int64(zf.UncompressedSize64))
	if errors.Is(err, langutil.ErrTooBig) {
		return nil, fmt.Errorf("%w (%v)", ErrBomb, err)
	}
	if err != nil {
		return nil, err
	}
	w.budget -= int64(len(b))
	return b, nil
}

// mavenPackage makes a Maven package. An empty groupID means unknown.
func mavenPackage(groupID, artifactID, version, p, source string) index.Package {
	pkg := index.Package{
		Type:      index.TypeJava,
		Ecosystem: "Maven",
		Name:      artifactID,
		Version:   version,
		PURL:      langutil.PURL("maven", groupID, artifactID, version),
		Path:      p,
		Metadata:  map[string]string{"source": source},
	}
	if groupID != "" {
		pkg.Name = groupID + ":" + artifactID
	} else {
		pkg.Metadata["groupId"] = "unknown"
	}
	return pkg
}

// fallback identifies an archive without Maven metadata from its manifest
// and its file name.
func fallback(p string, manifest map[string]string) (index.Package, bool) {
	base := path.Base(p)
	stem := base[:len(base)-len(path.Ext(base))]
	artifact, version := splitNameVersion(stem)
	source := "filename"
	if v := first(manifest, "Implementation-Version", "Bundle-Version", "Specification-Version"); v != "" {
		if version == "" || version != v {
			source = "MANIFEST.MF"
		}
		if version == "" {
			version = v
		}
	}
	if artifact == "" {
		artifact = first(manifest, "Implementation-Title", "Bundle-Name")
		source = "MANIFEST.MF"
	}
	if artifact == "" || version == "" {
		return index.Package{}, false
	}
	// Maven's archiver writes the project's groupId as
	// Implementation-Vendor-Id; it is the only manifest field that names a
	// group rather than a vendor or a bundle.
	group := manifest["Implementation-Vendor-Id"]
	if strings.ContainsAny(group, " /:") {
		group = ""
	}
	pkg := mavenPackage(group, artifact, version, p, source)
	if group != "" {
		pkg.Metadata["groupIdSource"] = "MANIFEST.MF Implementation-Vendor-Id"
	}
	return pkg, true
}

func first(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(m[k]); v != "" {
			return v
		}
	}
	return ""
}

// splitNameVersion splits a file name stem such as "log4j-core-2.19.0" or
// "netty-codec-4.1.100.Final" at the first '-' followed by a digit.
func splitNameVersion(stem string) (name, version string) {
	for i := 1; i+1 < len(stem); i++ {
		if stem[i] == '-' && stem[i+1] >= '0' && stem[i+1] <= '9' {
			return stem[:i], stem[i+1:]
		}
	}
	return stem, ""
}
