package match

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/catalogers"
	"github.com/drydockhq/drydock/internal/index/source"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/alpine"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/kev"
	"github.com/drydockhq/drydock/internal/vulndb/osv"
)

// Helpers that read the real fixtures and build real content for the
// accuracy tests.

// osvAdvisories reads an OSV fixture (zip, directory or record) with the
// database's own OSV reader.
func osvAdvisories(t testing.TB, rel string) []*vulndb.Advisory {
	t.Helper()
	fd, err := osv.ReadPath(context.Background(), testutil.Fixture(t, rel), "osv", osv.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*vulndb.Advisory, len(fd.Advisories))
	for i := range fd.Advisories {
		out[i] = &fd.Advisories[i]
	}
	return out
}

// alpineAdvisories reads one secdb document of the fixtures.
func alpineAdvisories(t testing.TB, rel string) []*vulndb.Advisory {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := alpine.Parse(f, "alpine-secdb")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*vulndb.Advisory, len(fd.Advisories))
	for i := range fd.Advisories {
		out[i] = &fd.Advisories[i]
	}
	return out
}

// kevEnrichment reads the real CISA KEV catalogue.
func kevEnrichment(t testing.TB) []vulndb.Enrichment {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, "enrichment/kev/known_exploited_vulnerabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := kev.Parse(f, "kev")
	if err != nil {
		t.Fatal(err)
	}
	return fd.Enrichment
}

// matchInventory matches an inventory against advisories held in the
// database's lookup index.
func matchInventory(t testing.TB, inv *index.Inventory, advs []*vulndb.Advisory, enrichment []vulndb.Enrichment) (*Result, *vulndb.Snapshot) {
	t.Helper()
	snap := vulndb.NewSnapshot(1, advs, enrichment)
	res, err := New(snap).Match(context.Background(), inv.Packages)
	if err != nil {
		t.Fatal(err)
	}
	return res, snap
}

func newIndexer() *index.Indexer { return &index.Indexer{Catalogers: catalogers.All()} }

// indexDir indexes a root filesystem directory as drydock scan dir:PATH
// does.
func indexDir(t testing.TB, root string) *index.Inventory {
	t.Helper()
	inv, err := newIndexer().IndexDir(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// indexArchive indexes a docker archive as drydock scan
// docker-archive:FILE does.
func indexArchive(t testing.TB, path string) *index.Inventory {
	t.Helper()
	ctx := context.Background()
	target, err := source.Parse("docker-archive:" + path)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := source.Images(ctx, target, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 {
		t.Fatalf("%s: %d images", path, len(imgs))
	}
	inv, err := newIndexer().Index(ctx, imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// findingKeys returns "ID@package" for each finding whose package passes
// keep (all when keep is nil), sorted.
func findingKeys(res *Result, keep func(*index.Package) bool) []string {
	var out []string
	for _, f := range res.Findings {
		if keep == nil || keep(f.Package) {
			out = append(out, f.ID()+"@"+f.Package.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// rewriteDockerArchive writes a copy of a docker archive (plain or gzip)
// whose single layer has edit applied to the named file, with the layer
// digest, the config's diff_ids and the manifest updated to match.
func rewriteDockerArchive(t testing.TB, src, file string, edit func([]byte) []byte) string {
	t.Helper()
	members := readTarMembers(t, src)
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(members["manifest.json"], &manifest); err != nil || len(manifest) != 1 || len(manifest[0].Layers) != 1 {
		t.Fatalf("manifest.json: %v %+v", err, manifest)
	}
	layer := members[manifest[0].Layers[0]]
	var out bytes.Buffer
	tr, tw := tar.NewReader(bytes.NewReader(layer)), tar.NewWriter(&out)
	edited := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") == file {
			data, edited = edit(data), true
			h.Size = int64(len(data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if !edited {
		t.Fatalf("%s has no %s", src, file)
	}
	layerHex := sha256Hex(out.Bytes())
	var cfg map[string]any
	if err := json.Unmarshal(members[manifest[0].Config], &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["rootfs"] = map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + layerHex}}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgName := sha256Hex(cfgData) + ".json"
	layerName := layerHex + "/layer.tar"
	manifest[0].Config, manifest[0].Layers = cfgName, []string{layerName}
	manData, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "rewritten.tar")
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := tar.NewWriter(f)
	for _, m := range []struct {
		name string
		data []byte
	}{{"manifest.json", manData}, {cfgName, cfgData}, {layerName, out.Bytes()}} {
		if err := w.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func readTarMembers(t testing.TB, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = data
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// run runs a program in dir with extra environment variables and returns
// its standard output; a failure fails the test with its standard error.
func run(t testing.TB, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, err := runErr(dir, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runErr(dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}
