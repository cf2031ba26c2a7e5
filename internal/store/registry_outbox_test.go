package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// TestDeleteEventsInOutbox: deleting a tag, a manifest and a repository
// each write their outbox event in the same
// transaction, with what the consumers need (the deleted manifest's media
// types and tags; the repository's digests); a failed delete writes none.
func TestDeleteEventsInOutbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		reg := registryStore(t, db)
		t0 := time.UnixMilli(1_700_000_000_000)
		repo, err := reg.CreateRepository(ctx, "team/app", t0)
		if err != nil {
			t.Fatal(err)
		}
		// A repository created on a first push is announced, once; the
		// ECR API records its CreateRepository with
		// RecordRepositoryCreatedTx; CreateRepository itself (drydock repo
		// create, tests) announces nothing.
		for range 2 {
			if _, err := reg.EnsureRepository(ctx, "team/other", t0); err != nil {
				t.Fatal(err)
			}
		}
		cfg, layer := digestOf("c"), digestOf("1")
		for _, d := range []string{cfg, layer} {
			if err := reg.CommitBlob(ctx, repo.ID, d, 10, t0); err != nil {
				t.Fatal(err)
			}
		}
		put := func(d string, tags ...string) {
			t.Helper()
			if err := reg.PutManifest(ctx, store.ManifestPut{RepositoryID: repo.ID, Repository: "team/app", Digest: d,
				MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/vnd.oci.image.config.v1+json",
				Content: []byte(d), Blobs: []store.BlobRef{{Digest: cfg, Size: 10}, {Digest: layer, Size: 10}}, Tags: tags}, t0); err != nil {
				t.Fatal(err)
			}
		}
		a, b := digestOf("a"), digestOf("b")
		put(a, "v2", "latest", "v1")
		put(b)
		before := len(outboxKinds(t, reg))
		if err := reg.DeleteManifest(ctx, "team/app", digestOf("f")); !errors.Is(err, store.ErrManifestNotFound) {
			t.Fatalf("delete of a missing manifest: %v", err)
		}
		if err := reg.DeleteManifest(ctx, "nope", a); !errors.Is(err, store.ErrRepositoryNotFound) {
			t.Fatalf("delete in a missing repository: %v", err)
		}
		if n := len(outboxKinds(t, reg)); n != before {
			t.Fatalf("failed deletes wrote %d events", n-before)
		}
		// A tag removed from an image that stays.
		if err := reg.DeleteTag(ctx, "team/app", "v2"); err != nil {
			t.Fatal(err)
		}
		if err := reg.DeleteTag(ctx, "team/app", "v2"); !errors.Is(err, store.ErrTagNotFound) {
			t.Fatalf("second tag delete: %v", err)
		}
		if err := reg.DeleteManifest(ctx, "team/app", a); err != nil {
			t.Fatal(err)
		}
		if err := reg.DeleteRepository(ctx, "team/app"); err != nil {
			t.Fatal(err)
		}
		evs, err := reg.Outbox(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range evs {
			kinds = append(kinds, e.Kind)
		}
		want := []string{store.OutboxRepositoryCreated, store.OutboxImagePushed,
			store.OutboxImagePushed, store.OutboxTagDeleted, store.OutboxImageDeleted, store.OutboxRepositoryDeleted}
		if !reflect.DeepEqual(kinds, want) {
			t.Fatalf("outbox kinds %v, want %v", kinds, want)
		}
		var created store.RepositoryCreated
		if err := json.Unmarshal(evs[0].Payload, &created); err != nil || created.Repository != "team/other" {
			t.Fatalf("repository created: %s %v", evs[0].Payload, err)
		}
		var untag store.ImageDeleted
		if err := json.Unmarshal(evs[3].Payload, &untag); err != nil {
			t.Fatal(err)
		}
		wantUntag := store.ImageDeleted{Repository: "team/app", Digest: a, MediaType: "application/vnd.oci.image.manifest.v1+json",
			ArtifactType: "application/vnd.oci.image.config.v1+json", Tags: []string{"v2"}, DeletedAt: untag.DeletedAt}
		if !reflect.DeepEqual(untag, wantUntag) {
			t.Fatalf("tag deleted %+v, want %+v", untag, wantUntag)
		}
		var del store.ImageDeleted
		if err := json.Unmarshal(evs[4].Payload, &del); err != nil {
			t.Fatal(err)
		}
		wantDel := store.ImageDeleted{Repository: "team/app", Digest: a, MediaType: "application/vnd.oci.image.manifest.v1+json",
			ArtifactType: "application/vnd.oci.image.config.v1+json", Tags: []string{"latest", "v1"}, DeletedAt: del.DeletedAt}
		if !reflect.DeepEqual(del, wantDel) {
			t.Fatalf("image deleted %+v, want %+v", del, wantDel)
		}
		if _, err := time.Parse(time.RFC3339Nano, del.DeletedAt); err != nil {
			t.Fatalf("deletedAt: %v", err)
		}
		var rd store.RepositoryDeleted
		if err := json.Unmarshal(evs[5].Payload, &rd); err != nil || rd.Repository != "team/app" || !reflect.DeepEqual(rd.Digests, []string{b}) {
			t.Fatalf("repository deleted: %s %v", evs[5].Payload, err)
		}
	})
}

// outboxKinds lists the kinds of the registry outbox's events.
func outboxKinds(t *testing.T, reg *store.Registry) []string {
	t.Helper()
	evs, err := reg.Outbox(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}
