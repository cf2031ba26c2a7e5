package index_test

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/apk"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// bumped is a cataloger whose version moved on.
type bumped struct{ index.Cataloger }

func (b bumped) Version() int { return b.Cataloger.Version() + 1 }

func cachedFlags(inv *index.Inventory) []bool {
	var out []bool
	for _, l := range inv.Layers {
		out = append(out, l.Cached)
	}
	return out
}

func TestLayerCache(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cache, err := index.NewStoreCache(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		// Opening twice (a second replica) is fine.
		if _, err := index.NewStoreCache(ctx, db); err != nil {
			t.Fatal(err)
		}
		base := fixtureLayer(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
		db318 := apkDB(t, "rootfs/alpine-minirootfs-3.18.9-x86_64.tar.gz")
		top := memLayer(gzipped(t, makeTar(t, tarFile{name: "lib/apk/db/installed", body: records(db318)[0] + "\n\n"})))
		ix := &index.Indexer{Catalogers: osCatalogers(), Cache: cache}

		first, err := ix.Index(ctx, &index.Image{Layers: []index.Layer{base}})
		if err != nil {
			t.Fatal(err)
		}
		second, err := ix.Index(ctx, &index.Image{Layers: []index.Layer{base}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cachedFlags(first), []bool{false}) || !reflect.DeepEqual(cachedFlags(second), []bool{true}) {
			t.Fatalf("cached: %v then %v", cachedFlags(first), cachedFlags(second))
		}
		if !reflect.DeepEqual(first.Packages, second.Packages) || !reflect.DeepEqual(first.OS, second.OS) || len(first.Packages) == 0 {
			t.Fatal("the cached result differs from the fresh one")
		}

		// An image on the same base costs only its own layer.
		derived, err := ix.Index(ctx, &index.Image{Layers: []index.Layer{base, top}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cachedFlags(derived), []bool{true, false}) || len(derived.Packages) != 1 {
			t.Fatalf("cached %v, %d packages", cachedFlags(derived), len(derived.Packages))
		}

		// A new cataloger version re-reads the layer.
		ix2 := &index.Indexer{Catalogers: []index.Cataloger{bumped{apk.New()}, osCatalogers()[0]}, Cache: cache}
		if ix2.CacheKey() == ix.CacheKey() {
			t.Fatal("the cataloger set key did not change")
		}
		again, err := ix2.Index(ctx, &index.Image{Layers: []index.Layer{base}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(cachedFlags(again), []bool{false}) {
			t.Fatalf("cached %v after a version bump", cachedFlags(again))
		}
		n, err := cache.Prune(ctx, ix2.CacheKey())
		if err != nil || n != 2 {
			t.Fatalf("pruned %d, %v", n, err)
		}

		// A damaged row is read around, not trusted.
		if _, err := db.ExecContext(ctx, `UPDATE index_layers SET result = ?`, []byte("not zstd")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := cache.Get(ctx, base.Digest, ix2.CacheKey()); err == nil {
			t.Error("damaged row decoded")
		}
		healed, err := ix2.Index(ctx, &index.Image{Layers: []index.Layer{base}})
		if err != nil || healed.Layers[0].Cached || len(healed.Packages) != len(first.Packages) {
			t.Fatalf("%v %+v", err, healed.Layers)
		}

		// Concurrent writers of the same layer leave one row.
		errs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			go func() {
				res, _, err := ix.IndexLayer(ctx, base)
				if err == nil {
					err = cache.Put(ctx, base.Digest, ix.CacheKey(), res)
				}
				errs <- err
			}()
		}
		for i := 0; i < 4; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		var rows int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM index_layers WHERE digest = ?`, base.Digest).Scan(&rows); err != nil || rows != 2 {
			t.Fatalf("%d rows, %v", rows, err)
		}
	})
}
