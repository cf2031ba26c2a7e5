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
	status   vulndb.Status
	ranges   []crange
	versions []version.Version
	// raw versions, for the exact string match OSV lists ask for.
	rawVersions []string
	needSemver  bool
	// module is set when the entry's fixes are RPM module builds.
	module bool
	err    string
}

// crange is one range with its events sorted in version order.
type crange struct {
	semver bool
	events []cevent
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
	raw  string
	v    version.Version
}

func (m *Matcher) compile(aff *vulndb.Affected, scheme version.Scheme) *compiled {
	m.mu.RLock()
	c, ok := m.cache[aff]
	m.mu.RUnlock()
	if ok {
		return c
	}
	c = compileAffected(aff, scheme)
	m.mu.Lock()
	m.cache[aff] = c
	m.mu.Unlock()
	return c
}

func compileAffected(aff *vulndb.Affected, scheme version.Scheme) *compiled {
	c := &compiled{status: aff.Status}
	for _, r := range aff.Ranges {
		var s version.Scheme
		switch r.Type {
		case vulndb.RangeEcosystem:
			s = scheme
		case vulndb.RangeSemver:
			s = version.SemVer
			c.needSemver = true
		default:
			continue // GIT ranges name commits, not package versions
		}
		cr := crange{semver: r.Type == vulndb.RangeSemver}
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
			ev.raw = raw
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
	for _, raw := range aff.Versions {
		c.rawVersions = append(c.rawVersions, raw)
		if v, err := scheme.Parse(raw); err == nil {
			c.versions = append(c.versions, v)
		}
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

// evaluate says whether the installed version is affected, which fixed
// versions end the ranges it falls in, and whether a fix exists.
func (c *compiled) evaluate(installed, semverInstalled version.Version, p *index.Package) (hit bool, fixed []string, fixable bool) {
	// A fix built for an RPM module stream applies to modular packages
	// only, and a non-modular fix to non-modular packages only.
	if p.Type == index.TypeRPM && c.module != (p.Modularity != "") && len(c.ranges) > 0 {
		return false, nil, false
	}
	unfixable := c.status == vulndb.StatusUnfixed || c.status == vulndb.StatusWillNotFix || c.status == vulndb.StatusEndOfLife
	if len(c.ranges) == 0 && len(c.rawVersions) == 0 {
		// A distribution status with no versions covers the release.
		return unfixable, nil, false
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
			if fix != "" && !unfixable {
				fixable = true
				if !contains(fixed, fix) {
					fixed = append(fixed, fix)
				}
			}
		}
	}
	if !hit {
		for k, raw := range c.rawVersions {
			if raw == installed.String() || (k < len(c.versions) && c.versions[k].Compare(installed) == 0) {
				hit = true
				break
			}
		}
	}
	return hit, fixed, fixable
}

// contains walks the sorted events up to v: an introduced at or below v
// opens the range, a fixed or limit at or below v closes it, a
// last_affected below v closes it. It returns the fixed version that ends
// the open range, if any.
func (r *crange) contains(v version.Version) (bool, string) {
	in := false
	for i, e := range r.events {
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
		case evFixed, evLimit:
			if c > 0 {
				return in, r.nextFix(i)
			}
			in = false
		case evLastAffected:
			if c >= 0 {
				return in, ""
			}
			in = false
		}
	}
	return in, ""
}

// nextFix returns the first fixed event from position i on.
func (r *crange) nextFix(i int) string {
	for ; i < len(r.events); i++ {
		switch r.events[i].kind {
		case evFixed:
			return r.events[i].raw
		case evIntroduced, evLastAffected:
			return ""
		}
	}
	return ""
}
