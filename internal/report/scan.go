package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/match"
)

// ScanSchemaVersion is the version of the Scan JSON document. It changes
// only when a field is renamed or removed or changes meaning; new fields
// do not change it.
const ScanSchemaVersion = 1

// Scan is the result of drydock scan: what was scanned, against which
// state of the vulnerability database, with which filters, and the
// findings of each image.
type Scan struct {
	SchemaVersion int          `json:"schemaVersion"`
	Tool          ScanTool     `json:"tool"`
	CreatedAt     time.Time    `json:"createdAt"`
	Target        string       `json:"target"`
	Database      ScanDatabase `json:"database"`
	Filters       ScanFilters  `json:"filters"`
	Images        []ScanImage  `json:"images"`
}

// ScanTool names the program that made the document.
type ScanTool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ScanDatabase is the state of the vulnerability database the scan used.
type ScanDatabase struct {
	Generation  int64     `json:"generation"`
	GeneratedAt time.Time `json:"generatedAt"`
	// UpdatedAt is the last time a source was fetched successfully (a
	// fetch that found nothing new makes no generation).
	UpdatedAt  time.Time `json:"updatedAt"`
	Advisories int       `json:"advisories"`
	// Stale is set when UpdatedAt is older than the scan's limit; the
	// findings may then miss recent advisories.
	Stale bool `json:"stale"`
	// Warnings say what is wrong with the database (stale, failing
	// sources).
	Warnings []string `json:"warnings,omitempty"`
}

// ScanFilters are the filters applied to the findings.
type ScanFilters struct {
	// Severities keeps only findings of these levels; empty keeps all.
	Severities []string `json:"severities,omitempty"`
	// IgnoreUnfixed drops findings without a fix (fixAvailable NO).
	IgnoreUnfixed bool `json:"ignoreUnfixed"`
	// PkgTypes keeps only "os" packages, "library" packages, or both
	// (empty).
	PkgTypes []string `json:"pkgTypes,omitempty"`
}

// The package type classes of ScanFilters.PkgTypes.
const (
	PkgTypeOS      = "os"
	PkgTypeLibrary = "library"
)

// Keep reports whether a finding passes the filters.
func (f ScanFilters) Keep(d *match.Details) bool {
	if len(f.Severities) > 0 && !slices.Contains(f.Severities, d.Severity) {
		return false
	}
	if f.IgnoreUnfixed && d.FixAvailable == match.FixNo {
		return false
	}
	if len(f.PkgTypes) > 0 {
		class := PkgTypeLibrary
		if d.Package.Type.IsOS() {
			class = PkgTypeOS
		}
		if !slices.Contains(f.PkgTypes, class) {
			return false
		}
	}
	return true
}

// ScanImage is one scanned image (one platform of a multi-platform image)
// and its findings.
type ScanImage struct {
	Name     string `json:"name"`
	Digest   string `json:"digest,omitempty"`
	Platform string `json:"platform,omitempty"`
	// OS is the detected distribution; empty when the image has none.
	OS       string `json:"os,omitempty"`
	Packages int    `json:"packages"`
	// Findings passed the filters; Filtered counts those that did not.
	Findings []match.Details `json:"findings"`
	Filtered int             `json:"filtered"`
	// Summary counts the findings by severity level (every level present,
	// zero or not).
	Summary  map[string]int `json:"summary"`
	Warnings []string       `json:"warnings,omitempty"`
}

// NewScanImage makes the report of one image: the findings that pass the
// filters, ordered by severity (highest first), fixable before unfixable,
// then by package name, path and advisory id.
func NewScanImage(inv *index.Inventory, findings []match.Details, filters ScanFilters, warnings []string) ScanImage {
	img := ScanImage{
		Name:     inv.Name,
		Digest:   inv.Digest,
		Platform: inv.Platform,
		Packages: len(inv.Packages),
		Findings: []match.Details{},
		Summary:  map[string]int{},
		Warnings: append(slices.Clone(inv.Warnings), warnings...),
	}
	if inv.OS != nil {
		img.OS = inv.OS.String()
	}
	for _, lvl := range severityLevels {
		img.Summary[lvl] = 0
	}
	for i := range findings {
		if !filters.Keep(&findings[i]) {
			img.Filtered++
			continue
		}
		img.Findings = append(img.Findings, findings[i])
		img.Summary[findings[i].Severity]++
	}
	slices.SortStableFunc(img.Findings, compareFindings)
	return img
}

// severityLevels lists the levels, highest first.
var severityLevels = []string{match.SeverityCritical, match.SeverityHigh, match.SeverityMedium, match.SeverityLow, match.SeverityInformational, match.SeverityUntriaged}

func compareFindings(a, b match.Details) int {
	if c := cmp.Compare(match.SeverityRank(b.Severity), match.SeverityRank(a.Severity)); c != 0 {
		return c
	}
	if c := cmp.Compare(fixOrder(a.FixAvailable), fixOrder(b.FixAvailable)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Package.Name, b.Package.Name); c != 0 {
		return c
	}
	if c := strings.Compare(a.Package.Path, b.Package.Path); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// fixOrder puts fixable findings first, partly fixable next.
func fixOrder(f match.FixAvailable) int {
	switch f {
	case match.FixYes:
		return 0
	case match.FixPartial:
		return 1
	}
	return 2
}

// Count is the number of findings that passed the filters, over all
// images.
func (s *Scan) Count() int {
	n := 0
	for _, img := range s.Images {
		n += len(img.Findings)
	}
	return n
}

// WriteScanJSON writes the scan as one indented JSON document.
func WriteScanJSON(w io.Writer, s *Scan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(s)
}

// WriteScanTable writes the scan for people: per image a header, then
// the findings grouped by severity, the fixable ones of each level first
// and the ones without a fix marked as such, and a summary line.
func WriteScanTable(w io.Writer, s *Scan) error {
	db := s.Database
	fmt.Fprintf(w, "Vulnerability database: generation %d, updated %s", db.Generation, db.UpdatedAt.Format(time.RFC3339))
	if !db.UpdatedAt.IsZero() {
		fmt.Fprintf(w, " (%s ago)", ago(s.CreatedAt, db.UpdatedAt))
	}
	fmt.Fprintf(w, ", %d advisories\n", db.Advisories)
	for _, warn := range db.Warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warn)
	}
	if f := filterText(s.Filters); f != "" {
		fmt.Fprintf(w, "Filters: %s\n", f)
	}
	for _, img := range s.Images {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Image:    %s\n", img.Name)
		if img.Digest != "" {
			fmt.Fprintf(w, "Digest:   %s\n", img.Digest)
		}
		if img.Platform != "" {
			fmt.Fprintf(w, "Platform: %s\n", img.Platform)
		}
		osName := img.OS
		if osName == "" {
			osName = "none detected"
		}
		fmt.Fprintf(w, "OS:       %s\n", osName)
		fmt.Fprintf(w, "Packages: %d\n", img.Packages)
		fixable := 0
		for _, f := range img.Findings {
			if f.FixAvailable != match.FixNo {
				fixable++
			}
		}
		fmt.Fprintf(w, "Findings: %d (%d fixable, %d without a fix", len(img.Findings), fixable, len(img.Findings)-fixable)
		if img.Filtered > 0 {
			fmt.Fprintf(w, "; %d more left out by the filters", img.Filtered)
		}
		fmt.Fprintln(w, ")")
		var parts []string
		for _, lvl := range severityLevels {
			parts = append(parts, fmt.Sprintf("%s %d", lvl, img.Summary[lvl]))
		}
		fmt.Fprintf(w, "          %s\n", strings.Join(parts, ", "))
		if len(img.Findings) == 0 {
			fmt.Fprintln(w, "\nNo vulnerabilities found.")
		}
		for _, lvl := range severityLevels {
			group := slices.DeleteFunc(slices.Clone(img.Findings), func(d match.Details) bool { return d.Severity != lvl })
			if len(group) == 0 {
				continue
			}
			fmt.Fprintf(w, "\n%s (%d)\n", lvl, len(group))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCVE\tPACKAGE\tINSTALLED\tFIXED IN\tFIX\tCVSS\tEPSS\tKEV\tPATH")
			for _, d := range group {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, firstCVE(d), d.Package.Name, d.Package.Version,
					fixedText(d), d.FixAvailable, cvssText(d), epssText(d), kevText(d), "/"+d.Package.Path)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		for _, warn := range img.Warnings {
			fmt.Fprintf(w, "warning: %s\n", warn)
		}
	}
	return nil
}

func filterText(f ScanFilters) string {
	var parts []string
	if len(f.Severities) > 0 {
		parts = append(parts, "severity "+strings.Join(f.Severities, ","))
	}
	if f.IgnoreUnfixed {
		parts = append(parts, "fixable only")
	}
	if len(f.PkgTypes) > 0 {
		parts = append(parts, "package types "+strings.Join(f.PkgTypes, ","))
	}
	return strings.Join(parts, "; ")
}

func firstCVE(d match.Details) string {
	if strings.HasPrefix(d.ID, "CVE-") {
		return "-"
	}
	for _, a := range d.Aliases {
		if strings.HasPrefix(a, "CVE-") {
			return a
		}
	}
	return "-"
}

// fixedText is the fixed versions, or why there is none.
func fixedText(d match.Details) string {
	if len(d.FixedVersions) > 0 {
		return strings.Join(d.FixedVersions, ", ")
	}
	switch d.Status {
	case "unfixed":
		return "(no fix yet)"
	case "will_not_fix":
		return "(will not fix)"
	case "end_of_life":
		return "(end of life)"
	}
	return "(no fix)"
}

func cvssText(d match.Details) string {
	if d.CVSS == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", d.CVSS.BaseScore)
}

func epssText(d match.Details) string {
	if d.EPSS == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", d.EPSS.Score*100)
}

func kevText(d match.Details) string {
	if d.ExploitAvailable {
		return "yes"
	}
	return "-"
}

func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
