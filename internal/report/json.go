package report

import (
	"encoding/json"
	"io"

	"github.com/drydockhq/drydock/internal/index"
)

// WriteJSON writes the inventories as Drydock's own JSON: a list of
// index.Inventory.
func WriteJSON(w io.Writer, invs []*index.Inventory) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(invs)
}
