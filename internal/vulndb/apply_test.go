package vulndb_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/osv"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

func openDB(t *testing.T, st *store.DB) *vulndb.DB {
	t.Helper()
	db, err := vulndb.Open(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func readOSV(t testing.TB, rel, source string) *vulndb.FeedData {
	t.Helper()
	fd, err := osv.ReadPath(context.Background(), testutil.Fixture(t, rel), source, osv.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(fd.Rejected) > 0 {
		t.Fatalf("%s: rejected %v", rel, fd.Rejected)
	}
	return fd
}

// genericZip decodes every record of an OSV zip into plain JSON values, by
// id, independently of the osv package.
func genericZip(t *testing.T, rel string) map[string]any {
	t.Helper()
	zr, err := zip.OpenReader(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string]any{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out[v["id"].(string)] = v
	}
	return out
}

func apply(t *testing.T, db *vulndb.DB, updates ...vulndb.SourceUpdate) *vulndb.ApplyResult {
	t.Helper()
	r, err := db.Apply(context.Background(), updates)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestGoSnapshotsChangeSet imports the two real Go snapshots in turn: the
// second generation's change set must hold exactly the advisories whose
// JSON differs between the two archives (505 added, 16 modified), computed
// here by diffing the archives, and readers running meanwhile must only
// ever see one whole generation.
func TestGoSnapshotsChangeSet(t *testing.T) {
	oldJSON := genericZip(t, "feeds/osv/Go/all-2026-06-26.zip")
	newJSON := genericZip(t, "feeds/osv/Go/all.zip")
	var wantAdded, wantModified []string
	for id, v := range newJSON {
		o, ok := oldJSON[id]
		switch {
		case !ok:
			wantAdded = append(wantAdded, id)
		case !reflect.DeepEqual(o, v):
			wantModified = append(wantModified, id)
		}
	}
	for id := range oldJSON {
		if _, ok := newJSON[id]; !ok {
			t.Fatalf("%s vanished between the snapshots; the fixture changed", id)
		}
	}
	sort.Strings(wantAdded)
	sort.Strings(wantModified)
	if len(wantAdded) != 505 || len(wantModified) != 16 {
		t.Fatalf("the fixture README promises 505 added and 16 modified; the archives differ by %d and %d", len(wantAdded), len(wantModified))
	}
	oldFeed := readOSV(t, "feeds/osv/Go/all-2026-06-26.zip", "osv-Go")
	newFeed := readOSV(t, "feeds/osv/Go/all.zip", "osv-Go")

	storetest.Each(t, func(t *testing.T, st *store.DB) {
		db := openDB(t, st)
		ctx := context.Background()
		r1 := apply(t, db, vulndb.SourceUpdate{Name: "osv-Go", Kind: "osv", Data: cloneFeed(oldFeed)})
		if r1.Generation != 1 || r1.ChangeSet.Counts() != (vulndb.Counts{Added: 3786}) {
			t.Fatalf("first import: generation %d, counts %+v", r1.Generation, r1.ChangeSet.Counts())
		}

		// Readers check that every snapshot they see is one whole
		// generation: 3,786 advisories in generation 1, 4,291 in 2.
		stop := make(chan struct{})
		var reads atomic.Int64
		var wg sync.WaitGroup
		var readErr error
		var once sync.Once
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					n := 0
					gen, err := db.ForEachAdvisory(ctx, func(*vulndb.Advisory) error { n++; return nil })
					if err == nil && !(gen == 1 && n == 3786 || gen == 2 && n == 4291) {
						err = errors.New("a reader saw generation " + itoa(gen) + " with " + itoa(int64(n)) + " advisories")
					}
					if err != nil {
						once.Do(func() { readErr = err })
						return
					}
					reads.Add(1)
				}
			}()
		}
		r2 := apply(t, db, vulndb.SourceUpdate{Name: "osv-Go", Kind: "osv", Data: cloneFeed(newFeed)})
		// Let the readers see the new generation too.
		deadline := time.Now().Add(30 * time.Second)
		for start := reads.Load(); reads.Load() < start+2 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		wg.Wait()
		if readErr != nil {
			t.Fatal(readErr)
		}

		if r2.Generation != 2 {
			t.Fatalf("second import made generation %d", r2.Generation)
		}
		stored, err := db.ChangeSet(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, cs := range []*vulndb.ChangeSet{r2.ChangeSet, stored} {
			var added, modified []string
			for _, c := range cs.Changes {
				switch c.Kind {
				case vulndb.Added:
					added = append(added, c.ID)
				case vulndb.Modified:
					modified = append(modified, c.ID)
					if len(c.Aspects) == 0 {
						t.Errorf("%s: modified without aspects", c.ID)
					}
				default:
					t.Errorf("%s: unexpected %s", c.ID, c.Kind)
				}
				if c.Source != "osv-Go" {
					t.Errorf("%s: source %s", c.ID, c.Source)
				}
				// The keys are the record's Go modules, as published.
				var want []vulndb.Key
				for _, af := range newJSON[c.ID].(map[string]any)["affected"].([]any) {
					pkg := af.(map[string]any)["package"].(map[string]any)
					k := vulndb.Key{Ecosystem: pkg["ecosystem"].(string), Package: pkg["name"].(string)}
					if !slices.Contains(want, k) {
						want = append(want, k)
					}
				}
				if c.Kind == vulndb.Added && !sameKeySet(c.Keys, want) {
					t.Errorf("%s: keys %v, record affects %v", c.ID, c.Keys, want)
				}
			}
			sort.Strings(added)
			sort.Strings(modified)
			if !slices.Equal(added, wantAdded) || !slices.Equal(modified, wantModified) {
				t.Errorf("change set: %d added, %d modified; want the archives' %d and %d", len(added), len(modified), len(wantAdded), len(wantModified))
			}
			if got := cs.Counts(); got != (vulndb.Counts{Added: 505, Modified: 16}) {
				t.Errorf("counts %+v", got)
			}
			if len(cs.Keys) == 0 {
				t.Error("change set touches no keys")
			}
		}

		// The same feed again changes nothing: no generation.
		r3 := apply(t, db, vulndb.SourceUpdate{Name: "osv-Go", Kind: "osv", Data: cloneFeed(newFeed)})
		if r3.Generation != 0 || r3.ChangeSet != nil || r3.Sources[0].Outcome != vulndb.OutcomeUnchanged {
			t.Errorf("unchanged feed: generation %d, outcome %s", r3.Generation, r3.Sources[0].Outcome)
		}
		if g, _ := db.Generation(ctx); g != 2 {
			t.Errorf("generation %d after an unchanged sync", g)
		}
		gens, err := db.Generations(ctx, 10)
		if err != nil || len(gens) != 2 || gens[0].Advisories != 4291 || gens[0].Sources["osv-Go"] != (vulndb.Counts{Added: 505, Modified: 16}) {
			t.Errorf("generations %+v, %v", gens, err)
		}
	})
}

func sameKeySet(a, b []vulndb.Key) bool {
	if len(a) != len(b) {
		return false
	}
	for _, k := range a {
		if !slices.Contains(b, k) {
			return false
		}
	}
	return true
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// cloneFeed copies the advisory slice, since Apply sets each advisory's
// Source.
func cloneFeed(fd *vulndb.FeedData) *vulndb.FeedData {
	c := *fd
	c.Advisories = slices.Clone(fd.Advisories)
	return &c
}
