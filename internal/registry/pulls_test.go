package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// countPullWrites installs a trigger that counts the rows whose
// last_pulled_at an UPDATE writes, and returns a reader of the count.
func countPullWrites(t *testing.T, db *store.DB) func() int {
	t.Helper()
	ctx := context.Background()
	stmts := []string{`CREATE TABLE test_pull_writes (n INTEGER NOT NULL)`, `INSERT INTO test_pull_writes VALUES (0)`}
	if db.Dialect() == store.Postgres {
		stmts = append(stmts, `CREATE FUNCTION test_count_pull() RETURNS trigger AS $$
			BEGIN UPDATE test_pull_writes SET n = n + 1; RETURN NEW; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER test_count_pull AFTER UPDATE OF last_pulled_at ON registry_manifests
			FOR EACH ROW EXECUTE FUNCTION test_count_pull()`)
	} else {
		stmts = append(stmts, `CREATE TRIGGER test_count_pull AFTER UPDATE OF last_pulled_at ON registry_manifests
			BEGIN UPDATE test_pull_writes SET n = n + 1; END`)
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return func() int {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT n FROM test_pull_writes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// refusePullWrites makes every write of last_pulled_at fail.
func refusePullWrites(t *testing.T, db *store.DB) {
	t.Helper()
	stmts := []string{`CREATE TRIGGER test_refuse_pull BEFORE UPDATE OF last_pulled_at ON registry_manifests
		BEGIN SELECT RAISE(ABORT, 'pull writes refused'); END`}
	if db.Dialect() == store.Postgres {
		stmts = []string{`CREATE FUNCTION test_refuse_pull() RETURNS trigger AS $$
			BEGIN RAISE EXCEPTION 'pull writes refused'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER test_refuse_pull BEFORE UPDATE OF last_pulled_at ON registry_manifests
			FOR EACH ROW EXECUTE FUNCTION test_refuse_pull()`}
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPullTimes: a manifest GET, by tag or digest, records the image's
// pull time; a HEAD does not (ECR counts pulls the same way); pulls within
// the record interval write nothing, however many run at once; and a
// failed record never fails the pull.
func TestPullTimes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.MigrateRegistry(ctx); err != nil {
			t.Fatal(err)
		}
		bs, err := blob.NewFS(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		serve := func(interval time.Duration) string {
			srv := httptest.NewServer(registry.New(registry.Options{Store: db, Blobs: bs, CreateOnPush: true, PullRecordInterval: interval}))
			t.Cleanup(srv.Close)
			return strings.TrimPrefix(srv.URL, "http://")
		}
		host := serve(time.Hour)
		writes := countPullWrites(t, db)
		img, err := random.Image(512, 2)
		if err != nil {
			t.Fatal(err)
		}
		tag, err := name.ParseReference(host + "/team/app:v1")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag, img); err != nil {
			t.Fatal(err)
		}
		dg, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		pulled := func() time.Time {
			t.Helper()
			m, err := db.Registry().Manifest(ctx, "team/app", dg.String(), false, false)
			if err != nil {
				t.Fatal(err)
			}
			return m.LastPulledAt
		}
		// The registry records after answering: poll for a record.
		waitPulled := func(after time.Time) time.Time {
			t.Helper()
			deadline := time.Now().Add(30 * time.Second)
			for {
				if p := pulled(); p.After(after) {
					return p
				}
				if time.Now().After(deadline) {
					t.Fatalf("no pull recorded after %v", after)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}

		// The push itself checked for the manifest with HEAD; HEAD again.
		if _, err := remote.Head(tag); err != nil {
			t.Fatal(err)
		}
		if p := pulled(); !p.IsZero() || writes() != 0 {
			t.Fatalf("HEAD recorded a pull: %v (%d writes)", p, writes())
		}

		// Fifty pulls at once of the never-pulled image: one write.
		before := time.Now().Add(-time.Millisecond)
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		start := make(chan struct{})
		client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 50, MaxIdleConnsPerHost: 50}}
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, err := http.NewRequest(http.MethodGet, "http://"+host+"/v2/team/app/manifests/v1", nil)
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Accept", string(types.OCIManifestSchema1)+", "+string(types.DockerManifestSchema2))
				<-start
				res, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("GET: %s", res.Status)
				}
			}()
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		first := waitPulled(before)
		if first.After(time.Now()) {
			t.Fatalf("pull recorded in the future: %v", first)
		}
		// By digest, within the interval: no write.
		byDigest := tag.Context().Digest(dg.String())
		if _, err := remote.Get(byDigest); err != nil {
			t.Fatal(err)
		}
		if n := writes(); n != 1 || !pulled().Equal(first) {
			t.Fatalf("%d writes for 51 pulls within the interval (last pull %v, first %v)", n, pulled(), first)
		}

		// Another replica with a short interval: a pull by digest moves
		// the time on.
		short := serve(time.Millisecond)
		for time.Since(first) < 2*time.Millisecond {
			time.Sleep(time.Millisecond)
		}
		other, err := name.ParseReference(short + "/team/app@" + dg.String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Get(other); err != nil {
			t.Fatal(err)
		}
		second := waitPulled(first)
		if writes() != 2 {
			t.Fatalf("%d writes, want 2", writes())
		}

		// A store that refuses the write: the pull still succeeds.
		refusePullWrites(t, db)
		for time.Since(second) < 2*time.Millisecond {
			time.Sleep(time.Millisecond)
		}
		res, err := http.Get("http://" + short + "/v2/team/app/manifests/v1")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Header.Get("Docker-Content-Digest") != dg.String() {
			t.Fatalf("pull with a failing record: %d %s", res.StatusCode, res.Header.Get("Docker-Content-Digest"))
		}
		if _, err := remote.Get(other); err != nil {
			t.Fatalf("pull with a failing record: %v", err)
		}
		if !pulled().Equal(second) {
			t.Fatalf("a refused write changed the pull time: %v, want %v", pulled(), second)
		}
	})
}
