package match

import (
	"slices"
	"strings"
	"time"

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

// Finding is one advisory that applies to one installed package.
type Finding struct {
	// AdvisoryID is the advisory's id; Aliases its aliases with CVE ids
	// first.
	AdvisoryID string
	Aliases    []string
	// Package is the installed package (name, version, ecosystem, purl,
	// layer digest and file path).
	Package index.Package
	// MatchedName is the package name the advisory names: the source
	// package for distributions, the normalised name for languages.
	MatchedName string
	// Status is the distributor's verdict: StatusAffected for upstream
	// records (their ranges decide), StatusFixed, StatusUnfixed,
	// StatusWillNotFix or StatusEndOfLife. Never StatusNotAffected.
	Status vulndb.Status
	// FixedVersions are the versions that fix the finding for this
	// package, in the ecosystem's order; empty when there is none.
	FixedVersions []string
	FixAvailable  FixAvailable
	// VendorSeverity is the distributor's or publisher's own rating when
	// it has one; CVSS the advisory's highest-version CVSS rating. Each
	// carries its source.
	VendorSeverity *vulndb.Severity
	CVSS           *vulndb.Severity
	Published      time.Time
	Summary        string
	References     []vulndb.Reference
	// Advisory is the whole record, for what a report needs beyond this.
	Advisory *vulndb.Advisory
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
// the advisory's) and the CVSS rating of the newest CVSS version.
func severities(adv *vulndb.Advisory, aff *vulndb.Affected) (vendor, cvss *vulndb.Severity) {
	if aff != nil && aff.VendorSeverity != "" {
		vendor = &vulndb.Severity{Type: vulndb.SeverityVendor, Score: aff.VendorSeverity, Source: adv.Source}
	}
	rank := map[string]int{vulndb.SeverityCVSSv2: 1, vulndb.SeverityCVSSv3: 2, vulndb.SeverityCVSSv4: 3}
	consider := func(list []vulndb.Severity) {
		for i := range list {
			s := &list[i]
			switch {
			case (s.Type == vulndb.SeverityVendor || s.Type == vulndb.SeverityUbuntu) && vendor == nil:
				vendor = s
			case rank[s.Type] > 0 && (cvss == nil || rank[s.Type] > rank[cvss.Type]):
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

func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		if c := strings.Compare(a.Package.Name, b.Package.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Package.Path, b.Package.Path); c != 0 {
			return c
		}
		return strings.Compare(a.AdvisoryID, b.AdvisoryID)
	})
}
