package events

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// TestPushDeliversImageAction pushes the real alpine:3.10 image with
// go-containerregistry into a Drydock registry and waits for the webhook
// to receive its ECR Image Action event from the running delivery loop.
func TestPushDeliversImageAction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := db.MigrateRegistry(ctx); err != nil {
			t.Fatal(err)
		}
		bs, err := blob.NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(registry.New(registry.Options{Store: db, Blobs: bs}))
		defer srv.Close()
		if _, err := db.Registry().CreateRepository(ctx, "team/alpine", time.Now()); err != nil {
			t.Fatal(err)
		}

		r := newReceiver(t, "push-secret", nil)
		s := newService(t, db, nil, Options{})
		addTarget(t, s, "pushes", r.srv.URL, "push-secret", `{"source":["aws.ecr"],"detail-type":["ECR Image Action"],"detail":{"repository-name":[{"prefix":"team/"}]}}`)
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, RunOptions{Poll: 20 * time.Millisecond}) }()

		archive := testutil.Fixture(t, "images/alpine-3.10-docker-archive.tar.gz")
		img, err := tarball.Image(func() (io.ReadCloser, error) {
			f, err := os.Open(archive)
			if err != nil {
				return nil, err
			}
			z, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{z, f}, nil
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/team/alpine:3.10", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		dg, _ := img.Digest()
		mt, _ := img.MediaType()

		deadline := time.Now().Add(60 * time.Second)
		for len(r.requests()) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no event received within 60 s of the push")
			}
			time.Sleep(10 * time.Millisecond) // polling the receiver with a deadline
		}
		got := r.requests()
		if len(got) != 1 || !got[0].sigOK {
			t.Fatalf("received %+v, want one signed event", got)
		}
		env := got[0].env
		var d map[string]any
		if err := json.Unmarshal(env.Detail, &d); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"action-type": "PUSH", "result": "SUCCESS", "repository-name": "team/alpine",
			"image-digest": dg.String(), "image-tag": "3.10", "manifest-media-type": string(mt),
		}
		for k, v := range want {
			if d[k] != v {
				t.Errorf("detail %s = %v, want %v", k, d[k], v)
			}
		}
		if env.Source != "aws.ecr" || env.DetailType != "ECR Image Action" || env.Version != "0" || env.ID != got[0].id || len(env.Resources) != 0 {
			t.Errorf("envelope %+v", env)
		}
		if _, err := time.Parse(time.RFC3339, env.Time); err != nil {
			t.Errorf("time %q: %v", env.Time, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
