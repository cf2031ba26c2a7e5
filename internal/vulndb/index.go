package vulndb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Match is one affected entry of an advisory: what the matcher compares
// an installed package with. Both pointers are shared and must not be
// modified.
type Match struct {
	Advisory *Advisory
	Affected *Affected
}

// Index is the in-memory lookup of the vulnerability database for
// matching: the advisories of one generation by (ecosystem, package) key,
// and the CVE enrichment. It is built from the store at start and patched
// from each new generation's change set by Refresh. Lookups never block and
// always see one whole generation.
//
// To save memory the index keeps what matching reads: ids, aliases,
// summary, severities, affected packages with ranges, versions, status and
// binary names. Details, references, credits and the ecosystem_specific and
// database_specific objects are dropped; DB.Advisory has the full record.
type Index struct {
	db   *DB
	mu   sync.Mutex // serialises Refresh
	snap atomic.Pointer[Snapshot]
	// strings interns the strings that repeat across advisories; guarded
	// by mu, rebuilt with each full load.
	strings interner
}

// Snapshot is one immutable generation of the index.
type Snapshot struct {
	generation int64
	keys       map[Key]*keyEntry
	byRef      map[ref]*Advisory
	enrichment map[string]*Enrichment
}

// keyEntry holds the matches of one key: all of them, sorted by advisory
// id then source, and the view Lookup returns, with one match per advisory
// id (the same advisory published by two sources, as OSV's per-ecosystem
// exports do for an advisory about packages of two ecosystems).
type keyEntry struct {
	all  []Match
	view []Match
}

// OpenIndex builds the index of the current generation of db.
func OpenIndex(ctx context.Context, db *DB) (*Index, error) {
	ix := &Index{db: db}
	s, err := ix.load(ctx)
	if err != nil {
		return nil, err
	}
	ix.snap.Store(s)
	return ix, nil
}

// DB returns the database the index reads.
func (ix *Index) DB() *DB { return ix.db }

// Snapshot returns the current snapshot; a matcher takes one per scan so
// all its lookups see the same generation.
func (ix *Index) Snapshot() *Snapshot { return ix.snap.Load() }

// Lookup returns the matches for a package of the current snapshot; see
// Snapshot.Lookup.
func (ix *Index) Lookup(k Key) []Match { return ix.snap.Load().Lookup(k) }

// Generation is the generation the snapshot holds.
func (s *Snapshot) Generation() int64 { return s.generation }

// Len is the number of advisories in the snapshot (withdrawn ones
// included).
func (s *Snapshot) Len() int { return len(s.byRef) }

// Keys is the number of (ecosystem, package) keys Lookup finds matches
// for.
func (s *Snapshot) Keys() int {
	n := 0
	for _, e := range s.keys {
		if len(e.view) > 0 {
			n++
		}
	}
	return n
}

// Lookup returns the affected entries for the package key k (built with
// NewKey), sorted by advisory id; an advisory may have several entries for
// one package (several release lines, say). When sources publish the same
// advisory id, the entries of one copy are returned (see keyEntry);
// withdrawn advisories are left out. The slice is shared: do not modify it.
func (s *Snapshot) Lookup(k Key) []Match {
	if e := s.keys[k]; e != nil {
		return e.view
	}
	return nil
}

// LookupPackage is Lookup(NewKey(ecosystem, name)).
func (s *Snapshot) LookupPackage(ecosystem, name string) []Match {
	return s.Lookup(NewKey(ecosystem, name))
}

// Advisory returns the indexed (slim) advisory; nil when absent.
func (s *Snapshot) Advisory(source, id string) *Advisory { return s.byRef[ref{source, id}] }

// AdvisoriesAbout returns the advisories whose CVEs (see CVEs) include
// one of cves: the records a change of those CVEs' enrichment (KEV
// membership, NVD rating) reaches. It walks the whole snapshot.
func (s *Snapshot) AdvisoriesAbout(cves []string) []*Advisory {
	if len(cves) == 0 {
		return nil
	}
	want := make(map[string]bool, len(cves))
	for _, c := range cves {
		want[c] = true
	}
	var out []*Advisory
	for _, a := range s.byRef {
		for _, c := range CVEs(a) {
			if want[c] {
				out = append(out, a)
				break
			}
		}
	}
	return out
}

// EnrichmentFor returns what the enrichment sources say about one CVE; nil
// when nothing.
func (s *Snapshot) EnrichmentFor(cve string) *Enrichment { return s.enrichment[cve] }

// CVEs returns the CVE ids an advisory is about: its id, aliases and
// upstream ids that are CVEs, or, when none is, its related ids (the Red
// Hat family lists the CVEs an erratum fixes there).
func CVEs(a *Advisory) []string {
	var out []string
	for _, list := range [][]string{{a.ID}, a.Aliases, a.Upstream} {
		for _, id := range list {
			if isCVE(id) && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	if len(out) == 0 {
		for _, id := range a.Related {
			if isCVE(id) && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// Enrichment returns the enrichment of each of the advisory's CVEs that
// has any (see CVEs).
func (s *Snapshot) Enrichment(a *Advisory) []*Enrichment {
	var out []*Enrichment
	for _, cve := range CVEs(a) {
		if e := s.enrichment[cve]; e != nil {
			out = append(out, e)
		}
	}
	return out
}

// load builds a snapshot of the current generation from the store.
func (ix *Index) load(ctx context.Context) (*Snapshot, error) {
	ix.strings = interner{}
	var advs []*Advisory
	gen, err := ix.db.ForEachAdvisory(ctx, func(a *Advisory) error {
		advs = append(advs, ix.strings.slim(a))
		return nil
	})
	if err != nil {
		return nil, err
	}
	s := buildSnapshot(gen, advs)
	if s.enrichment, err = ix.loadEnrichment(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// NewSnapshot builds a snapshot from advisories and enrichment held in
// memory, for tools and tests that work without a store. It keeps (and
// slims) the advisories it is given.
func NewSnapshot(generation int64, advisories []*Advisory, enrichment []Enrichment) *Snapshot {
	in := interner{}
	for _, a := range advisories {
		in.slim(a)
	}
	s := buildSnapshot(generation, advisories)
	for i := range enrichment {
		e := &enrichment[i]
		s.enrichment[e.CVE] = mergeEnrichment(s.enrichment[e.CVE], e)
	}
	return s
}

func buildSnapshot(gen int64, advs []*Advisory) *Snapshot {
	s := &Snapshot{generation: gen, keys: map[Key]*keyEntry{}, byRef: make(map[ref]*Advisory, len(advs)), enrichment: map[string]*Enrichment{}}
	touched := map[Key]bool{}
	for _, a := range advs {
		r := ref{a.Source, a.ID}
		if s.byRef[r] != nil {
			continue
		}
		s.byRef[r] = a
		s.addMatches(a, touched)
	}
	for k := range touched {
		s.finishKey(k)
	}
	return s
}

func (ix *Index) loadEnrichment(ctx context.Context) (map[string]*Enrichment, error) {
	m := map[string]*Enrichment{}
	err := ix.db.ForEachEnrichment(ctx, func(_ string, e *Enrichment) error {
		m[e.CVE] = mergeEnrichment(m[e.CVE], e)
		return nil
	})
	return m, err
}

// addMatches appends the advisory's affected entries to its keys' lists
// (unsorted; finishKey sorts). The snapshot must be private to the caller.
func (s *Snapshot) addMatches(a *Advisory, touched map[Key]bool) {
	for i := range a.Affected {
		k := a.Affected[i].Key()
		if k == (Key{}) {
			continue
		}
		e := s.keys[k]
		if e == nil {
			e = &keyEntry{}
			s.keys[k] = e
		}
		e.all = append(e.all, Match{Advisory: a, Affected: &a.Affected[i]})
		touched[k] = true
	}
}

// finishKey sorts a key's matches and computes its view.
func (s *Snapshot) finishKey(k Key) {
	e := s.keys[k]
	if e == nil {
		return
	}
	if len(e.all) == 0 {
		delete(s.keys, k)
		return
	}
	slices.SortStableFunc(e.all, func(x, y Match) int {
		if c := strings.Compare(x.Advisory.ID, y.Advisory.ID); c != 0 {
			return c
		}
		return strings.Compare(x.Advisory.Source, y.Advisory.Source)
	})
	view := make([]Match, 0, len(e.all))
	for i := 0; i < len(e.all); {
		// Among the copies of one advisory id, keep the most recently
		// modified one (the first source by name on a tie), with all
		// its entries for this key.
		j := i
		best := e.all[i].Advisory
		for j < len(e.all) && e.all[j].Advisory.ID == e.all[i].Advisory.ID {
			if e.all[j].Advisory.Modified.After(best.Modified) {
				best = e.all[j].Advisory
			}
			j++
		}
		if best.Withdrawn.IsZero() {
			for _, m := range e.all[i:j] {
				if m.Advisory == best {
					view = append(view, m)
				}
			}
		}
		i = j
	}
	if len(view) == 0 {
		view = nil
	}
	e.view = slices.Clip(view)
	e.all = slices.Clip(e.all)
}

// Refresh brings the index to the store's current generation, patching
// the snapshot with the change sets since its generation (or rebuilding it
// when they are gone or the store went back). It reports whether the
// snapshot changed.
func (ix *Index) Refresh(ctx context.Context) (bool, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	cur := ix.snap.Load()
	gen, err := ix.db.Generation(ctx)
	if err != nil {
		return false, err
	}
	if gen == cur.generation {
		return false, nil
	}
	var next *Snapshot
	if gen < cur.generation {
		next, err = ix.load(ctx)
	} else {
		next, err = ix.patch(ctx, cur)
		if errors.Is(err, ErrNotFound) {
			next, err = ix.load(ctx)
		}
	}
	if err != nil {
		return false, fmt.Errorf("vulndb: refresh index: %w", err)
	}
	ix.snap.Store(next)
	return true, nil
}

// patch returns a new snapshot: cur with the change sets after its
// generation applied. cur is not modified: the lists of touched keys are
// rebuilt into new slices.
func (ix *Index) patch(ctx context.Context, cur *Snapshot) (*Snapshot, error) {
	css, err := ix.db.ChangeSetsSince(ctx, cur.generation)
	if err != nil {
		return nil, err
	}
	if len(css) == 0 {
		return cur, nil
	}
	if css[0].Generation != cur.generation+1 {
		return nil, fmt.Errorf("%w: change set %d", ErrNotFound, cur.generation+1)
	}
	var refs []ref
	seen := map[ref]bool{}
	enrichmentChanged := false
	for _, cs := range css {
		enrichmentChanged = enrichmentChanged || cs.EnrichmentChanged > 0
		for _, c := range cs.Changes {
			r := ref{c.Source, c.ID}
			if !seen[r] {
				seen[r] = true
				refs = append(refs, r)
			}
		}
	}
	docs, _, err := ix.db.advisoriesByRef(ctx, refs)
	if err != nil {
		return nil, err
	}
	next := &Snapshot{
		generation: css[len(css)-1].Generation,
		keys:       maps.Clone(cur.keys),
		byRef:      maps.Clone(cur.byRef),
		enrichment: cur.enrichment,
	}
	// Keys whose lists change: copy their entries before editing.
	touched := map[Key]bool{}
	own := func(k Key) {
		if touched[k] {
			return
		}
		touched[k] = true
		if e := next.keys[k]; e != nil {
			next.keys[k] = &keyEntry{all: slices.Clone(e.all)}
		}
	}
	for _, r := range refs {
		if old := next.byRef[r]; old != nil {
			for _, k := range old.Keys() {
				own(k)
				if e := next.keys[k]; e != nil {
					e.all = slices.DeleteFunc(e.all, func(m Match) bool { return m.Advisory == old })
				}
			}
			delete(next.byRef, r)
		}
		if a := docs[r]; a != nil {
			a = ix.strings.slim(a)
			next.byRef[r] = a
			for _, k := range a.Keys() {
				own(k)
			}
			next.addMatches(a, touched)
		}
	}
	for k := range touched {
		next.finishKey(k)
	}
	if enrichmentChanged {
		if next.enrichment, err = ix.loadEnrichment(ctx); err != nil {
			return nil, err
		}
	}
	return next, nil
}

// slim drops what matching does not read and interns the strings that
// repeat across advisories (ecosystems, package names, versions).
func (in interner) slim(a *Advisory) *Advisory {
	a.Details = ""
	a.References = nil
	a.Credits = nil
	a.DatabaseSpecific = nil
	a.Source = in.intern(a.Source)
	for i := range a.Severity {
		a.Severity[i].Type = in.intern(a.Severity[i].Type)
		a.Severity[i].Source = in.intern(a.Severity[i].Source)
	}
	for i := range a.Affected {
		af := &a.Affected[i]
		af.EcosystemSpecific = nil
		af.DatabaseSpecific = nil
		af.Ecosystem = in.intern(af.Ecosystem)
		af.Package = in.intern(af.Package)
		af.VendorSeverity = in.intern(af.VendorSeverity)
		for j := range af.Versions {
			af.Versions[j] = in.intern(af.Versions[j])
		}
		for j := range af.Ranges {
			r := &af.Ranges[j]
			r.DatabaseSpecific = nil
			r.Type = in.intern(r.Type)
			r.Repo = in.intern(r.Repo)
			for k := range r.Events {
				ev := &r.Events[k]
				ev.Introduced, ev.Fixed = in.intern(ev.Introduced), in.intern(ev.Fixed)
				ev.LastAffected, ev.Limit = in.intern(ev.LastAffected), in.intern(ev.Limit)
			}
		}
	}
	return a
}

// interner maps each string to one shared copy.
type interner map[string]string

func (in interner) intern(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := in[s]; ok {
		return c
	}
	in[s] = s
	return s
}
