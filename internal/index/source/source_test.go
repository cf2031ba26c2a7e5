package source_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/apk"
	"github.com/drydockhq/drydock/internal/index/dpkg"
	"github.com/drydockhq/drydock/internal/index/source"
	"github.com/drydockhq/drydock/internal/testutil"
)

func indexer() *index.Indexer {
	return &index.Indexer{Catalogers: []index.Cataloger{dpkg.New(), apk.New()}}
}

// apkNames reads the package names of the apk database inside a tarball
// (optionally gzipped, possibly nested one level in a docker archive's
// layer.tar) with the standard library.
func apkNames(t *testing.T, r io.Reader) []string {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("apk database not found: %v", err)
		}
		n := strings.TrimPrefix(h.Name, "./")
		if strings.HasSuffix(n, "layer.tar") {
			return apkNames(t, tr)
		}
		if n == "lib/apk/db/installed" {
			b, _ := io.ReadAll(tr)
			var names []string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "P:") {
					names = append(names, l[2:])
				}
			}
			sort.Strings(names)
			return names
		}
	}
}

func gzFile(t *testing.T, p string) io.Reader {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return zr
}

func names(inv *index.Inventory) []string {
	var out []string
	for _, p := range inv.Packages {
		out = append(out, p.Name)
	}
	sort.Strings(out)
	return out
}

func indexAll(t *testing.T, target string, opts source.Options) []*index.Inventory {
	t.Helper()
	ctx := context.Background()
	tg, err := source.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := source.Images(ctx, tg, opts)
	if err != nil {
		t.Fatal(err)
	}
	var invs []*index.Inventory
	for _, img := range imgs {
		inv, err := indexer().Index(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		invs = append(invs, inv)
	}
	return invs
}

func TestDockerArchive(t *testing.T) {
	fx := testutil.Fixture(t, "images/alpine-3.10-docker-archive.tar.gz")
	want := apkNames(t, gzFile(t, fx))
	if len(want) != 14 {
		t.Fatalf("the reference reading found %d packages", len(want))
	}
	invs := indexAll(t, "docker-archive:"+fx, source.Options{})
	if len(invs) != 1 {
		t.Fatalf("%d images", len(invs))
	}
	inv := invs[0]
	if strings.Join(names(inv), " ") != strings.Join(want, " ") {
		t.Errorf("got %v\nwant %v", names(inv), want)
	}
	if inv.OS == nil || inv.OS.Ecosystem != "Alpine:v3.10" || inv.Platform != "linux/amd64" {
		t.Errorf("os %v platform %q", inv.OS, inv.Platform)
	}
	for _, p := range inv.Packages {
		if p.Name == "libcrypto1.1" && (p.Version != "1.1.1d-r2" || p.SourceName != "openssl") {
			t.Errorf("%+v", p)
		}
		if !strings.HasPrefix(p.Layer, "sha256:") || p.Path != "lib/apk/db/installed" {
			t.Errorf("%+v", p)
		}
	}
}

func TestHelloWorldHasNoOS(t *testing.T) {
	fx := testutil.Fixture(t, "images/hello-world-v25.tar")
	invs := indexAll(t, "docker-archive:"+fx, source.Options{})
	if len(invs) != 1 || invs[0].OS != nil || invs[0].OSNote == "" || len(invs[0].Packages) != 0 {
		t.Fatalf("%+v", invs[0])
	}
	// Its index.json lists no manifest: as an OCI archive it holds nothing.
	tg, _ := source.Parse("oci-archive:" + fx)
	if _, err := source.Images(context.Background(), tg, source.Options{}); err == nil || !strings.Contains(err.Error(), "no image") {
		t.Errorf("err = %v", err)
	}
}

func TestLayoutChoice(t *testing.T) {
	dir := testutil.Fixture(t, "images/oci-layouts/test_index")
	tg, _ := source.Parse("oci:" + dir)
	_, err := source.Images(context.Background(), tg, source.Options{})
	if err == nil || !strings.Contains(err.Error(), "choose one") || !strings.Contains(err.Error(), "sha256:eebff607b1628d67459b0596643fc07de70d702eccf030f0bc7bb6fc2b278650") {
		t.Fatalf("err = %v", err)
	}
	// By tag: "1" is an image manifest.
	tg, _ = source.Parse("oci:" + dir + ":1")
	imgs, err := source.Images(context.Background(), tg, source.Options{})
	if err != nil || len(imgs) != 1 || imgs[0].Digest != "sha256:eebff607b1628d67459b0596643fc07de70d702eccf030f0bc7bb6fc2b278650" {
		t.Fatalf("%v %v", imgs, err)
	}
	// An unknown tag lists what there is.
	tg, _ = source.Parse("oci:" + dir + ":nope")
	if _, err := source.Images(context.Background(), tg, source.Options{}); err == nil || !strings.Contains(err.Error(), "no image tagged") {
		t.Errorf("err = %v", err)
	}
	// By digest.
	tg, _ = source.Parse("oci:" + dir + "@sha256:eebff607b1628d67459b0596643fc07de70d702eccf030f0bc7bb6fc2b278650")
	if imgs, err := source.Images(context.Background(), tg, source.Options{}); err != nil || len(imgs) != 1 {
		t.Errorf("%v %v", imgs, err)
	}
	// The only image of a layout needs no choice.
	tg, _ = source.Parse("oci:" + testutil.Fixture(t, "images/oci-layouts/test_index_one_image"))
	if imgs, err := source.Images(context.Background(), tg, source.Options{}); err != nil || len(imgs) == 0 {
		t.Errorf("%v %v", imgs, err)
	}
}

// alpineImage builds a one-layer image from a real minirootfs tarball.
func alpineImage(t *testing.T, fixture string, plat v1.Platform) v1.Image {
	t.Helper()
	l, err := tarball.LayerFromFile(testutil.Fixture(t, fixture))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), l)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// multiPlatform is an index of Alpine 3.18 for amd64 and 3.20 for arm64
// (the content is x86_64 in both; only the platform labels differ).
func multiPlatform(t *testing.T) v1.ImageIndex {
	a := alpineImage(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz", v1.Platform{OS: "linux", Architecture: "amd64"})
	b := alpineImage(t, "rootfs/alpine-minirootfs-3.20.3-x86_64.tar.gz", v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: a, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: b, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	return idx
}

func writeLayout(t *testing.T, idx v1.ImageIndex, tag string) string {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return dir
}

func tarDir(t *testing.T, dir string, gz bool) string {
	out := filepath.Join(t.TempDir(), "archive.tar")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = f
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(f)
		w = zw
	}
	tw := tar.NewWriter(w)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		zw.Close()
	}
	return out
}

func checkMulti(t *testing.T, invs []*index.Inventory) {
	t.Helper()
	if len(invs) != 2 {
		t.Fatalf("%d images", len(invs))
	}
	got := map[string]string{}
	for _, inv := range invs {
		if inv.OS == nil || len(inv.Packages) < 10 {
			t.Fatalf("%s: os %v, %d packages", inv.Platform, inv.OS, len(inv.Packages))
		}
		got[inv.Platform] = inv.OS.Ecosystem
	}
	if got["linux/amd64"] != "Alpine:v3.18" || got["linux/arm64/v8"] != "Alpine:v3.20" {
		t.Errorf("%v", got)
	}
}

func TestMultiPlatformSources(t *testing.T) {
	idx := multiPlatform(t)
	dir := writeLayout(t, idx, "3")
	want318 := apkNames(t, gzFile(t, testutil.Fixture(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")))

	t.Run("oci", func(t *testing.T) {
		checkMulti(t, indexAll(t, "oci:"+dir, source.Options{}))
		checkMulti(t, indexAll(t, "oci:"+dir+":3", source.Options{}))
		invs := indexAll(t, "oci:"+dir, source.Options{Platform: "linux/amd64"})
		if len(invs) != 1 || invs[0].Platform != "linux/amd64" || strings.Join(names(invs[0]), " ") != strings.Join(want318, " ") {
			t.Errorf("%v", invs)
		}
		tg, _ := source.Parse("oci:" + dir)
		if _, err := source.Images(context.Background(), tg, source.Options{Platform: "linux/s390x"}); err == nil || !strings.Contains(err.Error(), "linux/arm64/v8") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("oci-archive", func(t *testing.T) {
		checkMulti(t, indexAll(t, "oci-archive:"+tarDir(t, dir, false), source.Options{}))
		checkMulti(t, indexAll(t, "oci-archive:"+tarDir(t, dir, true)+":3", source.Options{}))
	})
	t.Run("blob store", func(t *testing.T) {
		d, err := idx.Digest()
		if err != nil {
			t.Fatal(err)
		}
		blobs := func(_ context.Context, digest string) (io.ReadCloser, error) {
			alg, hex, _ := strings.Cut(digest, ":")
			return os.Open(filepath.Join(dir, "blobs", alg, hex))
		}
		imgs, err := source.FromBlobs(context.Background(), "store", blobs, d.String(), source.Options{Platform: "linux/arm64"})
		if err != nil || len(imgs) != 1 || imgs[0].Platform != "linux/arm64/v8" {
			t.Fatalf("%v %v", imgs, err)
		}
	})
	t.Run("registry", func(t *testing.T) {
		srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
		defer srv.Close()
		u, _ := url.Parse(srv.URL)
		ref, err := name.ParseReference(u.Host + "/alpine:multi")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(ref, idx); err != nil {
			t.Fatal(err)
		}
		checkMulti(t, indexAll(t, u.Host+"/alpine:multi", source.Options{Insecure: true}))
		invs := indexAll(t, "registry:"+u.Host+"/alpine:multi", source.Options{Insecure: true, Platform: "linux/arm64"})
		if len(invs) != 1 || invs[0].OS.Ecosystem != "Alpine:v3.20" {
			t.Errorf("%v", invs)
		}
	})
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string]source.Target{
		"oci:" + dir:         {Kind: source.KindOCI, Path: dir},
		"oci:" + dir + ":v1": {Kind: source.KindOCI, Path: dir, Tag: "v1"},
		"oci:" + dir + "@sha256:" + strings.Repeat("a", 64): {Kind: source.KindOCI, Path: dir, Digest: "sha256:" + strings.Repeat("a", 64)},
		"docker-archive:" + dir + ":repo/x:tag":             {Kind: source.KindDockerArchive, Path: dir, Tag: "repo/x:tag"},
		"dir:/":                                             {Kind: source.KindDir, Path: "/"},
		"alpine:3.18":                                       {Kind: source.KindRegistry, Path: "alpine:3.18"},
		"docker://alpine":                                   {Kind: source.KindRegistry, Path: "alpine"},
		"registry:ghcr.io/a/b:c":                            {Kind: source.KindRegistry, Path: "ghcr.io/a/b:c"},
	} {
		got, err := source.Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
}

// TestRegistryAuthFile pulls from a registry that demands Basic auth,
// with credentials only in a docker config file (as `docker login` or
// `podman login` writes it).
func TestRegistryAuthFile(t *testing.T) {
	idx := multiPlatform(t)
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="drydock-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	ref, err := name.ParseReference(u.Host + "/private/alpine:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"auths":{"`+u.Host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfg)
	t.Setenv("REGISTRY_AUTH_FILE", "")
	invs := indexAll(t, u.Host+"/private/alpine:1", source.Options{Insecure: true, Platform: "linux/amd64"})
	if len(invs) != 1 || invs[0].OS == nil || invs[0].OS.Ecosystem != "Alpine:v3.18" {
		t.Fatalf("%+v", invs)
	}
	// Without the file the registry refuses.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	tg, _ := source.Parse(u.Host + "/private/alpine:1")
	if _, err := source.Images(context.Background(), tg, source.Options{Insecure: true}); err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
		t.Errorf("err = %v", err)
	}
}
