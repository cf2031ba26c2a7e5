package source

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/drydockhq/drydock/internal/index"
)

// tarArchive reads members of a tar file in place. An uncompressed
// archive is scanned once for member offsets and then read at random;
// a compressed one is streamed again from the start for each member
// (nothing is extracted to disk).
type tarArchive struct {
	path string

	once    sync.Once
	err     error
	members map[string]member // by cleaned name; nil when compressed
}

type member struct {
	offset, size int64
	link         string // hard or symbolic link target, cleaned
}

// openArchiveFile opens the archive, decompressing it when needed, and
// reports whether it was compressed.
func openArchiveFile(p string) (io.ReadCloser, bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, false, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, true, fmt.Errorf("%s: %w", p, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, true, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			f.Close()
			return nil, true, fmt.Errorf("%s: %w", p, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, true, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, false, err
	}
	return f, false, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

func cleanMember(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

// scan indexes the members of an uncompressed archive.
func (a *tarArchive) scan() {
	rc, compressed, err := openArchiveFile(a.path)
	if err != nil {
		a.err = err
		return
	}
	defer rc.Close()
	if compressed {
		return
	}
	f := rc.(*os.File)
	a.members = map[string]member{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			a.err = fmt.Errorf("%s: %w", a.path, err)
			return
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			a.err = err
			return
		}
		m := member{offset: off, size: h.Size}
		switch h.Typeflag {
		case tar.TypeLink:
			m.link = cleanMember(h.Linkname)
		case tar.TypeSymlink:
			m.link = cleanMember(path.Join(path.Dir(cleanMember(h.Name)), h.Linkname))
		}
		a.members[cleanMember(h.Name)] = m
	}
}

// Open returns the content of one member.
func (a *tarArchive) Open(name string) (io.ReadCloser, error) {
	a.once.Do(a.scan)
	if a.err != nil {
		return nil, a.err
	}
	name = cleanMember(name)
	if a.members != nil {
		for hops := 0; hops < 16; hops++ {
			m, ok := a.members[name]
			if !ok {
				return nil, fmt.Errorf("%s: %s: %w", a.path, name, fs.ErrNotExist)
			}
			if m.link != "" {
				name = m.link
				continue
			}
			f, err := os.Open(a.path)
			if err != nil {
				return nil, err
			}
			return readCloser{io.NewSectionReader(f, m.offset, m.size), f.Close}, nil
		}
		return nil, fmt.Errorf("%s: %s: too many links", a.path, name)
	}
	return a.stream(name, 0)
}

// stream finds a member by reading a compressed archive from the start.
func (a *tarArchive) stream(name string, hops int) (io.ReadCloser, error) {
	if hops > 16 {
		return nil, fmt.Errorf("%s: %s: too many links", a.path, name)
	}
	rc, _, err := openArchiveFile(a.path)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			rc.Close()
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: %s: %w", a.path, name, fs.ErrNotExist)
			}
			return nil, fmt.Errorf("%s: %w", a.path, err)
		}
		if cleanMember(h.Name) != name {
			continue
		}
		switch h.Typeflag {
		case tar.TypeLink:
			rc.Close()
			return a.stream(cleanMember(h.Linkname), hops+1)
		case tar.TypeSymlink:
			rc.Close()
			return a.stream(cleanMember(path.Join(path.Dir(name), h.Linkname)), hops+1)
		}
		return readCloser{io.LimitReader(tr, h.Size), rc.Close}, nil
	}
}

// ociArchive reads a tar of an OCI image layout.
func ociArchive(ctx context.Context, t Target, plat *v1.Platform) ([]*index.Image, error) {
	a := &tarArchive{path: t.Path}
	open := func(_ context.Context, digest string) (io.ReadCloser, error) {
		if digest == "index.json" {
			return a.Open("index.json")
		}
		alg, hexPart, ok := strings.Cut(digest, ":")
		if !ok || !safeComponent(alg) || !safeComponent(hexPart) {
			return nil, fmt.Errorf("invalid digest %q", digest)
		}
		return a.Open("blobs/" + alg + "/" + hexPart)
	}
	if rc, err := a.Open("oci-layout"); err != nil {
		return nil, fmt.Errorf("%s is not an OCI archive: %w", t.Path, err)
	} else {
		rc.Close()
	}
	g := &graph{name: t.String(), manifest: manifestFromBlobs(open), blob: open, platform: plat}
	return layoutIndex(ctx, g, t)
}

// dockerArchive reads a `docker save` tarball through go-containerregistry.
// Layers are keyed and verified by their uncompressed digest (the diff ID
// in the image config), which such archives store directly.
func dockerArchive(_ context.Context, t Target, plat *v1.Platform) ([]*index.Image, error) {
	opener := func() (io.ReadCloser, error) {
		rc, _, err := openArchiveFile(t.Path)
		return rc, err
	}
	manifest, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("%s: read manifest.json: %w", t.Path, err)
	}
	var tag *name.Tag
	if t.Tag != "" {
		tg, err := name.NewTag(t.Tag)
		if err != nil {
			return nil, fmt.Errorf("%s: tag %q: %w", t.Path, t.Tag, err)
		}
		tag = &tg
	} else if len(manifest) != 1 {
		var tags []string
		for _, d := range manifest {
			if len(d.RepoTags) == 0 {
				tags = append(tags, "(untagged "+d.Config+")")
			}
			tags = append(tags, d.RepoTags...)
		}
		return nil, fmt.Errorf("%s holds %d images; choose one with docker-archive:FILE:REPO:TAG: %s",
			t.Path, len(manifest), strings.Join(tags, ", "))
	}
	// tarball.Image scans the archive for each member it reads; over an
	// uncompressed file that scan seeks past member data.
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Path, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: image config: %w", t.Path, err)
	}
	if p := cfg.Platform(); plat != nil && (p == nil || !p.Satisfies(*plat)) {
		return nil, fmt.Errorf("%s: the image is for %v, not %s", t.Path, p, plat)
	}
	// A docker archive has no manifest (the one go-containerregistry
	// would synthesise needs every layer compressed to compute): the image
	// is named by its ID, the config digest.
	id, err := img.ConfigName()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t.Path, err)
	}
	out := &index.Image{Name: t.String(), Digest: id.String()}
	if p := cfg.Platform(); p != nil {
		out.Platform = p.String()
	}
	for _, diffID := range cfg.RootFS.DiffIDs {
		l, err := img.LayerByDiffID(diffID)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", t.Path, diffID, err)
		}
		out.Layers = append(out.Layers, index.Layer{
			Digest: diffID.String(),
			Open:   func(context.Context) (io.ReadCloser, error) { return l.Uncompressed() },
		})
	}
	return []*index.Image{out}, nil
}
