package vulndb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// ChangeSet returns the change set of one generation.
func (db *DB) ChangeSet(ctx context.Context, gen int64) (*ChangeSet, error) {
	var created int64
	var sources string
	cs := &ChangeSet{Generation: gen}
	err := db.st.QueryRowContext(ctx, `SELECT created_at, enrichment_changed, sources FROM vulndb_generations WHERE id = ?`, gen).
		Scan(&created, &cs.EnrichmentChanged, &sources)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: generation %d", ErrNotFound, gen)
	}
	if err != nil {
		return nil, fmt.Errorf("vulndb: read generation %d: %w", gen, err)
	}
	cs.CreatedAt = time.UnixMilli(created).UTC()
	if err := json.Unmarshal([]byte(sources), &cs.Sources); err != nil {
		return nil, fmt.Errorf("vulndb: generation %d sources: %w", gen, err)
	}
	rows, err := db.st.QueryContext(ctx, `SELECT source, advisory_id, kind, aspects, pkg_keys FROM vulndb_changes WHERE generation = ? ORDER BY advisory_id, source`, gen)
	if err != nil {
		return nil, fmt.Errorf("vulndb: read change set %d: %w", gen, err)
	}
	defer rows.Close()
	var keyLists [][]Key
	for rows.Next() {
		var c Change
		var kind, aspects, keys string
		if err := rows.Scan(&c.Source, &c.ID, &kind, &aspects, &keys); err != nil {
			return nil, err
		}
		c.Kind = ChangeKind(kind)
		if err := json.Unmarshal([]byte(aspects), &c.Aspects); err != nil {
			return nil, fmt.Errorf("vulndb: change %s aspects: %w", c.ID, err)
		}
		if len(c.Aspects) == 0 {
			c.Aspects = nil
		}
		if c.Keys, err = unmarshalKeys(keys); err != nil {
			return nil, fmt.Errorf("vulndb: change %s keys: %w", c.ID, err)
		}
		keyLists = append(keyLists, c.Keys)
		cs.Changes = append(cs.Changes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	cs.Keys = unionKeys(keyLists...)
	crows, err := db.st.QueryContext(ctx, `SELECT cve FROM vulndb_change_cves WHERE generation = ? ORDER BY cve`, gen)
	if err != nil {
		return nil, fmt.Errorf("vulndb: read change set %d CVEs: %w", gen, err)
	}
	defer crows.Close()
	for crows.Next() {
		var cve string
		if err := crows.Scan(&cve); err != nil {
			return nil, err
		}
		cs.CVEs = append(cs.CVEs, cve)
	}
	return cs, crows.Err()
}

// ChangeSetsSince returns the change sets of the generations after gen, oldest
// first.
func (db *DB) ChangeSetsSince(ctx context.Context, gen int64) ([]*ChangeSet, error) {
	rows, err := db.st.QueryContext(ctx, `SELECT id FROM vulndb_generations WHERE id > ? ORDER BY id`, gen)
	if err != nil {
		return nil, fmt.Errorf("vulndb: list generations: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]*ChangeSet, 0, len(ids))
	for _, id := range ids {
		cs, err := db.ChangeSet(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, cs)
	}
	return out, nil
}

// ForEachAdvisory calls fn with every advisory of the current generation,
// read in one statement (one consistent snapshot on both backends), and
// returns that generation. fn must not keep the *Advisory's backing
// buffers beyond its own copy; it may keep the *Advisory itself.
func (db *DB) ForEachAdvisory(ctx context.Context, fn func(*Advisory) error) (int64, error) {
	rows, err := db.st.QueryContext(ctx, `SELECT (SELECT generation FROM vulndb_state WHERE id = 1), doc FROM vulndb_advisories`)
	if err != nil {
		return 0, fmt.Errorf("vulndb: read advisories: %w", err)
	}
	defer rows.Close()
	var gen int64
	var doc []byte
	for rows.Next() {
		if err := rows.Scan(&gen, &doc); err != nil {
			return 0, err
		}
		a := new(Advisory)
		if err := json.Unmarshal(doc, a); err != nil {
			return 0, fmt.Errorf("vulndb: stored advisory: %w", err)
		}
		if err := fn(a); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("vulndb: read advisories: %w", err)
	}
	if gen == 0 {
		// No advisory rows: the generation still counts (a database may
		// hold enrichment only).
		if gen, err = db.Generation(ctx); err != nil {
			return 0, err
		}
	}
	return gen, nil
}

// advisoriesByRef reads the current documents of some advisories, with the
// generation they belong to, in one statement.
func (db *DB) advisoriesByRef(ctx context.Context, refs []ref) (map[ref]*Advisory, int64, error) {
	out := make(map[ref]*Advisory, len(refs))
	bySource := map[string][]string{}
	for _, r := range refs {
		bySource[r.source] = append(bySource[r.source], r.id)
	}
	gen := int64(-1)
	sources := make([]string, 0, len(bySource))
	for s := range bySource {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, source := range sources {
		ids := bySource[source]
		for lo := 0; lo < len(ids); lo += inBatch {
			batch := ids[lo:min(lo+inBatch, len(ids))]
			args := []any{source}
			for _, id := range batch {
				args = append(args, id)
			}
			rows, err := db.st.QueryContext(ctx, `SELECT (SELECT generation FROM vulndb_state WHERE id = 1), id, doc FROM vulndb_advisories
				WHERE source = ? AND id IN (`+store.Placeholders(len(batch))+`)`, args...)
			if err != nil {
				return nil, 0, fmt.Errorf("vulndb: read advisories: %w", err)
			}
			for rows.Next() {
				var g int64
				var id string
				var doc []byte
				if err := rows.Scan(&g, &id, &doc); err != nil {
					rows.Close()
					return nil, 0, err
				}
				a := new(Advisory)
				if err := json.Unmarshal(doc, a); err != nil {
					rows.Close()
					return nil, 0, fmt.Errorf("vulndb: stored advisory %s: %w", id, err)
				}
				out[ref{source, id}] = a
				if gen != -1 && g != gen {
					gen = -2 // the statements saw different generations
				} else if gen == -1 {
					gen = g
				}
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return nil, 0, err
			}
		}
	}
	return out, gen, nil
}

// ref names one advisory.
type ref struct{ source, id string }

// ForEachEnrichment calls fn with every enrichment record (one per source
// and CVE).
func (db *DB) ForEachEnrichment(ctx context.Context, fn func(source string, e *Enrichment) error) error {
	rows, err := db.st.QueryContext(ctx, `SELECT source, doc FROM vulndb_enrichment ORDER BY cve, source`)
	if err != nil {
		return fmt.Errorf("vulndb: read enrichment: %w", err)
	}
	defer rows.Close()
	var doc []byte
	for rows.Next() {
		var source string
		if err := rows.Scan(&source, &doc); err != nil {
			return err
		}
		e := new(Enrichment)
		if err := json.Unmarshal(doc, e); err != nil {
			return fmt.Errorf("vulndb: stored enrichment: %w", err)
		}
		if err := fn(source, e); err != nil {
			return err
		}
	}
	return rows.Err()
}
