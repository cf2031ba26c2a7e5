package registry_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/store/storetest"
)

// countingTransport counts request body bytes sent and calls trigger once
// when the count crosses a threshold: the kill follows the push's own
// progress rather than a clock.
type countingTransport struct {
	base      http.RoundTripper
	sent      atomic.Int64
	threshold int64
	once      sync.Once
	trigger   func()
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r = r.Clone(r.Context())
		r.Body = &countingBody{ReadCloser: r.Body, t: c}
	}
	return c.base.RoundTrip(r)
}

type countingBody struct {
	io.ReadCloser
	t *countingTransport
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.t.sent.Add(int64(n)) >= b.t.threshold {
		b.t.once.Do(b.t.trigger)
	}
	return n, err
}

// pushed is an image whose push the registry acknowledged.
type pushed struct {
	ref    string
	digest v1.Hash
}

// TestKillMidPush pushes images from several clients at once (some to the
// same tag), kills the server with SIGKILL at a point chosen by bytes sent,
// restarts it on the same data directory, and checks that every
// acknowledged image is served whole, that no manifest names a missing
// blob, and that every blob file on disk holds exactly its digest's bytes.
// It repeats this over several kills, on each metadata backend.
func TestKillMidPush(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { killMidPush(t, nil) })
	t.Run("postgres", func(t *testing.T) { killMidPush(t, []string{"--store", storetest.PostgresURL(t)}) })
}

func killMidPush(t *testing.T, storeFlags []string) {
	dataDir := t.TempDir()
	drydock(t, append([]string{"repo", "create", "--data-dir", dataDir, "crash/app"}, storeFlags...)...)
	rng := rand.New(rand.NewPCG(1, 2))
	var acked []pushed
	for cycle := 0; cycle < 4; cycle++ {
		srv := startServer(t, dataDir, storeFlags...)
		pw := srv.password(t)
		ct := &countingTransport{base: http.DefaultTransport, threshold: int64(1+rng.IntN(24)) << 20}
		ct.trigger = func() { go srv.kill() }
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < 3; w++ {
			wg.Add(1)
			wrng := rand.New(rand.NewPCG(uint64(cycle), uint64(w)))
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 500; i++ {
					img, err := random.Image(int64(256<<10+wrng.IntN(2<<20)), 1+int64(w))
					if err != nil {
						t.Error(err)
						return
					}
					// Worker 0 and 1 fight over one tag; worker 2 has its own.
					tag := fmt.Sprintf("shared-%d", cycle)
					if w == 2 {
						tag = fmt.Sprintf("w2-%d-%d", cycle, i)
					}
					ref, err := name.ParseReference(srv.Host+"/crash/app:"+tag, name.Insecure)
					if err != nil {
						t.Error(err)
						return
					}
					err = remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw}), remote.WithTransport(ct))
					if err != nil {
						return // the server died under us
					}
					d, _ := img.Digest()
					mu.Lock()
					acked = append(acked, pushed{ref: "crash/app@" + d.String(), digest: d})
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		srv.kill() // in case the pushes ended before the threshold
		<-srv.done
		t.Logf("cycle %d: killed after %d bytes sent; %d images acknowledged so far", cycle, ct.sent.Load(), len(acked))
		verifyBlobFiles(t, dataDir)
		srv2 := startServer(t, dataDir, storeFlags...)
		verifyServed(t, srv2, acked)
		srv2.stop()
	}
	if len(acked) == 0 {
		t.Fatal("no push was ever acknowledged: the kill came too early to test anything")
	}
}

// verifyBlobFiles checks that every file in the blob store hashes to the
// digest it is named after: no partial blob is ever visible.
func verifyBlobFiles(t *testing.T, dataDir string) {
	t.Helper()
	root := filepath.Join(dataDir, "blobs", "blobs", "sha256")
	n := 0
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != filepath.Base(p) {
			t.Errorf("blob file %s holds content with sha256 %s", p, got)
		}
		n++
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}

// verifyServed checks, through the API, that every acknowledged image and
// every tagged image is served whole: manifest, config and layers, each
// matching its digest.
func verifyServed(t *testing.T, srv *server, acked []pushed) {
	t.Helper()
	opt := remote.WithAuth(&authn.Basic{Username: "AWS", Password: srv.password(t)})
	check := func(refStr string) {
		ref, err := name.ParseReference(srv.Host+"/"+refStr, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(ref, opt)
		if err != nil {
			t.Errorf("%s not served after restart: %v", refStr, err)
			return
		}
		if err := validateImage(img); err != nil {
			t.Errorf("%s: %v", refStr, err)
		}
	}
	for _, p := range acked {
		check(p.ref)
	}
	repo, _ := name.NewRepository(srv.Host+"/crash/app", name.Insecure)
	tags, err := remote.List(repo, opt)
	if err != nil {
		t.Fatalf("list tags: %v", err)
	}
	for _, tag := range tags {
		check("crash/app:" + tag)
	}
}

// validateImage reads an image's config and layers and checks each against
// its digest and size.
func validateImage(img v1.Image) error {
	mt, err := img.MediaType()
	if err != nil {
		return err
	}
	if mt != types.DockerManifestSchema2 && mt != types.OCIManifestSchema1 {
		return fmt.Errorf("unexpected media type %s", mt)
	}
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if h, _, _ := v1.SHA256(bytes.NewReader(raw)); h != m.Config.Digest {
		return fmt.Errorf("config digest %s, want %s", h, m.Config.Digest)
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		d, _ := l.Digest()
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		h, n, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		if h != d {
			return fmt.Errorf("layer %s served content with digest %s", d, h)
		}
		if size, _ := l.Size(); size != n {
			return fmt.Errorf("layer %s: %d bytes, want %d", d, n, size)
		}
	}
	return nil
}

// TestKillMidChunkedUploadResumes kills the server while a chunk streams
// in, restarts it, and resumes the upload from the offset the upload
// status reports: the finished blob must be exactly the bytes sent.
func TestKillMidChunkedUploadResumes(t *testing.T) {
	dataDir := t.TempDir()
	drydock(t, "repo", "create", "--data-dir", dataDir, "crash/resume")
	srv := startServer(t, dataDir)
	pw := srv.password(t)
	data := make([]byte, 24<<20)
	for i := range data {
		data[i] = byte(i * 7 % 251)
	}
	call := func(s *server, method, path, crange string, body io.Reader, n int64) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, body)
		req.SetBasicAuth("AWS", pw)
		req.ContentLength = n
		if crange != "" {
			req.Header.Set("Content-Range", crange)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	res := call(srv, "POST", "/v2/crash/resume/blobs/uploads/", "", nil, 0)
	loc := res.Header.Get("Location")
	first := int64(1 << 20)
	if res := call(srv, "PATCH", loc, fmt.Sprintf("0-%d", first-1), bytes.NewReader(data[:first]), first); res.StatusCode != 202 {
		t.Fatalf("first chunk: %d", res.StatusCode)
	}
	// The second chunk announces the rest but only half arrives before the
	// kill.
	pr, pwr := io.Pipe()
	go func() {
		req, _ := http.NewRequest("PATCH", srv.URL+loc, pr)
		req.SetBasicAuth("AWS", pw)
		req.ContentLength = int64(len(data)) - first
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", first, len(data)-1))
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	sent := first + 8<<20
	if _, err := pwr.Write(data[first:sent]); err != nil {
		t.Fatal(err)
	}
	status := func(s *server) int64 {
		res := call(s, "GET", loc, "", nil, 0)
		if res.StatusCode != 204 {
			t.Fatalf("upload status: %d", res.StatusCode)
		}
		var end int64
		if _, err := fmt.Sscanf(res.Header.Get("Range"), "0-%d", &end); err != nil {
			t.Fatalf("range %q", res.Header.Get("Range"))
		}
		return end + 1
	}
	deadline := time.Now().Add(30 * time.Second)
	for status(srv) <= first {
		if time.Now().After(deadline) {
			t.Fatal("the second chunk never reached the upload")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.kill()
	pwr.CloseWithError(io.ErrClosedPipe)

	srv2 := startServer(t, dataDir)
	have := status(srv2)
	if have < first || have > sent {
		t.Fatalf("after restart the upload holds %d bytes; %d were sent", have, sent)
	}
	d := digest.FromBytes(data)
	if res := call(srv2, "HEAD", "/v2/crash/resume/blobs/"+d.String(), "", nil, 0); res.StatusCode != 404 {
		t.Fatalf("unfinished blob visible: %d", res.StatusCode)
	}
	rest := int64(len(data)) - have
	res = call(srv2, "PUT", loc+"?digest="+d.String(), fmt.Sprintf("%d-%d", have, len(data)-1), bytes.NewReader(data[have:]), rest)
	if res.StatusCode != 201 {
		t.Fatalf("resumed upload: %d", res.StatusCode)
	}
	req, _ := http.NewRequest("GET", srv2.URL+"/v2/crash/resume/blobs/"+d.String(), nil)
	req.SetBasicAuth("AWS", pw)
	got, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	b, _ := io.ReadAll(got.Body)
	if !bytes.Equal(b, data) {
		t.Fatalf("resumed blob differs (%d bytes)", len(b))
	}
}
