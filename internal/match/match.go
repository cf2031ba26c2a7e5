// Package match joins an image's inventory with the vulnerability database:
// it finds the advisories that name each installed package, under the name
// its ecosystem matches on, and decides with that ecosystem's version order
// (package version) whether the installed version is affected.
//
// Rules per source:
//   - Debian and Ubuntu match on the source package and the release
//     ("Debian:12"), with the source version, so every binary package built
//     from one source gets the finding.
//   - Alpine matches on the origin package and the release branch.
//   - RPM distributions match on the source RPM name and on the binary
//     name (AlmaLinux and others publish per binary package), with the
//     distribution version; fixes built for a module stream apply only to
//     modular packages and the other way round.
//   - Distribution fixed versions are the distributor's own, so backported
//     fixes are honoured: at or above the fixed version, no finding.
//   - Language packages match on the name normalised for the ecosystem
//     (vulndb.NewKey), against OSV ranges (ECOSYSTEM and SEMVER; GIT ranges
//     say nothing about packages) and version lists.
//   - Go binaries: the module "stdlib" at the toolchain's version.
//   - Unfixed, will-not-fix and end-of-life statuses are findings with
//     FixAvailable NO; not-affected is never a finding.
package match

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/match/version"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// Advisories is what the matcher needs from the vulnerability database:
// the affected entries that name a package, by its key (vulndb.NewKey),
// with the entries of one advisory next to each other and withdrawn
// advisories left out. vulndb.Snapshot is one.
type Advisories interface {
	Lookup(vulndb.Key) []vulndb.Match
}

// Matcher matches packages against one state (generation) of the
// database. It keeps each affected entry's versions parsed after first
// use, so make a new Matcher when the database changes. A Matcher is safe
// for concurrent use.
type Matcher struct {
	db  Advisories
	pdb PreparedAdvisories // db, when it keeps parsed versions

	mu    sync.RWMutex
	cache map[vulndb.Key]keyCache
	// installed holds the installed versions parsed so far: the images of
	// a registry share most of their packages.
	installed map[schemeVersion]parsedVersion
}

type schemeVersion struct {
	scheme version.Scheme
	raw    string
}

type parsedVersion struct {
	v   version.Version
	err error
}

// New returns a Matcher over db.
func New(db Advisories) *Matcher {
	m := &Matcher{db: db, cache: make(map[vulndb.Key]keyCache), installed: make(map[schemeVersion]parsedVersion)}
	m.pdb, _ = db.(PreparedAdvisories)
	return m
}

// Next returns a Matcher over db, a later generation of the database m
// matches against. It keeps m's parsed entries of the keys whose lists
// db still holds unchanged (vulndb.Index shares them between
// generations), so the first match after an update parses only what the
// update changed. m stays usable.
func (m *Matcher) Next(db Advisories) *Matcher {
	n := New(db)
	m.mu.RLock()
	defer m.mu.RUnlock()
	for k, c := range m.cache {
		if ms := db.Lookup(k); len(ms) == len(c.p) && len(ms) > 0 && &ms[0] == c.first {
			n.cache[k] = c
		}
	}
	maps.Copy(n.installed, m.installed)
	return n
}

// parse parses an installed version, once per Matcher.
func (m *Matcher) parse(s version.Scheme, raw string) (version.Version, error) {
	k := schemeVersion{s, raw}
	m.mu.RLock()
	p, ok := m.installed[k]
	m.mu.RUnlock()
	if !ok {
		p.v, p.err = s.Parse(raw)
		m.mu.Lock()
		m.installed[k] = p
		m.mu.Unlock()
	}
	return p.v, p.err
}

// Result is the outcome of matching an inventory.
type Result struct {
	Findings []Finding
	// Warnings name the packages and advisory entries that could not be
	// evaluated (a version their ecosystem cannot order); they are skipped,
	// never silently reported clean.
	Warnings []string
}

// Match matches every package of an inventory. Findings point into pkgs,
// which must not change while the result is in use; they are sorted by
// package name, path and advisory id.
func (m *Matcher) Match(ctx context.Context, pkgs []index.Package) (*Result, error) {
	// Most images have about as many findings as packages, or fewer.
	s := state{res: &Result{Findings: make([]Finding, 0, len(pkgs))}}
	for i := range pkgs {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		m.matchPackage(&pkgs[i], &s)
	}
	sortFindings(s.res.Findings)
	return s.res, nil
}

// state is what one Match call accumulates.
type state struct {
	res *Result
	// the scheme of the ecosystem of the last package.
	ecosystem string
	scheme    version.Scheme
	schemeErr error
}

// target is what one package is matched as: the ecosystem with release,
// the names to look up (one or two), and the version to compare.
type target struct {
	ecosystem string
	names     [2]string
	n         int
	version   string
}

// targetOf says how a package is matched, or ok=false when it cannot be
// (no ecosystem yet, a development build).
func targetOf(p *index.Package) (t target, ok bool) {
	t = target{ecosystem: p.Ecosystem, version: p.Version, n: 1}
	t.names[0] = p.Name
	if t.ecosystem == "" || p.Version == "" {
		return t, false
	}
	switch p.Type {
	case index.TypeDpkg:
		// Debian and Ubuntu publish per source package, in source versions
		// (a binNMU "+b1" binary keeps its source's version).
		if p.SourceName != "" {
			t.names[0] = p.SourceName
		}
		if p.SourceVersion != "" {
			t.version = p.SourceVersion
		}
	case index.TypeApk:
		if p.SourceName != "" {
			t.names[0] = p.SourceName
		}
	case index.TypeRPM:
		if src := srpmName(p.SourceName); src != "" && src != p.Name {
			t.names[1], t.n = src, 2
		}
	default:
		if strings.HasPrefix(t.ecosystem, "Go") && (len(t.ecosystem) == 2 || t.ecosystem[2] == ':') {
			if p.Version == "(devel)" {
				return t, false
			}
			if p.Name == "stdlib" {
				t.version = goToolchainVersion(p.Version)
			}
		}
	}
	return t, true
}

// Keys returns the database keys Match looks a package up under: the
// ecosystem with its release and the name (the source package's for
// distributions that publish per source package, both names for RPM);
// none for a package Match cannot evaluate. An advisory change under none
// of a package's keys cannot change its findings, which is what continuous
// re-evaluation relies on.
func Keys(p *index.Package) []vulndb.Key {
	t, ok := targetOf(p)
	if !ok {
		return nil
	}
	keys := make([]vulndb.Key, 0, t.n)
	for i := range t.n {
		keys = append(keys, vulndb.NewKey(t.ecosystem, t.names[i]))
	}
	return keys
}

// srpmName returns the name of a source RPM given as a name or as a file
// name ("openssl-3.0.7-27.el9.src.rpm").
func srpmName(s string) string {
	if !strings.HasSuffix(s, ".src.rpm") {
		return s
	}
	s = strings.TrimSuffix(s, ".src.rpm")
	for range 2 { // drop -release, then -version
		i := strings.LastIndexByte(s, '-')
		if i <= 0 {
			return ""
		}
		s = s[:i]
	}
	return s
}

// goToolchainVersion turns a Go toolchain version ("go1.21.3", "go1.22",
// "go1.21rc2") into the SemVer form OSV's stdlib records use ("1.21.3",
// "1.22.0", "1.21.0-rc.2").
func goToolchainVersion(v string) string {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "go"), "v")
	if i := strings.IndexAny(v, " +"); i >= 0 { // "go1.22.1 X:boringcrypto"
		v = v[:i]
	}
	pre := ""
	for _, p := range []string{"rc", "beta"} {
		if i := strings.Index(v, p); i > 0 {
			v, pre = v[:i], "-"+p+"."+v[i+len(p):]
			break
		}
	}
	if strings.Count(v, ".") == 1 {
		v += ".0"
	}
	return v + pre
}

// installed is the package's version, parsed on first need: most lookups
// find nothing, and those must cost no parse.
type installed struct {
	m         *Matcher
	raw       string
	scheme    version.Scheme
	v, semver version.Version
	err       error
	parsed    bool
	semParsed bool
}

func (in *installed) get() (version.Version, error) {
	if !in.parsed {
		in.parsed = true
		in.v, in.err = in.m.parse(in.scheme, in.raw)
	}
	return in.v, in.err
}

// semverVersion is the version read as SemVer, for SEMVER ranges of an
// ecosystem with another order; the zero Version when it is not SemVer.
func (in *installed) semverVersion() version.Version {
	if !in.semParsed {
		in.semParsed = true
		in.semver, _ = in.m.parse(version.SemVer, in.raw)
	}
	return in.semver
}

func (m *Matcher) matchPackage(p *index.Package, s *state) {
	t, ok := targetOf(p)
	if !ok {
		return
	}
	if t.ecosystem != s.ecosystem { // an inventory has few ecosystems
		s.ecosystem = t.ecosystem
		s.scheme, s.schemeErr = version.SchemeOf(t.ecosystem)
	}
	if s.schemeErr != nil {
		return // an ecosystem Drydock has no order for has no advisories either
	}
	scheme := s.scheme
	inst := installed{m: m, raw: t.version, scheme: scheme}
	start := len(s.res.Findings)
	for ni := range t.n {
		name := t.names[ni]
		matches, plan := m.lookup(vulndb.NewKey(t.ecosystem, name))
		for i := 0; i < len(matches); {
			adv := matches[i].Advisory
			j := i + 1
			for j < len(matches) && matches[j].Advisory == adv {
				j++
			}
			group, gplan := matches[i:j], plan[i:j]
			i = j
			if ni > 0 && seen(s.res.Findings[start:], adv) {
				continue // already matched under the other name
			}
			v, err := inst.get()
			if err != nil {
				s.res.Warnings = append(s.res.Warnings, fmt.Sprintf("%s %s %s: %v", t.ecosystem, p.Name, t.version, err))
				return
			}
			matchAdvisory(p, &inst, v, group, gplan, s)
		}
	}
}

// matchAdvisory evaluates the affected entries of one advisory for one
// package name, and adds a finding when any matches.
func matchAdvisory(p *index.Package, inst *installed, v version.Version, group []vulndb.Match, plan prepared, s *state) {
	var f *Finding
	for gi := range group {
		c := &plan[gi]
		if c.status == vulndb.StatusNotAffected {
			continue
		}
		mt := &group[gi]
		aff := mt.Affected
		if c.err != "" {
			s.res.Warnings = append(s.res.Warnings, fmt.Sprintf("%s %s in %s: %s", aff.Ecosystem, aff.Package, mt.Advisory.ID, c.err))
			continue
		}
		var sv version.Version
		if c.needSemver {
			sv = inst.semverVersion()
		}
		hit, fixable, fixes := c.evaluate(v, sv, p)
		if !hit {
			continue
		}
		if f == nil {
			s.res.Findings = append(s.res.Findings, Finding{
				Package:  p,
				Advisory: mt.Advisory,
				Affected: aff,
				Status:   c.status,
			})
			f = &s.res.Findings[len(s.res.Findings)-1]
		}
		f.merge(c.status, fixable)
		f.FixedVersions = mergeFixes(f.FixedVersions, fixes)
	}
}

func seen(fs []Finding, adv *vulndb.Advisory) bool {
	for i := range fs {
		if fs[i].Advisory == adv || fs[i].Advisory.ID == adv.ID {
			return true
		}
	}
	return false
}

// merge adds one matching affected entry's verdict to the finding.
func (f *Finding) merge(st vulndb.Status, fixable bool) {
	verdict := FixNo
	if fixable {
		verdict = FixYes
	}
	switch {
	case f.FixAvailable == "":
		f.FixAvailable = verdict
	case f.FixAvailable != verdict:
		f.FixAvailable = FixPartial
	}
	if f.Status == vulndb.StatusAffected || f.Status == vulndb.StatusFixed {
		f.Status = st
	}
}
