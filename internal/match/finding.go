package match

import (
	"slices"
	"strings"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// FixAvailable says whether the installed package can be upgraded out of a
// finding, as Amazon Inspector reports it.
type FixAvailable string

// The fixAvailable values.
const (
	// FixYes: every matching range names a fixed version.
	FixYes FixAvailable = "YES"
	// FixNo: no fixed version exists (or the distributor will not fix).
	FixNo FixAvailable = "NO"
	// FixPartial: some matching ranges have a fix and some do not.
	FixPartial FixAvailable = "PARTIAL"
)

// Finding is one advisory that applies to one installed package. It holds
// pointers, not copies: into the inventory given to Match and into the
// database's advisories, which are shared and must not be modified.
type Finding struct {
	// Package is the installed package (name, version, ecosystem, purl,
	// layer digest and file path), in the slice given to Match.
	Package *index.Package
	// Advisory is the matching advisory; Affected its first affected
	// entry that matched the package (where a distributor's per-package
	// rating is).
	Advisory *vulndb.Advisory
	Affected *vulndb.Affected
	// Status is the distributor's verdict: StatusAffected for upstream
	// records (their ranges decide), StatusFixed, StatusUnfixed,
	// StatusWillNotFix or StatusEndOfLife. Never StatusNotAffected.
	Status vulndb.Status
	// FixedVersions are the versions that fix the finding for this
	// package, in the order of the advisory's ranges; empty when there is
	// none. Shared: do not append to it.
	FixedVersions []string
	FixAvailable  FixAvailable
}

// MatchedName is the package name the advisory names: the source
// package for distributions (or the binary package, for RPM distributions
// that publish per binary package), the name as published for languages.
func (f *Finding) MatchedName() string { return f.Affected.Package }

// ID is the advisory's id.
func (f *Finding) ID() string { return f.Advisory.ID }

// Aliases returns the advisory's aliases with CVE ids first.
func (f *Finding) Aliases() []string { return cveFirst(f.Advisory.Aliases) }

// Severity returns the vendor's rating (the affected entry's own first,
// then the advisory's) and the advisory's CVSS rating (v3 first, see
// cvssRank); each says its source. Either may be nil. Describe adds what
// the enrichment sources say.
func (f *Finding) Severity() (vendor, cvss *vulndb.Severity) {
	return severities(f.Advisory, f.Affected)
}

// Unfixable reports whether the finding is one no upgrade removes today:
// unfixed, will-not-fix or end-of-life. Reports list these apart from
// fixable findings.
func (f *Finding) Unfixable() bool { return f.FixAvailable == FixNo }

// cveFirst returns the aliases with CVE ids first, each group in its
// original order.
func cveFirst(aliases []string) []string {
	if len(aliases) == 0 {
		return nil
	}
	out := make([]string, 0, len(aliases))
	for _, a := range aliases {
		if strings.HasPrefix(a, "CVE-") {
			out = append(out, a)
		}
	}
	for _, a := range aliases {
		if !strings.HasPrefix(a, "CVE-") {
			out = append(out, a)
		}
	}
	return out
}

// severities picks the vendor rating (the affected entry's own first, then
// the advisory's) and the preferred CVSS rating (see cvssRank).
func severities(adv *vulndb.Advisory, aff *vulndb.Affected) (vendor, cvss *vulndb.Severity) {
	if aff != nil && aff.VendorSeverity != "" {
		vendor = &vulndb.Severity{Type: vulndb.SeverityVendor, Score: aff.VendorSeverity, Source: adv.Source}
	}
	consider := func(list []vulndb.Severity) {
		for i := range list {
			s := &list[i]
			switch {
			case (s.Type == vulndb.SeverityVendor || s.Type == vulndb.SeverityUbuntu) && vendor == nil:
				vendor = s
			case cvssRank(s.Type) > 0 && (cvss == nil || cvssRank(s.Type) > cvssRank(cvss.Type)):
				cvss = s
			}
		}
	}
	if aff != nil {
		consider(aff.Severity)
	}
	consider(adv.Severity)
	return vendor, cvss
}

// cvssRank orders the CVSS severity types by preference: v3 (what NVD,
// GitHub and Amazon Inspector report first), then v4, then v2; 0 for
// others.
func cvssRank(typ string) int {
	switch typ {
	case vulndb.SeverityCVSSv2:
		return 1
	case vulndb.SeverityCVSSv4:
		return 2
	case vulndb.SeverityCVSSv3:
		return 3
	}
	return 0
}

// sortFindings orders findings by package name, path and advisory id
// (packages with the same name and path in inventory order), in place.
// Match makes the findings of one package next to each other, so it sorts
// those runs and, within each, the few findings of the package.
func sortFindings(fs []Finding) {
	type run struct{ start, end int }
	var runs []run
	for i := 0; i < len(fs); {
		j := i + 1
		for j < len(fs) && fs[j].Package == fs[i].Package {
			j++
		}
		runs = append(runs, run{i, j})
		pkg := fs[i:j]
		if !slices.IsSortedFunc(pkg, byID) {
			slices.SortFunc(pkg, byID)
		}
		i = j
	}
	cmp := func(a, b run) int {
		pa, pb := fs[a.start].Package, fs[b.start].Package
		if c := strings.Compare(pa.Name, pb.Name); c != 0 {
			return c
		}
		return strings.Compare(pa.Path, pb.Path)
	}
	if slices.IsSortedFunc(runs, cmp) {
		return
	}
	slices.SortStableFunc(runs, cmp)
	// from[k] is the current position of the finding that belongs at k;
	// follow each cycle of the permutation, moving one finding at a time
	// (no copy of the whole slice: matching must allocate little, as the
	// garbage collector would have to mark the whole database again).
	from := make([]int32, 0, len(fs))
	for _, r := range runs {
		for i := r.start; i < r.end; i++ {
			from = append(from, int32(i))
		}
	}
	for k := range from {
		if from[k] < 0 || int(from[k]) == k {
			continue
		}
		tmp := fs[k]
		dst := k
		for {
			src := int(from[dst])
			from[dst] = -1
			if src == k {
				fs[dst] = tmp
				break
			}
			fs[dst] = fs[src]
			dst = src
		}
	}
}

func byID(a, b Finding) int { return strings.Compare(a.Advisory.ID, b.Advisory.ID) }
