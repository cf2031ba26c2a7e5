package vulndb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/drydockhq/drydock/internal/store"
)

// SourceUpdate is the outcome of fetching one source, to be applied.
type SourceUpdate struct {
	Name string
	// Kind and URL describe the source in status ("osv", "alpine-secdb", ...).
	Kind string
	URL  string
	// Data is the source's complete current content. It is nil when the
	// fetch failed (Err) or upstream said nothing changed (NotModified).
	Data        *FeedData
	State       FetchState
	NotModified bool
	Err         error
	// AllowShrink applies Data even when it holds less than half of what
	// the source held before (otherwise refused with ErrShrunk).
	AllowShrink bool
}

// ErrShrunk is wrapped by the error of a source whose feed suddenly holds
// less than half of what it held: the sync refuses to apply it and keeps
// the source's advisories.
var ErrShrunk = errors.New("feed shrank by more than half")

// ErrUnknownUnchanged is wrapped by the error of a source whose feed says
// advisories are unchanged that the database does not hold (its state and
// the database disagree); Syncer fetches such a source again in full.
var ErrUnknownUnchanged = errors.New("feed reports advisories unchanged that the database does not hold")

// shrinkFloor is the smallest previous size the shrink check applies to.
const shrinkFloor = 10

// SourceResult says what a sync did with one source.
type SourceResult struct {
	Name string `json:"name"`
	// Outcome is "changed", "unchanged", "not-modified", "failed" or
	// "refused".
	Outcome    string        `json:"outcome"`
	Counts     Counts        `json:"counts"`
	Advisories int           `json:"advisories"`
	Enrichment int           `json:"enrichment"`
	Rejected   []RecordError `json:"-"`
	Err        error         `json:"-"`
}

// The outcomes of a source in a sync.
const (
	OutcomeChanged     = "changed"
	OutcomeUnchanged   = "unchanged"
	OutcomeNotModified = "not-modified"
	OutcomeFailed      = "failed"
	OutcomeRefused     = "refused"
)

// ApplyResult says what a sync did.
type ApplyResult struct {
	// Generation is the generation the sync made; 0 when nothing changed.
	Generation int64
	// ChangeSet is the new generation's change set; nil when nothing
	// changed.
	ChangeSet *ChangeSet
	Sources   []SourceResult
}

// Failed returns the sources that failed or were refused.
func (r *ApplyResult) Failed() []SourceResult {
	var out []SourceResult
	for _, s := range r.Sources {
		if s.Err != nil {
			out = append(out, s)
		}
	}
	return out
}

// prepared is one advisory or enrichment record ready to store.
type prepared struct {
	id   string
	doc  []byte
	hash string
	adv  *Advisory
	enr  *Enrichment
	keys []Key
}

type preparedSource struct {
	u          SourceUpdate
	advisories []prepared
	enrichment []prepared
	rejected   []RecordError
}

// Apply stores the sources' new content as one new generation, in one
// transaction: readers see the previous generation until it commits, then
// the new one whole. Each source's content replaces what that source held;
// sources without Data only have their status recorded, and keep their
// advisories. A sync that changes nothing makes no generation.
func (db *DB) Apply(ctx context.Context, updates []SourceUpdate) (*ApplyResult, error) {
	prep := make([]*preparedSource, len(updates))
	for i, u := range updates {
		if u.Name == "" {
			return nil, errors.New("vulndb: apply: a source without a name")
		}
		prep[i] = prepareSource(u)
	}
	now := db.now().UTC()
	var result *ApplyResult
	err := db.st.InTx(ctx, func(tx *store.Tx) error {
		r, err := applyTx(ctx, tx, prep, now)
		if err != nil {
			return err
		}
		result = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vulndb: apply: %w", err)
	}
	return result, nil
}

// prepareSource encodes and hashes the source's records, outside the
// transaction.
func prepareSource(u SourceUpdate) *preparedSource {
	p := &preparedSource{u: u}
	if u.Data == nil {
		return p
	}
	p.rejected = append(p.rejected, u.Data.Rejected...)
	advs := u.Data.Advisories
	out := make([]prepared, len(advs))
	parallel(len(advs), func(i int) {
		a := &advs[i]
		a.Source = u.Name
		doc, err := json.Marshal(a)
		if err != nil {
			out[i] = prepared{id: a.ID, hash: "error:" + err.Error()}
			return
		}
		sum := sha256.Sum256(doc)
		out[i] = prepared{id: a.ID, doc: doc, hash: hex.EncodeToString(sum[:]), adv: a, keys: a.Keys()}
	})
	seen := make(map[string]bool, len(out))
	for _, pa := range out {
		switch {
		case pa.id == "":
			p.rejected = append(p.rejected, RecordError{Feed: u.Name, Record: "(no id)", Err: errors.New("advisory without id")})
		case pa.doc == nil:
			p.rejected = append(p.rejected, RecordError{Feed: u.Name, Record: pa.id, Err: errors.New(strings.TrimPrefix(pa.hash, "error:"))})
		case seen[pa.id]:
			p.rejected = append(p.rejected, RecordError{Feed: u.Name, Record: pa.id, Err: errors.New("duplicate id in the feed; the first kept")})
		default:
			seen[pa.id] = true
			p.advisories = append(p.advisories, pa)
		}
	}
	clear(seen)
	for i := range u.Data.Enrichment {
		e := &u.Data.Enrichment[i]
		if e.CVE == "" || seen[e.CVE] {
			p.rejected = append(p.rejected, RecordError{Feed: u.Name, Record: e.CVE, Err: errors.New("enrichment without CVE, or repeated; the first kept")})
			continue
		}
		seen[e.CVE] = true
		doc, err := json.Marshal(e)
		if err != nil {
			p.rejected = append(p.rejected, RecordError{Feed: u.Name, Record: e.CVE, Err: err})
			continue
		}
		sum := sha256.Sum256(doc)
		p.enrichment = append(p.enrichment, prepared{id: e.CVE, doc: doc, hash: hex.EncodeToString(sum[:]), enr: e})
	}
	return p
}

// parallel runs fn(0..n-1) on a few goroutines.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), 4)
	if n < 256 || workers < 2 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// existing is what the store holds for one record of a source.
type existing struct {
	hash      string
	withdrawn bool
}

// sourceDelta is what changes for one source.
type sourceDelta struct {
	p        *preparedSource
	write    []prepared // added and changed advisories
	removed  []string
	changes  []Change
	eWrite   []prepared
	eRemoved []string
	cves     []string
	counts   Counts
	refused  error
}

func applyTx(ctx context.Context, tx *store.Tx, prep []*preparedSource, now time.Time) (*ApplyResult, error) {
	lock := `SELECT generation FROM vulndb_state WHERE id = 1`
	if tx.Dialect() == store.Postgres {
		lock += ` FOR UPDATE`
	}
	var gen int64
	if err := tx.QueryRowContext(ctx, lock).Scan(&gen); err != nil {
		return nil, fmt.Errorf("read generation: %w", err)
	}
	deltas := make([]*sourceDelta, len(prep))
	total := Counts{}
	for i, p := range prep {
		d := &sourceDelta{p: p}
		deltas[i] = d
		if p.u.Data == nil {
			continue
		}
		if err := diffSource(ctx, tx, d); err != nil {
			return nil, fmt.Errorf("source %s: %w", p.u.Name, err)
		}
		if d.refused == nil {
			total.Added += d.counts.Added
			total.Modified += d.counts.Modified
			total.Withdrawn += d.counts.Withdrawn
			total.Removed += d.counts.Removed
			total.EnrichmentChanged += d.counts.EnrichmentChanged
		}
	}
	changed := total.Total() > 0 || total.EnrichmentChanged > 0
	newGen := gen
	var cs *ChangeSet
	if changed {
		newGen = gen + 1
		cs = &ChangeSet{Generation: newGen, CreatedAt: now.Truncate(time.Millisecond), Sources: map[string]Counts{}, EnrichmentChanged: total.EnrichmentChanged}
		var keyLists [][]Key
		for _, d := range deltas {
			if d.p.u.Data == nil || d.refused != nil {
				continue
			}
			if err := writeSource(ctx, tx, d, newGen); err != nil {
				return nil, fmt.Errorf("source %s: %w", d.p.u.Name, err)
			}
			if d.counts.Total() > 0 || d.counts.EnrichmentChanged > 0 {
				cs.Sources[d.p.u.Name] = d.counts
			}
			cs.Changes = append(cs.Changes, d.changes...)
			cs.CVEs = append(cs.CVEs, d.cves...)
			for _, c := range d.changes {
				keyLists = append(keyLists, c.Keys)
			}
		}
		cs.Keys = unionKeys(keyLists...)
		sort.Strings(cs.CVEs)
		cs.CVEs = compactStrings(cs.CVEs)
		if err := writeChangeSet(ctx, tx, cs); err != nil {
			return nil, err
		}
		var advisories int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM vulndb_advisories`).Scan(&advisories); err != nil {
			return nil, fmt.Errorf("count advisories: %w", err)
		}
		sources, _ := json.Marshal(cs.Sources)
		if _, err := tx.ExecContext(ctx, `INSERT INTO vulndb_generations (id, created_at, advisories, added, modified, withdrawn, removed, enrichment_changed, sources)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, newGen, cs.CreatedAt.UnixMilli(), advisories, total.Added, total.Modified, total.Withdrawn, total.Removed,
			total.EnrichmentChanged, string(sources)); err != nil {
			return nil, fmt.Errorf("insert generation: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE vulndb_state SET generation = ? WHERE id = 1`, newGen); err != nil {
			return nil, fmt.Errorf("switch generation: %w", err)
		}
	}
	result := &ApplyResult{ChangeSet: cs}
	if changed {
		result.Generation = newGen
	}
	for _, d := range deltas {
		sr, err := recordSource(ctx, tx, d, newGen, now)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", d.p.u.Name, err)
		}
		result.Sources = append(result.Sources, sr)
	}
	return result, nil
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// diffSource compares the source's new records with the stored ones.
func diffSource(ctx context.Context, tx *store.Tx, d *sourceDelta) error {
	name := d.p.u.Name
	old, err := readExisting(ctx, tx, `SELECT id, hash, withdrawn FROM vulndb_advisories WHERE source = ?`, name)
	if err != nil {
		return err
	}
	oldE, err := readExisting(ctx, tx, `SELECT cve, hash, 0 FROM vulndb_enrichment WHERE source = ?`, name)
	if err != nil {
		return err
	}
	unchanged := d.p.u.Data.Unchanged
	missing := 0
	for _, id := range unchanged {
		if _, ok := old[id]; !ok {
			missing++
		}
	}
	if missing > 0 {
		d.refused = fmt.Errorf("%w (%d of %d)", ErrUnknownUnchanged, missing, len(unchanged))
		return nil
	}
	if n, was := len(d.p.advisories)+len(unchanged), len(old); was >= shrinkFloor && n*2 < was && !d.p.u.AllowShrink {
		d.refused = fmt.Errorf("%w: %d advisories now, %d before; not applied (apply anyway with --allow-shrink)", ErrShrunk, n, was)
		return nil
	}
	if n, was := len(d.p.enrichment), len(oldE); was >= shrinkFloor && n*2 < was && !d.p.u.AllowShrink {
		d.refused = fmt.Errorf("%w: %d enrichment records now, %d before; not applied (apply anyway with --allow-shrink)", ErrShrunk, n, was)
		return nil
	}

	// Advisories.
	var changedIDs []string
	inNew := make(map[string]bool, len(d.p.advisories)+len(unchanged))
	for _, id := range unchanged {
		inNew[id] = true
	}
	for _, pa := range d.p.advisories {
		if inNew[pa.id] {
			d.refused = fmt.Errorf("%w: advisory %s is both read and reported unchanged", ErrUnknownUnchanged, pa.id)
			return nil
		}
		inNew[pa.id] = true
		o, ok := old[pa.id]
		switch {
		case !ok:
			d.write = append(d.write, pa)
			d.changes = append(d.changes, Change{Source: name, ID: pa.id, Kind: Added, Keys: sortedKeys(pa.keys)})
			d.counts.Added++
		case o.hash != pa.hash:
			d.write = append(d.write, pa)
			changedIDs = append(changedIDs, pa.id)
		}
	}
	for id := range old {
		if !inNew[id] {
			d.removed = append(d.removed, id)
		}
	}
	sort.Strings(d.removed)
	oldDocs, err := readDocs(ctx, tx, `SELECT id, doc FROM vulndb_advisories WHERE source = ? AND id IN `, name, append(append([]string(nil), changedIDs...), d.removed...))
	if err != nil {
		return err
	}
	byID := make(map[string]*prepared, len(d.write))
	for i := range d.write {
		byID[d.write[i].id] = &d.write[i]
	}
	for _, id := range changedIDs {
		var prev Advisory
		if err := json.Unmarshal(oldDocs[id], &prev); err != nil {
			return fmt.Errorf("stored advisory %s: %w", id, err)
		}
		cur := byID[id]
		kind, aspects := diffAdvisories(&prev, cur.adv)
		d.changes = append(d.changes, Change{Source: name, ID: id, Kind: kind, Aspects: aspects, Keys: unionKeys(prev.Keys(), cur.keys)})
		if kind == Withdrawn {
			d.counts.Withdrawn++
		} else {
			d.counts.Modified++
		}
	}
	for _, id := range d.removed {
		var prev Advisory
		if err := json.Unmarshal(oldDocs[id], &prev); err != nil {
			return fmt.Errorf("stored advisory %s: %w", id, err)
		}
		d.changes = append(d.changes, Change{Source: name, ID: id, Kind: Removed, Keys: sortedKeys(prev.Keys())})
		d.counts.Removed++
	}
	sort.Slice(d.changes, func(i, j int) bool { return d.changes[i].ID < d.changes[j].ID })

	// Enrichment.
	var eChanged []string
	inNewE := make(map[string]bool, len(d.p.enrichment))
	for _, pe := range d.p.enrichment {
		inNewE[pe.id] = true
		o, ok := oldE[pe.id]
		switch {
		case !ok:
			d.eWrite = append(d.eWrite, pe)
			if materialEnrichmentChange(nil, pe.enr) {
				d.cves = append(d.cves, pe.id)
			}
		case o.hash != pe.hash:
			d.eWrite = append(d.eWrite, pe)
			// An EPSS-only record stays EPSS-only: no need to read the old one.
			if pe.enr.KEV != nil || len(pe.enr.NVD) > 0 {
				eChanged = append(eChanged, pe.id)
			}
		}
	}
	for id := range oldE {
		if !inNewE[id] {
			d.eRemoved = append(d.eRemoved, id)
		}
	}
	sort.Strings(d.eRemoved)
	d.counts.EnrichmentChanged = len(d.eWrite) + len(d.eRemoved)
	if len(eChanged) > 0 || len(d.eRemoved) > 0 {
		oldEDocs, err := readDocs(ctx, tx, `SELECT cve, doc FROM vulndb_enrichment WHERE source = ? AND cve IN `, name, append(append([]string(nil), eChanged...), d.eRemoved...))
		if err != nil {
			return err
		}
		eByID := map[string]*Enrichment{}
		for i := range d.eWrite {
			eByID[d.eWrite[i].id] = d.eWrite[i].enr
		}
		for _, id := range append(eChanged, d.eRemoved...) {
			var prev Enrichment
			if err := json.Unmarshal(oldEDocs[id], &prev); err != nil {
				return fmt.Errorf("stored enrichment %s: %w", id, err)
			}
			if materialEnrichmentChange(&prev, eByID[id]) {
				d.cves = append(d.cves, id)
			}
		}
	}
	return nil
}

func sortedKeys(keys []Key) []Key {
	out := append([]Key(nil), keys...)
	sortKeys(out)
	if out == nil {
		out = []Key{}
	}
	return out
}

func readExisting(ctx context.Context, tx *store.Tx, query, source string) (map[string]existing, error) {
	rows, err := tx.QueryContext(ctx, query, source)
	if err != nil {
		return nil, fmt.Errorf("read stored hashes: %w", err)
	}
	defer rows.Close()
	out := map[string]existing{}
	for rows.Next() {
		var id, hash string
		var withdrawn int
		if err := rows.Scan(&id, &hash, &withdrawn); err != nil {
			return nil, err
		}
		out[id] = existing{hash: hash, withdrawn: withdrawn != 0}
	}
	return out, rows.Err()
}

// inBatch is how many ids go in one IN (...) list.
const inBatch = 500

// readDocs reads id → doc for ids with query, which ends in "IN ".
func readDocs(ctx context.Context, tx *store.Tx, query, source string, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	for lo := 0; lo < len(ids); lo += inBatch {
		batch := ids[lo:min(lo+inBatch, len(ids))]
		args := make([]any, 0, len(batch)+1)
		args = append(args, source)
		for _, id := range batch {
			args = append(args, id)
		}
		rows, err := tx.QueryContext(ctx, query+"("+store.Placeholders(len(batch))+")", args...)
		if err != nil {
			return nil, fmt.Errorf("read stored documents: %w", err)
		}
		for rows.Next() {
			var id, doc string
			if err := rows.Scan(&id, &doc); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = []byte(doc)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// insertRows runs INSERT statements of many rows each: head is
// "INSERT INTO t (a, b, c) VALUES ", tail what follows the values.
func insertRows(ctx context.Context, tx *store.Tx, head, tail string, cols int, rows [][]any) error {
	per := max(1, 4000/cols)
	row := "(" + store.Placeholders(cols) + ")"
	for lo := 0; lo < len(rows); lo += per {
		batch := rows[lo:min(lo+per, len(rows))]
		var b strings.Builder
		b.WriteString(head)
		args := make([]any, 0, len(batch)*cols)
		for i, r := range batch {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(row)
			args = append(args, r...)
		}
		b.WriteString(tail)
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// deleteIn runs query (ending in "IN ") for the ids, in batches.
func deleteIn(ctx context.Context, tx *store.Tx, query, source string, ids []string) error {
	for lo := 0; lo < len(ids); lo += inBatch {
		batch := ids[lo:min(lo+inBatch, len(ids))]
		args := make([]any, 0, len(batch)+1)
		args = append(args, source)
		for _, id := range batch {
			args = append(args, id)
		}
		if _, err := tx.ExecContext(ctx, query+"("+store.Placeholders(len(batch))+")", args...); err != nil {
			return err
		}
	}
	return nil
}

// writeSource writes one source's delta.
func writeSource(ctx context.Context, tx *store.Tx, d *sourceDelta, gen int64) error {
	name := d.p.u.Name
	var stale []string // ids whose derived rows are replaced
	for _, pa := range d.write {
		stale = append(stale, pa.id)
	}
	stale = append(stale, d.removed...)
	for _, q := range []string{
		`DELETE FROM vulndb_affected WHERE source = ? AND advisory_id IN `,
		`DELETE FROM vulndb_aliases WHERE source = ? AND advisory_id IN `,
	} {
		if err := deleteIn(ctx, tx, q, name, stale); err != nil {
			return fmt.Errorf("delete derived rows: %w", err)
		}
	}
	if err := deleteIn(ctx, tx, `DELETE FROM vulndb_advisories WHERE source = ? AND id IN `, name, d.removed); err != nil {
		return fmt.Errorf("delete removed advisories: %w", err)
	}
	var advRows, affRows, aliasRows [][]any
	for _, pa := range d.write {
		a := pa.adv
		var modified any
		if !a.Modified.IsZero() {
			modified = a.Modified.UnixMilli()
		}
		withdrawn := 0
		if !a.Withdrawn.IsZero() {
			withdrawn = 1
		}
		advRows = append(advRows, []any{name, pa.id, pa.hash, modified, withdrawn, gen, string(pa.doc)})
		for _, k := range pa.keys {
			affRows = append(affRows, []any{k.Ecosystem, k.Package, name, pa.id})
		}
		seen := map[string]bool{}
		for _, list := range [][]string{a.Aliases, a.Upstream, a.Related} {
			for _, alias := range list {
				if alias != pa.id && !seen[alias] {
					seen[alias] = true
					aliasRows = append(aliasRows, []any{alias, name, pa.id})
				}
			}
		}
	}
	if err := insertRows(ctx, tx, `INSERT INTO vulndb_advisories (source, id, hash, modified, withdrawn, generation, doc) VALUES `,
		` ON CONFLICT (source, id) DO UPDATE SET hash = excluded.hash, modified = excluded.modified, withdrawn = excluded.withdrawn,
		generation = excluded.generation, doc = excluded.doc`, 7, advRows); err != nil {
		return fmt.Errorf("write advisories: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO vulndb_affected (ecosystem, package, source, advisory_id) VALUES `, ``, 4, affRows); err != nil {
		return fmt.Errorf("write affected keys: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO vulndb_aliases (alias, source, advisory_id) VALUES `, ``, 3, aliasRows); err != nil {
		return fmt.Errorf("write aliases: %w", err)
	}
	if err := deleteIn(ctx, tx, `DELETE FROM vulndb_enrichment WHERE source = ? AND cve IN `, name, d.eRemoved); err != nil {
		return fmt.Errorf("delete enrichment: %w", err)
	}
	var enrRows [][]any
	for _, pe := range d.eWrite {
		enrRows = append(enrRows, []any{name, pe.id, pe.hash, gen, string(pe.doc)})
	}
	if err := insertRows(ctx, tx, `INSERT INTO vulndb_enrichment (source, cve, hash, generation, doc) VALUES `,
		` ON CONFLICT (source, cve) DO UPDATE SET hash = excluded.hash, generation = excluded.generation, doc = excluded.doc`, 5, enrRows); err != nil {
		return fmt.Errorf("write enrichment: %w", err)
	}
	return nil
}

func writeChangeSet(ctx context.Context, tx *store.Tx, cs *ChangeSet) error {
	var rows [][]any
	for _, c := range cs.Changes {
		aspects, _ := json.Marshal(c.Aspects)
		if c.Aspects == nil {
			aspects = []byte("[]")
		}
		rows = append(rows, []any{cs.Generation, c.Source, c.ID, string(c.Kind), string(aspects), marshalKeys(c.Keys)})
	}
	if err := insertRows(ctx, tx, `INSERT INTO vulndb_changes (generation, source, advisory_id, kind, aspects, pkg_keys) VALUES `, ``, 6, rows); err != nil {
		return fmt.Errorf("write change set: %w", err)
	}
	rows = rows[:0]
	for _, k := range cs.Keys {
		rows = append(rows, []any{cs.Generation, k.Ecosystem, k.Package})
	}
	if err := insertRows(ctx, tx, `INSERT INTO vulndb_change_keys (generation, ecosystem, package) VALUES `, ``, 3, rows); err != nil {
		return fmt.Errorf("write change set keys: %w", err)
	}
	rows = rows[:0]
	for _, cve := range cs.CVEs {
		rows = append(rows, []any{cs.Generation, cve})
	}
	if err := insertRows(ctx, tx, `INSERT INTO vulndb_change_cves (generation, cve) VALUES `, ``, 2, rows); err != nil {
		return fmt.Errorf("write change set CVEs: %w", err)
	}
	return nil
}

// recordSource stores the source's status after the sync.
func recordSource(ctx context.Context, tx *store.Tx, d *sourceDelta, gen int64, now time.Time) (SourceResult, error) {
	u := d.p.u
	sr := SourceResult{Name: u.Name, Rejected: d.p.rejected}
	var err error
	switch {
	case u.Err != nil:
		sr.Outcome, sr.Err = OutcomeFailed, u.Err
	case d.refused != nil:
		sr.Outcome, sr.Err = OutcomeRefused, d.refused
	case u.NotModified || u.Data == nil:
		sr.Outcome = OutcomeNotModified
	case d.counts.Total() > 0 || d.counts.EnrichmentChanged > 0:
		sr.Outcome, sr.Counts = OutcomeChanged, d.counts
	default:
		sr.Outcome = OutcomeUnchanged
	}
	ms := now.UnixMilli()
	if sr.Err != nil {
		msg := sr.Err.Error()
		if len(msg) > 4000 {
			msg = msg[:4000]
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO vulndb_sources (name, kind, url, fetch_state, last_attempt_at, last_error, last_error_at,
			advisories, enrichment, rejected, generation) VALUES (?, ?, ?, '{}', ?, ?, ?, 0, 0, 0, 0)
			ON CONFLICT (name) DO UPDATE SET last_attempt_at = excluded.last_attempt_at, last_error = excluded.last_error,
			last_error_at = excluded.last_error_at`, u.Name, u.Kind, u.URL, ms, msg, ms)
		if err == nil {
			err = tx.QueryRowContext(ctx, `SELECT advisories, enrichment FROM vulndb_sources WHERE name = ?`, u.Name).Scan(&sr.Advisories, &sr.Enrichment)
		}
		return sr, err
	}
	state, _ := json.Marshal(u.State)
	if u.Data == nil {
		// Unchanged upstream: new validators, same content.
		_, err = tx.ExecContext(ctx, `INSERT INTO vulndb_sources (name, kind, url, fetch_state, last_attempt_at, last_success_at, last_error,
			advisories, enrichment, rejected, generation) VALUES (?, ?, ?, ?, ?, ?, '', 0, 0, 0, 0)
			ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, fetch_state = excluded.fetch_state,
			last_attempt_at = excluded.last_attempt_at, last_success_at = excluded.last_success_at`,
			u.Name, u.Kind, u.URL, string(state), ms, ms)
		if err == nil {
			err = tx.QueryRowContext(ctx, `SELECT advisories, enrichment FROM vulndb_sources WHERE name = ?`, u.Name).Scan(&sr.Advisories, &sr.Enrichment)
		}
		return sr, err
	}
	sr.Advisories, sr.Enrichment = len(d.p.advisories)+len(u.Data.Unchanged), len(d.p.enrichment)
	var lastChange any
	var srcGen int64
	if sr.Outcome == OutcomeChanged {
		lastChange, srcGen = ms, gen
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO vulndb_sources (name, kind, url, fetch_state, last_attempt_at, last_success_at, last_change_at,
		last_error, advisories, enrichment, rejected, generation) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, fetch_state = excluded.fetch_state,
		last_attempt_at = excluded.last_attempt_at, last_success_at = excluded.last_success_at,
		last_change_at = COALESCE(excluded.last_change_at, vulndb_sources.last_change_at),
		advisories = excluded.advisories, enrichment = excluded.enrichment, rejected = excluded.rejected,
		generation = CASE WHEN excluded.last_change_at IS NULL THEN vulndb_sources.generation ELSE excluded.generation END`,
		u.Name, u.Kind, u.URL, string(state), ms, ms, lastChange, sr.Advisories, sr.Enrichment, len(d.p.rejected), srcGen)
	return sr, err
}
