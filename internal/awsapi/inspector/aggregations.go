package inspector

import (
	"cmp"
	"context"
	"slices"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
)

// SeverityCounts is inspector2's SeverityCounts.
type SeverityCounts struct {
	All      int64 `json:"all"`
	Medium   int64 `json:"medium"`
	High     int64 `json:"high"`
	Critical int64 `json:"critical"`
}

func (c *SeverityCounts) add(sev string) {
	c.All++
	switch sev {
	case "MEDIUM":
		c.Medium++
	case "HIGH":
		c.High++
	case "CRITICAL":
		c.Critical++
	}
}

type aggSort struct {
	SortOrder *string `json:"sortOrder,omitempty"`
	SortBy    *string `json:"sortBy,omitempty"`
}

type aggregationRequest struct {
	RepositoryAggregation *struct {
		Repositories []StringFilter `json:"repositories,omitempty"`
		aggSort
	} `json:"repositoryAggregation,omitempty"`
	AwsEcrContainerAggregation *struct {
		ResourceIDs   []StringFilter `json:"resourceIds,omitempty"`
		ImageShas     []StringFilter `json:"imageShas,omitempty"`
		Repositories  []StringFilter `json:"repositories,omitempty"`
		Architectures []StringFilter `json:"architectures,omitempty"`
		ImageTags     []StringFilter `json:"imageTags,omitempty"`
		aggSort
	} `json:"awsEcrContainerAggregation,omitempty"`
	ImageLayerAggregation *struct {
		Repositories []StringFilter `json:"repositories,omitempty"`
		ResourceIDs  []StringFilter `json:"resourceIds,omitempty"`
		LayerHashes  []StringFilter `json:"layerHashes,omitempty"`
		aggSort
	} `json:"imageLayerAggregation,omitempty"`
	PackageAggregation *struct {
		PackageNames []StringFilter `json:"packageNames,omitempty"`
		aggSort
	} `json:"packageAggregation,omitempty"`
	FindingTypeAggregation *struct {
		FindingType  *string `json:"findingType,omitempty"`
		ResourceType *string `json:"resourceType,omitempty"`
		aggSort
	} `json:"findingTypeAggregation,omitempty"`
	TitleAggregation *struct {
		Titles           []StringFilter `json:"titles,omitempty"`
		VulnerabilityIDs []StringFilter `json:"vulnerabilityIds,omitempty"`
		ResourceType     *string        `json:"resourceType,omitempty"`
		FindingType      *string        `json:"findingType,omitempty"`
		aggSort
	} `json:"titleAggregation,omitempty"`
}

type listAggregationsInput struct {
	AggregationType    string              `json:"aggregationType"`
	AggregationRequest *aggregationRequest `json:"aggregationRequest,omitempty"`
	AccountIDs         []StringFilter      `json:"accountIds,omitempty"`
	MaxResults         *int                `json:"maxResults,omitempty"`
	NextToken          *string             `json:"nextToken,omitempty"`
}

// aggregationResponse is the AggregationResponse union: one member set.
type aggregationResponse struct {
	RepositoryAggregation      *repositoryAggregation `json:"repositoryAggregation,omitempty"`
	AwsEcrContainerAggregation *containerAggregation  `json:"awsEcrContainerAggregation,omitempty"`
	ImageLayerAggregation      *layerAggregation      `json:"imageLayerAggregation,omitempty"`
	PackageAggregation         *packageAggregation    `json:"packageAggregation,omitempty"`
	FindingTypeAggregation     *typeAggregation       `json:"findingTypeAggregation,omitempty"`
	TitleAggregation           *titleAggregation      `json:"titleAggregation,omitempty"`
}

type repositoryAggregation struct {
	Repository     string         `json:"repository"`
	AccountID      string         `json:"accountId"`
	SeverityCounts SeverityCounts `json:"severityCounts"`
	AffectedImages int64          `json:"affectedImages"`
}

type containerAggregation struct {
	ResourceID     string         `json:"resourceId"`
	ImageSha       string         `json:"imageSha"`
	Repository     string         `json:"repository"`
	Architecture   string         `json:"architecture,omitempty"`
	ImageTags      []string       `json:"imageTags"`
	AccountID      string         `json:"accountId"`
	SeverityCounts SeverityCounts `json:"severityCounts"`
}

type layerAggregation struct {
	Repository     string         `json:"repository"`
	ResourceID     string         `json:"resourceId"`
	LayerHash      string         `json:"layerHash"`
	AccountID      string         `json:"accountId"`
	SeverityCounts SeverityCounts `json:"severityCounts"`
}

type packageAggregation struct {
	PackageName    string         `json:"packageName"`
	AccountID      string         `json:"accountId"`
	SeverityCounts SeverityCounts `json:"severityCounts"`
}

type typeAggregation struct {
	AccountID             string         `json:"accountId"`
	SeverityCounts        SeverityCounts `json:"severityCounts"`
	ExploitAvailableCount int64          `json:"exploitAvailableCount"`
	FixAvailableCount     int64          `json:"fixAvailableCount"`
}

type titleAggregation struct {
	Title           string         `json:"title"`
	VulnerabilityID string         `json:"vulnerabilityId,omitempty"`
	AccountID       string         `json:"accountId"`
	SeverityCounts  SeverityCounts `json:"severityCounts"`
}

type listAggregationsOutput struct {
	AggregationType string                `json:"aggregationType"`
	Responses       []aggregationResponse `json:"responses"`
	NextToken       *string               `json:"nextToken,omitempty"`
}

// group is one aggregation bucket while counting.
type group struct {
	key    string
	counts SeverityCounts
	images map[string]bool
	resp   aggregationResponse
	// exploit and fix count FINDING_TYPE's findings with an exploit or a
	// fix available.
	exploit, fix int64
}

// unionMember names the request member each aggregation type takes.
var unionMember = map[string]string{
	"REPOSITORY": "repositoryAggregation", "AWS_ECR_CONTAINER": "awsEcrContainerAggregation",
	"IMAGE_LAYER": "imageLayerAggregation", "PACKAGE": "packageAggregation",
	"FINDING_TYPE": "findingTypeAggregation", "TITLE": "titleAggregation",
}

func (r *aggregationRequest) members() []string {
	var out []string
	if r.RepositoryAggregation != nil {
		out = append(out, "repositoryAggregation")
	}
	if r.AwsEcrContainerAggregation != nil {
		out = append(out, "awsEcrContainerAggregation")
	}
	if r.ImageLayerAggregation != nil {
		out = append(out, "imageLayerAggregation")
	}
	if r.PackageAggregation != nil {
		out = append(out, "packageAggregation")
	}
	if r.FindingTypeAggregation != nil {
		out = append(out, "findingTypeAggregation")
	}
	if r.TitleAggregation != nil {
		out = append(out, "titleAggregation")
	}
	return out
}

func (s *Service) listFindingAggregationsOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in listAggregationsInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	member, ok := unionMember[in.AggregationType]
	if !ok {
		return nil, validation("aggregationType: %q is not supported for container images (REPOSITORY, AWS_ECR_CONTAINER, IMAGE_LAYER, PACKAGE, FINDING_TYPE, TITLE)", in.AggregationType)
	}
	ar := in.AggregationRequest
	if ar == nil {
		ar = &aggregationRequest{}
	}
	if ms := ar.members(); len(ms) > 1 || (len(ms) == 1 && ms[0] != member) {
		return nil, validation("aggregationRequest: must hold only %s for aggregationType %s", member, in.AggregationType)
	}
	limit, err := maxResults(in.MaxResults, 100, 100)
	if err != nil {
		return nil, err
	}
	// The criteria of the request member, and its sort.
	crit := &FilterCriteria{AwsAccountID: in.AccountIDs}
	var sort aggSort
	switch {
	case ar.RepositoryAggregation != nil:
		crit.EcrImageRepositoryName, sort = ar.RepositoryAggregation.Repositories, ar.RepositoryAggregation.aggSort
	case ar.AwsEcrContainerAggregation != nil:
		a := ar.AwsEcrContainerAggregation
		crit.ResourceID, crit.EcrImageHash, crit.EcrImageRepositoryName, crit.EcrImageArchitecture, crit.EcrImageTags, sort =
			a.ResourceIDs, a.ImageShas, a.Repositories, a.Architectures, a.ImageTags, a.aggSort
	case ar.ImageLayerAggregation != nil:
		a := ar.ImageLayerAggregation
		crit.EcrImageRepositoryName, crit.ResourceID, sort = a.Repositories, a.ResourceIDs, a.aggSort
		for _, h := range a.LayerHashes {
			crit.VulnerablePackages = append(crit.VulnerablePackages, PackageFilter{SourceLayerHash: &h})
		}
	case ar.PackageAggregation != nil:
		for _, n := range ar.PackageAggregation.PackageNames {
			crit.VulnerablePackages = append(crit.VulnerablePackages, PackageFilter{Name: &n})
		}
		sort = ar.PackageAggregation.aggSort
	case ar.FindingTypeAggregation != nil:
		a := ar.FindingTypeAggregation
		if a.FindingType != nil {
			crit.FindingType = []StringFilter{{"EQUALS", *a.FindingType}}
		}
		if a.ResourceType != nil {
			crit.ResourceType = []StringFilter{{"EQUALS", resourceTypeOf(*a.ResourceType)}}
		}
		sort = a.aggSort
	case ar.TitleAggregation != nil:
		a := ar.TitleAggregation
		crit.Title, crit.VulnerabilityID, sort = a.Titles, a.VulnerabilityIDs, a.aggSort
		if a.FindingType != nil {
			crit.FindingType = []StringFilter{{"EQUALS", *a.FindingType}}
		}
		if a.ResourceType != nil {
			crit.ResourceType = []StringFilter{{"EQUALS", resourceTypeOf(*a.ResourceType)}}
		}
	}
	if err := crit.validate(); err != nil {
		return nil, err
	}
	less, err := groupOrder(sort)
	if err != nil {
		return nil, err
	}
	scope := scopeOf("ListFindingAggregations", []any{in.AggregationType, in.AggregationRequest, in.AccountIDs})
	var cur offsetCursor
	if err := s.open(scope, in.NextToken, &cur); err != nil {
		return nil, err
	}
	all, err := s.allFindings(ctx, req, storeQuery(crit))
	if err != nil {
		return nil, err
	}
	groups := map[string]*group{}
	for i := range all {
		f := &all[i]
		// Aggregations count open, unsuppressed findings, as Inspector's do.
		if f.Status != scan.FindingActive || !crit.Matches(f) {
			continue
		}
		img := f.Resources[0].Details.AwsEcrContainerImage
		pkg := f.PackageVulnerabilityDetails.VulnerablePackages[0]
		var key string
		var resp func() aggregationResponse
		switch in.AggregationType {
		case "REPOSITORY":
			key = img.RepositoryName
			resp = func() aggregationResponse {
				return aggregationResponse{RepositoryAggregation: &repositoryAggregation{Repository: key, AccountID: s.account.ID}}
			}
		case "AWS_ECR_CONTAINER":
			key = f.Resources[0].ID
			resp = func() aggregationResponse {
				tags := img.ImageTags
				if tags == nil {
					tags = []string{}
				}
				return aggregationResponse{AwsEcrContainerAggregation: &containerAggregation{ResourceID: key, ImageSha: img.ImageHash,
					Repository: img.RepositoryName, Architecture: img.Architecture, ImageTags: tags, AccountID: s.account.ID}}
			}
		case "IMAGE_LAYER":
			if pkg.SourceLayerHash == "" {
				continue
			}
			key = f.Resources[0].ID + " " + pkg.SourceLayerHash
			resp = func() aggregationResponse {
				return aggregationResponse{ImageLayerAggregation: &layerAggregation{Repository: img.RepositoryName,
					ResourceID: f.Resources[0].ID, LayerHash: pkg.SourceLayerHash, AccountID: s.account.ID}}
			}
		case "PACKAGE":
			key = pkg.Name
			resp = func() aggregationResponse {
				return aggregationResponse{PackageAggregation: &packageAggregation{PackageName: key, AccountID: s.account.ID}}
			}
		case "FINDING_TYPE":
			key = f.Type
			resp = func() aggregationResponse {
				return aggregationResponse{FindingTypeAggregation: &typeAggregation{AccountID: s.account.ID}}
			}
		case "TITLE":
			key = f.Title
			if key == "" {
				key = f.PackageVulnerabilityDetails.VulnerabilityID
			}
			resp = func() aggregationResponse {
				return aggregationResponse{TitleAggregation: &titleAggregation{Title: key,
					VulnerabilityID: f.PackageVulnerabilityDetails.VulnerabilityID, AccountID: s.account.ID}}
			}
		}
		g := groups[key]
		if g == nil {
			g = &group{key: key, images: map[string]bool{}, resp: resp()}
			groups[key] = g
		}
		g.counts.add(f.Severity)
		g.images[f.Resources[0].ID] = true
		if f.ExploitAvailable == "YES" {
			g.exploit++
		}
		if f.FixAvailable == "YES" || f.FixAvailable == "PARTIAL" {
			g.fix++
		}
	}
	list := make([]*group, 0, len(groups))
	for _, g := range groups {
		r := &g.resp
		switch {
		case r.RepositoryAggregation != nil:
			r.RepositoryAggregation.SeverityCounts, r.RepositoryAggregation.AffectedImages = g.counts, int64(len(g.images))
		case r.AwsEcrContainerAggregation != nil:
			r.AwsEcrContainerAggregation.SeverityCounts = g.counts
		case r.ImageLayerAggregation != nil:
			r.ImageLayerAggregation.SeverityCounts = g.counts
		case r.PackageAggregation != nil:
			r.PackageAggregation.SeverityCounts = g.counts
		case r.FindingTypeAggregation != nil:
			r.FindingTypeAggregation.SeverityCounts, r.FindingTypeAggregation.ExploitAvailableCount, r.FindingTypeAggregation.FixAvailableCount = g.counts, g.exploit, g.fix
		case r.TitleAggregation != nil:
			r.TitleAggregation.SeverityCounts = g.counts
		}
		list = append(list, g)
	}
	slices.SortFunc(list, func(a, b *group) int {
		if c := less(a, b); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	out := listAggregationsOutput{AggregationType: in.AggregationType, Responses: []aggregationResponse{}}
	for _, g := range list[min(cur.Offset, len(list)):min(cur.Offset+limit, len(list))] {
		out.Responses = append(out.Responses, g.resp)
	}
	next := cur.Offset + limit
	if out.NextToken, err = s.seal(scope, next < len(list), offsetCursor{next}); err != nil {
		return nil, err
	}
	return out, nil
}

// resourceTypeOf maps AggregationResourceType to a finding's resource
// type; the enums share their values (AWS_ECR_CONTAINER_IMAGE, ...).
func resourceTypeOf(t string) string { return t }

// groupOrder is the order of buckets a sort asks for: by default the most
// critical first.
func groupOrder(s aggSort) (func(a, b *group) int, error) {
	by, order := "CRITICAL", "DESC"
	if s.SortBy != nil {
		by = *s.SortBy
	}
	if s.SortOrder != nil {
		order = *s.SortOrder
	}
	var key func(g *group) int64
	switch by {
	case "CRITICAL":
		key = func(g *group) int64 { return g.counts.Critical }
	case "HIGH":
		key = func(g *group) int64 { return g.counts.High }
	case "ALL":
		key = func(g *group) int64 { return g.counts.All }
	case "AFFECTED_IMAGES":
		key = func(g *group) int64 { return int64(len(g.images)) }
	default:
		return nil, validation("sortBy: %q is not CRITICAL, HIGH, ALL or AFFECTED_IMAGES", by)
	}
	switch order {
	case "ASC":
		return func(a, b *group) int { return cmp.Compare(key(a), key(b)) }, nil
	case "DESC":
		return func(a, b *group) int { return cmp.Compare(key(b), key(a)) }, nil
	}
	return nil, validation("sortOrder: %q is not ASC or DESC", order)
}
