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
	"strings"
	"sync"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/match/version"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// Advisories is what the matcher needs from the vulnerability database:
// the advisories that name a package, by its key.
type Advisories interface {
	Lookup(vulndb.Key) []*vulndb.Advisory
}

// Matcher matches packages against one state (generation) of the
// database. It caches parsed advisory versions, so make a new Matcher
// when the database changes. A Matcher is safe for concurrent use.
type Matcher struct {
	db Advisories

	mu    sync.RWMutex
	cache map[*vulndb.Affected]*compiled
}

// New returns a Matcher over db.
func New(db Advisories) *Matcher {
	return &Matcher{db: db, cache: make(map[*vulndb.Affected]*compiled)}
}

// Result is the outcome of matching an inventory.
type Result struct {
	Findings []Finding
	// Warnings name the packages and advisory entries that could not be
	// evaluated (a version their ecosystem cannot order); they are skipped,
	// never silently reported clean.
	Warnings []string
}

// Match matches every package of an inventory. Findings are sorted by
// package name, path and advisory id.
func (m *Matcher) Match(ctx context.Context, pkgs []index.Package) (*Result, error) {
	res := &Result{}
	for i := range pkgs {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		m.matchPackage(&pkgs[i], res)
	}
	sortFindings(res.Findings)
	return res, nil
}

// target is what one package is matched as: the ecosystem with release,
// the names to look up, and the version to compare.
type target struct {
	ecosystem string
	names     []string
	version   string
}

// targetOf says how a package is matched, or ok=false when it cannot be
// (no ecosystem yet, a development build).
func targetOf(p *index.Package) (target, bool) {
	t := target{ecosystem: p.Ecosystem, version: p.Version}
	if t.ecosystem == "" || p.Version == "" {
		return t, false
	}
	base, _, _ := strings.Cut(t.ecosystem, ":")
	switch p.Type {
	case index.TypeDpkg:
		// Debian and Ubuntu publish per source package, in source versions
		// (a binNMU "+b1" binary keeps its source's version).
		t.names = []string{p.Name}
		if p.SourceName != "" {
			t.names = []string{p.SourceName}
		}
		if p.SourceVersion != "" {
			t.version = p.SourceVersion
		}
	case index.TypeApk:
		t.names = []string{p.Name}
		if p.SourceName != "" && p.SourceName != p.Name {
			t.names = []string{p.SourceName}
		}
	case index.TypeRPM:
		t.names = []string{p.Name}
		if src := srpmName(p.SourceName); src != "" && src != p.Name {
			t.names = append(t.names, src)
		}
	default:
		t.names = []string{p.Name}
		if base == "Go" {
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

func (m *Matcher) matchPackage(p *index.Package, res *Result) {
	t, ok := targetOf(p)
	if !ok {
		return
	}
	scheme, err := version.SchemeOf(t.ecosystem)
	if err != nil {
		return // an ecosystem Drydock has no order for has no advisories either
	}
	installed, err := scheme.Parse(t.version)
	if err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s %s %s: %v", t.ecosystem, p.Name, t.version, err))
		return
	}
	var semverInstalled version.Version // parsed on first SEMVER range
	start := len(res.Findings)
	for ni, name := range t.names {
		key := vulndb.NewKey(t.ecosystem, name)
		for _, adv := range m.db.Lookup(key) {
			if !adv.Withdrawn.IsZero() {
				continue
			}
			if ni > 0 && seen(res.Findings[start:], adv.ID) {
				continue // already matched under another name
			}
			var f *Finding
			for ai := range adv.Affected {
				aff := &adv.Affected[ai]
				if aff.Status == vulndb.StatusNotAffected || vulndb.NewKey(aff.Ecosystem, aff.Package) != key {
					continue
				}
				c := m.compile(aff, scheme)
				if c.err != "" {
					res.Warnings = append(res.Warnings, fmt.Sprintf("%s %s in %s: %s", key.Ecosystem, key.Package, adv.ID, c.err))
					continue
				}
				if c.needSemver && semverInstalled.IsZero() {
					semverInstalled, _ = version.SemVer.Parse(t.version)
				}
				hit, fixed, fixable := c.evaluate(installed, semverInstalled, p)
				if !hit {
					continue
				}
				if f == nil {
					res.Findings = append(res.Findings, newFinding(adv, aff, p, name))
					f = &res.Findings[len(res.Findings)-1]
				}
				f.merge(aff, fixed, fixable)
			}
		}
	}
}

func seen(fs []Finding, id string) bool {
	for i := range fs {
		if fs[i].AdvisoryID == id {
			return true
		}
	}
	return false
}

func newFinding(adv *vulndb.Advisory, aff *vulndb.Affected, p *index.Package, name string) Finding {
	vendor, cvss := severities(adv, aff)
	return Finding{
		AdvisoryID:     adv.ID,
		Aliases:        cveFirst(adv.Aliases),
		Package:        *p,
		MatchedName:    name,
		Status:         aff.Status,
		VendorSeverity: vendor,
		CVSS:           cvss,
		Published:      adv.Published,
		Summary:        adv.Summary,
		References:     adv.References,
		Advisory:       adv,
	}
}

// merge adds one matching affected entry's verdict to the finding.
func (f *Finding) merge(aff *vulndb.Affected, fixed []string, fixable bool) {
	for _, v := range fixed {
		if !contains(f.FixedVersions, v) {
			f.FixedVersions = append(f.FixedVersions, v)
		}
	}
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
		f.Status = aff.Status
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
