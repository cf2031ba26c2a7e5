package match

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/cvss"
)

// Severity levels, as Amazon Inspector names them.
const (
	SeverityCritical      = "CRITICAL"
	SeverityHigh          = "HIGH"
	SeverityMedium        = "MEDIUM"
	SeverityLow           = "LOW"
	SeverityInformational = "INFORMATIONAL"
	SeverityUntriaged     = "UNTRIAGED"
)

// SeverityRank orders the levels, CRITICAL highest (5) and UNTRIAGED
// lowest (0); an unknown level ranks -1.
func SeverityRank(level string) int {
	switch level {
	case SeverityCritical:
		return 5
	case SeverityHigh:
		return 4
	case SeverityMedium:
		return 3
	case SeverityLow:
		return 2
	case SeverityInformational:
		return 1
	case SeverityUntriaged:
		return 0
	}
	return -1
}

// Details is everything a report says about one finding. Its JSON form is
// part of drydock scan's output: fields are added, never renamed.
type Details struct {
	// ID is the advisory's id; Aliases its other ids, CVE ids first.
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	// Source is the database source (feed) the advisory came from.
	Source  string     `json:"source"`
	Package PackageRef `json:"package"`
	// MatchedName is the package name the advisory names (the source
	// package of a distribution's binary package).
	MatchedName string `json:"matchedName"`
	// Status is "affected" (upstream ranges), or the distributor's
	// "fixed", "unfixed", "will_not_fix" or "end_of_life".
	Status        string       `json:"status"`
	FixedVersions []string     `json:"fixedVersions,omitempty"`
	FixAvailable  FixAvailable `json:"fixAvailable"`
	// Severity is the level used for filtering and grouping: the
	// vendor's rating when it has one Drydock can place, else the CVSS
	// rating, else UNTRIAGED; SeveritySource says which ("vendor",
	// "cvss" or "").
	Severity       string        `json:"severity"`
	SeveritySource string        `json:"severitySource,omitempty"`
	VendorSeverity *VendorRating `json:"vendorSeverity,omitempty"`
	CVSS           *CVSS         `json:"cvss,omitempty"`
	EPSS           *EPSSScore    `json:"epss,omitempty"`
	// ExploitAvailable is true when one of the advisory's CVEs is in
	// CISA's Known Exploited Vulnerabilities catalogue (KEV says which).
	ExploitAvailable bool       `json:"exploitAvailable"`
	KEV              *KEVEntry  `json:"kev,omitempty"`
	Published        *time.Time `json:"published,omitempty"`
	Summary          string     `json:"summary,omitempty"`
	// Description is the start of the advisory's details.
	Description string   `json:"description,omitempty"`
	References  []string `json:"references,omitempty"`
}

// PackageRef is the installed package a finding is about.
type PackageRef struct {
	Name          string     `json:"name"`
	Version       string     `json:"version"`
	Ecosystem     string     `json:"ecosystem"`
	Type          index.Type `json:"type"`
	PURL          string     `json:"purl,omitempty"`
	SourceName    string     `json:"sourceName,omitempty"`
	SourceVersion string     `json:"sourceVersion,omitempty"`
	// Layer is the digest of the layer that introduced the package; Path
	// the file that declared it.
	Layer string `json:"layer,omitempty"`
	Path  string `json:"path"`
}

// VendorRating is a distributor's or publisher's own severity word, and
// who gave it.
type VendorRating struct {
	Rating string `json:"rating"`
	Source string `json:"source"`
}

// CVSS is one CVSS rating with its vector and who scored it.
type CVSS struct {
	Version   string  `json:"version"`
	BaseScore float64 `json:"baseScore"`
	Vector    string  `json:"vector"`
	Source    string  `json:"source"`
}

// EPSSScore is FIRST's exploit prediction for one of the advisory's CVEs
// (the highest scored).
type EPSSScore struct {
	CVE        string     `json:"cve"`
	Score      float64    `json:"score"`
	Percentile float64    `json:"percentile"`
	Date       *time.Time `json:"date,omitempty"`
}

// KEVEntry is the CISA KEV entry of one of the advisory's CVEs.
type KEVEntry struct {
	CVE                string     `json:"cve"`
	DateAdded          time.Time  `json:"dateAdded"`
	DueDate            *time.Time `json:"dueDate,omitempty"`
	RequiredAction     string     `json:"requiredAction,omitempty"`
	KnownRansomwareUse bool       `json:"knownRansomwareUse,omitempty"`
}

// maxDescription bounds Details.Description, in bytes.
const maxDescription = 400

// Describe gathers what a report says about f. full is the whole advisory
// as stored (the lookup index keeps a slim copy without details and
// references); nil uses f.Advisory. enrichment is what the CVE-level
// sources say about the advisory's CVEs (vulndb.Snapshot.Enrichment).
func Describe(f *Finding, full *vulndb.Advisory, enrichment []*vulndb.Enrichment) Details {
	adv := f.Advisory
	if full != nil {
		adv = full
	}
	p := f.Package
	d := Details{
		ID:      adv.ID,
		Aliases: cveFirst(adv.Aliases),
		Source:  adv.Source,
		Package: PackageRef{
			Name: p.Name, Version: p.Version, Ecosystem: p.Ecosystem, Type: p.Type, PURL: p.PURL,
			SourceName: p.SourceName, SourceVersion: p.SourceVersion, Layer: p.Layer, Path: p.Path,
		},
		MatchedName:   f.MatchedName(),
		Status:        string(f.Status),
		FixedVersions: slices.Clone(f.FixedVersions),
		FixAvailable:  f.FixAvailable,
		Summary:       adv.Summary,
		Description:   shorten(adv.Details, maxDescription),
	}
	if d.Status == "" {
		d.Status = "affected"
	}
	if !adv.Published.IsZero() && adv.Published.Year() > 1 {
		t := adv.Published.UTC()
		d.Published = &t
	}
	for _, r := range adv.References {
		if !slices.Contains(d.References, r.URL) {
			d.References = append(d.References, r.URL)
		}
	}

	aff := f.Affected
	if full != nil {
		aff = sameEntry(full, f.Affected)
	}
	vendor, score := severities(adv, aff)
	if vendor != nil {
		d.VendorSeverity = &VendorRating{Rating: vendor.Score, Source: vendor.Source}
	} else if word := databaseSeverity(adv); word != "" {
		d.VendorSeverity = &VendorRating{Rating: word, Source: idPrefix(adv.ID)}
	}
	if score == nil {
		score = enrichmentCVSS(enrichment)
	}
	if score != nil {
		d.CVSS = cvssOf(score)
	}
	d.Severity, d.SeveritySource = SeverityUntriaged, ""
	if d.VendorSeverity != nil {
		if lvl := vendorLevel(d.VendorSeverity.Rating); lvl != "" {
			d.Severity, d.SeveritySource = lvl, "vendor"
		}
	}
	if d.SeveritySource == "" && d.CVSS != nil {
		if lvl := cvssLevel(d.CVSS); lvl != "" {
			d.Severity, d.SeveritySource = lvl, "cvss"
		}
	}

	for _, e := range enrichment {
		if e.KEV != nil && (d.KEV == nil || e.KEV.DateAdded.Before(d.KEV.DateAdded)) {
			d.ExploitAvailable = true
			k := &KEVEntry{CVE: e.CVE, DateAdded: e.KEV.DateAdded, RequiredAction: e.KEV.RequiredAction, KnownRansomwareUse: e.KEV.KnownRansomwareUse}
			if !e.KEV.DueDate.IsZero() {
				due := e.KEV.DueDate
				k.DueDate = &due
			}
			d.KEV = k
		}
		if e.EPSS != nil && (d.EPSS == nil || e.EPSS.Score > d.EPSS.Score) {
			d.EPSS = &EPSSScore{CVE: e.CVE, Score: e.EPSS.Score, Percentile: e.EPSS.Percentile}
			if !e.EPSS.Date.IsZero() {
				date := e.EPSS.Date
				d.EPSS.Date = &date
			}
		}
	}
	return d
}

// sameEntry returns full's affected entry that is the same as aff (the
// lookup index's slim copy of it); nil when none is.
func sameEntry(full *vulndb.Advisory, aff *vulndb.Affected) *vulndb.Affected {
	if aff == nil {
		return nil
	}
	for i := range full.Affected {
		a := &full.Affected[i]
		if a.Ecosystem == aff.Ecosystem && a.Package == aff.Package && a.Status == aff.Status && a.VendorSeverity == aff.VendorSeverity {
			return a
		}
	}
	return aff
}

// databaseSeverity returns the severity word an OSV record keeps in its
// database_specific object (GitHub's "severity": "CRITICAL"), if any.
func databaseSeverity(a *vulndb.Advisory) string {
	if len(a.DatabaseSpecific) == 0 {
		return ""
	}
	var ds struct {
		Severity any `json:"severity"`
	}
	if json.Unmarshal(a.DatabaseSpecific, &ds) != nil {
		return ""
	}
	s, _ := ds.Severity.(string)
	return strings.TrimSpace(s)
}

// idPrefix names a publisher by its id's prefix ("GHSA-..." → "ghsa").
func idPrefix(id string) string {
	p, _, _ := strings.Cut(id, "-")
	return strings.ToLower(p)
}

// enrichmentCVSS picks the CVSS rating of the enrichment (NVD's own
// rating first, then a CNA's) when the advisory carries none.
func enrichmentCVSS(enrichment []*vulndb.Enrichment) *vulndb.Severity {
	var best *vulndb.Severity
	for _, e := range enrichment {
		for i := range e.NVD {
			s := &e.NVD[i]
			if cvssRank(s.Type) == 0 {
				continue
			}
			if best == nil || betterCVSS(s, best) {
				best = s
			}
		}
	}
	return best
}

// betterCVSS reports whether a is preferred over b: NVD's own rating over
// a CNA's, then by CVSS version (see cvssRank), then the higher score.
func betterCVSS(a, b *vulndb.Severity) bool {
	an, bn := isNVD(a.Source), isNVD(b.Source)
	if an != bn {
		return an
	}
	if ra, rb := cvssRank(a.Type), cvssRank(b.Type); ra != rb {
		return ra > rb
	}
	return a.BaseScore > b.BaseScore
}

func isNVD(source string) bool { return source == "nvd@nist.gov" || strings.EqualFold(source, "nvd") }

func cvssOf(s *vulndb.Severity) *CVSS {
	c := &CVSS{BaseScore: s.BaseScore, Vector: s.Score, Source: s.Source}
	if v, err := cvss.VersionOf(s.Score); err == nil {
		c.Version = string(v)
	}
	if c.BaseScore == 0 {
		if score, _, err := cvss.BaseScore(s.Score); err == nil {
			c.BaseScore = score
		}
	}
	return c
}

// cvssLevel is the qualitative rating of a CVSS score; "" for a score of
// 0 from a vector that did not parse.
func cvssLevel(c *CVSS) string {
	if c.BaseScore == 0 && c.Version == "" {
		return ""
	}
	switch r := cvss.Rating(c.BaseScore, cvss.Version(c.Version)); r {
	case "NONE":
		return SeverityInformational
	default:
		return r
	}
}

// vendorLevel places a vendor's rating word on Inspector's scale: Debian
// urgencies, Ubuntu priorities, the Red Hat family's impacts, Amazon's,
// GitHub's and SUSE's ratings. "" when the word says nothing ("not yet
// assigned", "unknown").
func vendorLevel(word string) string {
	w := strings.ToLower(strings.TrimSpace(word))
	w = strings.TrimSuffix(w, "*") // Debian marks some urgencies "low*"
	switch w {
	case "critical":
		return SeverityCritical
	case "high", "important":
		return SeverityHigh
	case "medium", "moderate":
		return SeverityMedium
	case "low":
		return SeverityLow
	case "negligible", "unimportant", "none":
		return SeverityInformational
	}
	return ""
}

// shorten returns s cut at a word boundary before max bytes, with "…"
// when cut, its whitespace collapsed.
func shorten(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if i := strings.LastIndexByte(s[:cut], ' '); i > max/2 {
		cut = i
	}
	return s[:cut] + "…"
}
