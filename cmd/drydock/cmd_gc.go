package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/registry"
	"github.com/drydockhq/drydock/internal/store"
)

// runGC removes abandoned uploads and blobs no manifest references. It runs
// beside a serving registry (online); --min-age keeps anything younger, so
// pushes in flight are never broken.
func runGC(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "gc", "[flags]")
	dataDir := fs.String("data-dir", "drydock-data", "data directory")
	storeURL := fs.String("store", "", "metadata store: postgres://... for PostgreSQL (default: SQLite in the data directory)")
	minAge := fs.Duration("min-age", 24*time.Hour, "safety window: keep uploads and unreferenced blobs younger than this")
	dryRun := fs.Bool("dry-run", false, "report abandoned uploads and orphaned blob files without removing anything")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *minAge < 0 {
		return fmt.Errorf("%w: --min-age must not be negative", errUsage)
	}
	db, err := store.Open(ctx, *storeURL, *dataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.MigrateRegistry(ctx); err != nil {
		return err
	}
	blobs, err := blob.NewFS(filepath.Join(*dataDir, "blobs"))
	if err != nil {
		return err
	}
	start := time.Now()
	st, err := registry.CollectGarbage(ctx, db, blobs, registry.GCOptions{MinAge: *minAge, DryRun: *dryRun})
	if err != nil {
		return err
	}
	verb := "removed"
	if *dryRun {
		verb = "would remove"
	}
	fmt.Fprintf(e.stdout, "gc %s %d abandoned uploads, %d unreferenced blob links, %d blobs (%d bytes) in %s\n",
		verb, st.Uploads, st.Links, st.Blobs, st.BytesFreed, time.Since(start).Round(time.Millisecond))
	return nil
}
