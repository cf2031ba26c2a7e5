package inspector

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
)

// Finding is inspector2's Finding for a package vulnerability of a
// container image.
type Finding struct {
	FindingArn                  string                       `json:"findingArn"`
	AwsAccountID                string                       `json:"awsAccountId"`
	Type                        string                       `json:"type"`
	Title                       string                       `json:"title,omitempty"`
	Description                 string                       `json:"description"`
	Remediation                 Remediation                  `json:"remediation"`
	Severity                    string                       `json:"severity"`
	FirstObservedAt             awsapi.Time                  `json:"firstObservedAt"`
	LastObservedAt              awsapi.Time                  `json:"lastObservedAt"`
	UpdatedAt                   awsapi.Time                  `json:"updatedAt,omitzero"`
	Status                      string                       `json:"status"`
	Resources                   []Resource                   `json:"resources"`
	InspectorScore              *float64                     `json:"inspectorScore,omitempty"`
	InspectorScoreDetails       *ScoreDetails                `json:"inspectorScoreDetails,omitempty"`
	PackageVulnerabilityDetails *PackageVulnerabilityDetails `json:"packageVulnerabilityDetails"`
	FixAvailable                string                       `json:"fixAvailable,omitempty"`
	ExploitAvailable            string                       `json:"exploitAvailable,omitempty"`
	ExploitabilityDetails       *ExploitabilityDetails       `json:"exploitabilityDetails,omitempty"`
	Epss                        *EpssDetails                 `json:"epss,omitempty"`
}

// EpssDetails is inspector2's EpssDetails: the EPSS score (0 to 1) of the
// finding's vulnerability.
type EpssDetails struct {
	Score float64 `json:"score"`
}

// ExploitabilityDetails is inspector2's ExploitabilityDetails.
type ExploitabilityDetails struct {
	LastKnownExploitAt awsapi.Time `json:"lastKnownExploitAt"`
}

// Remediation is inspector2's Remediation (note the model's "Url").
type Remediation struct {
	Recommendation struct {
		Text string `json:"text,omitempty"`
		URL  string `json:"Url,omitempty"`
	} `json:"recommendation"`
}

// Resource is the image a finding is about.
type Resource struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	Partition string          `json:"partition"`
	Region    string          `json:"region"`
	Details   ResourceDetails `json:"details"`
}

// ResourceDetails holds the awsEcrContainerImage details.
type ResourceDetails struct {
	AwsEcrContainerImage EcrContainerImage `json:"awsEcrContainerImage"`
}

// EcrContainerImage is inspector2's AwsEcrContainerImageDetails.
type EcrContainerImage struct {
	RepositoryName string      `json:"repositoryName"`
	ImageTags      []string    `json:"imageTags,omitempty"`
	PushedAt       awsapi.Time `json:"pushedAt,omitzero"`
	Architecture   string      `json:"architecture,omitempty"`
	ImageHash      string      `json:"imageHash"`
	Registry       string      `json:"registry"`
	Platform       string      `json:"platform,omitempty"`
}

// ScoreDetails is inspector2's InspectorScoreDetails.
type ScoreDetails struct {
	AdjustedCvss struct {
		ScoreSource   string   `json:"scoreSource"`
		CvssSource    string   `json:"cvssSource,omitempty"`
		Version       string   `json:"version"`
		Score         float64  `json:"score"`
		ScoringVector string   `json:"scoringVector"`
		Adjustments   []string `json:"adjustments"`
	} `json:"adjustedCvss"`
}

// CVSS is one CVSS rating.
type CVSS struct {
	BaseScore     float64 `json:"baseScore"`
	ScoringVector string  `json:"scoringVector"`
	Source        string  `json:"source"`
	Version       string  `json:"version"`
}

// PackageVulnerabilityDetails is inspector2's PackageVulnerabilityDetails.
type PackageVulnerabilityDetails struct {
	VulnerabilityID        string              `json:"vulnerabilityId"`
	VulnerablePackages     []VulnerablePackage `json:"vulnerablePackages"`
	Source                 string              `json:"source"`
	CVSS                   []CVSS              `json:"cvss"`
	RelatedVulnerabilities []string            `json:"relatedVulnerabilities"`
	SourceURL              string              `json:"sourceUrl,omitempty"`
	VendorSeverity         string              `json:"vendorSeverity,omitempty"`
	VendorCreatedAt        awsapi.Time         `json:"vendorCreatedAt,omitzero"`
	VendorUpdatedAt        awsapi.Time         `json:"vendorUpdatedAt,omitzero"`
	ReferenceURLs          []string            `json:"referenceUrls"`
}

// VulnerablePackage is inspector2's VulnerablePackage.
type VulnerablePackage struct {
	Name            string `json:"name"`
	Version         string `json:"version"`
	SourceLayerHash string `json:"sourceLayerHash,omitempty"`
	Epoch           int    `json:"epoch"`
	Release         string `json:"release,omitempty"`
	Arch            string `json:"arch,omitempty"`
	PackageManager  string `json:"packageManager,omitempty"`
	FilePath        string `json:"filePath,omitempty"`
	FixedInVersion  string `json:"fixedInVersion,omitempty"`
	Remediation     string `json:"remediation,omitempty"`
}

// imageMeta is what the registry knows of an image.
type imageMeta struct {
	PushedAt time.Time
	Tags     []string
}

type imageKey struct{ repo, digest string }

// images reads the push time and tags of every image in the registry.
func (s *Service) images(ctx context.Context) (map[imageKey]*imageMeta, error) {
	out := map[imageKey]*imageMeta{}
	rows, err := s.db.QueryContext(ctx, `SELECT r.name, m.digest, m.pushed_at FROM registry_manifests m
		JOIN registry_repositories r ON r.id = m.repository_id`)
	if err != nil {
		return nil, fmt.Errorf("inspector: images: %w", err)
	}
	for rows.Next() {
		var k imageKey
		var pushed int64
		if err := rows.Scan(&k.repo, &k.digest, &pushed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inspector: images: %w", err)
		}
		out[k] = &imageMeta{PushedAt: time.UnixMilli(pushed).UTC()}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inspector: images: %w", err)
	}
	rows, err = s.db.QueryContext(ctx, `SELECT r.name, t.manifest_digest, t.name FROM registry_tags t
		JOIN registry_repositories r ON r.id = t.repository_id ORDER BY t.name`)
	if err != nil {
		return nil, fmt.Errorf("inspector: image tags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k imageKey
		var tag string
		if err := rows.Scan(&k.repo, &k.digest, &tag); err != nil {
			return nil, fmt.Errorf("inspector: image tags: %w", err)
		}
		if m := out[k]; m != nil {
			m.Tags = append(m.Tags, tag)
		}
	}
	return out, rows.Err()
}

// ImageArn is the resource id of an image: the ECR image ARN
// arn:aws:ecr:REGION:ACCOUNT:repository/REPO/DIGEST.
func ImageArn(region, account, repo, digest string) string {
	return "arn:aws:ecr:" + region + ":" + account + ":repository/" + repo + "/" + digest
}

// wire turns a stored finding into inspector2's shape, with the image's
// registry metadata and the scan service's exploitability data.
func (s *Service) wire(region string, f *scan.Finding, meta *imageMeta) Finding {
	o := ShapeOptions{Account: s.account.ID, Region: region}
	if meta != nil {
		o.Tags, o.PushedAt = meta.Tags, meta.PushedAt
	}
	if s.scan != nil { // nil only in tests of the shaping alone
		o.Exploitability = s.scan.Exploitability(f)
	}
	return Shape(f, o)
}

// ShapeOptions are what Shape needs beyond the stored finding: the
// account and region the finding belongs to, what the registry knows of
// the image (zero when it is gone), and the finding's exploitability.
type ShapeOptions struct {
	// Account is the registry (account) id; Region names the region in
	// the resource ARN and details.
	Account string
	Region  string
	// Tags and PushedAt are the image's current tags and push time; nil
	// and zero leave them out (an image deleted since).
	Tags     []string
	PushedAt time.Time
	// Exploitability is the EPSS score and KEV date of the finding's
	// CVEs, from the scan service's current vulnerability snapshot.
	Exploitability scan.Exploitability
}

// Shape turns a stored finding into inspector2's Finding, the one shape
// both ListFindings and the Inspector2 Finding event are made from.
//
// The EPSS score and the date of the last known exploit are not stored
// with the finding: they come from o.Exploitability, so a daily EPSS
// update shows at once without rewriting findings. epss is the highest
// score among the finding's CVEs. exploitAvailable is the stored word
// (set from CISA's KEV catalogue at scan time and kept current by
// re-evaluation); when it is YES, exploitabilityDetails.lastKnownExploitAt
// is the date KEV added the CVE (the latest, when the finding names
// several): the catalogue records when active exploitation was
// confirmed, not each exploit seen after.
func Shape(f *scan.Finding, o ShapeOptions) Finding {
	out := Finding{
		FindingArn:       f.FindingArn,
		AwsAccountID:     o.Account,
		Type:             "PACKAGE_VULNERABILITY",
		Title:            f.Title,
		Description:      f.Description,
		Severity:         f.Severity,
		FirstObservedAt:  awsapi.At(f.FirstObservedAt),
		LastObservedAt:   awsapi.At(f.LastObservedAt),
		UpdatedAt:        awsapi.At(f.UpdatedAt),
		Status:           f.Status,
		FixAvailable:     f.FixAvailable,
		ExploitAvailable: f.ExploitAvailable,
	}
	if out.Description == "" {
		out.Description = f.VulnerabilityID
	}
	if x := o.Exploitability; x.HasEPSS {
		out.Epss = &EpssDetails{Score: x.EPSS}
	}
	if x := o.Exploitability; f.ExploitAvailable == "YES" && !x.KEVAdded.IsZero() {
		out.ExploitabilityDetails = &ExploitabilityDetails{LastKnownExploitAt: awsapi.At(x.KEVAdded)}
	}
	out.Remediation.Recommendation.Text = f.Remediation
	if out.Remediation.Recommendation.Text == "" {
		out.Remediation.Recommendation.Text = "None Provided"
	}
	img := EcrContainerImage{RepositoryName: f.Repository, ImageHash: f.Digest, Registry: o.Account,
		Architecture: f.Architecture, Platform: f.Platform, ImageTags: o.Tags}
	if !o.PushedAt.IsZero() {
		img.PushedAt = awsapi.At(o.PushedAt)
	}
	out.Resources = []Resource{{Type: "AWS_ECR_CONTAINER_IMAGE", ID: ImageArn(o.Region, o.Account, f.Repository, f.Digest),
		Partition: "aws", Region: o.Region, Details: ResourceDetails{AwsEcrContainerImage: img}}}
	p := f.Package
	vd := &PackageVulnerabilityDetails{
		VulnerabilityID: f.VulnerabilityID,
		VulnerablePackages: []VulnerablePackage{{Name: p.Name, Version: p.Version, SourceLayerHash: p.SourceLayerHash,
			Epoch: p.Epoch, Release: p.Release, Arch: p.Arch, PackageManager: p.PackageManager, FilePath: p.FilePath,
			FixedInVersion: p.FixedInVersion}},
		Source:                 f.Source,
		CVSS:                   []CVSS{},
		RelatedVulnerabilities: f.RelatedVulnerabilities,
		SourceURL:              f.SourceURL,
		VendorSeverity:         f.VendorSeverity,
		VendorCreatedAt:        awsapi.At(f.VendorCreatedAt),
		VendorUpdatedAt:        awsapi.At(f.VendorUpdatedAt),
		ReferenceURLs:          f.ReferenceURLs,
	}
	if vd.RelatedVulnerabilities == nil {
		vd.RelatedVulnerabilities = []string{}
	}
	if vd.ReferenceURLs == nil {
		vd.ReferenceURLs = []string{}
	}
	for _, c := range f.CVSS {
		vd.CVSS = append(vd.CVSS, CVSS(c))
	}
	out.PackageVulnerabilityDetails = vd
	if f.Score > 0 {
		score := f.Score
		out.InspectorScore = &score
		for _, c := range f.CVSS {
			if c.BaseScore == f.Score && c.ScoringVector != "" {
				d := &ScoreDetails{}
				a := &d.AdjustedCvss
				a.ScoreSource, a.CvssSource, a.Version, a.Score, a.ScoringVector, a.Adjustments = c.Source, c.Source, c.Version, c.BaseScore, c.ScoringVector, []string{}
				out.InspectorScoreDetails = d
				break
			}
		}
	}
	return out
}

// allFindings returns every finding the principal may read, in the
// inspector2 shape, with the SUPPRESS filters applied: an ACTIVE finding
// any of them matches shows as SUPPRESSED. Suppression is decided here, at
// read time, so deleting or changing a filter takes effect at once and
// findings of later scans are suppressed too. q narrows what is read from
// the store (exact values only); the caller applies the full criteria.
func (s *Service) allFindings(ctx context.Context, req *awsapi.Request, q scan.FindingQuery) ([]Finding, error) {
	suppress, err := s.suppressors(ctx)
	if err != nil {
		return nil, err
	}
	metas, err := s.images(ctx)
	if err != nil {
		return nil, err
	}
	var out []Finding
	page := scan.Page{Limit: 1000}
	for {
		fs, next, err := s.scan.ListFindings(ctx, q, page)
		if err != nil {
			return nil, err
		}
		for i := range fs {
			f := &fs[i]
			if !canRead(req.Principal, f.Repository) {
				continue
			}
			w := s.wire(req.Region, f, metas[imageKey{f.Repository, f.Digest}])
			if w.Status == scan.FindingActive {
				for _, c := range suppress {
					if c.Matches(&w) {
						w.Status = scan.FindingSuppressed
						break
					}
				}
			}
			out = append(out, w)
		}
		if next == "" {
			return out, nil
		}
		page.After = next
	}
}

// exact returns the values of a member's filters when they are all
// EQUALS (so the store can select them), or nil.
func exact(fs []StringFilter) []string {
	var vals []string
	for _, f := range fs {
		if f.Comparison != "EQUALS" {
			return nil
		}
		vals = append(vals, f.Value)
	}
	return vals
}

// storeQuery is the part of the criteria the store can select.
func storeQuery(c *FilterCriteria) scan.FindingQuery {
	q := scan.FindingQuery{
		Repositories: exact(c.EcrImageRepositoryName),
		Digests:      exact(c.EcrImageHash),
		Severities:   exact(c.Severity),
		FixAvailable: exact(c.FixAvailable),
	}
	return q
}

type sortCriteria struct {
	Field     string `json:"field"`
	SortOrder string `json:"sortOrder"`
}

type listFindingsInput struct {
	FilterCriteria *FilterCriteria `json:"filterCriteria,omitempty"`
	SortCriteria   *sortCriteria   `json:"sortCriteria,omitempty"`
	MaxResults     *int            `json:"maxResults,omitempty"`
	NextToken      *string         `json:"nextToken,omitempty"`
}

type listFindingsOutput struct {
	Findings  []Finding `json:"findings"`
	NextToken *string   `json:"nextToken,omitempty"`
}

type offsetCursor struct {
	Offset int `json:"o"`
}

var severityRank = map[string]int{"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4, "UNTRIAGED": 5}

// sortKeys maps the SortField enum to a comparison of findings (ascending).
var sortKeys = map[string]func(a, b *Finding) int{
	"AWS_ACCOUNT_ID":    func(a, b *Finding) int { return cmp.Compare(a.AwsAccountID, b.AwsAccountID) },
	"FINDING_TYPE":      func(a, b *Finding) int { return cmp.Compare(a.Type, b.Type) },
	"SEVERITY":          func(a, b *Finding) int { return cmp.Compare(severityRank[a.Severity], severityRank[b.Severity]) },
	"FIRST_OBSERVED_AT": func(a, b *Finding) int { return a.FirstObservedAt.Compare(b.FirstObservedAt.Time) },
	"LAST_OBSERVED_AT":  func(a, b *Finding) int { return a.LastObservedAt.Compare(b.LastObservedAt.Time) },
	"FINDING_STATUS":    func(a, b *Finding) int { return cmp.Compare(a.Status, b.Status) },
	"RESOURCE_TYPE":     func(a, b *Finding) int { return cmp.Compare(a.Resources[0].Type, b.Resources[0].Type) },
	"ECR_IMAGE_PUSHED_AT": func(a, b *Finding) int {
		return a.Resources[0].Details.AwsEcrContainerImage.PushedAt.Compare(b.Resources[0].Details.AwsEcrContainerImage.PushedAt.Time)
	},
	"ECR_IMAGE_REPOSITORY_NAME": func(a, b *Finding) int {
		return cmp.Compare(a.Resources[0].Details.AwsEcrContainerImage.RepositoryName, b.Resources[0].Details.AwsEcrContainerImage.RepositoryName)
	},
	"ECR_IMAGE_REGISTRY": func(a, b *Finding) int { return 0 },
	"NETWORK_PROTOCOL":   func(a, b *Finding) int { return 0 },
	"COMPONENT_TYPE":     func(a, b *Finding) int { return 0 },
	"EPSS_SCORE":         func(a, b *Finding) int { return cmp.Compare(epss(a), epss(b)) },
	"VULNERABILITY_ID": func(a, b *Finding) int {
		return cmp.Compare(a.PackageVulnerabilityDetails.VulnerabilityID, b.PackageVulnerabilityDetails.VulnerabilityID)
	},
	"VULNERABILITY_SOURCE": func(a, b *Finding) int {
		return cmp.Compare(a.PackageVulnerabilityDetails.Source, b.PackageVulnerabilityDetails.Source)
	},
	"INSPECTOR_SCORE": func(a, b *Finding) int { return cmp.Compare(score(a), score(b)) },
	"VENDOR_SEVERITY": func(a, b *Finding) int {
		return cmp.Compare(a.PackageVulnerabilityDetails.VendorSeverity, b.PackageVulnerabilityDetails.VendorSeverity)
	},
}

// epss is a finding's EPSS score; one without a score sorts as 0.
func epss(f *Finding) float64 {
	if f.Epss == nil {
		return 0
	}
	return f.Epss.Score
}

func score(f *Finding) float64 {
	if f.InspectorScore == nil {
		return 0
	}
	return *f.InspectorScore
}

func (s *Service) listFindingsOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in listFindingsInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	limit, err := maxResults(in.MaxResults, 100, 25)
	if err != nil {
		return nil, err
	}
	crit := &FilterCriteria{}
	if in.FilterCriteria != nil {
		crit = in.FilterCriteria
		if err := crit.validate(); err != nil {
			return nil, err
		}
	}
	order := func(a, b *Finding) int { return b.UpdatedAt.Compare(a.UpdatedAt.Time) }
	if in.SortCriteria != nil {
		key, ok := sortKeys[in.SortCriteria.Field]
		if !ok {
			return nil, validation("sortCriteria.field: %q is not a valid SortField", in.SortCriteria.Field)
		}
		switch in.SortCriteria.SortOrder {
		case "ASC":
			order = key
		case "DESC":
			order = func(a, b *Finding) int { return key(b, a) }
		default:
			return nil, validation("sortCriteria.sortOrder: %q is not ASC or DESC", in.SortCriteria.SortOrder)
		}
	}
	scope := scopeOf("ListFindings", []any{in.FilterCriteria, in.SortCriteria})
	var cur offsetCursor
	if err := s.open(scope, in.NextToken, &cur); err != nil {
		return nil, err
	}
	all, err := s.allFindings(ctx, req, storeQuery(crit))
	if err != nil {
		return nil, err
	}
	matched := all[:0]
	for i := range all {
		if crit.Matches(&all[i]) {
			matched = append(matched, all[i])
		}
	}
	slices.SortStableFunc(matched, func(a, b Finding) int {
		if c := order(&a, &b); c != 0 {
			return c
		}
		return strings.Compare(a.FindingArn, b.FindingArn)
	})
	out := listFindingsOutput{Findings: []Finding{}}
	if cur.Offset < len(matched) {
		out.Findings = matched[cur.Offset:min(cur.Offset+limit, len(matched))]
	}
	next := cur.Offset + limit
	out.NextToken, err = s.seal(scope, next < len(matched), offsetCursor{next})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// maxResults reads a maxResults member: 1 to upper, def when absent.
func maxResults(v *int, upper, def int) (int, error) {
	if v == nil {
		return def, nil
	}
	if *v < 1 || *v > upper {
		return 0, validation("maxResults: must be between 1 and %d", upper)
	}
	return *v, nil
}
