package registry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// env is a registry handler on a real store and blob store, served by an
// httptest server.
type env struct {
	t     *testing.T
	db    *store.DB
	blobs *blob.FS
	srv   *httptest.Server
}

func newEnv(t *testing.T, db *store.DB, o registry.Options) *env {
	t.Helper()
	ctx := context.Background()
	if err := db.MigrateRegistry(ctx); err != nil {
		t.Fatal(err)
	}
	bs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o.Store, o.Blobs = db, bs
	srv := httptest.NewServer(registry.New(o))
	t.Cleanup(srv.Close)
	return &env{t: t, db: db, blobs: bs, srv: srv}
}

func (e *env) createRepo(name string) {
	e.t.Helper()
	if _, err := e.db.Registry().CreateRepository(context.Background(), name, time.Now()); err != nil {
		e.t.Fatal(err)
	}
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

// code returns the first OCI error code of the body, or "".
func (r resp) code() string {
	var eb struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	if json.Unmarshal(r.body, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

func (e *env) do(method, path string, hdr map[string]string, body []byte) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	// Keep the path exactly as written (no cleaning, no re-escaping).
	req.URL.Opaque, _, _ = strings.Cut(path, "?")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *env) expect(r resp, status int, code string) {
	e.t.Helper()
	if r.status != status || (code != "" && r.code() != code) {
		e.t.Fatalf("got %d %s, want %d %s: %s", r.status, r.code(), status, code, r.body)
	}
}

// pushBlob uploads b monolithically (POST then PUT) and returns its digest.
func (e *env) pushBlob(repo string, b []byte) digest.Digest {
	e.t.Helper()
	d := digest.FromBytes(b)
	r := e.do("POST", "/v2/"+repo+"/blobs/uploads/", nil, nil)
	e.expect(r, http.StatusAccepted, "")
	r = e.do("PUT", r.header.Get("Location")+"?digest="+d.String(), nil, b)
	e.expect(r, http.StatusCreated, "")
	return d
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

func imageManifest(config, layer digest.Digest, configSize, layerSize int) []byte {
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		ociManifest, config, configSize, layer, layerSize))
}

// outboxCount returns the number of outbox events.
func (e *env) outboxCount() int {
	evs, err := e.db.Registry().Outbox(context.Background(), 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(evs)
}

func TestBadManifestsChangeNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, registry.Options{})
		e.createRepo("team/app")
		cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
		layer := randomBytes(t, 4096)
		cd, ld := e.pushBlob("team/app", cfg), e.pushBlob("team/app", layer)
		good := imageManifest(cd, ld, len(cfg), len(layer))
		missing := digest.FromString("never pushed")
		huge := bytes.Repeat([]byte(" "), registry.MaxManifestSize+1)
		copy(huge, good)
		cases := []struct {
			name   string
			ref    string
			ct     string
			body   []byte
			status int
			code   string
		}{
			{"not json", "v1", ociManifest, []byte(`{"schemaVersion":2,`), 400, "MANIFEST_INVALID"},
			{"schema 1", "v1", ociManifest, []byte(`{"schemaVersion":1,"name":"x"}`), 400, "MANIFEST_INVALID"},
			{"media type differs from content type", "v1", "application/vnd.oci.image.index.v1+json", good, 400, "MANIFEST_INVALID"},
			{"unknown media type", "v1", "application/x-nonsense", []byte(`{"schemaVersion":2}`), 400, "MANIFEST_INVALID"},
			{"no config", "v1", ociManifest, []byte(`{"schemaVersion":2,"mediaType":"` + ociManifest + `","layers":[]}`), 400, "MANIFEST_INVALID"},
			{"bad layer digest", "v1", ociManifest, bytes.Replace(good, []byte(ld.String()), []byte("sha256:zz"), 1), 400, "MANIFEST_INVALID"},
			{"unknown layer", "v1", ociManifest, imageManifest(cd, missing, len(cfg), 10), 400, "MANIFEST_BLOB_UNKNOWN"},
			{"layer size lies", "v1", ociManifest, imageManifest(cd, ld, len(cfg), len(layer)+1), 400, "MANIFEST_INVALID"},
			{"index child unknown", "v1", "application/vnd.oci.image.index.v1+json",
				[]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"` + ociManifest + `","digest":"` + missing.String() + `","size":10}]}`),
				400, "MANIFEST_BLOB_UNKNOWN"},
			{"digest mismatch", digest.FromString("other").String(), ociManifest, good, 400, "DIGEST_INVALID"},
			{"invalid digest", "sha256:short", ociManifest, good, 400, "DIGEST_INVALID"},
			{"invalid tag", "-bad", ociManifest, good, 400, "TAG_INVALID"},
			{"too large", "v1", ociManifest, huge, 413, "SIZE_INVALID"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				e.t = t
				r := e.do("PUT", "/v2/team/app/manifests/"+c.ref, map[string]string{"Content-Type": c.ct}, c.body)
				e.expect(r, c.status, c.code)
			})
		}
		e.t = t
		// Nothing was stored by any of them.
		e.expect(e.do("GET", "/v2/team/app/manifests/v1", nil, nil), 404, "MANIFEST_UNKNOWN")
		tags := e.do("GET", "/v2/team/app/tags/list", nil, nil)
		if !bytes.Contains(tags.body, []byte(`"tags":[]`)) {
			t.Fatalf("tags after bad pushes: %s", tags.body)
		}
		if n := e.outboxCount(); n != 0 {
			t.Fatalf("%d outbox events after only bad pushes", n)
		}
		// The good manifest goes in and yields one event.
		r := e.do("PUT", "/v2/team/app/manifests/v1", map[string]string{"Content-Type": ociManifest}, good)
		e.expect(r, 201, "")
		if got, want := r.header.Get("Docker-Content-Digest"), digest.FromBytes(good).String(); got != want {
			t.Fatalf("digest header %q, want %q", got, want)
		}
		evs, err := db.Registry().Outbox(context.Background(), 0, 10)
		if err != nil || len(evs) != 1 || evs[0].Kind != store.OutboxImagePushed {
			t.Fatalf("outbox after a push: %v %+v", err, evs)
		}
		var ev store.ImagePushed
		if err := json.Unmarshal(evs[0].Payload, &ev); err != nil || ev.Repository != "team/app" ||
			ev.Digest != digest.FromBytes(good).String() || len(ev.Tags) != 1 || ev.Tags[0] != "v1" {
			t.Fatalf("event payload %s (%v)", evs[0].Payload, err)
		}
	})
}

func TestNamesAndPathTricks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, registry.Options{})
		e.createRepo("a/b")
		for _, p := range []string{
			"/v2/a/../b/tags/list",
			"/v2/a/%2e%2e/b/tags/list",
			"/v2/%2e%2e/tags/list",
			"/v2/a%2Fb/tags/list",
			"/v2/A/tags/list",
			"/v2/a//b/tags/list",
			"/v2/a/b-/tags/list",
			"/v2/" + strings.Repeat("a", 256) + "/tags/list",
			"/v2/a/b/../../etc/manifests/latest",
		} {
			e.expect(e.do("GET", p, nil, nil), 400, "NAME_INVALID")
		}
		e.expect(e.do("GET", "/v2/a/b/manifests/..", nil, nil), 400, "TAG_INVALID")
		e.expect(e.do("GET", "/v2/a/b/blobs/sha256:..", nil, nil), 400, "DIGEST_INVALID")
		e.expect(e.do("GET", "/v2/a/b/tags/list", nil, nil), 200, "")
		e.expect(e.do("GET", "/v2/a/c/tags/list", nil, nil), 404, "NAME_UNKNOWN")
		// ECR style: pushing into a repository nobody created is refused.
		e.expect(e.do("POST", "/v2/a/c/blobs/uploads/", nil, nil), 404, "NAME_UNKNOWN")
		e.expect(e.do("PUT", "/v2/a/c/manifests/v1", map[string]string{"Content-Type": ociManifest}, []byte(`{}`)), 400, "MANIFEST_INVALID")
		e.expect(e.do("PATCH", "/v2/a/b/manifests/v1", nil, nil), 405, "UNSUPPORTED")
	})
}

func TestCreateOnPush(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), registry.Options{CreateOnPush: true})
	e.pushBlob("new/repo", []byte("hello"))
	e.expect(e.do("GET", "/v2/_catalog", nil, nil), 200, "")
	if r := e.do("GET", "/v2/_catalog", nil, nil); !bytes.Contains(r.body, []byte(`"new/repo"`)) {
		t.Fatalf("catalog: %s", r.body)
	}
}

func TestChunkedUploadErrorsChangeNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, registry.Options{})
		e.createRepo("up")
		data := randomBytes(t, 3000)
		d := digest.FromBytes(data)
		r := e.do("POST", "/v2/up/blobs/uploads/", nil, nil)
		e.expect(r, 202, "")
		loc := r.header.Get("Location")
		chunk := func(start, end int) resp {
			return e.do("PATCH", loc, map[string]string{"Content-Range": fmt.Sprintf("%d-%d", start, end)}, data[start:end+1])
		}
		status := func() string {
			r := e.do("GET", loc, nil, nil)
			e.expect(r, 204, "")
			return r.header.Get("Range")
		}
		e.expect(chunk(0, 999), 202, "")
		// Out of order (a gap), overlapping, and starting over: 416, unchanged.
		e.expect(chunk(2000, 2999), 416, "RANGE_INVALID")
		e.expect(chunk(500, 1499), 416, "RANGE_INVALID")
		e.expect(chunk(0, 999), 416, "RANGE_INVALID")
		if got := status(); got != "0-999" {
			t.Fatalf("range after refused chunks: %q", got)
		}
		// A Content-Length that disagrees with Content-Range.
		r = e.do("PATCH", loc, map[string]string{"Content-Range": "1000-1999"}, data[1000:1500])
		e.expect(r, 400, "SIZE_INVALID")
		// A malformed range.
		e.expect(e.do("PATCH", loc, map[string]string{"Content-Range": "x-y"}, data[1000:2000]), 400, "BLOB_UPLOAD_INVALID")
		if got := status(); got != "0-999" {
			t.Fatalf("range after bad chunks: %q", got)
		}
		// A client that announces 1000 bytes, sends 500 and hangs up.
		truncatedPatch(t, e.srv.URL, loc, 1000, 1999, data[1000:1500])
		// The handler holds the upload while it runs; once a PATCH gets
		// through, the truncated bytes must be gone (else: 416).
		deadline := time.Now().Add(10 * time.Second)
		for {
			r := chunk(1000, 1999)
			if r.status != http.StatusConflict {
				e.expect(r, 202, "")
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("upload stayed busy after the client disconnected")
			}
			time.Sleep(10 * time.Millisecond)
		}
		// A wrong digest at the end: refused, the blob never appears.
		wrong := digest.FromString("wrong")
		r = e.do("PUT", loc+"?digest="+wrong.String(), map[string]string{"Content-Range": "2000-2999"}, data[2000:])
		e.expect(r, 400, "DIGEST_INVALID")
		e.expect(e.do("HEAD", "/v2/up/blobs/"+wrong.String(), nil, nil), 404, "")
		e.expect(e.do("HEAD", "/v2/up/blobs/"+d.String(), nil, nil), 404, "")
		// The session is spent; a fresh chunked upload succeeds.
		e.expect(e.do("GET", loc, nil, nil), 404, "BLOB_UPLOAD_UNKNOWN")
		r = e.do("POST", "/v2/up/blobs/uploads/", nil, nil)
		loc = r.header.Get("Location")
		e.expect(chunk(0, 1499), 202, "")
		r = e.do("PUT", loc+"?digest="+d.String(), map[string]string{"Content-Range": "1500-2999"}, data[1500:])
		e.expect(r, 201, "")
		got := e.do("GET", "/v2/up/blobs/"+d.String(), nil, nil)
		if !bytes.Equal(got.body, data) {
			t.Fatal("blob content differs after chunked upload")
		}
	})
}

// truncatedPatch sends a PATCH announcing end-start+1 bytes but only body,
// then closes the connection.
func truncatedPatch(t *testing.T, base, loc string, start, end int, body []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Range: %d-%d\r\nContent-Length: %d\r\n\r\n",
		loc, start, end, end-start+1)
	if _, err := conn.Write(body); err != nil {
		t.Fatal(err)
	}
	conn.Close()
}

func TestMonolithicDigestMismatch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, registry.Options{})
		e.createRepo("m")
		data := []byte("some content")
		wrong := digest.FromString("other content")
		e.expect(e.do("POST", "/v2/m/blobs/uploads/?digest="+wrong.String(), nil, data), 400, "DIGEST_INVALID")
		e.expect(e.do("HEAD", "/v2/m/blobs/"+wrong.String(), nil, nil), 404, "")
		// sha512, in one POST.
		d512 := digest.SHA512.FromBytes(data)
		r := e.do("POST", "/v2/m/blobs/uploads/?digest="+d512.String(), nil, data)
		e.expect(r, 201, "")
		if got := e.do("GET", "/v2/m/blobs/"+d512.String(), nil, nil); !bytes.Equal(got.body, data) {
			t.Fatalf("sha512 blob: %d %s", got.status, got.body)
		}
		// No upload directories are left behind.
		n := 0
		_ = e.blobs.WalkUploads(context.Background(), func(string, string, blob.Info) error { n++; return nil })
		if n != 0 {
			t.Fatalf("%d uploads left after monolithic pushes", n)
		}
	})
}

func TestConcurrentSameBlobAndTag(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, registry.Options{})
		e.createRepo("c")
		data := randomBytes(t, 1<<20)
		d := digest.FromBytes(data)
		cfg := []byte(`{}`)
		var wg sync.WaitGroup
		errs := make(chan string, 64)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				for j := 0; j < 3; j++ {
					res, err := http.Post(e.srv.URL+"/v2/c/blobs/uploads/?digest="+d.String(), "application/octet-stream", bytes.NewReader(data))
					if err != nil {
						errs <- err.Error()
						return
					}
					res.Body.Close()
					if res.StatusCode != 201 {
						errs <- fmt.Sprintf("blob push: %d", res.StatusCode)
					}
					res, err = http.Post(e.srv.URL+"/v2/c/blobs/uploads/?digest="+digest.FromBytes(cfg).String(), "application/octet-stream", bytes.NewReader(cfg))
					if err != nil {
						errs <- err.Error()
						return
					}
					res.Body.Close()
					m := imageManifest(digest.FromBytes(cfg), d, len(cfg), len(data))
					// Differ per writer so the tag moves between manifests.
					m = bytes.Replace(m, []byte(`"schemaVersion":2`), []byte(fmt.Sprintf(`"schemaVersion":2,"annotations":{"w":"%d"}`, i)), 1)
					req, _ := http.NewRequest("PUT", e.srv.URL+"/v2/c/manifests/latest", bytes.NewReader(m))
					req.Header.Set("Content-Type", ociManifest)
					res, err = http.DefaultClient.Do(req)
					if err != nil {
						errs <- err.Error()
						return
					}
					res.Body.Close()
					if res.StatusCode != 201 {
						errs <- fmt.Sprintf("manifest push: %d", res.StatusCode)
					}
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got := e.do("GET", "/v2/c/blobs/"+d.String(), nil, nil)
		if !bytes.Equal(got.body, data) {
			t.Fatal("blob corrupted by concurrent pushes")
		}
		m := e.do("GET", "/v2/c/manifests/latest", nil, nil)
		e.expect(m, 200, "")
		if digest.FromBytes(m.body).String() != m.header.Get("Docker-Content-Digest") {
			t.Fatal("tag points at a manifest whose content does not match its digest")
		}
		if n := e.outboxCount(); n != 24 {
			t.Fatalf("%d outbox events for 24 manifest pushes", n)
		}
	})
}

// denyAll is an Authorizer that refuses: unauthenticated without
// credentials, denied with them.
type denyAll struct{}

func (denyAll) Authorize(r *http.Request, repo string, a auth.Action) (auth.Principal, error) {
	if r.Header.Get("Authorization") == "" {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	return auth.Principal{}, auth.ErrDenied
}

func TestAuthErrors(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), registry.Options{Auth: denyAll{}})
	r := e.do("GET", "/v2/", nil, nil)
	e.expect(r, 401, "UNAUTHORIZED")
	if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="drydock"` {
		t.Fatalf("challenge %q", got)
	}
	r = e.do("GET", "/v2/x/manifests/latest", map[string]string{"Authorization": "Basic QVdTOng="}, nil)
	e.expect(r, 403, "DENIED")
}

func TestPaginationLinks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, registry.Options{})
		names := []string{"b/x", "a", "c", "a/b", "a-b"}
		for _, n := range names {
			e.createRepo(n)
		}
		// Byte order: "a" < "a-b" < "a/b" < "b/x" < "c".
		var got []string
		path := "/v2/_catalog?n=2"
		for path != "" {
			r := e.do("GET", path, nil, nil)
			e.expect(r, 200, "")
			var page struct{ Repositories []string }
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			got = append(got, page.Repositories...)
			path = ""
			if l := r.header.Get("Link"); l != "" {
				path = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
			}
		}
		if want := "a a-b a/b b/x c"; strings.Join(got, " ") != want {
			t.Fatalf("catalog pages: %q, want %q", got, want)
		}
		r := e.do("GET", "/v2/_catalog?n=0", nil, nil)
		if !bytes.Contains(r.body, []byte(`"repositories":[]`)) || r.header.Get("Link") != "" {
			t.Fatalf("n=0: %s %v", r.body, r.header)
		}
	})
}

func TestUploadBelongsToItsRepository(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), registry.Options{})
	e.createRepo("one")
	e.createRepo("two")
	r := e.do("POST", "/v2/one/blobs/uploads/", nil, nil)
	e.expect(r, 202, "")
	id := strings.TrimPrefix(r.header.Get("Location"), "/v2/one/blobs/uploads/")
	other := "/v2/two/blobs/uploads/" + id
	e.expect(e.do("GET", other, nil, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	e.expect(e.do("PATCH", other, nil, []byte("x")), 404, "BLOB_UPLOAD_UNKNOWN")
	e.expect(e.do("PUT", other+"?digest="+digest.FromString("").String(), nil, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	e.expect(e.do("DELETE", other, nil, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	e.expect(e.do("GET", "/v2/one/blobs/uploads/../../etc", nil, nil), 404, "UNSUPPORTED")
	e.expect(e.do("GET", "/v2/one/blobs/uploads/not-an-id", nil, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	// The upload is intact in its own repository.
	r = e.do("GET", "/v2/one/blobs/uploads/"+id, nil, nil)
	e.expect(r, 204, "")
	if r.header.Get("Range") != "0-0" {
		t.Fatalf("range %q", r.header.Get("Range"))
	}
}

// pullDenied lets everything through except pulls from one repository.
type pullDenied struct{ repo string }

func (p pullDenied) Authorize(r *http.Request, repo string, a auth.Action) (auth.Principal, error) {
	if repo == p.repo && a == auth.ActionPull {
		return auth.Principal{}, auth.ErrDenied
	}
	return auth.Principal{Name: "test"}, nil
}

// TestMountNeedsReadableSource checks that a mount, with or without from,
// only takes a blob from a repository the client may pull from.
func TestMountNeedsReadableSource(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, registry.Options{Auth: pullDenied{repo: "secret"}})
		for _, n := range []string{"secret", "public", "mine"} {
			e.createRepo(n)
		}
		data := []byte("confidential layer")
		d := e.pushBlob("secret", data)
		// Neither an explicit nor an automatic mount reveals it.
		for _, q := range []string{"?mount=" + d.String() + "&from=secret", "?mount=" + d.String()} {
			r := e.do("POST", "/v2/mine/blobs/uploads/"+q, nil, nil)
			e.expect(r, 202, "")
		}
		e.expect(e.do("HEAD", "/v2/mine/blobs/"+d.String(), nil, nil), 404, "")
		// Once a readable repository holds it, the automatic mount works.
		e.pushBlob("public", data)
		r := e.do("POST", "/v2/mine/blobs/uploads/?mount="+d.String(), nil, nil)
		e.expect(r, 201, "")
		if got := e.do("GET", "/v2/mine/blobs/"+d.String(), nil, nil); !bytes.Equal(got.body, data) {
			t.Fatalf("mounted blob: %d %q", got.status, got.body)
		}
	})
}

// TestCatalogShowsOnlyPullableRepositories uses the real auth service: a
// principal allowed to pull team/* sees only those repositories in the
// catalog, page by page, and the admin sees all.
func TestCatalogShowsOnlyPullableRepositories(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc, err := auth.Open(ctx, db, auth.Options{})
		if err != nil {
			t.Fatal(err)
		}
		e := newEnv(t, db, registry.Options{Auth: svc, Challenge: svc.Challenge()})
		for _, n := range []string{"a/x", "team/a", "team/b", "z/y", "team/c"} {
			e.createRepo(n)
		}
		key, err := svc.CreateKey(ctx, "reader", []auth.Grant{{Action: auth.ActionPull, Pattern: "team/*"}})
		if err != nil {
			t.Fatal(err)
		}
		pw, err := auth.NewLoginPassword(key.ID, key.Secret, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("AWS:"+pw))
		var got []string
		path := "/v2/_catalog?n=2"
		for pages := 0; path != ""; pages++ {
			if pages > 5 {
				t.Fatal("catalog pages never end")
			}
			r := e.do("GET", path, map[string]string{"Authorization": basic}, nil)
			e.expect(r, 200, "")
			var page struct{ Repositories []string }
			if err := json.Unmarshal(r.body, &page); err != nil {
				t.Fatal(err)
			}
			got = append(got, page.Repositories...)
			path = ""
			if l := r.header.Get("Link"); l != "" {
				path = strings.TrimSuffix(strings.TrimPrefix(l, "<"), `>; rel="next"`)
			}
		}
		if strings.Join(got, " ") != "team/a team/b team/c" {
			t.Fatalf("catalog for team/* reader: %q", got)
		}
		// The reader may not pull elsewhere either.
		e.expect(e.do("GET", "/v2/z/y/tags/list", map[string]string{"Authorization": basic}, nil), 403, "DENIED")
		e.expect(e.do("GET", "/v2/team/a/tags/list", map[string]string{"Authorization": basic}, nil), 200, "")
	})
}

// TestStalledUploadIsReleased sends half a chunk and then nothing: after
// the idle timeout the request fails, the half chunk is rolled back and
// the upload is free for the client to resume.
func TestStalledUploadIsReleased(t *testing.T) {
	e := newEnv(t, storetest.SQLite(t), registry.Options{IdleTimeout: 300 * time.Millisecond})
	e.createRepo("slow")
	r := e.do("POST", "/v2/slow/blobs/uploads/", nil, nil)
	loc := r.header.Get("Location")
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: x\r\nContent-Range: 0-9\r\nContent-Length: 10\r\n\r\nhalf!", loc)
	// While the stalled request holds the upload, others are refused;
	// after the timeout a full chunk goes in from offset 0.
	deadline := time.Now().Add(15 * time.Second)
	sawBusy := false
	for {
		r := e.do("PATCH", loc, map[string]string{"Content-Range": "0-9"}, []byte("0123456789"))
		if r.status == http.StatusConflict {
			sawBusy = true
		} else {
			e.expect(r, 202, "")
			if r.header.Get("Range") != "0-9" {
				t.Fatalf("range after the stalled chunk: %q", r.header.Get("Range"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stalled upload was never released")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawBusy {
		t.Log("the stalled request timed out before the first retry")
	}
}
