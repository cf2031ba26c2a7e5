package vulndb_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/fetch"
	"github.com/drydockhq/drydock/internal/vulndb/osv"
)

// feedServer serves one OSV archive at /all.zip with an ETag, and can be
// switched to other content, to failing with 500, or to hanging.
type feedServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	etag    string
	mode    string // "", "500", "hang"
	hits    atomic.Int64
	release chan struct{}
}

func newFeedServer(t *testing.T, body []byte) *feedServer {
	fs := &feedServer{body: body, etag: `"v1"`, release: make(chan struct{})}
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fs.hits.Add(1)
		fs.mu.Lock()
		body, etag, mode := fs.body, fs.etag, fs.mode
		fs.mu.Unlock()
		switch mode {
		case "500":
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		case "hang":
			select {
			case <-fs.release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		w.Write(body)
	}))
	t.Cleanup(func() { close(fs.release); fs.Close() })
	return fs
}

func (fs *feedServer) set(body []byte, etag, mode string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if body != nil {
		fs.body, fs.etag = body, etag
	}
	fs.mode = mode
}

func fixtureBytes(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstEntries rewrites an OSV zip keeping its first n records.
func firstEntries(t *testing.T, zipBytes []byte, n int) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range zr.File[:n] {
		rc, _ := f.Open()
		w, _ := zw.Create(f.Name)
		io.Copy(w, rc)
		rc.Close()
	}
	zw.Close()
	return b.Bytes()
}

func testClient(t *testing.T) *fetch.Client {
	return fetch.New(fetch.Options{TempDir: t.TempDir(), Retries: 1, Backoff: time.Millisecond, MaxBackoff: time.Millisecond,
		StallTimeout: 300 * time.Millisecond, Timeout: 10 * time.Second})
}

// TestSyncBadFeeds drives the download path against a local server
// serving the real Go archive: a fresh sync, an unchanged one (ETag), a
// server answering 500, one that hangs, a truncated archive, and a feed
// that shrinks to a quarter. Each failure is reported for its source and
// the good generation stays.
func TestSyncBadFeeds(t *testing.T) {
	goZip := fixtureBytes(t, "feeds/osv/Go/all.zip")
	storetest.Each(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		db := openDB(t, st)
		srv := newFeedServer(t, goZip)
		ix, err := vulndb.OpenIndex(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		syncer := &vulndb.Syncer{DB: db, Index: ix, Sources: []vulndb.SourceFeed{
			{Feed: osv.NewFeed("osv-Go", srv.URL+"/all.zip", testClient(t), osv.DefaultLimits), Kind: "osv", URL: srv.URL + "/all.zip"},
		}}
		sync := func(opts vulndb.SyncOptions) *vulndb.ApplyResult {
			t.Helper()
			res, err := syncer.Sync(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		good := func(what string) {
			t.Helper()
			if g, _ := db.Generation(ctx); g != 1 {
				t.Errorf("%s: generation %d, want the good generation 1", what, g)
			}
			if n := ix.Snapshot().Len(); n != 4291 {
				t.Errorf("%s: index holds %d advisories", what, n)
			}
			if ms := ix.Lookup(vulndb.NewKey("Go", "stdlib")); len(ms) < 100 {
				t.Errorf("%s: %d stdlib advisories", what, len(ms))
			}
		}

		res := sync(vulndb.SyncOptions{})
		if res.Generation != 1 || res.Sources[0].Outcome != vulndb.OutcomeChanged || res.Sources[0].Advisories != 4291 {
			t.Fatalf("first sync: %+v", res.Sources)
		}
		good("after the first sync")

		res = sync(vulndb.SyncOptions{})
		if res.Generation != 0 || res.Sources[0].Outcome != vulndb.OutcomeNotModified {
			t.Errorf("unchanged upstream: %+v", res.Sources)
		}

		for _, c := range []struct {
			name, mode string
			body       []byte
			outcome    string
			want       string
		}{
			{"500", "500", nil, vulndb.OutcomeFailed, "500"},
			{"hang", "hang", nil, vulndb.OutcomeFailed, ""},
			{"truncated", "", goZip[:len(goZip)/2], vulndb.OutcomeFailed, "zip"},
			{"shrunk", "", firstEntries(t, goZip, 1000), vulndb.OutcomeRefused, "shrank"},
		} {
			srv.set(c.body, `"`+c.name+`"`, c.mode)
			res := sync(vulndb.SyncOptions{})
			sr := res.Sources[0]
			if res.Generation != 0 || sr.Outcome != c.outcome || sr.Err == nil || !strings.Contains(sr.Err.Error(), c.want) {
				t.Errorf("%s: generation %d, outcome %s, err %v", c.name, res.Generation, sr.Outcome, sr.Err)
			}
			if len(res.Failed()) != 1 || res.Failed()[0].Name != "osv-Go" {
				t.Errorf("%s: failed sources %+v", c.name, res.Failed())
			}
			good(c.name)
			st, err := db.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			s := st.Sources[0]
			if !s.Failing() || s.Advisories != 4291 || s.LastSuccess.IsZero() {
				t.Errorf("%s: status %+v", c.name, s)
			}
		}
		if c, _ := db.Generations(ctx, 10); len(c) != 1 {
			t.Errorf("%d generations after the failures", len(c))
		}

		// The shrunk feed applied on purpose removes what it lost.
		res = sync(vulndb.SyncOptions{AllowShrink: true})
		if res.Generation != 2 || res.ChangeSet.Counts().Removed != 3291 || res.Sources[0].Advisories != 1000 {
			t.Errorf("allowed shrink: generation %d, counts %+v", res.Generation, res.ChangeSet.Counts())
		}
		if st, _ := db.Status(ctx); st.Sources[0].Failing() {
			t.Errorf("still failing after a success: %+v", st.Sources[0])
		}
		if n := ix.Snapshot().Len(); n != 1000 {
			t.Errorf("index holds %d advisories after the shrink", n)
		}
	})
}

// countingFeed serves fixed data and counts fetches.
type countingFeed struct {
	name    string
	data    *vulndb.FeedData
	fetches atomic.Int64
	fail    atomic.Bool
}

func (f *countingFeed) Name() string { return f.name }

func (f *countingFeed) Fetch(ctx context.Context, prev vulndb.FetchState) (*vulndb.FeedData, vulndb.FetchState, error) {
	f.fetches.Add(1)
	if f.fail.Load() {
		return nil, prev, errors.New("upstream unreachable")
	}
	return cloneFeed(f.data), vulndb.FetchState{Checksum: "x"}, nil
}

// TestRunSchedule: the scheduled sync runs at once on an empty database,
// then every interval; a failing feed is reported to onSync and leaves the
// generation alone.
func TestRunSchedule(t *testing.T) {
	st := storetest.SQLite(t)
	db := openDB(t, st)
	feed := &countingFeed{name: "osv-Go", data: readOSV(t, "feeds/osv/Go/all-2026-06-26.zip", "osv-Go")}
	syncer := &vulndb.Syncer{DB: db, Sources: []vulndb.SourceFeed{{Feed: feed, Kind: "osv"}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type attempt struct {
		res *vulndb.ApplyResult
		err error
	}
	attempts := make(chan attempt, 16)
	done := make(chan error, 1)
	go func() {
		done <- syncer.Run(ctx, 200*time.Millisecond, func(r *vulndb.ApplyResult, err error) { attempts <- attempt{r, err} })
	}()
	next := func() attempt {
		t.Helper()
		select {
		case a := <-attempts:
			return a
		case <-time.After(30 * time.Second):
			t.Fatal("no scheduled sync within 30s")
		}
		return attempt{}
	}
	a := next()
	if a.err != nil || a.res.Generation != 1 {
		t.Fatalf("first scheduled sync: %+v %v", a.res, a.err)
	}
	feed.fail.Store(true)
	a = next()
	if a.err != nil || len(a.res.Failed()) != 1 || a.res.Generation != 0 {
		t.Fatalf("failing scheduled sync: %+v %v", a.res, a.err)
	}
	if g, _ := db.Generation(context.Background()); g != 1 {
		t.Errorf("generation %d after a failed sync", g)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	// A fresh database is not due: Run waits for the interval first.
	feed.fail.Store(false)
	before := feed.fetches.Load()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	syncer.Run(ctx2, time.Hour, nil)
	if feed.fetches.Load() != before {
		t.Error("Run synced a database that is not due")
	}
}

// TestSyncIncrementalOverHTTP syncs the older Go archive then the newer
// one from a local server: the feed reads only the changed entries, and
// the change set is still exactly the archives' delta. A database out of
// step with the feed's memory (it holds fewer advisories under the same
// state) makes the sync fetch the feed again in full.
func TestSyncIncrementalOverHTTP(t *testing.T) {
	oldZip, newZip := fixtureBytes(t, "feeds/osv/Go/all-2026-06-26.zip"), fixtureBytes(t, "feeds/osv/Go/all.zip")
	storetest.Each(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		db := openDB(t, st)
		srv := newFeedServer(t, oldZip)
		feed := osv.NewFeed("osv-Go", srv.URL+"/all.zip", testClient(t), osv.DefaultLimits)
		syncer := &vulndb.Syncer{DB: db, Sources: []vulndb.SourceFeed{{Feed: feed, Kind: "osv"}}}
		if res, err := syncer.Sync(ctx, vulndb.SyncOptions{}); err != nil || res.Generation != 1 {
			t.Fatalf("first sync: %v %+v", err, res)
		}
		srv.set(newZip, `"v2"`, "")
		res, err := syncer.Sync(ctx, vulndb.SyncOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Generation != 2 || res.ChangeSet.Counts() != (vulndb.Counts{Added: 505, Modified: 16}) || res.Sources[0].Advisories != 4291 {
			t.Fatalf("incremental sync: generation %d, %+v, %+v", res.Generation, res.ChangeSet.Counts(), res.Sources[0])
		}

		// Another database whose osv-Go holds 100 advisories under the
		// state the feed remembers.
		st2 := openDB(t, storetest.SQLite(t))
		statuses, _ := db.Sources(ctx)
		small := readOSV(t, "feeds/osv/Go/all.zip", "osv-Go")
		small.Advisories = small.Advisories[:100]
		apply(t, st2, vulndb.SourceUpdate{Name: "osv-Go", Data: small, State: statuses[0].State})
		srv.set(firstEntries(t, newZip, 4290), `"v3"`, "")
		res, err = (&vulndb.Syncer{DB: st2, Sources: syncer.Sources}).Sync(ctx, vulndb.SyncOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Sources[0].Outcome != vulndb.OutcomeChanged || res.Sources[0].Advisories != 4290 || res.ChangeSet.Counts().Added != 4190 {
			t.Errorf("out-of-step database: %+v %+v", res.Sources[0], res.ChangeSet)
		}
	})
}
