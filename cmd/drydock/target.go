package main

import (
	"context"
	"fmt"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/catalogers"
	"github.com/drydockhq/drydock/internal/index/source"
	"github.com/drydockhq/drydock/internal/store"
)

// indexTarget indexes what drydock sbom and drydock scan are pointed at: a
// directory, or each (or the chosen) platform image of an archive, layout or
// registry. cacheDSN, when set, names a store whose layer cache is used.
func indexTarget(ctx context.Context, e *env, target source.Target, cacheDSN string, opts source.Options) ([]*index.Inventory, error) {
	ix := &index.Indexer{Catalogers: catalogers.All(), Log: e.log}
	if cacheDSN != "" {
		db, err := store.Open(ctx, cacheDSN, "")
		if err != nil {
			return nil, err
		}
		defer db.Close()
		if ix.Cache, err = index.NewStoreCache(ctx, db); err != nil {
			return nil, err
		}
	}
	if target.Kind == source.KindDir {
		inv, err := ix.IndexDir(ctx, target.Path)
		if err != nil {
			return nil, err
		}
		return []*index.Inventory{inv}, nil
	}
	imgs, err := source.Images(ctx, target, opts)
	if err != nil {
		return nil, err
	}
	var invs []*index.Inventory
	for _, img := range imgs {
		inv, err := ix.Index(ctx, img)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", img.Name, img.Platform, err)
		}
		invs = append(invs, inv)
	}
	return invs, nil
}
