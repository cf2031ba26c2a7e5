// Package vulndb is Drydock's vulnerability database: one OSV-shaped model
// for every upstream source, stored in generations, each with the change set
// that says which (ecosystem, package) keys it touched, and an in-memory
// index for matching.
package vulndb

import (
	"encoding/json"
	"time"
)

// Advisory is one vulnerability record. It follows the OSV schema
// (https://ossf.github.io/osv-schema/) and adds what distributions publish
// beside it: their own severity and a status per release.
type Advisory struct {
	ID        string    `json:"id"`
	Aliases   []string  `json:"aliases,omitempty"`
	Related   []string  `json:"related,omitempty"`
	Upstream  []string  `json:"upstream,omitempty"` // OSV 1.7: the upstream records (CVEs) this one derives from
	Summary   string    `json:"summary,omitempty"`
	Details   string    `json:"details,omitempty"`
	Published time.Time `json:"published,omitzero"`
	Modified  time.Time `json:"modified,omitzero"`
	// Withdrawn is set when the publisher retracted the advisory.
	Withdrawn time.Time `json:"withdrawn,omitzero"`
	// Severity holds the advisory-level scores: CVSS vectors with their
	// computed base scores, and a vendor rating where the source has one.
	Severity   []Severity  `json:"severity,omitempty"`
	Affected   []Affected  `json:"affected,omitempty"`
	References []Reference `json:"references,omitempty"`
	Credits    []Credit    `json:"credits,omitempty"`
	// Source names the configured feed the record came from ("osv-Go",
	// "alpine-secdb", "alas-al2023", "redhat-csaf", ...).
	Source string `json:"source"`
	// DatabaseSpecific is the record's database_specific object, kept as
	// published.
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Severity types. The CVSS ones carry a vector in Score; SeverityVendor
// carries the distributor's own word ("HIGH", "important", "low", ...).
const (
	SeverityCVSSv2 = "CVSS_V2"
	SeverityCVSSv3 = "CVSS_V3"
	SeverityCVSSv4 = "CVSS_V4"
	SeverityUbuntu = "Ubuntu"
	SeverityVendor = "VENDOR"
)

// Severity is one rating of an advisory.
type Severity struct {
	Type string `json:"type"`
	// Score is the CVSS vector, or the vendor's rating word.
	Score string `json:"score"`
	// BaseScore is the CVSS base score computed from the vector (0 when the
	// type is not CVSS or the vector does not parse).
	BaseScore float64 `json:"base_score,omitempty"`
	// Source says who assigned the rating ("nvd", "ghsa", "debian", ...).
	Source string `json:"source,omitempty"`
}

// Status is a distribution's verdict on a package for a release. Upstream
// OSV records have no status: their ranges and versions say it all
// (StatusAffected).
type Status string

// The statuses a record can carry.
const (
	// StatusAffected: the ranges and versions decide.
	StatusAffected Status = ""
	// StatusFixed: affected below the fixed version in the ranges.
	StatusFixed Status = "fixed"
	// StatusUnfixed: affected, and no fix is published yet.
	StatusUnfixed Status = "unfixed"
	// StatusWillNotFix: affected, and the distributor will not fix it.
	StatusWillNotFix Status = "will_not_fix"
	// StatusNotAffected: the distributor says this release is not affected.
	StatusNotAffected Status = "not_affected"
	// StatusEndOfLife: the release is out of support; no fix will come.
	StatusEndOfLife Status = "end_of_life"
)

// Affected says which versions of one package an advisory applies to.
type Affected struct {
	// Ecosystem is the OSV ecosystem, with the release where the ecosystem
	// has releases: "Go", "PyPI", "npm", "Maven", "Debian:12",
	// "Ubuntu:22.04", "Alpine:v3.10", "AlmaLinux:9", "Amazon Linux:2023",
	// "Red Hat:9", ...
	Ecosystem string `json:"ecosystem"`
	// Package is the name as the ecosystem spells it. For distributions
	// it is the source package (Debian, Ubuntu, Alpine origin, source RPM
	// name), unless BinaryNames says otherwise.
	Package string `json:"package"`
	PURL    string `json:"purl,omitempty"`
	// BinaryNames, when a source publishes per binary package, lists them.
	BinaryNames []string `json:"binary_names,omitempty"`
	Ranges      []Range  `json:"ranges,omitempty"`
	Versions    []string `json:"versions,omitempty"`
	Status      Status   `json:"status,omitempty"`
	// VendorSeverity is the distributor's rating for this package, when it
	// rates per package (Debian urgency, Red Hat impact, Ubuntu priority).
	VendorSeverity    string          `json:"vendor_severity,omitempty"`
	Severity          []Severity      `json:"severity,omitempty"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  json.RawMessage `json:"database_specific,omitempty"`
}

// Range types, as in OSV.
const (
	RangeEcosystem = "ECOSYSTEM"
	RangeSemver    = "SEMVER"
	RangeGit       = "GIT"
)

// Range is an OSV range: a sorted list of events in the ecosystem's version
// order.
type Range struct {
	Type   string  `json:"type"`
	Repo   string  `json:"repo,omitempty"`
	Events []Event `json:"events"`
	// DatabaseSpecific is the range's database_specific object, kept as
	// published.
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Event is one OSV range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Reference is a link with its OSV type (ADVISORY, WEB, FIX, REPORT, ...).
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// Credit names someone the publisher credits for the advisory (OSV
// "credits"): a finder, reporter, remediation developer, ...
type Credit struct {
	Name    string   `json:"name"`
	Contact []string `json:"contact,omitempty"`
	Type    string   `json:"type,omitempty"`
}

// Key identifies the package an advisory touches, for lookups and change
// sets: the ecosystem with its release, and the package name normalised for
// that ecosystem.
type Key struct {
	Ecosystem string `json:"ecosystem"`
	Package   string `json:"package"`
}

// Enrichment is what the CVE-level sources (NVD, CISA KEV, EPSS) say about
// one CVE. It attaches to every advisory that has the CVE as its id or an
// alias.
type Enrichment struct {
	CVE string `json:"cve"`
	// NVD holds NVD's CVSS ratings for the CVE.
	NVD []Severity `json:"nvd,omitempty"`
	// KEV is set when the CVE is in CISA's Known Exploited Vulnerabilities.
	KEV *KEV `json:"kev,omitempty"`
	// EPSS is the exploit prediction score, when published.
	EPSS *EPSS `json:"epss,omitempty"`
}

// KEV is a CISA Known Exploited Vulnerabilities entry.
type KEV struct {
	DateAdded          time.Time `json:"date_added"`
	DueDate            time.Time `json:"due_date,omitzero"`
	RansomwareUse      string    `json:"ransomware_use,omitempty"`
	VulnerabilityName  string    `json:"vulnerability_name,omitempty"`
	RequiredAction     string    `json:"required_action,omitempty"`
	KnownRansomwareUse bool      `json:"known_ransomware_use,omitempty"`
}

// EPSS is one FIRST EPSS score.
type EPSS struct {
	Score      float64   `json:"score"`
	Percentile float64   `json:"percentile"`
	Date       time.Time `json:"date,omitzero"`
	Model      string    `json:"model,omitempty"`
}
