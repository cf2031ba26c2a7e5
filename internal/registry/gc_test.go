package registry_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// countBlobFiles counts the files of a filesystem blob store.
func countBlobFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(filepath.Join(root, "blobs"), func(_ string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestGCRacesPushes runs the garbage collector in a loop, with no safety
// window at all, while clients push images; every image whose push was
// acknowledged must stay whole, and a final collection must leave exactly
// the blobs those images reference.
func TestGCRacesPushes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.MigrateRegistry(ctx); err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		bs, err := blob.NewFS(root)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(registry.New(registry.Options{Store: db, Blobs: bs}))
		defer srv.Close()
		host := strings.TrimPrefix(srv.URL, "http://")
		if _, err := db.Registry().CreateRepository(ctx, "gc/race", time.Now()); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var acked []v1.Image
		var done atomic.Bool
		// ackedOne receives a token per acknowledged push.
		ackedOne := make(chan struct{}, 1)
		stop := make(chan struct{})
		gcErr := make(chan error, 1)
		go func() {
			runs, sinceAck, yields := 0, 0, 0
			for !done.Load() {
				if _, err := registry.CollectGarbage(ctx, db, bs, registry.GCOptions{}); err != nil {
					gcErr <- err
					return
				}
				runs++
				sinceAck++
				select {
				case <-ackedOne:
					sinceAck = 0
				default:
				}
				// With no window, whether any push slips between two
				// collections depends on timing (the race detector slows
				// pushes down). So that the acknowledged path is always
				// exercised, a collector that broke every push of its last
				// 20 runs lets one push through, then races again.
				if sinceAck >= 20 {
					yields++
					select {
					case <-ackedOne:
					case <-stop:
					}
					sinceAck = 0
					continue
				}
				// Pace the collector (this is load, not a wait for state):
				// flat out it would catch every push between its requests.
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("%d collections during the pushes (%d pauses to let a push through)", runs, yields)
			gcErr <- nil
		}()
		var wg sync.WaitGroup
		var failed, ackedCount atomic.Int64
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				// Push until enough images got through the collector (with
				// no window many do not), or give up after many attempts.
				for i := 0; i < 200 && ackedCount.Load() < 9; i++ {
					img, err := random.Image(64<<10, 2)
					if err != nil {
						t.Error(err)
						return
					}
					ref, _ := name.ParseReference(fmt.Sprintf("%s/gc/race:w%d-%d", host, w, i), name.Insecure)
					if err := remote.Write(ref, img); err != nil {
						failed.Add(1) // a zero window may break a push in flight
						continue
					}
					mu.Lock()
					acked = append(acked, img)
					mu.Unlock()
					ackedCount.Add(1)
					select {
					case ackedOne <- struct{}{}:
					default:
					}
				}
			}(w)
		}
		wg.Wait()
		done.Store(true)
		close(stop)
		if err := <-gcErr; err != nil {
			t.Fatalf("gc: %v", err)
		}
		if _, err := registry.CollectGarbage(ctx, db, bs, registry.GCOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d pushes acknowledged, %d broken by the zero window", len(acked), failed.Load())
		if len(acked) == 0 {
			t.Fatal("no push survived")
		}
		wantBlobs := map[v1.Hash]bool{}
		for _, img := range acked {
			d, _ := img.Digest()
			ref, _ := name.ParseReference(host+"/gc/race@"+d.String(), name.Insecure)
			got, err := remote.Image(ref)
			if err != nil {
				t.Fatalf("acknowledged image %s lost: %v", d, err)
			}
			if err := validateImage(got); err != nil {
				t.Fatalf("acknowledged image %s damaged: %v", d, err)
			}
			m, _ := img.Manifest()
			wantBlobs[m.Config.Digest] = true
			for _, l := range m.Layers {
				wantBlobs[l.Digest] = true
			}
		}
		// Failed pushes may have left manifests of their own; count the
		// blobs all stored manifests reference instead of only the acked.
		tags, err := remote.List(mustRepo(t, host+"/gc/race"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			ref, _ := name.ParseReference(host+"/gc/race:"+tag, name.Insecure)
			img, err := remote.Image(ref)
			if err != nil {
				t.Fatalf("tag %s: %v", tag, err)
			}
			m, _ := img.Manifest()
			wantBlobs[m.Config.Digest] = true
			for _, l := range m.Layers {
				wantBlobs[l.Digest] = true
			}
		}
		if got := countBlobFiles(t, root); got != len(wantBlobs) {
			t.Fatalf("%d blob files after collection, %d referenced", got, len(wantBlobs))
		}
	})
}

func mustRepo(t *testing.T, s string) name.Repository {
	r, err := name.NewRepository(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var gcLineRE = regexp.MustCompile(`removed (\d+) abandoned uploads, (\d+) unreferenced blob links, (\d+) blobs`)

// TestGCCommand runs `drydock gc` beside a running server: with a safety
// window it removes nothing recent; without one it removes exactly an
// abandoned upload, a deleted image's blobs and a lone blob, and the kept
// image stays whole.
func TestGCCommand(t *testing.T) {
	dataDir := t.TempDir()
	drydock(t, "repo", "create", "--data-dir", dataDir, "gc/app")
	srv := startServer(t, dataDir)
	pw := srv.password(t)
	auth := remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw})
	push := func(tag string) v1.Image {
		img, err := random.Image(32<<10, 1)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(srv.Host+"/gc/app:"+tag, name.Insecure)
		if err := remote.Write(ref, img, auth); err != nil {
			t.Fatal(err)
		}
		return img
	}
	api := func(method, path string, hdr map[string]string, body []byte) *http.Response {
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		req.SetBasicAuth("AWS", pw)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	keep := push("keep")
	gone := push("gone")
	goneDigest, _ := gone.Digest()
	if res := api("DELETE", "/v2/gc/app/manifests/"+goneDigest.String(), nil, nil); res.StatusCode != 202 {
		t.Fatalf("delete manifest: %d", res.StatusCode)
	}
	lone := []byte("a blob no manifest references")
	loneDigest := digest.FromBytes(lone)
	if res := api("POST", "/v2/gc/app/blobs/uploads/?digest="+loneDigest.String(), nil, lone); res.StatusCode != 201 {
		t.Fatalf("push lone blob: %d", res.StatusCode)
	}
	res := api("POST", "/v2/gc/app/blobs/uploads/", nil, nil)
	upload := res.Header.Get("Location")
	if res := api("PATCH", upload, nil, []byte("abandoned half")); res.StatusCode != 202 {
		t.Fatalf("patch: %d", res.StatusCode)
	}
	blobRoot := filepath.Join(dataDir, "blobs")
	before := countBlobFiles(t, blobRoot)
	if before != 5 {
		t.Fatalf("%d blob files before gc, want 5 (2 images of config+layer, 1 lone blob)", before)
	}

	gcOut := func(minAge string) []string {
		out := drydock(t, "gc", "--data-dir", dataDir, "--min-age", minAge)
		m := gcLineRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("gc output: %q", out)
		}
		return m[1:]
	}
	if got := gcOut("1h"); strings.Join(got, " ") != "0 0 0" {
		t.Fatalf("gc --min-age 1h removed %v, want nothing", got)
	}
	if n := countBlobFiles(t, blobRoot); n != before {
		t.Fatalf("gc with a window removed files: %d -> %d", before, n)
	}
	if got := gcOut("0s"); strings.Join(got, " ") != "1 3 3" {
		t.Fatalf("gc --min-age 0s removed uploads/links/blobs %v, want 1 3 3", got)
	}
	if n := countBlobFiles(t, blobRoot); n != 2 {
		t.Fatalf("%d blob files after gc, want the kept image's 2", n)
	}
	if res := api("GET", upload, nil, nil); res.StatusCode != 404 {
		t.Fatalf("abandoned upload after gc: %d", res.StatusCode)
	}
	if res := api("HEAD", "/v2/gc/app/blobs/"+loneDigest.String(), nil, nil); res.StatusCode != 404 {
		t.Fatalf("lone blob after gc: %d", res.StatusCode)
	}
	kd, _ := keep.Digest()
	ref, _ := name.ParseReference(srv.Host+"/gc/app@"+kd.String(), name.Insecure)
	img, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatal(err)
	}
	if err := validateImage(img); err != nil {
		t.Fatalf("kept image after gc: %v", err)
	}
	// Pushing the deleted image again works: its blobs are uploaded anew.
	gref, _ := name.ParseReference(srv.Host+"/gc/app:again", name.Insecure)
	if err := remote.Write(gref, gone, auth); err != nil {
		t.Fatal(err)
	}
}
