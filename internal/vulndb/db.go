package vulndb

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is the vulnerability database in the metadata store (domain
// "vulndb"): the advisories and enrichment of the current generation, the
// generations with their change sets, and the sources' sync state. Every
// query runs on SQLite and PostgreSQL. It is safe for concurrent use; many
// processes may share one PostgreSQL store.
type DB struct {
	st  *store.DB
	now func() time.Time
}

// Open migrates the vulndb domain of st and returns the database.
func Open(ctx context.Context, st *store.DB) (*DB, error) {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx, "vulndb", sub); err != nil {
		return nil, err
	}
	return &DB{st: st, now: time.Now}, nil
}

// Store returns the metadata store under the database.
func (db *DB) Store() *store.DB { return db.st }

// ErrNotFound is returned when an advisory, generation or source does not
// exist.
var ErrNotFound = errors.New("vulndb: not found")

// Generation returns the current generation (0 before the first sync).
func (db *DB) Generation(ctx context.Context) (int64, error) {
	var g int64
	if err := db.st.QueryRowContext(ctx, `SELECT generation FROM vulndb_state WHERE id = 1`).Scan(&g); err != nil {
		return 0, fmt.Errorf("vulndb: read generation: %w", err)
	}
	return g, nil
}

// GenerationInfo describes one generation.
type GenerationInfo struct {
	ID         int64     `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	Advisories int       `json:"advisories"`
	Counts
	// Sources holds the counts per source that changed in the generation.
	Sources map[string]Counts `json:"sources"`
}

// Counts are the sizes of a change set.
type Counts struct {
	Added             int `json:"added"`
	Modified          int `json:"modified"`
	Withdrawn         int `json:"withdrawn"`
	Removed           int `json:"removed"`
	EnrichmentChanged int `json:"enrichment_changed"`
}

// Total is the number of advisory changes.
func (c Counts) Total() int { return c.Added + c.Modified + c.Withdrawn + c.Removed }

// Generations returns the newest generations first, at most limit of them.
func (db *DB) Generations(ctx context.Context, limit int) ([]GenerationInfo, error) {
	rows, err := db.st.QueryContext(ctx, `SELECT id, created_at, advisories, added, modified, withdrawn, removed, enrichment_changed, sources
		FROM vulndb_generations ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("vulndb: list generations: %w", err)
	}
	defer rows.Close()
	var out []GenerationInfo
	for rows.Next() {
		var g GenerationInfo
		var created int64
		var sources string
		if err := rows.Scan(&g.ID, &created, &g.Advisories, &g.Added, &g.Modified, &g.Withdrawn, &g.Removed, &g.EnrichmentChanged, &sources); err != nil {
			return nil, fmt.Errorf("vulndb: list generations: %w", err)
		}
		g.CreatedAt = time.UnixMilli(created).UTC()
		if err := json.Unmarshal([]byte(sources), &g.Sources); err != nil {
			return nil, fmt.Errorf("vulndb: generation %d: sources: %w", g.ID, err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// SourceStatus is what the database knows about one source.
type SourceStatus struct {
	Name        string     `json:"name"`
	Kind        string     `json:"kind"`
	URL         string     `json:"url"`
	State       FetchState `json:"fetch_state"`
	LastAttempt time.Time  `json:"last_attempt,omitzero"`
	LastSuccess time.Time  `json:"last_success,omitzero"`
	LastChange  time.Time  `json:"last_change,omitzero"`
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt time.Time  `json:"last_error_at,omitzero"`
	Advisories  int        `json:"advisories"`
	Enrichment  int        `json:"enrichment"`
	Rejected    int        `json:"rejected"`
	Generation  int64      `json:"generation"`
}

// Failing reports whether the last attempt failed.
func (s SourceStatus) Failing() bool {
	return s.LastError != "" && !s.LastErrorAt.Before(s.LastSuccess)
}

// Sources returns the status of every source the database has seen, by
// name.
func (db *DB) Sources(ctx context.Context) ([]SourceStatus, error) {
	rows, err := db.st.QueryContext(ctx, `SELECT name, kind, url, fetch_state, last_attempt_at, last_success_at, last_change_at,
		last_error, last_error_at, advisories, enrichment, rejected, generation FROM vulndb_sources ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("vulndb: list sources: %w", err)
	}
	defer rows.Close()
	var out []SourceStatus
	for rows.Next() {
		var s SourceStatus
		var state string
		var attempt, success, change, errAt sql.NullInt64
		if err := rows.Scan(&s.Name, &s.Kind, &s.URL, &state, &attempt, &success, &change, &s.LastError, &errAt,
			&s.Advisories, &s.Enrichment, &s.Rejected, &s.Generation); err != nil {
			return nil, fmt.Errorf("vulndb: list sources: %w", err)
		}
		if err := json.Unmarshal([]byte(state), &s.State); err != nil {
			return nil, fmt.Errorf("vulndb: source %s: fetch state: %w", s.Name, err)
		}
		s.LastAttempt, s.LastSuccess, s.LastChange, s.LastErrorAt = millis(attempt), millis(success), millis(change), millis(errAt)
		out = append(out, s)
	}
	return out, rows.Err()
}

func millis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// Advisory returns one advisory of the current generation.
func (db *DB) Advisory(ctx context.Context, source, id string) (*Advisory, error) {
	var doc string
	err := db.st.QueryRowContext(ctx, `SELECT doc FROM vulndb_advisories WHERE source = ? AND id = ?`, source, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: advisory %s from %s", ErrNotFound, id, source)
	}
	if err != nil {
		return nil, fmt.Errorf("vulndb: read advisory %s: %w", id, err)
	}
	var a Advisory
	if err := json.Unmarshal([]byte(doc), &a); err != nil {
		return nil, fmt.Errorf("vulndb: advisory %s: %w", id, err)
	}
	return &a, nil
}

// AdvisoriesByID returns the advisories with this id or alias, from every
// source.
func (db *DB) AdvisoriesByID(ctx context.Context, id string) ([]Advisory, error) {
	rows, err := db.st.QueryContext(ctx, `SELECT doc FROM vulndb_advisories WHERE id = ?
		UNION SELECT a.doc FROM vulndb_aliases l JOIN vulndb_advisories a ON a.source = l.source AND a.id = l.advisory_id WHERE l.alias = ?`, id, id)
	if err != nil {
		return nil, fmt.Errorf("vulndb: advisories for %s: %w", id, err)
	}
	defer rows.Close()
	var out []Advisory
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var a Advisory
		if err := json.Unmarshal([]byte(doc), &a); err != nil {
			return nil, fmt.Errorf("vulndb: advisory doc: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source+"\x00"+out[i].ID < out[j].Source+"\x00"+out[j].ID })
	return out, nil
}

// Enrichment returns what the enrichment sources say about a CVE, merged;
// nil when none says anything.
func (db *DB) Enrichment(ctx context.Context, cve string) (*Enrichment, error) {
	rows, err := db.st.QueryContext(ctx, `SELECT doc FROM vulndb_enrichment WHERE cve = ? ORDER BY source`, cve)
	if err != nil {
		return nil, fmt.Errorf("vulndb: enrichment for %s: %w", cve, err)
	}
	defer rows.Close()
	var out *Enrichment
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var e Enrichment
		if err := json.Unmarshal([]byte(doc), &e); err != nil {
			return nil, fmt.Errorf("vulndb: enrichment doc: %w", err)
		}
		out = mergeEnrichment(out, &e)
	}
	return out, rows.Err()
}

// mergeEnrichment adds what e says to into (which may be nil).
func mergeEnrichment(into, e *Enrichment) *Enrichment {
	if into == nil {
		c := *e
		c.NVD = append([]Severity(nil), e.NVD...)
		return &c
	}
	into.NVD = append(into.NVD, e.NVD...)
	if e.KEV != nil {
		into.KEV = e.KEV
	}
	if e.EPSS != nil {
		into.EPSS = e.EPSS
	}
	return into
}
