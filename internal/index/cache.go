package index

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/drydockhq/drydock/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// StoreCache keeps layer results in the metadata store (domain "index"),
// as zstd-compressed JSON, so every replica shares them.
type StoreCache struct {
	db  *store.DB
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// maxCachedResult bounds a decompressed cached result.
const maxCachedResult = 256 << 20

// NewStoreCache applies the index migrations and returns the cache.
func NewStoreCache(ctx context.Context, db *store.DB) (*StoreCache, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, "index", sub); err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxCachedResult))
	if err != nil {
		return nil, err
	}
	return &StoreCache{db: db, enc: enc, dec: dec}, nil
}

// Get implements LayerCache.
func (c *StoreCache) Get(ctx context.Context, digest, catalogers string) (*LayerResult, bool, error) {
	var blob []byte
	err := c.db.QueryRowContext(ctx, `SELECT result FROM index_layers WHERE digest = ? AND catalogers = ?`,
		digest, catalogers).Scan(&blob)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("index cache: read %s: %w", digest, err)
	}
	raw, err := c.dec.DecodeAll(blob, nil)
	if err != nil {
		return nil, false, fmt.Errorf("index cache: decompress %s: %w", digest, err)
	}
	var res LayerResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, false, fmt.Errorf("index cache: decode %s: %w", digest, err)
	}
	return &res, true, nil
}

// Put implements LayerCache. A concurrent Put of the same layer (two
// images sharing a base pushed at once) leaves one equal row.
func (c *StoreCache) Put(ctx context.Context, digest, catalogers string, res *LayerResult) error {
	raw, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("index cache: encode %s: %w", digest, err)
	}
	n := 0
	for _, f := range res.Files {
		n += len(f.Packages)
	}
	blob := c.enc.EncodeAll(raw, nil)
	_, err = c.db.ExecContext(ctx, `INSERT INTO index_layers (digest, catalogers, result, packages, created_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (digest, catalogers) DO UPDATE SET result = excluded.result, packages = excluded.packages,
			created_at = excluded.created_at`,
		digest, catalogers, blob, n, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("index cache: store %s: %w", digest, err)
	}
	return nil
}

// Prune deletes cached results made by any cataloger set other than
// keep (the CatalogerSet key of the running indexer) and returns how many
// it deleted. Results are re-made lazily as layers are indexed again.
func (c *StoreCache) Prune(ctx context.Context, keep string) (int64, error) {
	r, err := c.db.ExecContext(ctx, `DELETE FROM index_layers WHERE catalogers <> ?`, keep)
	if err != nil {
		return 0, fmt.Errorf("index cache: prune: %w", err)
	}
	return r.RowsAffected()
}

// CacheKey is the key of the indexer's cataloger set in the layer cache.
func (ix *Indexer) CacheKey() string { return cacheKey(ix.CatalogerSet()) }
