// Package regtest starts what scanning tests stand on: a registry on a
// throwaway blob store, served on 127.0.0.1 until the test ends, and a
// vulnerability database holding the Alpine 3.10 secdb fixture.
package regtest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/testutil/vulntest"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// Registry migrates db's registry domain and serves an open registry
// (repositories created on push, no authentication) on a blob store in
// the test's temporary directory. It returns the blob store and the
// server's host:port.
func Registry(t testing.TB, db *store.DB) (*blob.FS, string) {
	t.Helper()
	if err := db.MigrateRegistry(context.Background()); err != nil {
		t.Fatal(err)
	}
	bs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Options{Store: db, Blobs: bs, CreateOnPush: true}))
	t.Cleanup(srv.Close)
	return bs, strings.TrimPrefix(srv.URL, "http://")
}

// DeleteManifest deletes repo@digest through the registry at host, as a
// client does, and fails the test unless the registry accepts it.
func DeleteManifest(t testing.TB, host, repo, digest string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/"+repo+"/manifests/"+digest, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE manifest %s@%s: %s", repo, digest, resp.Status)
	}
}

// AlpineVulns applies the Alpine 3.10 secdb fixture to db's vulnerability
// database and returns the database, its lookup index and the feed.
func AlpineVulns(t testing.TB, db *store.DB) (*vulndb.DB, *vulndb.Index, *vulndb.FeedData) {
	t.Helper()
	ctx := context.Background()
	vdb, err := vulndb.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	u := vulntest.AlpineSecdb(t)
	if _, err := vdb.Apply(ctx, []vulndb.SourceUpdate{u}); err != nil {
		t.Fatal(err)
	}
	vix, err := vulndb.OpenIndex(ctx, vdb)
	if err != nil {
		t.Fatal(err)
	}
	return vdb, vix, u.Data
}
