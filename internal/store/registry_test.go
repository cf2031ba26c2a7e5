package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

func registryStore(t *testing.T, db *store.DB) *store.Registry {
	t.Helper()
	if err := db.MigrateRegistry(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Migrating twice changes nothing.
	if err := db.MigrateRegistry(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db.Registry()
}

func digestOf(s string) string { return "sha256:" + strings.Repeat(s, 64)[:64] }

// TestRegistryLifecycle walks a repository through blobs, manifests, tags,
// referrers, deletion and garbage collection on each backend.
func TestRegistryLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		reg := registryStore(t, db)
		t0 := time.UnixMilli(1_700_000_000_000)
		repo, err := reg.CreateRepository(ctx, "team/app", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.CreateRepository(ctx, "team/app", t0); !errors.Is(err, store.ErrRepositoryExists) {
			t.Fatalf("second create: %v", err)
		}
		if _, err := reg.Blob(ctx, "nope", digestOf("a")); !errors.Is(err, store.ErrRepositoryNotFound) {
			t.Fatalf("blob of missing repository: %v", err)
		}
		cfg, layer := digestOf("c"), digestOf("1")
		for _, d := range []string{cfg, layer} {
			if err := reg.CommitBlob(ctx, repo.ID, d, 10, t0); err != nil {
				t.Fatal(err)
			}
		}
		if size, err := reg.Blob(ctx, "team/app", layer); err != nil || size != 10 {
			t.Fatalf("blob: %d %v", size, err)
		}
		img := digestOf("m")
		put := store.ManifestPut{
			RepositoryID: repo.ID, Repository: "team/app", Digest: img,
			MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/vnd.oci.image.config.v1+json",
			Content: []byte(`{"m":1}`), Blobs: []store.BlobRef{{Digest: cfg, Size: 10}, {Digest: layer, Size: 10}}, Tags: []string{"v1", "latest"},
		}
		// A reference to a blob of another size, or an unknown one, fails
		// and stores nothing.
		bad := put
		bad.Blobs = []store.BlobRef{{Digest: cfg, Size: 11}}
		var re *store.RefError
		if err := reg.PutManifest(ctx, bad, t0); !errors.As(err, &re) || !re.SizeMismatch {
			t.Fatalf("size mismatch: %v", err)
		}
		bad.Blobs = []store.BlobRef{{Digest: digestOf("x"), Size: 1}}
		if err := reg.PutManifest(ctx, bad, t0); !errors.As(err, &re) || re.Kind != "blob" {
			t.Fatalf("unknown blob: %v", err)
		}
		if ev, _ := reg.Outbox(ctx, 0, 10); len(ev) != 0 {
			t.Fatalf("failed puts wrote %d events", len(ev))
		}
		if err := reg.PutManifest(ctx, put, t0); err != nil {
			t.Fatal(err)
		}
		m, err := reg.Manifest(ctx, "team/app", "latest", true, true)
		if err != nil || m.Digest != img || string(m.Content) != `{"m":1}` || !m.PushedAt.Equal(t0) || !m.LastPulledAt.IsZero() {
			t.Fatalf("manifest by tag: %+v %v", m, err)
		}
		if err := reg.RecordPull(ctx, repo.ID, img, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if m, _ := reg.Manifest(ctx, "team/app", img, false, false); m.Content != nil || !m.LastPulledAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("manifest by digest without content: %+v", m)
		}
		// An index whose child is missing fails; with the child it goes in.
		idx := store.ManifestPut{RepositoryID: repo.ID, Repository: "team/app", Digest: digestOf("i"),
			MediaType: "application/vnd.oci.image.index.v1+json", Content: []byte(`{"i":1}`), Manifests: []string{digestOf("z")}}
		if err := reg.PutManifest(ctx, idx, t0); !errors.As(err, &re) || re.Kind != "manifest" {
			t.Fatalf("index with missing child: %v", err)
		}
		idx.Manifests = []string{img}
		if err := reg.PutManifest(ctx, idx, t0); err != nil {
			t.Fatal(err)
		}
		// Two referrers of different artifact types.
		for i, at := range []string{"application/x.sig", "application/x.sbom"} {
			ref := store.ManifestPut{RepositoryID: repo.ID, Repository: "team/app", Digest: digestOf(string(rune('r' + i))),
				MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: at, Content: []byte(at),
				Subject: img, Annotations: map[string]string{"k": at}, Blobs: []store.BlobRef{{Digest: cfg, Size: 10}}}
			if err := reg.PutManifest(ctx, ref, t0); err != nil {
				t.Fatal(err)
			}
		}
		all, err := reg.Referrers(ctx, "team/app", img, "")
		if err != nil || len(all) != 2 {
			t.Fatalf("referrers: %+v %v", all, err)
		}
		sigs, err := reg.Referrers(ctx, "team/app", img, "application/x.sig")
		if err != nil || len(sigs) != 1 || sigs[0].Annotations["k"] != "application/x.sig" || sigs[0].Size != int64(len("application/x.sig")) {
			t.Fatalf("filtered referrers: %+v %v", sigs, err)
		}
		// Tags page in byte order.
		if tags, err := reg.Tags(ctx, "team/app", "", 1); err != nil || len(tags) != 1 || tags[0] != "latest" {
			t.Fatalf("tags page 1: %v %v", tags, err)
		}
		if tags, err := reg.Tags(ctx, "team/app", "latest", 5); err != nil || len(tags) != 1 || tags[0] != "v1" {
			t.Fatalf("tags page 2: %v %v", tags, err)
		}
		if ev, _ := reg.Outbox(ctx, 0, 10); len(ev) != 4 || ev[0].Kind != store.OutboxImagePushed {
			t.Fatalf("outbox: %d events", len(ev))
		}

		// Nothing referenced is pruned, however old.
		later := t0.Add(48 * time.Hour)
		if n, err := reg.PruneBlobLinks(ctx, later); err != nil || n != 0 {
			t.Fatalf("prune links with everything referenced: %d %v", n, err)
		}
		// Deleting a tag keeps the manifest; deleting the manifest drops
		// its other tags, and its blobs become collectable (except cfg,
		// still referenced by the referrers).
		if err := reg.DeleteTag(ctx, "team/app", "v1"); err != nil {
			t.Fatal(err)
		}
		if err := reg.DeleteTag(ctx, "team/app", "v1"); !errors.Is(err, store.ErrTagNotFound) {
			t.Fatalf("second tag delete: %v", err)
		}
		if err := reg.DeleteManifest(ctx, "team/app", img); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Manifest(ctx, "team/app", "latest", true, false); !errors.Is(err, store.ErrManifestNotFound) {
			t.Fatalf("tag of deleted manifest: %v", err)
		}
		if n, err := reg.PruneBlobLinks(ctx, t0); err != nil || n != 0 {
			t.Fatalf("prune links inside the window: %d %v", n, err)
		}
		if n, err := reg.PruneBlobLinks(ctx, later); err != nil || n != 1 {
			t.Fatalf("prune links after the window: %d %v", n, err)
		}
		gone, err := reg.PruneBlobs(ctx, later)
		if err != nil || len(gone) != 1 || gone[0] != layer {
			t.Fatalf("prune blobs: %v %v", gone, err)
		}
		if ok, _ := reg.BlobRecorded(ctx, cfg); !ok {
			t.Fatal("referenced config blob pruned")
		}
		// Mounting needs a blob the registry still has.
		other, err := reg.CreateRepository(ctx, "other", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.MountBlob(ctx, other.ID, layer, "", later); !errors.Is(err, store.ErrBlobNotFound) {
			t.Fatalf("mount of pruned blob: %v", err)
		}
		if _, err := reg.MountBlob(ctx, other.ID, cfg, "nope", later); !errors.Is(err, store.ErrBlobNotFound) {
			t.Fatalf("mount from a repository without it: %v", err)
		}
		if size, err := reg.MountBlob(ctx, other.ID, cfg, "team/app", later); err != nil || size != 10 {
			t.Fatalf("mount: %d %v", size, err)
		}
		// Deleting a repository removes everything of it, and only of it.
		if err := reg.DeleteRepository(ctx, "team/app"); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Referrers(ctx, "team/app", img, ""); !errors.Is(err, store.ErrRepositoryNotFound) {
			t.Fatalf("referrers of deleted repository: %v", err)
		}
		if _, err := reg.Blob(ctx, "other", cfg); err != nil {
			t.Fatalf("mounted blob lost with the other repository: %v", err)
		}
		repos, err := reg.Repositories(ctx, "", 0)
		if err != nil || len(repos) != 1 || repos[0].Name != "other" {
			t.Fatalf("repositories: %+v %v", repos, err)
		}
	})
}

// TestCommitBlobBatches records blobs from many goroutines at once (they
// share transactions); entries that cannot be recorded (a repository that
// does not exist) fail alone.
func TestCommitBlobBatches(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		reg := registryStore(t, db)
		repo, err := reg.CreateRepository(ctx, "batch", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		const n = 40
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				id := repo.ID
				if i%10 == 3 {
					id = repo.ID + 1000 // no such repository
				}
				errs[i] = reg.CommitBlob(ctx, id, fmt.Sprintf("sha256:%064x", i), int64(i), time.Now())
			}(i)
		}
		wg.Wait()
		for i, err := range errs {
			bad := i%10 == 3
			if bad != (err != nil) {
				t.Fatalf("blob %d: err %v", i, err)
			}
			if bad {
				continue
			}
			size, err := reg.Blob(ctx, "batch", fmt.Sprintf("sha256:%064x", i))
			if err != nil || size != int64(i) {
				t.Fatalf("blob %d after batch: %d %v", i, size, err)
			}
		}
	})
}
