package vulndb_test

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// expectedLookups computes, from the generic JSON of an OSV archive, the
// advisory ids that affect each (ecosystem, package), leaving out the
// withdrawn ones.
func expectedLookups(recs map[string]any) map[vulndb.Key][]string {
	out := map[vulndb.Key][]string{}
	for id, r := range recs {
		rec := r.(map[string]any)
		if _, withdrawn := rec["withdrawn"]; withdrawn {
			continue
		}
		affected, _ := rec["affected"].([]any)
		for _, af := range affected {
			pkg := af.(map[string]any)["package"].(map[string]any)
			k := vulndb.NewKey(pkg["ecosystem"].(string), pkg["name"].(string))
			if !slices.Contains(out[k], id) {
				out[k] = append(out[k], id)
			}
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func lookupIDs(s *vulndb.Snapshot, k vulndb.Key) []string {
	var ids []string
	for _, m := range s.Lookup(k) {
		if len(ids) == 0 || ids[len(ids)-1] != m.Advisory.ID {
			ids = append(ids, m.Advisory.ID)
		}
	}
	return ids
}

func checkLookups(t *testing.T, s *vulndb.Snapshot, want map[vulndb.Key][]string) {
	t.Helper()
	bad := 0
	for k, ids := range want {
		if got := lookupIDs(s, k); !slices.Equal(got, ids) {
			bad++
			if bad < 5 {
				t.Errorf("Lookup(%v) = %v, want %v", k, got, ids)
			}
		}
	}
	if s.Keys() != len(want) {
		t.Errorf("index has %d keys, the archive %d", s.Keys(), len(want))
	}
	if bad > 0 {
		t.Errorf("%d of %d keys wrong", bad, len(want))
	}
}

// TestIndexBuildAndPatch builds the index on the older Go snapshot, patches
// it with the change set of the newer one, and checks every key of both
// against the archives themselves.
func TestIndexBuildAndPatch(t *testing.T) {
	oldWant := expectedLookups(genericZip(t, "feeds/osv/Go/all-2026-06-26.zip"))
	newWant := expectedLookups(genericZip(t, "feeds/osv/Go/all.zip"))
	oldFeed := readOSV(t, "feeds/osv/Go/all-2026-06-26.zip", "osv-Go")
	newFeed := readOSV(t, "feeds/osv/Go/all.zip", "osv-Go")
	storetest.Each(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		db := openDB(t, st)
		apply(t, db, vulndb.SourceUpdate{Name: "osv-Go", Data: cloneFeed(oldFeed)})
		ix, err := vulndb.OpenIndex(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		before := ix.Snapshot()
		if before.Generation() != 1 || before.Len() != 3786 {
			t.Fatalf("generation %d, %d advisories", before.Generation(), before.Len())
		}
		checkLookups(t, before, oldWant)

		apply(t, db, vulndb.SourceUpdate{Name: "osv-Go", Data: cloneFeed(newFeed)})
		changed, err := ix.Refresh(ctx)
		if err != nil || !changed {
			t.Fatalf("refresh: %v %v", changed, err)
		}
		after := ix.Snapshot()
		if after.Generation() != 2 || after.Len() != 4291 {
			t.Fatalf("generation %d, %d advisories", after.Generation(), after.Len())
		}
		checkLookups(t, after, newWant)
		// The old snapshot is untouched by the patch.
		checkLookups(t, before, oldWant)
		if changed, err := ix.Refresh(ctx); changed || err != nil {
			t.Errorf("refresh without a new generation: %v %v", changed, err)
		}

		// A full rebuild agrees with the patched index entry by entry.
		fresh, err := vulndb.OpenIndex(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		for k := range newWant {
			a, b := after.Lookup(k), fresh.Lookup(k)
			if len(a) != len(b) {
				t.Fatalf("%v: patched %d matches, rebuilt %d", k, len(a), len(b))
			}
			for i := range a {
				if a[i].Advisory.ID != b[i].Advisory.ID || a[i].Affected.Package != b[i].Affected.Package ||
					!slices.Equal(a[i].Affected.Ranges[0].Events, b[i].Affected.Ranges[0].Events) {
					t.Fatalf("%v: match %d differs", k, i)
				}
			}
		}
	})
}

// TestIndexSameAdvisoryTwoSources: OSV publishes an advisory about packages
// of two ecosystems in both ecosystems' exports; a lookup returns it once,
// the most recently modified copy, and again when one source drops it.
func TestIndexSameAdvisoryTwoSources(t *testing.T) {
	mk := func(modified string) vulndb.Advisory {
		m, _ := time.Parse(time.RFC3339, modified)
		return vulndb.Advisory{ID: "GHSA-aaaa-bbbb-cccc", Modified: m, Aliases: []string{"CVE-2099-0001"}, Affected: []vulndb.Affected{
			{Ecosystem: "npm", Package: "left-pad", Ranges: []vulndb.Range{{Type: "SEMVER", Events: []vulndb.Event{{Introduced: "0"}, {Fixed: "1.3.0"}}}}},
			{Ecosystem: "Maven", Package: "org.example:pad", Ranges: []vulndb.Range{{Type: "ECOSYSTEM", Events: []vulndb.Event{{Introduced: "0"}, {Fixed: "2.0"}}}}},
		}}
	}
	storetest.Each(t, func(t *testing.T, st *store.DB) {
		ctx := context.Background()
		db := openDB(t, st)
		apply(t, db,
			vulndb.SourceUpdate{Name: "osv-npm", Data: &vulndb.FeedData{Advisories: []vulndb.Advisory{mk("2024-01-01T00:00:00Z")}}},
			vulndb.SourceUpdate{Name: "osv-Maven", Data: &vulndb.FeedData{Advisories: []vulndb.Advisory{mk("2024-02-01T00:00:00Z")}}},
			vulndb.SourceUpdate{Name: "kev", Data: &vulndb.FeedData{Enrichment: []vulndb.Enrichment{{CVE: "CVE-2099-0001", KEV: &vulndb.KEV{VulnerabilityName: "pad overflow"}}}}},
		)
		ix, err := vulndb.OpenIndex(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		s := ix.Snapshot()
		for _, k := range []vulndb.Key{vulndb.NewKey("npm", "left-pad"), vulndb.NewKey("Maven", "org.example:pad")} {
			ms := s.Lookup(k)
			if len(ms) != 1 || ms[0].Advisory.Source != "osv-Maven" {
				t.Errorf("Lookup(%v) = %d matches (%v)", k, len(ms), ms)
			}
		}
		if es := s.Enrichment(s.Lookup(vulndb.NewKey("npm", "left-pad"))[0].Advisory); len(es) != 1 || es[0].KEV == nil || es[0].KEV.VulnerabilityName != "pad overflow" {
			t.Errorf("enrichment %+v", es)
		}
		// osv-Maven drops it (and is small enough for the shrink check
		// not to apply): the npm copy takes over.
		apply(t, db, vulndb.SourceUpdate{Name: "osv-Maven", Data: &vulndb.FeedData{}})
		if _, err := ix.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		s = ix.Snapshot()
		if ms := s.LookupPackage("Maven", "org.example:pad"); len(ms) != 1 || ms[0].Advisory.Source != "osv-npm" {
			t.Errorf("after removal: %v", ms)
		}
		// Withdrawn: no longer returned.
		w := mk("2024-03-01T00:00:00Z")
		w.Withdrawn = w.Modified
		r := apply(t, db, vulndb.SourceUpdate{Name: "osv-npm", Data: &vulndb.FeedData{Advisories: []vulndb.Advisory{w}}})
		if c := r.ChangeSet.Changes; len(c) != 1 || c[0].Kind != vulndb.Withdrawn || len(c[0].Keys) != 2 {
			t.Errorf("withdrawal change %+v", c)
		}
		ix.Refresh(ctx)
		if ms := ix.Lookup(vulndb.NewKey("npm", "left-pad")); len(ms) != 0 {
			t.Errorf("withdrawn advisory still matched: %v", ms)
		}
		// A KEV change reaches the index.
		apply(t, db, vulndb.SourceUpdate{Name: "kev", Data: &vulndb.FeedData{Enrichment: []vulndb.Enrichment{{CVE: "CVE-2099-0001", KEV: &vulndb.KEV{VulnerabilityName: "renamed"}}}}})
		ix.Refresh(ctx)
		if e := ix.Snapshot().EnrichmentFor("CVE-2099-0001"); e == nil || e.KEV.VulnerabilityName != "renamed" {
			t.Errorf("enrichment after refresh %+v", e)
		}
	})
}

func TestNewKey(t *testing.T) {
	for _, c := range []struct{ eco, name, wantEco, wantName string }{
		{"PyPI", "Django_REST.framework", "PyPI", "django-rest-framework"},
		{"PyPI", "zope.interface", "PyPI", "zope-interface"},
		{"npm", "JSONStream", "npm", "JSONStream"},
		{"npm", "@Scope/Pkg", "npm", "@Scope/Pkg"},
		{"crates.io", "Serde_JSON", "crates.io", "serde-json"},
		{"NuGet", "Newtonsoft.Json", "NuGet", "newtonsoft.json"},
		{"Go", "github.com/BurntSushi/toml", "Go", "github.com/BurntSushi/toml"},
		{"Maven", "org.apache.logging.log4j:log4j-core", "Maven", "org.apache.logging.log4j:log4j-core"},
		{"Ubuntu:22.04:LTS", "openssl", "Ubuntu:22.04", "openssl"},
		{"Ubuntu:Pro:18.04:LTS", "openssl", "Ubuntu:Pro:18.04", "openssl"},
		{"Debian:12", "libssl3", "Debian:12", "libssl3"},
	} {
		if k := vulndb.NewKey(c.eco, c.name); k != (vulndb.Key{Ecosystem: c.wantEco, Package: c.wantName}) {
			t.Errorf("NewKey(%q, %q) = %v", c.eco, c.name, k)
		}
	}
}
