package registry

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/testutil"
)

// seedManifests adds every JSON manifest of the go-containerregistry test
// layouts in the shared fixtures to the fuzz corpus, with the media type
// it declares.
func seedManifests(f *testing.F) {
	dir := testutil.Fixture(f, "images/oci-layouts")
	n := 0
	_ = filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil || len(b) > 1<<16 || !json.Valid(b) {
			return nil
		}
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		_ = json.Unmarshal(b, &probe)
		f.Add(b, probe.MediaType)
		f.Add(b, "application/vnd.oci.image.manifest.v1+json")
		n++
		return nil
	})
	if n == 0 {
		f.Fatal("no manifest seeds found in the fixtures")
	}
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha512:`+strings.Repeat("ab", 64)+`","size":1}}`), "")
	f.Add([]byte(`{"schemaVersion":2,"config":{"digest":"sha256:x"}}`), "application/vnd.oci.image.manifest.v1+json; charset=utf-8")
}

// FuzzParseManifest checks that manifest validation never panics, and that
// whatever it accepts is a known kind whose references are valid digests.
func FuzzParseManifest(f *testing.F) {
	seedManifests(f)
	known := map[string]bool{
		"application/vnd.oci.image.manifest.v1+json": true,
		"application/vnd.oci.image.index.v1+json":    true,
		MediaTypeDockerManifest:                      true,
		MediaTypeDockerManifestList:                  true,
	}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		info, e := parseManifest(body, contentType)
		if e != nil {
			if e.Code != CodeManifestInvalid || e.Status != 400 {
				t.Fatalf("rejection with %d %s", e.Status, e.Code)
			}
			return
		}
		if !known[info.mediaType] {
			t.Fatalf("accepted media type %q", info.mediaType)
		}
		if !json.Valid(body) {
			t.Fatal("accepted invalid JSON")
		}
		for _, b := range info.blobs {
			if digest.Digest(b.Digest).Validate() != nil || b.Size < 0 {
				t.Fatalf("accepted blob reference %+v", b)
			}
		}
		for _, m := range info.manifests {
			if digest.Digest(m).Validate() != nil {
				t.Fatalf("accepted manifest reference %q", m)
			}
		}
		if info.subject != "" && digest.Digest(info.subject).Validate() != nil {
			t.Fatalf("accepted subject %q", info.subject)
		}
	})
}

// FuzzParseRoute checks that path parsing never panics and that every
// accepted path names a valid repository free of traversal and escapes.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{
		"/v2/", "/v2/_catalog", "/v2/a/b/c/tags/list", "/v2/team/app/manifests/latest",
		"/v2/library/alpine/blobs/sha256:" + strings.Repeat("0", 64),
		"/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/0123456789abcdef0123456789abcdef",
		"/v2/x/referrers/sha256:" + strings.Repeat("a", 64), "/v2/a/../b/tags/list", "/v2/a/%2e%2e/tags/list",
		"/v2/a%2fb/manifests/v1", "/v2/a/manifests/manifests/manifests/x", "/v2//tags/list", "/v3/x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		rt, e := parseRoute(path)
		if e != nil {
			if e.Status < 400 || e.Status > 499 {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		if rt.kind == routeBase || rt.kind == routeCatalog {
			return
		}
		if err := ValidateName(rt.name); err != nil {
			t.Fatalf("accepted name %q", rt.name)
		}
		for _, seg := range strings.Split(rt.name, "/") {
			if seg == "." || seg == ".." || strings.ContainsAny(seg, "%\\") {
				t.Fatalf("accepted name %q with segment %q", rt.name, seg)
			}
		}
		switch rt.kind {
		case routeManifest, routeBlob, routeReferrers:
			if rt.ref == "" {
				t.Fatal("accepted empty reference")
			}
		}
		if !strings.HasPrefix(path, "/v2/"+rt.name+"/") {
			t.Fatalf("name %q is not a prefix of %q", rt.name, path)
		}
	})
}

// FuzzReference checks the tag grammar: whatever ValidTag accepts is short,
// has no path separator and cannot be mistaken for a digest.
func FuzzReference(f *testing.F) {
	for _, s := range []string{"latest", "v1.2.3", "_x", "-bad", ".hidden", strings.Repeat("a", 129), "sha256:abc", "a/b", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidTag(s) {
			return
		}
		if len(s) > 128 || strings.ContainsAny(s, "/:%") || s == "." || s == ".." || isDigestRef(s) {
			t.Fatalf("accepted tag %q", s)
		}
	})
}
