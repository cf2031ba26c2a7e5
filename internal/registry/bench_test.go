package registry_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// BenchmarkSmallBlobPush measures pushing 1 KiB blobs the way clients do
// (HEAD, POST, PUT), 8 at a time, against SQLite: the per-request cost of
// the handler, the store and the fsyncs of a commit.
func BenchmarkSmallBlobPush(b *testing.B) {
	db := storetest.SQLite(b)
	ctx := context.Background()
	if err := db.MigrateRegistry(ctx); err != nil {
		b.Fatal(err)
	}
	bs, err := blob.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Registry().CreateRepository(ctx, "bench/small", time.Now()); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Options{Store: db, Blobs: bs}))
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	do := func(method, url string, body []byte) *http.Response {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	var n atomic.Int64
	b.SetParallelism(4) // 8 workers on this 2-core machine
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 1024)
		for pb.Next() {
			_, _ = rand.Read(buf)
			d := digest.FromBytes(buf)
			do("HEAD", srv.URL+"/v2/bench/small/blobs/"+d.String(), nil)
			res := do("POST", srv.URL+"/v2/bench/small/blobs/uploads/", nil)
			res = do("PUT", srv.URL+res.Header.Get("Location")+"?digest="+d.String(), buf)
			if res.StatusCode != 201 {
				panic(fmt.Sprintf("PUT: %d", res.StatusCode))
			}
			n.Add(1)
		}
	})
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "blobs/s")
}

// BenchmarkLargeBlobPush measures a monolithic push (POST, then PUT with a
// 256 MiB body) through the HTTP handler: hashing, writing, fsync, commit.
func BenchmarkLargeBlobPush(b *testing.B) {
	const size = 256 << 20
	db := storetest.SQLite(b)
	ctx := context.Background()
	if err := db.MigrateRegistry(ctx); err != nil {
		b.Fatal(err)
	}
	bs, err := blob.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Registry().CreateRepository(ctx, "bench/large", time.Now()); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Options{Store: db, Blobs: bs}))
	defer srv.Close()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	d := digest.FromBytes(data)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := http.Post(srv.URL+"/v2/bench/large/blobs/uploads/", "", nil)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		req, _ := http.NewRequest("PUT", srv.URL+res.Header.Get("Location")+"?digest="+d.String(), bytes.NewReader(data))
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 201 {
			b.Fatalf("PUT: %d", res.StatusCode)
		}
		b.StopTimer()
		if err := bs.Delete(ctx, d, time.Now().Add(time.Hour), nil); err != nil {
			b.Fatal(err)
		}
		if _, err := db.SQL().ExecContext(ctx, `DELETE FROM registry_repository_blobs`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
