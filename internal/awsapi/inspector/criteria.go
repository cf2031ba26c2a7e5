package inspector

import (
	"strings"

	"github.com/drydockhq/drydock/internal/awsapi"
)

// StringFilter is inspector2's StringFilter.
type StringFilter struct {
	Comparison string `json:"comparison"`
	Value      string `json:"value"`
}

// DateFilter is inspector2's DateFilter (epoch seconds on the wire).
type DateFilter struct {
	StartInclusive *awsapi.Time `json:"startInclusive,omitempty"`
	EndInclusive   *awsapi.Time `json:"endInclusive,omitempty"`
}

// NumberFilter is inspector2's NumberFilter.
type NumberFilter struct {
	LowerInclusive *float64 `json:"lowerInclusive,omitempty"`
	UpperInclusive *float64 `json:"upperInclusive,omitempty"`
}

// PackageFilter is inspector2's PackageFilter.
type PackageFilter struct {
	Name            *StringFilter `json:"name,omitempty"`
	Version         *StringFilter `json:"version,omitempty"`
	Release         *StringFilter `json:"release,omitempty"`
	Architecture    *StringFilter `json:"architecture,omitempty"`
	SourceLayerHash *StringFilter `json:"sourceLayerHash,omitempty"`
	FilePath        *StringFilter `json:"filePath,omitempty"`
	Epoch           *NumberFilter `json:"epoch,omitempty"`
}

// FilterCriteria is the part of inspector2's FilterCriteria that applies
// to container images. Members are ANDed; the filters of one member are
// ORed, except that NOT_EQUALS filters must all hold.
type FilterCriteria struct {
	FindingArn             []StringFilter  `json:"findingArn,omitempty"`
	AwsAccountID           []StringFilter  `json:"awsAccountId,omitempty"`
	FindingType            []StringFilter  `json:"findingType,omitempty"`
	Severity               []StringFilter  `json:"severity,omitempty"`
	FindingStatus          []StringFilter  `json:"findingStatus,omitempty"`
	Title                  []StringFilter  `json:"title,omitempty"`
	ResourceType           []StringFilter  `json:"resourceType,omitempty"`
	ResourceID             []StringFilter  `json:"resourceId,omitempty"`
	EcrImageRepositoryName []StringFilter  `json:"ecrImageRepositoryName,omitempty"`
	EcrImageRegistry       []StringFilter  `json:"ecrImageRegistry,omitempty"`
	EcrImageTags           []StringFilter  `json:"ecrImageTags,omitempty"`
	EcrImageHash           []StringFilter  `json:"ecrImageHash,omitempty"`
	EcrImageArchitecture   []StringFilter  `json:"ecrImageArchitecture,omitempty"`
	VulnerabilityID        []StringFilter  `json:"vulnerabilityId,omitempty"`
	VulnerabilitySource    []StringFilter  `json:"vulnerabilitySource,omitempty"`
	VendorSeverity         []StringFilter  `json:"vendorSeverity,omitempty"`
	RelatedVulnerabilities []StringFilter  `json:"relatedVulnerabilities,omitempty"`
	FixAvailable           []StringFilter  `json:"fixAvailable,omitempty"`
	ExploitAvailable       []StringFilter  `json:"exploitAvailable,omitempty"`
	FirstObservedAt        []DateFilter    `json:"firstObservedAt,omitempty"`
	LastObservedAt         []DateFilter    `json:"lastObservedAt,omitempty"`
	UpdatedAt              []DateFilter    `json:"updatedAt,omitempty"`
	EcrImagePushedAt       []DateFilter    `json:"ecrImagePushedAt,omitempty"`
	InspectorScore         []NumberFilter  `json:"inspectorScore,omitempty"`
	EpssScore              []NumberFilter  `json:"epssScore,omitempty"`
	VulnerablePackages     []PackageFilter `json:"vulnerablePackages,omitempty"`
}

var comparisons = map[string]bool{"EQUALS": true, "PREFIX": true, "NOT_EQUALS": true}

// validate checks the criteria as the model constrains them.
func (c *FilterCriteria) validate() error {
	strs := map[string][]StringFilter{
		"findingArn": c.FindingArn, "awsAccountId": c.AwsAccountID, "findingType": c.FindingType,
		"severity": c.Severity, "findingStatus": c.FindingStatus, "title": c.Title,
		"resourceType": c.ResourceType, "resourceId": c.ResourceID,
		"ecrImageRepositoryName": c.EcrImageRepositoryName, "ecrImageRegistry": c.EcrImageRegistry,
		"ecrImageTags": c.EcrImageTags, "ecrImageHash": c.EcrImageHash, "ecrImageArchitecture": c.EcrImageArchitecture,
		"vulnerabilityId": c.VulnerabilityID, "vulnerabilitySource": c.VulnerabilitySource,
		"vendorSeverity": c.VendorSeverity, "relatedVulnerabilities": c.RelatedVulnerabilities,
		"fixAvailable": c.FixAvailable, "exploitAvailable": c.ExploitAvailable,
	}
	for name, fs := range strs {
		if len(fs) > 10 {
			return validation("filterCriteria.%s: at most 10 filters", name)
		}
		for _, f := range fs {
			if err := f.validate("filterCriteria." + name); err != nil {
				return err
			}
		}
	}
	n := map[string]int{"firstObservedAt": len(c.FirstObservedAt), "lastObservedAt": len(c.LastObservedAt),
		"updatedAt": len(c.UpdatedAt), "ecrImagePushedAt": len(c.EcrImagePushedAt),
		"inspectorScore": len(c.InspectorScore), "epssScore": len(c.EpssScore),
		"vulnerablePackages": len(c.VulnerablePackages)}
	for name, k := range n {
		if k > 10 {
			return validation("filterCriteria.%s: at most 10 filters", name)
		}
	}
	for _, p := range c.VulnerablePackages {
		for name, f := range map[string]*StringFilter{"name": p.Name, "version": p.Version, "release": p.Release,
			"architecture": p.Architecture, "sourceLayerHash": p.SourceLayerHash, "filePath": p.FilePath} {
			if f != nil {
				if err := f.validate("filterCriteria.vulnerablePackages." + name); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (f StringFilter) validate(field string) error {
	if !comparisons[f.Comparison] {
		return validation("%s.comparison: %q is not one of EQUALS, PREFIX, NOT_EQUALS", field, f.Comparison)
	}
	if len(f.Value) < 1 || len(f.Value) > 1024 {
		return validation("%s.value: length must be 1 to 1024", field)
	}
	return nil
}

// matchOne reports whether one string filter holds for v.
func (f StringFilter) matchOne(v string) bool {
	switch f.Comparison {
	case "EQUALS":
		return v == f.Value
	case "PREFIX":
		return strings.HasPrefix(v, f.Value)
	case "NOT_EQUALS":
		return v != f.Value
	}
	return false
}

// matchStrings applies a member's filters to a value with one or more
// values (image tags, related vulnerabilities): the positive filters
// (EQUALS, PREFIX) are alternatives, one must match some value; every
// NOT_EQUALS filter must hold for every value.
func matchStrings(fs []StringFilter, vals ...string) bool {
	if len(fs) == 0 {
		return true
	}
	positive, matched := false, false
	for _, f := range fs {
		if f.Comparison == "NOT_EQUALS" {
			for _, v := range vals {
				if v == f.Value {
					return false
				}
			}
			continue
		}
		positive = true
		for _, v := range vals {
			if f.matchOne(v) {
				matched = true
			}
		}
	}
	return !positive || matched
}

func matchDates(fs []DateFilter, v awsapi.Time) bool {
	if len(fs) == 0 {
		return true
	}
	for _, f := range fs {
		if f.StartInclusive != nil && v.Before(f.StartInclusive.Time) {
			continue
		}
		if f.EndInclusive != nil && v.After(f.EndInclusive.Time) {
			continue
		}
		return true
	}
	return false
}

func (f NumberFilter) match(v float64) bool {
	return (f.LowerInclusive == nil || v >= *f.LowerInclusive) && (f.UpperInclusive == nil || v <= *f.UpperInclusive)
}

func matchNumbers(fs []NumberFilter, v float64) bool {
	if len(fs) == 0 {
		return true
	}
	for _, f := range fs {
		if f.match(v) {
			return true
		}
	}
	return false
}

func matchPackage(fs []PackageFilter, p *VulnerablePackage) bool {
	if len(fs) == 0 {
		return true
	}
	one := func(f *StringFilter, v string) bool { return f == nil || f.matchOne(v) }
	for _, f := range fs {
		if one(f.Name, p.Name) && one(f.Version, p.Version) && one(f.Release, p.Release) &&
			one(f.Architecture, p.Arch) && one(f.SourceLayerHash, p.SourceLayerHash) && one(f.FilePath, p.FilePath) &&
			(f.Epoch == nil || f.Epoch.match(float64(p.Epoch))) {
			return true
		}
	}
	return false
}

// Matches reports whether a finding (in its wire shape) meets the criteria.
func (c *FilterCriteria) Matches(f *Finding) bool {
	img := f.Resources[0].Details.AwsEcrContainerImage
	vd := f.PackageVulnerabilityDetails
	if !matchStrings(c.FindingArn, f.FindingArn) || !matchStrings(c.AwsAccountID, f.AwsAccountID) ||
		!matchStrings(c.FindingType, f.Type) || !matchStrings(c.Severity, f.Severity) ||
		!matchStrings(c.FindingStatus, f.Status) || !matchStrings(c.Title, f.Title) ||
		!matchStrings(c.ResourceType, f.Resources[0].Type) || !matchStrings(c.ResourceID, f.Resources[0].ID) ||
		!matchStrings(c.EcrImageRepositoryName, img.RepositoryName) || !matchStrings(c.EcrImageRegistry, img.Registry) ||
		!matchStrings(c.EcrImageHash, img.ImageHash) || !matchStrings(c.EcrImageArchitecture, img.Architecture) ||
		!matchStrings(c.VulnerabilityID, vd.VulnerabilityID) || !matchStrings(c.VulnerabilitySource, vd.Source) ||
		!matchStrings(c.VendorSeverity, vd.VendorSeverity) || !matchStrings(c.FixAvailable, f.FixAvailable) ||
		!matchStrings(c.ExploitAvailable, f.ExploitAvailable) {
		return false
	}
	if len(c.EcrImageTags) > 0 && (len(img.ImageTags) == 0 || !matchStrings(c.EcrImageTags, img.ImageTags...)) {
		// An untagged image matches no tag filter, NOT_EQUALS included.
		return false
	}
	if len(c.RelatedVulnerabilities) > 0 && (len(vd.RelatedVulnerabilities) == 0 || !matchStrings(c.RelatedVulnerabilities, vd.RelatedVulnerabilities...)) {
		return false
	}
	if !matchDates(c.FirstObservedAt, f.FirstObservedAt) || !matchDates(c.LastObservedAt, f.LastObservedAt) ||
		!matchDates(c.UpdatedAt, f.UpdatedAt) || !matchDates(c.EcrImagePushedAt, img.PushedAt) {
		return false
	}
	if len(c.InspectorScore) > 0 && (f.InspectorScore == nil || !matchNumbers(c.InspectorScore, *f.InspectorScore)) {
		return false
	}
	// A finding without an EPSS score matches no epssScore filter, as one
	// without an Inspector score matches no inspectorScore filter.
	if len(c.EpssScore) > 0 && (f.Epss == nil || !matchNumbers(c.EpssScore, f.Epss.Score)) {
		return false
	}
	return matchPackage(c.VulnerablePackages, &vd.VulnerablePackages[0])
}
