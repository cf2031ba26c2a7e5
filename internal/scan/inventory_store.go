package scan

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/match"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// inventoryFacts is what a finding needs of its image besides the package:
// the inventory without its layers and packages.
func inventoryFacts(inv *index.Inventory) index.Inventory {
	return index.Inventory{Name: inv.Name, Digest: inv.Digest, Platform: inv.Platform, OS: inv.OS, OSNote: inv.OSNote, Catalogers: inv.Catalogers}
}

// storeInventoryTx stores an image's inventory and its entries in the
// inverted package index (scan_package_keys), replacing what the image had.
func storeInventoryTx(ctx context.Context, tx *store.Tx, dg, catalogers string, inv *index.Inventory, now time.Time) error {
	body, err := json.Marshal(inv)
	if err != nil {
		return fmt.Errorf("scan: encode inventory: %w", err)
	}
	facts, err := json.Marshal(inventoryFacts(inv))
	if err != nil {
		return fmt.Errorf("scan: encode inventory: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO scan_inventories (image_digest, catalogers, inventory, created_at, facts) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (image_digest) DO UPDATE SET catalogers = excluded.catalogers, inventory = excluded.inventory,
		created_at = excluded.created_at, facts = excluded.facts`,
		dg, catalogers, string(body), ms(now), string(facts)); err != nil {
		return fmt.Errorf("scan: store inventory: %w", err)
	}
	return indexPackagesTx(ctx, tx, dg, inv.Packages)
}

// indexPackagesTx replaces the image's rows of the inverted package index:
// one row per lookup key (match.Keys) with the packages that carry it.
func indexPackagesTx(ctx context.Context, tx *store.Tx, dg string, pkgs []index.Package) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM scan_package_keys WHERE image_digest = ?`, dg); err != nil {
		return fmt.Errorf("scan: package index of %s: %w", dg, err)
	}
	byKey := map[vulndb.Key][]*index.Package{}
	var order []vulndb.Key
	for i := range pkgs {
		for _, k := range match.Keys(&pkgs[i]) {
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], &pkgs[i])
		}
	}
	const cols, batch = 4, 100
	for start := 0; start < len(order); start += batch {
		end := min(start+batch, len(order))
		args := make([]any, 0, cols*(end-start))
		for _, k := range order[start:end] {
			b, err := json.Marshal(byKey[k])
			if err != nil {
				return fmt.Errorf("scan: encode packages: %w", err)
			}
			args = append(args, k.Ecosystem, k.Package, dg, string(b))
		}
		values := strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?),", end-start), ",")
		if _, err := tx.ExecContext(ctx, `INSERT INTO scan_package_keys (ecosystem, package, image_digest, packages) VALUES `+values, args...); err != nil {
			return fmt.Errorf("scan: package index of %s: %w", dg, err)
		}
	}
	return nil
}

// backfillPackageIndex fills the inverted package index and the facts of
// inventories stored before either existed. It returns how many
// inventories it indexed.
func (s *Service) backfillPackageIndex(ctx context.Context) (int, error) {
	n := 0
	for {
		var dg, raw string
		err := s.db.QueryRowContext(ctx, `SELECT image_digest, inventory FROM scan_inventories WHERE facts = '' LIMIT 1`).Scan(&dg, &raw)
		if errors.Is(err, sql.ErrNoRows) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("scan: inventories to index: %w", err)
		}
		var inv index.Inventory
		if err := json.Unmarshal([]byte(raw), &inv); err != nil {
			return n, fmt.Errorf("scan: stored inventory of %s: %w", dg, err)
		}
		facts, err := json.Marshal(inventoryFacts(&inv))
		if err != nil {
			return n, err
		}
		err = s.db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE scan_inventories SET facts = ? WHERE image_digest = ?`, string(facts), dg); err != nil {
				return err
			}
			return indexPackagesTx(ctx, tx, dg, inv.Packages)
		})
		if err != nil {
			return n, fmt.Errorf("scan: index packages of %s: %w", dg, err)
		}
		n++
	}
}
