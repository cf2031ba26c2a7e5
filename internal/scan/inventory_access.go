package scan

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/drydockhq/drydock/internal/index"
)

// ErrInventoryNotFound: the image has no stored inventory (it was never
// scanned, or its scan could not read it).
var ErrInventoryNotFound = errors.New("scan: no inventory stored for the image")

// StoredInventory returns the inventory the last scan of the image digest
// stored (the packages of its layers, as a scan read them), without
// reading any layer. It returns ErrInventoryNotFound when there is none.
func (s *Service) StoredInventory(ctx context.Context, digest string) (*index.Inventory, error) {
	var raw string
	err := s.db.QueryRowContext(ctx, `SELECT inventory FROM scan_inventories WHERE image_digest = ?`, digest).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrInventoryNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("scan: stored inventory of %s: %w", digest, err)
	}
	var inv index.Inventory
	if err := json.Unmarshal([]byte(raw), &inv); err != nil {
		return nil, fmt.Errorf("scan: stored inventory of %s: %w", digest, err)
	}
	return &inv, nil
}
