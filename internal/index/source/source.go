// Package source turns what a user names (an OCI layout, an archive, a
// registry reference, an image in Drydock's blob store) into the platform
// images the indexer reads, streaming their layers from where they are.
//
// Target syntax, after skopeo's transports:
//
//	oci:DIR[:TAG|@DIGEST]           an OCI image layout directory
//	oci-archive:FILE[:TAG|@DIGEST]  a tar (optionally gzip/zstd) of an OCI layout
//	docker-archive:FILE[:REPO:TAG]  a `docker save` tarball (optionally gzipped)
//	dir:PATH                        a root filesystem directory
//	registry:REF, docker://REF, REF an image in a registry
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydockhq/drydock/internal/index"
)

// Kind is the transport of a target.
type Kind string

// The target kinds.
const (
	KindOCI           Kind = "oci"
	KindOCIArchive    Kind = "oci-archive"
	KindDockerArchive Kind = "docker-archive"
	KindDir           Kind = "dir"
	KindRegistry      Kind = "registry"
)

// Target is a parsed target string.
type Target struct {
	Kind Kind
	// Path is the directory or file for local kinds; the reference for a
	// registry.
	Path string
	// Tag or Digest select an image inside a layout or archive.
	Tag    string
	Digest string
}

func (t Target) String() string {
	s := string(t.Kind) + ":" + t.Path
	if t.Tag != "" {
		s += ":" + t.Tag
	}
	if t.Digest != "" {
		s += "@" + t.Digest
	}
	return s
}

// Parse reads a target string (see the package documentation). Local
// paths may contain ':' only when no tag follows; "@sha256:" always starts
// a digest.
func Parse(s string) (Target, error) {
	if s == "" {
		return Target{}, errors.New("empty target")
	}
	kind, rest, ok := strings.Cut(s, ":")
	if ok {
		switch Kind(kind) {
		case KindOCI, KindOCIArchive, KindDockerArchive:
			t := Target{Kind: Kind(kind)}
			t.Path, t.Tag, t.Digest = splitLocal(rest, Kind(kind) == KindDockerArchive)
			if t.Path == "" {
				return Target{}, fmt.Errorf("%s: no path", s)
			}
			return t, nil
		case KindDir:
			if rest == "" {
				return Target{}, fmt.Errorf("%s: no path", s)
			}
			return Target{Kind: KindDir, Path: rest}, nil
		case KindRegistry:
			return Target{Kind: KindRegistry, Path: rest}, nil
		case "docker":
			return Target{Kind: KindRegistry, Path: strings.TrimPrefix(rest, "//")}, nil
		}
	}
	return Target{Kind: KindRegistry, Path: s}, nil
}

// splitLocal splits "PATH[:TAG][@DIGEST]". A ":suffix" is a tag only when
// PATH without it exists and PATH with it does not; for docker archives
// the tag is "repo:tag", so the split is at the first ':' after an
// existing file.
func splitLocal(s string, dockerRef bool) (p, tag, digest string) {
	if i := strings.LastIndex(s, "@sha256:"); i >= 0 {
		s, digest = s[:i], s[i+1:]
	}
	if exists(s) {
		return s, "", digest
	}
	if dockerRef {
		for i := 0; i < len(s); i++ {
			if s[i] == ':' && exists(s[:i]) {
				return s[:i], s[i+1:], digest
			}
		}
		return s, "", digest
	}
	if i := strings.LastIndex(s, ":"); i > 0 && exists(s[:i]) {
		return s[:i], s[i+1:], digest
	}
	return s, "", digest
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Options tune how targets are resolved.
type Options struct {
	// Platform ("linux/arm64", "linux/arm/v7") keeps one platform of a
	// multi-platform image; empty keeps all.
	Platform string
	// Keychain authenticates to registries; nil means the docker and
	// podman auth files (authn.DefaultKeychain).
	Keychain authn.Keychain
	// Transport, when set, is the HTTP transport for registries.
	Transport http.RoundTripper
	// Insecure allows plain HTTP to registries.
	Insecure bool
}

func (o Options) platform() (*v1.Platform, error) {
	if o.Platform == "" {
		return nil, nil
	}
	p, err := v1.ParsePlatform(o.Platform)
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", o.Platform, err)
	}
	return p, nil
}

// Images resolves an image target to its platform images. A directory
// target is not an image: index it with Indexer.IndexDir.
func Images(ctx context.Context, t Target, opts Options) ([]*index.Image, error) {
	plat, err := opts.platform()
	if err != nil {
		return nil, err
	}
	switch t.Kind {
	case KindOCI:
		return layoutDir(ctx, t, plat)
	case KindOCIArchive:
		return ociArchive(ctx, t, plat)
	case KindDockerArchive:
		return dockerArchive(ctx, t, plat)
	case KindRegistry:
		return registry(ctx, t, opts, plat)
	case KindDir:
		return nil, errors.New("a directory is indexed as a root filesystem, not as an image")
	}
	return nil, fmt.Errorf("unknown target kind %q", t.Kind)
}

// FromBlobs resolves the manifest (or index) with digest d among blobs,
// as Drydock's blob store holds them: the manifest itself is a blob.
func FromBlobs(ctx context.Context, name string, blobs BlobFunc, d string, opts Options) ([]*index.Image, error) {
	plat, err := opts.platform()
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(d)
	if err != nil {
		return nil, fmt.Errorf("manifest digest: %w", err)
	}
	g := &graph{name: name, manifest: manifestFromBlobs(blobs), blob: blobs, platform: plat}
	return g.images(ctx, v1.Descriptor{Digest: h}, 0)
}

// layoutIndex picks the descriptors a layout target names from its
// index.json: by tag, by digest, or the only image. Several images and no
// choice is an error that lists them.
func layoutIndex(ctx context.Context, g *graph, t Target) ([]*index.Image, error) {
	raw, err := g.manifest(ctx, "index.json")
	if err != nil {
		return nil, fmt.Errorf("%s: read index.json: %w", g.name, err)
	}
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("%s: parse index.json: %w", g.name, err)
	}
	var pick []v1.Descriptor
	switch {
	case t.Digest != "":
		for _, d := range idx.Manifests {
			if d.Digest.String() == t.Digest {
				pick = append(pick, d)
			}
		}
		if len(pick) == 0 {
			// Any manifest in the layout, even one index.json does not list.
			h, err := v1.NewHash(t.Digest)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", g.name, err)
			}
			pick = []v1.Descriptor{{Digest: h}}
		}
	case t.Tag != "":
		for _, d := range idx.Manifests {
			if refName(d) == t.Tag {
				pick = append(pick, d)
			}
		}
		if len(pick) == 0 {
			return nil, fmt.Errorf("%s: no image tagged %q; the layout holds: %s", g.name, t.Tag, describe(idx.Manifests))
		}
	default:
		pick = idx.Manifests
		if len(pick) == 0 {
			return nil, fmt.Errorf("%s: the layout holds no image", g.name)
		}
	}
	if len(pick) > 1 && !onePlatformSet(pick) {
		return nil, fmt.Errorf("%s holds %d images; choose one with %s:PATH:TAG or %s:PATH@DIGEST: %s",
			g.name, len(pick), t.Kind, t.Kind, describe(pick))
	}
	var out []*index.Image
	for _, d := range pick {
		if d.Platform != nil && g.platform != nil && !d.Platform.Satisfies(*g.platform) {
			continue
		}
		imgs, err := g.images(ctx, d, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, imgs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no image for platform %s: %s", g.name, g.platform, describe(pick))
	}
	return out, nil
}

func refName(d v1.Descriptor) string { return d.Annotations[refNameAnnotation] }

// onePlatformSet reports whether several index.json entries are the
// platforms of one image: all image manifests with a platform, sharing
// one tag (or none).
func onePlatformSet(ds []v1.Descriptor) bool {
	for _, d := range ds {
		if d.Platform == nil || !d.MediaType.IsImage() || refName(d) != refName(ds[0]) {
			return false
		}
	}
	return true
}

func describe(ds []v1.Descriptor) string {
	var parts []string
	for _, d := range ds {
		s := d.Digest.String()
		if r := refName(d); r != "" {
			s = r + " (" + s + ")"
		}
		if d.Platform != nil {
			s += " " + d.Platform.String()
		}
		if d.MediaType.IsIndex() {
			s += " [index]"
		}
		parts = append(parts, s)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// layoutDir reads an OCI image layout directory.
func layoutDir(ctx context.Context, t Target, plat *v1.Platform) ([]*index.Image, error) {
	root := t.Path
	if _, err := os.Stat(filepath.Join(root, "oci-layout")); err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout: %w", root, err)
	}
	open := func(_ context.Context, digest string) (io.ReadCloser, error) {
		if digest == "index.json" {
			return os.Open(filepath.Join(root, "index.json"))
		}
		alg, hexPart, ok := strings.Cut(digest, ":")
		if !ok || !safeComponent(alg) || !safeComponent(hexPart) {
			return nil, fmt.Errorf("invalid digest %q", digest)
		}
		return os.Open(filepath.Join(root, "blobs", alg, hexPart))
	}
	g := &graph{name: t.String(), manifest: manifestFromBlobs(open), blob: open, platform: plat}
	return layoutIndex(ctx, g, t)
}

// safeComponent accepts a digest part as a single file name.
func safeComponent(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// registry reads an image from a registry with the user's credentials.
func registry(ctx context.Context, t Target, opts Options, plat *v1.Platform) ([]*index.Image, error) {
	var nameOpts []name.Option
	if opts.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	ref, err := name.ParseReference(t.Path, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", t.Path, err)
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	repo := ref.Context()
	g := &graph{
		name:     ref.String(),
		platform: plat,
		manifest: func(ctx context.Context, d string) ([]byte, error) {
			if d == desc.Digest.String() {
				return desc.Manifest, nil
			}
			child, err := remote.Get(repo.Digest(d), append(ropts, remote.WithContext(ctx))...)
			if err != nil {
				return nil, err
			}
			return child.Manifest, nil
		},
		blob: func(ctx context.Context, d string) (io.ReadCloser, error) {
			l, err := remote.Layer(repo.Digest(d), append(ropts, remote.WithContext(ctx))...)
			if err != nil {
				return nil, err
			}
			return l.Compressed()
		},
	}
	return g.images(ctx, desc.Descriptor, 0)
}
