package scan_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// BenchmarkPushToFindings measures the time from the start of a manifest
// PUT to the scan's COMPLETE status, for the Debian bookworm minbase image
// (88 dpkg packages) plus a small unique top layer per iteration, so each
// iteration is a new image whose base layer comes from the layer cache
// (as for most pushes). Blobs are uploaded before the clock starts. The
// push poll interval is the default (200 ms) or 20 ms.
func BenchmarkPushToFindings(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *store.DB
	}{{"sqlite", storetest.SQLite}, {"postgres", storetest.Postgres}} {
		for _, poll := range []time.Duration{200 * time.Millisecond, 20 * time.Millisecond} {
			b.Run(backend.name+"/poll="+poll.String(), func(b *testing.B) { benchPushToFindings(b, backend.open(b), poll) })
		}
	}
}

func benchPushToFindings(b *testing.B, db *store.DB, poll time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newIdleStack(b, db, scan.QueueOptions{})
	done := make(chan error, 1)
	go func() { done <- s.svc.Run(ctx, scan.RunOptions{PushPoll: poll}) }()
	defer func() { cancel(); <-done }()
	if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Basic, Rules: []scan.Rule{
		{ScanFrequency: scan.ScanOnPush, RepositoryFilters: []scan.Filter{{Filter: "*", FilterType: scan.FilterWildcard}}},
	}}); err != nil {
		b.Fatal(err)
	}
	base, err := tarball.LayerFromFile(testutil.Fixture(b, "rootfs/debian-bookworm-12.15-minbase-amd64-rootfs.tar.gz"))
	if err != nil {
		b.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, base)
	if err != nil {
		b.Fatal(err)
	}
	ref, err := name.ParseReference(s.host + "/bench/debian:v")
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		top := uniqueLayer(b)
		im, err := mutate.AppendLayers(img, top)
		if err != nil {
			b.Fatal(err)
		}
		if err := remote.WriteLayer(ref.Context(), top); err != nil {
			b.Fatal(err)
		}
		dg, err := im.Digest()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := remote.Write(ref, im); err != nil {
			b.Fatal(err)
		}
		for {
			st, err := s.svc.ScanStatus(ctx, "bench/debian", dg.String())
			if err == nil && st.Status == scan.StatusComplete {
				break
			}
			if err == nil && st.Status == scan.StatusFailed {
				b.Fatalf("scan failed: %s", st.Description)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func uniqueLayer(b *testing.B) v1.Layer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	data := make([]byte, 64)
	_, _ = rand.Read(data)
	if err := tw.WriteHeader(&tar.Header{Name: "etc/unique", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		b.Fatal(err)
	}
	_, _ = tw.Write(data)
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		b.Fatal(err)
	}
	return l
}
