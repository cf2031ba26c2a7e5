package index

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/drydockhq/drydock/internal/index/osrel"
)

// Image is one platform image to index: its layers in order, bottom first.
// Sources (OCI layouts, archives, registries, the blob store) produce it.
type Image struct {
	// Name is the reference the user gave, for reports.
	Name string
	// Digest is the manifest digest ("" for a root filesystem directory).
	Digest string
	// Platform is "os/arch[/variant]" when known.
	Platform string
	Layers   []Layer
}

// Layer is one layer blob of an image.
type Layer struct {
	// Digest is the blob digest as the manifest lists it; the content read
	// through Open is verified against it.
	Digest    string
	MediaType string
	Size      int64
	// Open returns the blob as stored (compressed or not).
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// LayerCache stores layer results by (layer digest, cataloger set). Get
// reports found=false for a layer not indexed with this cataloger set.
type LayerCache interface {
	Get(ctx context.Context, digest, catalogers string) (res *LayerResult, found bool, err error)
	Put(ctx context.Context, digest, catalogers string, res *LayerResult) error
}

// Indexer finds the packages of images. Its fields are read-only once it
// is in use; one Indexer may index many images at once.
type Indexer struct {
	Catalogers []Cataloger
	// Cache, when not nil, keeps each layer's result so a layer is read
	// once whatever number of images share it.
	Cache LayerCache
	// Limits bound each layer; zero means DefaultLimits.
	Limits *Limits
	// Parallel is the number of layers read at once; zero means 2.
	Parallel int
	Log      *slog.Logger
}

// formatVersion changes when the indexer's own output for the same layer
// can change (walker, release files, LayerResult encoding).
const formatVersion = 2

func (ix *Indexer) limits() Limits {
	if ix.Limits != nil {
		return *ix.Limits
	}
	return DefaultLimits
}

func (ix *Indexer) log() *slog.Logger {
	if ix.Log != nil {
		return ix.Log
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// CatalogerSet names the catalogers and their versions, with the indexer's
// own format version: "index:1,apk:1,dpkg:1,...". A cached layer result is
// used only under the same set.
func (ix *Indexer) CatalogerSet() string {
	parts := make([]string, 0, len(ix.Catalogers))
	for _, c := range ix.Catalogers {
		parts = append(parts, c.Name()+":"+strconv.Itoa(c.Version()))
	}
	sort.Strings(parts)
	return "index:" + strconv.Itoa(formatVersion) + "," + strings.Join(parts, ",")
}

// cacheKey is the short form of the cataloger set stored with each cached
// result.
func cacheKey(set string) string {
	sum := sha256.Sum256([]byte(set))
	return hex.EncodeToString(sum[:12])
}

// LayerStat says how one layer of an inventory was obtained.
type LayerStat struct {
	Digest   string        `json:"digest"`
	Size     int64         `json:"size,omitempty"`
	Cached   bool          `json:"cached"`
	Packages int           `json:"packages"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	Warnings []string      `json:"warnings,omitempty"`
}

// IndexLayer returns the result for one layer, from the cache when it
// holds one for the current cataloger set, or by reading the layer (and
// storing the result).
func (ix *Indexer) IndexLayer(ctx context.Context, l Layer) (*LayerResult, bool, error) {
	set := ix.CatalogerSet()
	key := cacheKey(set)
	if ix.Cache != nil && l.Digest != "" {
		res, ok, err := ix.Cache.Get(ctx, l.Digest, key)
		if err != nil {
			ix.log().Warn("layer cache read failed; indexing the layer", "layer", l.Digest, "err", err)
		} else if ok {
			return res, true, nil
		}
	}
	rc, err := l.Open(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("open layer %s: %w", l.Digest, err)
	}
	defer rc.Close()
	res, err := ix.indexStream(ctx, l.Digest, rc)
	if err != nil {
		return nil, false, fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	if ix.Cache != nil && l.Digest != "" {
		if err := ix.Cache.Put(ctx, l.Digest, key, res); err != nil {
			ix.log().Warn("layer cache write failed", "layer", l.Digest, "err", err)
		}
	}
	return res, false, nil
}

// Index indexes every layer of img (from the cache where possible) and
// assembles its inventory.
func (ix *Indexer) Index(ctx context.Context, img *Image) (*Inventory, error) {
	results := make([]*LayerResult, len(img.Layers))
	stats := make([]LayerStat, len(img.Layers))
	g, gctx := errgroup.WithContext(ctx)
	par := ix.Parallel
	if par <= 0 {
		par = 2
	}
	g.SetLimit(par)
	for i, l := range img.Layers {
		g.Go(func() error {
			start := time.Now()
			res, cached, err := ix.IndexLayer(gctx, l)
			if err != nil {
				return err
			}
			results[i] = res
			n := 0
			for _, f := range res.Files {
				n += len(f.Packages)
			}
			stats[i] = LayerStat{Digest: l.Digest, Size: l.Size, Cached: cached, Packages: n,
				Elapsed: time.Since(start), Warnings: res.Warnings}
			ix.log().Debug("layer indexed", "layer", l.Digest, "cached", cached, "files", len(res.Files), "elapsed", time.Since(start))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	inv := Assemble(results)
	inv.Name, inv.Digest, inv.Platform = img.Name, img.Digest, img.Platform
	inv.Layers = stats
	inv.Catalogers = ix.CatalogerSet()
	return inv, nil
}

// IndexDir indexes a root filesystem directory as one layer. Symbolic
// links are not followed, so a link loop or a link out of the tree costs
// nothing. Nothing is cached: a directory has no digest.
func (ix *Indexer) IndexDir(ctx context.Context, root string) (*Inventory, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", root)
	}
	res := &LayerResult{}
	w := &layerWalker{ix: ix, res: res, seen: map[string]int{}}
	n := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			w.warnf("%s: %v", p, err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if d.Type()&fs.ModeType != 0 {
			if d.Type()&fs.ModeSymlink != 0 && (osrel.Wants(rel) || len(w.wanting(rel, 0, 0)) > 0) {
				w.put(FileResult{Path: rel})
			}
			return nil
		}
		return w.visitFile(ctx, root, rel, d)
	})
	if err != nil {
		return nil, err
	}
	inv := Assemble([]*LayerResult{res})
	inv.Name = "dir:" + root
	n = 0
	for _, f := range res.Files {
		n += len(f.Packages)
	}
	inv.Layers = []LayerStat{{Packages: n, Warnings: res.Warnings}}
	inv.Catalogers = ix.CatalogerSet()
	return inv, nil
}

// visitFile offers one regular file of a directory tree to the catalogers.
func (w *layerWalker) visitFile(ctx context.Context, root, rel string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		w.warnf("%s: %v", rel, err)
		return nil
	}
	if osrel.IsMarker(rel) {
		w.put(FileResult{Path: rel, Marker: true})
		return nil
	}
	if !osrel.Wants(rel) && len(w.wanting(rel, info.Mode(), info.Size())) == 0 {
		return nil
	}
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		w.warnf("%s: %v", rel, err)
		return nil
	}
	defer f.Close()
	e := entry{path: rel, hdr: fileHeader(rel, info)}
	return w.visit(ctx, e, f)
}
