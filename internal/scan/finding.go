package scan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/match"
	"github.com/drydockhq/drydock/internal/vulndb"
)

// Finding statuses.
const (
	FindingActive     = "ACTIVE"
	FindingSuppressed = "SUPPRESSED"
	FindingClosed     = "CLOSED"
)

// Severities (ECR FindingSeverity; Inspector says UNTRIAGED for UNDEFINED).
const (
	SevInformational = "INFORMATIONAL"
	SevLow           = "LOW"
	SevMedium        = "MEDIUM"
	SevHigh          = "HIGH"
	SevCritical      = "CRITICAL"
	SevUndefined     = "UNDEFINED"
	SevUntriaged     = "UNTRIAGED"
)

// CVSS is one CVSS rating of a finding.
type CVSS struct {
	BaseScore     float64 `json:"baseScore"`
	ScoringVector string  `json:"scoringVector"`
	Source        string  `json:"source"`
	Version       string  `json:"version"`
}

// VulnerablePackage is the package a finding is about, with the ECR
// model's field names.
type VulnerablePackage struct {
	Arch            string `json:"arch,omitempty"`
	Epoch           int    `json:"epoch"`
	FilePath        string `json:"filePath,omitempty"`
	Name            string `json:"name"`
	PackageManager  string `json:"packageManager"`
	Release         string `json:"release,omitempty"`
	SourceLayerHash string `json:"sourceLayerHash,omitempty"`
	Version         string `json:"version"`
	FixedInVersion  string `json:"fixedInVersion"`
	// PURL is the package URL (for SBOMs and Inspector's package filters).
	PURL string `json:"purl,omitempty"`
}

// Attribute is a basic finding's key/value attribute.
type Attribute struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Finding is one stored finding: an advisory applying to one package of
// one image in one repository. It carries what both the ECR
// (ImageScanFinding, EnhancedImageScanFinding) and the Inspector (Finding)
// shapes are made from; the status and times come from the store.
type Finding struct {
	// ID is the finding's stable id, the last part of its ARN.
	ID         string `json:"id"`
	FindingArn string `json:"findingArn"`
	Repository string `json:"repositoryName"`
	Digest     string `json:"imageDigest"`
	// VulnerabilityID is the CVE when the advisory has one, else its id;
	// AdvisoryID is the database record's id.
	VulnerabilityID        string            `json:"vulnerabilityId"`
	AdvisoryID             string            `json:"advisoryId"`
	Title                  string            `json:"title"`
	Description            string            `json:"description"`
	Severity               string            `json:"severity"`
	Score                  float64           `json:"score,omitempty"`
	CVSS                   []CVSS            `json:"cvss"`
	ReferenceURLs          []string          `json:"referenceUrls"`
	RelatedVulnerabilities []string          `json:"relatedVulnerabilities"`
	Source                 string            `json:"source"`
	SourceURL              string            `json:"sourceUrl,omitempty"`
	VendorSeverity         string            `json:"vendorSeverity,omitempty"`
	VendorCreatedAt        time.Time         `json:"vendorCreatedAt,omitzero"`
	VendorUpdatedAt        time.Time         `json:"vendorUpdatedAt,omitzero"`
	Package                VulnerablePackage `json:"vulnerablePackage"`
	FixAvailable           string            `json:"fixAvailable"`
	ExploitAvailable       string            `json:"exploitAvailable"`
	Remediation            string            `json:"remediation"`
	// URI and Attributes are the basic finding's fields.
	URI        string      `json:"uri,omitempty"`
	Attributes []Attribute `json:"attributes"`
	// Platform is the image's OS ("ALPINE_3_10") and Architecture its
	// CPU, as Inspector's resource details give them.
	Platform     string `json:"platform,omitempty"`
	Architecture string `json:"architecture,omitempty"`

	Status          string    `json:"status"`
	FirstObservedAt time.Time `json:"firstObservedAt"`
	LastObservedAt  time.Time `json:"lastObservedAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
	// The ledger: when a fix became available, and when and why the
	// finding closed (or was suppressed). Set by ListFindings.
	FixAvailableSince time.Time   `json:"fixAvailableSince,omitzero"`
	ClosedAt          time.Time   `json:"closedAt,omitzero"`
	ClosedReason      CloseReason `json:"closedReason,omitempty"`
	// key identifies the finding within its image.
	key string
}

// packageManager is the ECR/Inspector name of a package type.
func packageManager(t index.Type) string {
	switch {
	case t.IsOS():
		return "OS"
	}
	switch t {
	case index.TypePython:
		return "PYTHONPKG"
	case index.TypeNPM:
		return "NODEPKG"
	case index.TypeJava:
		return "JAR"
	case index.TypeGoBinary:
		return "GOBINARY"
	case index.TypeGoMod:
		return "GOMOD"
	case index.TypeDotnet:
		return "DOTNET_CORE"
	case index.TypeGem:
		return "GEMSPEC"
	case index.TypeCargo:
		return "CARGO"
	case index.TypeComposer:
		return "COMPOSER"
	}
	return strings.ToUpper(string(t))
}

// severityFromWord maps a distributor's rating word to an ECR severity;
// ok is false for words that say nothing.
func severityFromWord(w string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(w)) {
	case "critical":
		return SevCritical, true
	case "high", "important":
		return SevHigh, true
	case "medium", "moderate":
		return SevMedium, true
	case "low":
		return SevLow, true
	case "negligible", "unimportant", "informational", "none":
		return SevInformational, true
	}
	return "", false
}

// severityFromScore maps a CVSS base score to the CVSS v3 bands.
func severityFromScore(s float64) string {
	switch {
	case s >= 9:
		return SevCritical
	case s >= 7:
		return SevHigh
	case s >= 4:
		return SevMedium
	case s > 0:
		return SevLow
	}
	return SevInformational
}

func cvssVersion(sev vulndb.Severity) string {
	if v, ok := strings.CutPrefix(sev.Score, "CVSS:"); ok {
		if i := strings.IndexByte(v, '/'); i > 0 {
			return v[:i]
		}
	}
	switch sev.Type {
	case vulndb.SeverityCVSSv2:
		return "2.0"
	}
	return strings.TrimPrefix(strings.TrimPrefix(sev.Type, "CVSS_V"), "CVSS_")
}

func isCVSS(t string) bool { return strings.HasPrefix(t, "CVSS_") }

// sourceName is the vulnerability source as Inspector spells it.
func sourceName(feed string) string {
	f := strings.ToLower(feed)
	switch {
	case strings.HasPrefix(f, "debian"):
		return "DEBIAN_CVE"
	case strings.HasPrefix(f, "ubuntu"):
		return "UBUNTU_CVE"
	case strings.HasPrefix(f, "alpine"):
		return "ALPINE_SECDB"
	case strings.HasPrefix(f, "alas"), strings.HasPrefix(f, "amazon"):
		return "ALAS"
	case strings.HasPrefix(f, "redhat"), strings.HasPrefix(f, "red hat"):
		return "REDHAT_CVE"
	case strings.HasPrefix(f, "osv-"), strings.HasPrefix(f, "ghsa"), strings.HasPrefix(f, "github"):
		return "GHSA"
	case strings.HasPrefix(f, "nvd"):
		return "NVD"
	}
	return strings.ToUpper(feed)
}

// splitRelease splits an OS package version into version and release the
// way ECR shows them ("1.1.1d-r2" → "1.1.1d", "r2").
func splitRelease(p *index.Package) (version, release string) {
	v := p.Version
	if p.Epoch != nil {
		v = strings.TrimPrefix(v, strconv.Itoa(*p.Epoch)+":")
	}
	if p.Release != "" {
		return strings.TrimSuffix(v, "-"+p.Release), p.Release
	}
	if p.Type.IsOS() {
		if i := strings.LastIndexByte(v, '-'); i > 0 {
			return v[:i], v[i+1:]
		}
	}
	return v, ""
}

// findingKey identifies a finding within an image: the advisory and the
// package identity.
func findingKey(advisory string, p *index.Package) string {
	return advisory + "|" + packageIdentity(p)
}

// keyAdvisory returns the advisory id a finding key begins with.
func keyAdvisory(key string) string {
	a, _, _ := strings.Cut(key, "|")
	return a
}

// packageIdentity identifies a package within an image: type, name,
// version and the file that declared it.
func packageIdentity(p *index.Package) string {
	return strings.Join([]string{string(p.Type), p.Name, p.Version, p.Path}, "|")
}

func findingID(repo, digest, key string) string {
	h := sha256.Sum256([]byte(repo + "\x00" + digest + "\x00" + key))
	return hex.EncodeToString(h[:16])
}

// buildFinding turns one match into a Finding (without store fields).
func (s *Service) buildFinding(snap *vulndb.Snapshot, repo, digest string, inv *index.Inventory, m *match.Finding, enhanced bool) Finding {
	a, p := m.Advisory, m.Package
	vid := m.ID()
	if aliases := m.Aliases(); len(aliases) > 0 && strings.HasPrefix(aliases[0], "CVE-") {
		vid = aliases[0]
	}
	f := Finding{
		Repository: repo, Digest: digest,
		VulnerabilityID: vid, AdvisoryID: a.ID,
		Title:                  vid + " - " + p.Name,
		Description:            a.Summary,
		CVSS:                   []CVSS{},
		ReferenceURLs:          []string{},
		RelatedVulnerabilities: []string{},
		Source:                 sourceName(a.Source),
		VendorCreatedAt:        a.Published,
		VendorUpdatedAt:        a.Modified,
		FixAvailable:           string(m.FixAvailable),
		ExploitAvailable:       "NO",
		Remediation:            "None Provided",
		Attributes:             []Attribute{},
		key:                    findingKey(a.ID, p),
	}
	if f.Description == "" {
		f.Description = a.Details
	}
	if f.Description == "" {
		f.Description = vid
	}
	for _, al := range m.Aliases() {
		if al != vid {
			f.RelatedVulnerabilities = append(f.RelatedVulnerabilities, al)
		}
	}
	if a.ID != vid && !contains(f.RelatedVulnerabilities, a.ID) {
		f.RelatedVulnerabilities = append(f.RelatedVulnerabilities, a.ID)
	}
	for _, r := range a.References {
		f.ReferenceURLs = append(f.ReferenceURLs, r.URL)
	}
	if len(f.ReferenceURLs) > 0 {
		f.SourceURL = f.ReferenceURLs[0]
	}
	// Ratings: the advisory's own CVSS vectors, then NVD's from enrichment.
	ratings := append([]vulndb.Severity{}, a.Severity...)
	if m.Affected != nil {
		ratings = append(ratings, m.Affected.Severity...)
	}
	for _, e := range snap.Enrichment(a) {
		ratings = append(ratings, e.NVD...)
		if e.KEV != nil {
			f.ExploitAvailable = "YES"
		}
	}
	var best *vulndb.Severity
	for i := range ratings {
		r := ratings[i]
		if !isCVSS(r.Type) || r.BaseScore == 0 {
			continue
		}
		src := strings.ToUpper(r.Source)
		if src == "" {
			src = f.Source
		}
		f.CVSS = append(f.CVSS, CVSS{BaseScore: r.BaseScore, ScoringVector: r.Score, Source: src, Version: cvssVersion(r)})
		if best == nil || cvssVersion(r) > cvssVersion(*best) {
			best = &ratings[i]
		}
	}
	vendor, _ := m.Severity()
	sev := ""
	if m.Affected != nil && m.Affected.VendorSeverity != "" {
		f.VendorSeverity = m.Affected.VendorSeverity
	} else if vendor != nil {
		f.VendorSeverity = vendor.Score
	}
	if w, ok := severityFromWord(f.VendorSeverity); ok {
		sev = w
	} else if best != nil {
		sev = severityFromScore(best.BaseScore)
	}
	if best != nil {
		f.Score = best.BaseScore
	}
	if sev == "" {
		sev = SevUndefined
		if enhanced {
			sev = SevUntriaged
		}
	}
	f.Severity = sev
	version, release := splitRelease(p)
	fixed := "NotAvailable"
	if len(m.FixedVersions) > 0 {
		fixed = m.FixedVersions[0]
	}
	f.Package = VulnerablePackage{
		Arch: strings.ToUpper(p.Arch), Name: p.Name, PackageManager: packageManager(p.Type),
		Release: release, SourceLayerHash: p.Layer, Version: version, FixedInVersion: fixed, PURL: p.PURL,
	}
	if p.Epoch != nil {
		f.Package.Epoch = *p.Epoch
	}
	if !p.Type.IsOS() {
		f.Package.FilePath = p.Path
	}
	f.URI = f.SourceURL
	f.Attributes = append(f.Attributes, Attribute{"package_version", p.Version}, Attribute{"package_name", p.Name})
	for _, c := range f.CVSS {
		switch {
		case c.Version == "2.0":
			f.Attributes = append(f.Attributes, Attribute{"CVSS2_VECTOR", c.ScoringVector}, Attribute{"CVSS2_SCORE", strconv.FormatFloat(c.BaseScore, 'f', -1, 64)})
		case strings.HasPrefix(c.Version, "3"):
			f.Attributes = append(f.Attributes, Attribute{"CVSS3_VECTOR", c.ScoringVector}, Attribute{"CVSS3_SCORE", strconv.FormatFloat(c.BaseScore, 'f', -1, 64)})
		}
	}
	f.Attributes = dedupeAttributes(f.Attributes)
	if inv.OS != nil {
		f.Platform = platformName(inv)
	}
	f.Architecture = architecture(inv.Platform)
	f.ID = findingID(repo, digest, f.key)
	f.FindingArn = fmt.Sprintf("arn:aws:inspector2:%s:%s:finding/%s", s.opts.Region, s.opts.AccountID, f.ID)
	return f
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func dedupeAttributes(in []Attribute) []Attribute {
	seen := map[string]bool{}
	out := in[:0]
	for _, a := range in {
		if seen[a.Key] {
			continue
		}
		seen[a.Key] = true
		out = append(out, a)
	}
	return out
}

// platformName is Inspector's platform name: "DEBIAN_12", "ALPINE_3_10".
func platformName(inv *index.Inventory) string {
	d := inv.OS
	v := d.VersionID
	if d.ID == "alpine" {
		// Alpine is named by its branch (3.10), not the point release.
		if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
			v = parts[0] + "." + parts[1]
		}
	}
	name := strings.ToUpper(d.ID)
	if v != "" {
		name += "_" + strings.NewReplacer(".", "_", "-", "_").Replace(v)
	}
	return name
}

func architecture(platform string) string {
	parts := strings.Split(platform, "/")
	if len(parts) >= 2 {
		return parts[1]
	}
	return ""
}

// SeverityCounts counts findings per severity; only severities that occur
// are present.
func SeverityCounts(fs []Finding) map[string]int {
	out := map[string]int{}
	for _, f := range fs {
		out[f.Severity]++
	}
	return out
}
