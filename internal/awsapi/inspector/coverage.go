package inspector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
)

// CoveredResource is inspector2's CoveredResource for ECR images and
// repositories.
type CoveredResource struct {
	ResourceType     string            `json:"resourceType"`
	ResourceID       string            `json:"resourceId"`
	AccountID        string            `json:"accountId"`
	ScanType         string            `json:"scanType"`
	ScanStatus       *CoverageStatus   `json:"scanStatus,omitempty"`
	ResourceMetadata *ResourceMetadata `json:"resourceMetadata,omitempty"`
	LastScannedAt    awsapi.Time       `json:"lastScannedAt,omitzero"`

	repository string
	tags       []string
}

// CoverageStatus is inspector2's ScanStatus.
type CoverageStatus struct {
	StatusCode string `json:"statusCode"`
	Reason     string `json:"reason"`
}

// ResourceMetadata holds the ECR image or repository metadata.
type ResourceMetadata struct {
	EcrRepository *struct {
		Name          string `json:"name"`
		ScanFrequency string `json:"scanFrequency"`
	} `json:"ecrRepository,omitempty"`
	EcrImage *struct {
		Tags          []string    `json:"tags"`
		ImagePulledAt awsapi.Time `json:"imagePulledAt,omitzero"`
	} `json:"ecrImage,omitempty"`
}

// coverageStatus maps an ECR scan status to Inspector's coverage status.
func coverageStatus(st string) CoverageStatus {
	switch st {
	case scan.StatusComplete, scan.StatusActive:
		return CoverageStatus{"ACTIVE", "SUCCESSFUL"}
	case scan.StatusPending:
		return CoverageStatus{"ACTIVE", "PENDING_INITIAL_SCAN"}
	case scan.StatusInProgress:
		return CoverageStatus{"ACTIVE", "SCAN_IN_PROGRESS"}
	case scan.StatusUnsupportedImage:
		return CoverageStatus{"INACTIVE", "UNSUPPORTED_OS"}
	case scan.StatusEligibilityExp:
		return CoverageStatus{"INACTIVE", "SCAN_ELIGIBILITY_EXPIRED"}
	}
	// FAILED, FINDINGS_UNAVAILABLE, LIMIT_EXCEEDED.
	return CoverageStatus{"INACTIVE", "INTERNAL_ERROR"}
}

// repositoryStatus is a repository's coverage under its scan frequency.
func repositoryStatus(f scan.Frequency) CoverageStatus {
	switch f {
	case scan.ContinuousScan:
		return CoverageStatus{"ACTIVE", "SUCCESSFUL"}
	case scan.ScanOnPush:
		return CoverageStatus{"ACTIVE", "SCAN_FREQUENCY_SCAN_ON_PUSH"}
	}
	return CoverageStatus{"INACTIVE", "SCAN_FREQUENCY_MANUAL"}
}

// coverage lists the scanned images and every repository the principal
// may read. The scan package has no listing of scan statuses across
// images, so the scan_scans table is read here directly.
func (s *Service) coverage(ctx context.Context, req *awsapi.Request) ([]CoveredResource, error) {
	var out []CoveredResource
	var repos []string
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM registry_repositories ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("inspector: coverage: %w", err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inspector: coverage: %w", err)
		}
		if canRead(req.Principal, name) {
			repos = append(repos, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inspector: coverage: %w", err)
	}
	cfgs, err := s.scan.EffectiveConfiguration(ctx, repos...)
	if err != nil {
		return nil, err
	}
	for _, c := range cfgs {
		st := repositoryStatus(c.ScanFrequency)
		md := &ResourceMetadata{EcrRepository: &struct {
			Name          string `json:"name"`
			ScanFrequency string `json:"scanFrequency"`
		}{c.RepositoryName, string(c.ScanFrequency)}}
		out = append(out, CoveredResource{ResourceType: "AWS_ECR_REPOSITORY",
			ResourceID: "arn:aws:ecr:" + req.Region + ":" + s.account.ID + ":repository/" + c.RepositoryName,
			AccountID:  s.account.ID, ScanType: "PACKAGE", ScanStatus: &st, ResourceMetadata: md, repository: c.RepositoryName})
	}
	metas, err := s.images(ctx)
	if err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, `SELECT repository, image_digest, status, started_at, completed_at FROM scan_scans
		ORDER BY repository, image_digest`)
	if err != nil {
		return nil, fmt.Errorf("inspector: coverage: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var repo, dg, status string
		var started, completed int64
		if err := rows.Scan(&repo, &dg, &status, &started, &completed); err != nil {
			return nil, fmt.Errorf("inspector: coverage: %w", err)
		}
		if !canRead(req.Principal, repo) {
			continue
		}
		st := coverageStatus(status)
		var tags []string
		if m := metas[imageKey{repo, dg}]; m != nil {
			tags = m.Tags
		}
		md := &ResourceMetadata{EcrImage: &struct {
			Tags          []string    `json:"tags"`
			ImagePulledAt awsapi.Time `json:"imagePulledAt,omitzero"`
		}{Tags: tags}}
		if md.EcrImage.Tags == nil {
			md.EcrImage.Tags = []string{}
		}
		r := CoveredResource{ResourceType: "AWS_ECR_CONTAINER_IMAGE", ResourceID: ImageArn(req.Region, s.account.ID, repo, dg),
			AccountID: s.account.ID, ScanType: "PACKAGE", ScanStatus: &st, ResourceMetadata: md, repository: repo, tags: tags}
		if completed > 0 {
			r.LastScannedAt = awsapi.At(time.UnixMilli(completed).UTC())
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// CoverageStringFilter is inspector2's CoverageStringFilter.
type CoverageStringFilter struct {
	Comparison string `json:"comparison"`
	Value      string `json:"value"`
}

// CoverageFilterCriteria is the part of inspector2's
// CoverageFilterCriteria that applies to ECR.
type CoverageFilterCriteria struct {
	ScanStatusCode    []CoverageStringFilter `json:"scanStatusCode,omitempty"`
	ScanStatusReason  []CoverageStringFilter `json:"scanStatusReason,omitempty"`
	AccountID         []CoverageStringFilter `json:"accountId,omitempty"`
	ResourceID        []CoverageStringFilter `json:"resourceId,omitempty"`
	ResourceType      []CoverageStringFilter `json:"resourceType,omitempty"`
	ScanType          []CoverageStringFilter `json:"scanType,omitempty"`
	EcrRepositoryName []CoverageStringFilter `json:"ecrRepositoryName,omitempty"`
	EcrImageTags      []CoverageStringFilter `json:"ecrImageTags,omitempty"`
	LastScannedAt     []DateFilter           `json:"lastScannedAt,omitempty"`
}

func coverageStrings(field string, fs []CoverageStringFilter) ([]StringFilter, error) {
	if len(fs) > 10 {
		return nil, validation("filterCriteria.%s: at most 10 filters", field)
	}
	out := make([]StringFilter, len(fs))
	for i, f := range fs {
		if f.Comparison != "EQUALS" && f.Comparison != "NOT_EQUALS" {
			return nil, validation("filterCriteria.%s.comparison: %q is not EQUALS or NOT_EQUALS", field, f.Comparison)
		}
		if len(f.Value) < 1 || len(f.Value) > 1024 {
			return nil, validation("filterCriteria.%s.value: length must be 1 to 1024", field)
		}
		out[i] = StringFilter(f)
	}
	return out, nil
}

// matcher compiles the criteria into a predicate.
func (c *CoverageFilterCriteria) matcher() (func(r *CoveredResource) bool, error) {
	type member struct {
		fs  []StringFilter
		get func(r *CoveredResource) []string
	}
	var ms []member
	for _, m := range []struct {
		name string
		fs   []CoverageStringFilter
		get  func(r *CoveredResource) []string
	}{
		{"scanStatusCode", c.ScanStatusCode, func(r *CoveredResource) []string { return []string{r.ScanStatus.StatusCode} }},
		{"scanStatusReason", c.ScanStatusReason, func(r *CoveredResource) []string { return []string{r.ScanStatus.Reason} }},
		{"accountId", c.AccountID, func(r *CoveredResource) []string { return []string{r.AccountID} }},
		{"resourceId", c.ResourceID, func(r *CoveredResource) []string { return []string{r.ResourceID} }},
		{"resourceType", c.ResourceType, func(r *CoveredResource) []string { return []string{r.ResourceType} }},
		{"scanType", c.ScanType, func(r *CoveredResource) []string { return []string{r.ScanType} }},
		{"ecrRepositoryName", c.EcrRepositoryName, func(r *CoveredResource) []string { return []string{r.repository} }},
		{"ecrImageTags", c.EcrImageTags, func(r *CoveredResource) []string { return r.tags }},
	} {
		fs, err := coverageStrings(m.name, m.fs)
		if err != nil {
			return nil, err
		}
		if len(fs) > 0 {
			ms = append(ms, member{fs, m.get})
		}
	}
	dates := c.LastScannedAt
	return func(r *CoveredResource) bool {
		for _, m := range ms {
			vals := m.get(r)
			if len(vals) == 0 || !matchStrings(m.fs, vals...) {
				return false
			}
		}
		if len(dates) > 0 && (r.LastScannedAt.IsZero() || !matchDates(dates, r.LastScannedAt)) {
			return false
		}
		return true
	}, nil
}

type listCoverageInput struct {
	FilterCriteria *CoverageFilterCriteria `json:"filterCriteria,omitempty"`
	MaxResults     *int                    `json:"maxResults,omitempty"`
	NextToken      *string                 `json:"nextToken,omitempty"`
}

type listCoverageOutput struct {
	CoveredResources []CoveredResource `json:"coveredResources"`
	NextToken        *string           `json:"nextToken,omitempty"`
}

func (s *Service) listCoverageOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in listCoverageInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	limit, err := maxResults(in.MaxResults, 200, 100)
	if err != nil {
		return nil, err
	}
	match := func(*CoveredResource) bool { return true }
	if in.FilterCriteria != nil {
		if match, err = in.FilterCriteria.matcher(); err != nil {
			return nil, err
		}
	}
	scope := scopeOf("ListCoverage", in.FilterCriteria)
	var cur offsetCursor
	if err := s.open(scope, in.NextToken, &cur); err != nil {
		return nil, err
	}
	all, err := s.coverage(ctx, req)
	if err != nil {
		return nil, err
	}
	matched := slices.DeleteFunc(all, func(r CoveredResource) bool { return !match(&r) })
	slices.SortStableFunc(matched, func(a, b CoveredResource) int { return strings.Compare(a.ResourceID, b.ResourceID) })
	out := listCoverageOutput{CoveredResources: []CoveredResource{}}
	if cur.Offset < len(matched) {
		out.CoveredResources = matched[cur.Offset:min(cur.Offset+limit, len(matched))]
	}
	next := cur.Offset + limit
	if out.NextToken, err = s.seal(scope, next < len(matched), offsetCursor{next}); err != nil {
		return nil, err
	}
	return out, nil
}
