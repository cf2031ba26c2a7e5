package match

import (
	"fmt"
	"slices"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/match/version"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// compiled is an affected entry with its versions parsed once.
type compiled struct {
	status vulndb.Status
	ranges []crange
	// versions are the listed versions that parse, sorted for binary
	// search; unparsed those that do not, matched by their exact string.
	versions   []version.Version
	unparsed   []string
	listed     bool
	needSemver bool
	// module is set when the entry's fixes are RPM module builds.
	module bool
	err    string
}

// crange is one range with its events sorted in version order. Limits
// are kept apart: as OSV defines them, a version is in the range only
// when it is below one of its limits, whatever the other events say.
type crange struct {
	semver bool
	events []cevent
	// limit is the highest limit, when hasLimit.
	limit    version.Version
	hasLimit bool
}

type eventKind uint8

const (
	evIntroduced eventKind = iota
	evFixed
	evLastAffected
	evLimit
)

type cevent struct {
	kind eventKind
	zero bool // introduced "0": before every version
	// fix is the fixed version of a fixed event, as a one-element list
	// findings share.
	fix []string
	v   version.Version
}

// PreparedAdvisories is an Advisories that keeps, beside each key's
// matches, the value PrepareKey returned for them when its index was built
// (or patched), so that no version of the database is parsed while
// matching. LookupPrepared returns the matches and that value (nil when
// it has none).
type PreparedAdvisories interface {
	Advisories
	LookupPrepared(vulndb.Key) ([]vulndb.Match, any)
}

// PrepareKey parses the versions of the matches of one key (as Lookup
// returns them) for the matcher. A database index calls it once per key
// when it builds the key's list and returns the result from
// LookupPrepared. The result is immutable and safe to share.
func PrepareKey(_ vulndb.Key, matches []vulndb.Match) any {
	return prepare(matches)
}

// prepared is the parsed form of one key's matches, aligned with them.
type prepared []compiled

func prepare(matches []vulndb.Match) prepared {
	out := make(prepared, len(matches))
	for i, mt := range matches {
		scheme, err := version.SchemeOf(mt.Affected.Ecosystem)
		if err != nil {
			out[i].err = err.Error()
			continue
		}
		out[i] = compileAffected(mt.Affected, scheme)
	}
	return out
}

// keyCache is the Matcher's own parse of one key's matches, for databases
// that keep none.
type keyCache struct {
	first *vulndb.Match // &matches[0]: a new list is a new array
	p     prepared
}

// lookup returns the matches of a key and their parsed form.
func (m *Matcher) lookup(k vulndb.Key) ([]vulndb.Match, prepared) {
	if m.pdb != nil {
		ms, p := m.pdb.LookupPrepared(k)
		if pp, ok := p.(prepared); ok && len(pp) == len(ms) {
			return ms, pp
		}
		if len(ms) == 0 {
			return nil, nil
		}
		return ms, m.cached(k, ms)
	}
	ms := m.db.Lookup(k)
	if len(ms) == 0 {
		return nil, nil
	}
	return ms, m.cached(k, ms)
}

func (m *Matcher) cached(k vulndb.Key, ms []vulndb.Match) prepared {
	m.mu.RLock()
	c, ok := m.cache[k]
	m.mu.RUnlock()
	if ok && c.first == &ms[0] && len(c.p) == len(ms) {
		return c.p
	}
	c = keyCache{first: &ms[0], p: prepare(ms)}
	m.mu.Lock()
	m.cache[k] = c
	m.mu.Unlock()
	return c.p
}

func compileAffected(aff *vulndb.Affected, scheme version.Scheme) compiled {
	c := compiled{status: aff.Status}
	for _, r := range aff.Ranges {
		var s version.Scheme
		switch r.Type {
		case vulndb.RangeEcosystem:
			s = scheme
		case vulndb.RangeSemver:
			// Go's order is SemVer's (with or without "v"): no second
			// parse of the installed version.
			s = version.SemVer
			if scheme == version.SemVer || scheme == version.Go {
				s = scheme
			} else {
				c.needSemver = true
			}
		default:
			continue // GIT ranges name commits, not package versions
		}
		cr := crange{semver: s != scheme}
		for _, e := range r.Events {
			ev, raw := cevent{kind: evIntroduced}, e.Introduced
			switch {
			case e.Fixed != "":
				ev.kind, raw = evFixed, e.Fixed
			case e.LastAffected != "":
				ev.kind, raw = evLastAffected, e.LastAffected
			case e.Limit != "":
				ev.kind, raw = evLimit, e.Limit
			}
			if ev.kind == evFixed {
				ev.fix = []string{raw}
			}
			if ev.kind == evIntroduced && raw == "0" {
				ev.zero = true
			} else if ev.kind == evLimit && raw == "*" {
				continue // no limit
			} else {
				v, err := s.Parse(raw)
				if err != nil {
					c.err = fmt.Sprintf("range event %q: %v", raw, err)
					return c
				}
				ev.v = v
				if ev.kind == evFixed && strings.Contains(raw, ".module") {
					c.module = true
				}
			}
			if ev.kind == evLimit {
				if !cr.hasLimit || ev.v.Compare(cr.limit) > 0 {
					cr.limit, cr.hasLimit = ev.v, true
				}
				continue
			}
			cr.events = append(cr.events, ev)
		}
		// OSV does not require events in order: sort them, introduced
		// "0" first, and at one version the introduced before the end.
		slices.SortStableFunc(cr.events, func(a, b cevent) int {
			switch {
			case a.zero || b.zero:
				return cmpBool(b.zero, a.zero)
			}
			if x := a.v.Compare(b.v); x != 0 {
				return x
			}
			return int(a.kind) - int(b.kind)
		})
		c.ranges = append(c.ranges, cr)
	}
	if len(aff.Versions) > 0 {
		c.listed = true
		c.versions = make([]version.Version, 0, len(aff.Versions))
		for _, raw := range aff.Versions {
			if v, err := scheme.Parse(raw); err == nil {
				c.versions = append(c.versions, v)
			} else {
				// A listed version that does not parse still matches by
				// its exact string.
				c.unparsed = append(c.unparsed, raw)
			}
		}
		slices.SortFunc(c.versions, version.Version.Compare)
	}
	return c
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// evaluate says whether the installed version is affected, whether a fix
// exists, and the fixed versions that end the ranges it falls in.
func (c *compiled) evaluate(installed, semverInstalled version.Version, p *index.Package) (hit, fixable bool, fixes []string) {
	// A fix built for an RPM module stream applies to modular packages
	// only, and a non-modular fix to non-modular packages only.
	if p.Type == index.TypeRPM && c.module != (p.Modularity != "") && len(c.ranges) > 0 {
		return false, false, nil
	}
	unfixable := c.status == vulndb.StatusUnfixed || c.status == vulndb.StatusWillNotFix || c.status == vulndb.StatusEndOfLife
	if len(c.ranges) == 0 && !c.listed {
		// A distribution status with no versions covers the release.
		return unfixable, false, nil
	}
	for i := range c.ranges {
		r := &c.ranges[i]
		v := installed
		if r.semver {
			if semverInstalled.IsZero() {
				continue
			}
			v = semverInstalled
		}
		if in, fix := r.contains(v); in {
			hit = true
			if fix != nil && !unfixable {
				fixable = true
				fixes = mergeFixes(fixes, fix)
			}
		}
	}
	if !hit {
		_, hit = slices.BinarySearchFunc(c.versions, installed, version.Version.Compare)
		hit = hit || slices.Contains(c.unparsed, installed.String())
	}
	return hit, fixable, fixes
}

// mergeFixes returns a with the versions of b it lacks. Both may be
// shared: a new list is made when a grows.
func mergeFixes(a, b []string) []string {
	if a == nil {
		return b
	}
	for _, v := range b {
		if !slices.Contains(a, v) {
			a = append(a[:len(a):len(a)], v)
		}
	}
	return a
}

// contains walks the sorted events up to v: an introduced at or below v
// opens the range, a fixed at or below v closes it, a last_affected below
// v closes it; a version at or above every limit is outside. It returns
// the fixed version that ends the open range, if any.
func (r *crange) contains(v version.Version) (bool, []string) {
	if r.hasLimit && r.limit.Compare(v) <= 0 {
		return false, nil
	}
	// Most installed versions are past every event of a range: one
	// comparison with the last event settles those.
	if n := len(r.events); n > 0 {
		switch last := &r.events[n-1]; last.kind {
		case evFixed:
			if last.v.Compare(v) <= 0 {
				return false, nil
			}
		case evLastAffected:
			if last.v.Compare(v) < 0 {
				return false, nil
			}
		}
	}
	in := false
	for i := range r.events {
		e := &r.events[i]
		c := -1
		if !e.zero {
			c = e.v.Compare(v)
		}
		switch e.kind {
		case evIntroduced:
			if c > 0 {
				return in, r.nextFix(i)
			}
			in = true
		case evFixed:
			if c > 0 {
				return in, r.nextFix(i)
			}
			in = false
		case evLastAffected:
			if c >= 0 {
				return in, nil
			}
			in = false
		}
	}
	return in, nil
}

// nextFix returns the first fixed event from position i on.
func (r *crange) nextFix(i int) []string {
	for ; i < len(r.events); i++ {
		switch r.events[i].kind {
		case evFixed:
			return r.events[i].fix
		case evIntroduced, evLastAffected:
			return nil
		}
	}
	return nil
}
