package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/blob"
	"github.com/drydockhq/drydock/internal/store"
)

// GCOptions configure CollectGarbage.
type GCOptions struct {
	// MinAge is the safety window: nothing written or used more recently
	// than this is removed, so pushes in flight (blobs uploaded, manifest
	// not yet pushed) are never broken.
	MinAge time.Duration
	// DryRun reports what would be removed without removing it. It counts
	// only uploads and orphaned blob files; links and records whose removal
	// makes more blobs unreferenced are not followed.
	DryRun bool
}

// GCStats says what a collection removed.
type GCStats struct {
	Uploads    int   // abandoned upload sessions
	Links      int64 // blob links no manifest of their repository references
	Blobs      int   // blobs removed from the blob store
	BytesFreed int64
}

// CollectGarbage removes abandoned uploads and blobs no manifest
// references, leaving everything younger than opts.MinAge. It is safe to
// run while the registry serves requests: a manifest push touches the
// links it references inside its transaction, the store deletes a link or
// blob record only if it is still unused when deleted, and the blob store
// refuses to delete a blob file committed after the cut-off.
func CollectGarbage(ctx context.Context, db *store.DB, blobs blob.Store, opts GCOptions) (GCStats, error) {
	var st GCStats
	reg := db.Registry()
	cutoff := time.Now().Add(-opts.MinAge)

	// Upload sessions nobody wrote to since the cut-off.
	err := blobs.WalkUploads(ctx, func(owner, id string, info blob.Info) error {
		if info.ModTime.After(cutoff) {
			return nil
		}
		if opts.DryRun {
			st.Uploads++
			return nil
		}
		removed, err := removeUpload(ctx, blobs, owner, id, cutoff)
		if removed {
			st.Uploads++
		}
		return err
	})
	if err != nil {
		return st, fmt.Errorf("gc: uploads: %w", err)
	}

	if !opts.DryRun {
		if st.Links, err = reg.PruneBlobLinks(ctx, cutoff); err != nil {
			return st, err
		}
		digests, err := reg.PruneBlobs(ctx, cutoff)
		if err != nil {
			return st, err
		}
		for _, s := range digests {
			d, err := digest.Parse(s)
			if err != nil {
				continue
			}
			if err := removeBlob(ctx, reg, blobs, d, cutoff, &st); err != nil {
				return st, err
			}
		}
	}
	// Blob files without a record: committed by a process that died before
	// recording them, or left by a removal above that was interrupted.
	err = blobs.Walk(ctx, func(info blob.Info) error {
		if info.ModTime.After(cutoff) {
			return nil
		}
		ok, err := reg.BlobRecorded(ctx, info.Digest.String())
		if err != nil || ok {
			return err
		}
		if opts.DryRun {
			st.Blobs++
			st.BytesFreed += info.Size
			return nil
		}
		return removeBlob(ctx, reg, blobs, info.Digest, cutoff, &st)
	})
	if err != nil {
		return st, fmt.Errorf("gc: blobs: %w", err)
	}
	return st, nil
}

// removeUpload deletes an upload unless a request is writing to it or
// wrote to it after the cut-off. It holds the upload while deleting, so a
// request that comes later finds it gone rather than half deleted.
func removeUpload(ctx context.Context, blobs blob.Store, owner, id string, cutoff time.Time) (bool, error) {
	up, err := blobs.OpenUpload(ctx, owner, id)
	switch {
	case errors.Is(err, blob.ErrUploadBusy):
		return false, nil
	case errors.Is(err, blob.ErrUploadNotFound):
		return false, nil // committed or deleted meanwhile
	case err != nil:
		return false, err
	}
	defer up.Close()
	if info, err := blobs.StatUpload(ctx, owner, id); err == nil && info.ModTime.After(cutoff) {
		return false, nil
	}
	return true, blobs.DeleteUpload(ctx, owner, id)
}

// removeBlob deletes a blob's bytes if it is still unrecorded once commits
// are held off: a commit records its blob before letting deletes run.
func removeBlob(ctx context.Context, reg *store.Registry, blobs blob.Store, d digest.Digest, cutoff time.Time, st *GCStats) error {
	info, err := blobs.Stat(ctx, d)
	if errors.Is(err, blob.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	stillGarbage := func() (bool, error) {
		ok, err := reg.BlobRecorded(ctx, d.String())
		return !ok, err
	}
	switch err := blobs.Delete(ctx, d, cutoff, stillGarbage); {
	case errors.Is(err, blob.ErrModified):
		return nil // pushed again since: it stays
	case err != nil:
		return err
	}
	st.Blobs++
	st.BytesFreed += info.Size
	return nil
}
