package source

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydockhq/drydock/internal/index"
)

// maxManifestSize bounds a manifest, index or image config read into
// memory.
const maxManifestSize = 4 << 20

// maxDepth bounds nested indexes.
const maxDepth = 4

// refNameAnnotation is the OCI annotation that tags a manifest in a
// layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// BlobFunc opens a blob by digest ("sha256:..."). Drydock's blob store,
// an OCI layout directory and an OCI archive all reduce to one.
type BlobFunc func(ctx context.Context, digest string) (io.ReadCloser, error)

// graph walks a manifest graph: indexes down to platform images.
type graph struct {
	name string
	// manifest returns a manifest or index by digest (verified here).
	manifest func(ctx context.Context, digest string) ([]byte, error)
	// blob opens a layer or config blob.
	blob BlobFunc
	// platform, when set, keeps only matching images.
	platform *v1.Platform
}

// manifestFromBlobs reads manifests as blobs, as layouts and the blob
// store hold them.
func manifestFromBlobs(blob BlobFunc) func(ctx context.Context, digest string) ([]byte, error) {
	return func(ctx context.Context, digest string) ([]byte, error) {
		rc, err := blob(ctx, digest)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return readLimited(rc, maxManifestSize)
	}
}

func readLimited(r io.Reader, n int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > n {
		return nil, fmt.Errorf("larger than %d bytes", n)
	}
	return b, nil
}

func verify(digest string, b []byte) error {
	alg, want, ok := strings.Cut(digest, ":")
	if !ok || alg != "sha256" {
		return fmt.Errorf("unsupported digest %q", digest)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != want {
		return fmt.Errorf("content of %s does not match its digest", digest)
	}
	return nil
}

// sniffMediaType reads the mediaType a manifest declares about itself, for
// descriptors that do not say (or say something generic).
func sniffMediaType(b []byte) types.MediaType {
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
		Layers    json.RawMessage `json:"layers"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return ""
	}
	switch {
	case probe.MediaType != "":
		return types.MediaType(probe.MediaType)
	case probe.Manifests != nil:
		return types.OCIImageIndex
	case probe.Layers != nil:
		return types.OCIManifestSchema1
	}
	return ""
}

// images expands the descriptor d into its platform images.
func (g *graph) images(ctx context.Context, d v1.Descriptor, depth int) ([]*index.Image, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: indexes nested deeper than %d", g.name, maxDepth)
	}
	raw, err := g.manifest(ctx, d.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("%s: read manifest %s: %w", g.name, d.Digest, err)
	}
	if err := verify(d.Digest.String(), raw); err != nil {
		return nil, fmt.Errorf("%s: %w", g.name, err)
	}
	mt := d.MediaType
	if !mt.IsIndex() && !mt.IsImage() {
		mt = sniffMediaType(raw)
	}
	switch {
	case mt.IsIndex():
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: parse index %s: %w", g.name, d.Digest, err)
		}
		var out []*index.Image
		var seen []string
		for _, child := range idx.Manifests {
			if child.Platform != nil && child.Platform.OS == "unknown" {
				continue // build attestations, not images
			}
			if child.MediaType.IsImage() && child.Platform != nil {
				seen = append(seen, child.Platform.String())
				if g.platform != nil && !child.Platform.Satisfies(*g.platform) {
					continue
				}
			}
			imgs, err := g.images(ctx, child, depth+1)
			if errors.Is(err, errNotImage) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, imgs...)
		}
		if len(out) == 0 && g.platform != nil {
			sort.Strings(seen)
			return nil, fmt.Errorf("%s: no image for platform %s (the index has: %s)", g.name, g.platform, strings.Join(seen, ", "))
		}
		return out, nil
	case mt.IsImage() || mt == types.OCIManifestSchema1:
		return g.image(ctx, d, raw)
	case mt == types.DockerManifestSchema1 || mt == types.DockerManifestSchema1Signed:
		return nil, fmt.Errorf("%s: %s is a Docker schema 1 manifest, which is not supported", g.name, d.Digest)
	}
	return nil, fmt.Errorf("%w: %s has media type %q", errNotImage, d.Digest, mt)
}

var errNotImage = errors.New("not a container image")

// image turns one image manifest into an index.Image.
func (g *graph) image(ctx context.Context, d v1.Descriptor, raw []byte) ([]*index.Image, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: parse manifest %s: %w", g.name, d.Digest, err)
	}
	if !m.Config.MediaType.IsConfig() && m.Config.MediaType != "" {
		return nil, fmt.Errorf("%w: %s is an artifact (config %s)", errNotImage, d.Digest, m.Config.MediaType)
	}
	plat := d.Platform
	if plat == nil {
		if cfg, err := g.config(ctx, m.Config.Digest.String()); err == nil {
			p := cfg.Platform()
			plat = p
		}
	}
	if g.platform != nil && (plat == nil || !plat.Satisfies(*g.platform)) {
		have := "unknown"
		if plat != nil {
			have = plat.String()
		}
		return nil, fmt.Errorf("%s: the image is for %s, not %s", g.name, have, g.platform)
	}
	img := &index.Image{Name: g.name, Digest: d.Digest.String()}
	if plat != nil {
		img.Platform = plat.String()
	}
	for _, l := range m.Layers {
		if !isLayer(l.MediaType) {
			continue
		}
		digest := l.Digest.String()
		img.Layers = append(img.Layers, index.Layer{
			Digest:    digest,
			MediaType: string(l.MediaType),
			Size:      l.Size,
			Open:      func(ctx context.Context) (io.ReadCloser, error) { return g.blob(ctx, digest) },
		})
	}
	return []*index.Image{img}, nil
}

func (g *graph) config(ctx context.Context, digest string) (*v1.ConfigFile, error) {
	rc, err := g.blob(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := readLimited(rc, maxManifestSize)
	if err != nil {
		return nil, err
	}
	return v1.ParseConfigFile(bytes.NewReader(b))
}

// isLayer reports whether a manifest layer is a filesystem layer (not an
// artifact blob attached to an image manifest).
func isLayer(mt types.MediaType) bool {
	if mt == "" {
		return true
	}
	s := string(mt)
	return mt.IsLayer() || strings.Contains(s, ".layer.") || strings.Contains(s, "rootfs")
}
