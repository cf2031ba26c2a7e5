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

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
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
// It repeats this over several kills.
func TestKillMidPush(t *testing.T) {
	dataDir := t.TempDir()
	drydock(t, "repo", "create", "--data-dir", dataDir, "crash/app")
	rng := rand.New(rand.NewPCG(1, 2))
	var acked []pushed
	for cycle := 0; cycle < 4; cycle++ {
		srv := startServer(t, dataDir)
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
		srv2 := startServer(t, dataDir)
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
