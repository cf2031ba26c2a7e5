package inspector

import (
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
)

// FuzzListFindingsInput feeds request bodies through the decoder, the
// validation and the matching of ListFindings and CreateFilter: no input
// may panic, and criteria that pass validation must be matchable.
func FuzzListFindingsInput(f *testing.F) {
	// Request bodies as the AWS CLI sent them in the captured workflow
	// (the contract's create-filter capture), and others of each shape.
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"action": "SUPPRESS", "filterCriteria": {"vulnerabilityId": [{"comparison": "EQUALS", "value": "CVE-2023-0464"}], "ecrImageRepositoryName": [{"comparison": "EQUALS", "value": "scanrepo-prod"}]}, "name": "suppress-openssl", "reason": "accepted risk"}`))
	f.Add([]byte(`{"filterCriteria":{"vulnerablePackages":[{"name":{"comparison":"PREFIX","value":"lib"},"epoch":{"lowerInclusive":0}}],"ecrImageTags":[{"comparison":"NOT_EQUALS","value":"1.0"}],"firstObservedAt":[{"startInclusive":1704067200}]},"sortCriteria":{"field":"SEVERITY","sortOrder":"DESC"},"maxResults":5}`))
	s := &Service{account: &awsapi.Account{ID: "123456789012"}}
	now := time.Unix(1732600000, 0)
	finding := s.wire("us-west-2", &scan.Finding{FindingArn: "arn:aws:inspector2:us-west-2:123456789012:finding/x", Repository: "scanrepo-prod",
		Digest: "sha256:abababababababababababababababababababababababababababababababab", VulnerabilityID: "CVE-2019-1547", Severity: "MEDIUM", Score: 4.7,
		CVSS:    []scan.CVSS{{BaseScore: 4.7, ScoringVector: "CVSS:3.1/AV:L/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", Source: "NVD", Version: "3.1"}},
		Package: scan.VulnerablePackage{Name: "libssl1.1", Version: "1.1.1c", Release: "r0", SourceLayerHash: "sha256:ab"},
		Status:  "ACTIVE", FirstObservedAt: now, LastObservedAt: now, UpdatedAt: now}, &imageMeta{PushedAt: now, Tags: []string{"1.0"}})
	f.Fuzz(func(t *testing.T, body []byte) {
		var in listFindingsInput
		if err := awsapi.Decode(body, &in); err == nil && in.FilterCriteria != nil {
			if in.FilterCriteria.validate() == nil {
				in.FilterCriteria.Matches(&finding)
			}
		}
		var cf createFilterInput
		if err := awsapi.Decode(body, &cf); err == nil && cf.FilterCriteria != nil {
			if cf.FilterCriteria.validate() == nil {
				cf.FilterCriteria.Matches(&finding)
			}
		}
		var cov listCoverageInput
		if err := awsapi.Decode(body, &cov); err == nil && cov.FilterCriteria != nil {
			if m, err := cov.FilterCriteria.matcher(); err == nil {
				m(&CoveredResource{ScanStatus: &CoverageStatus{"ACTIVE", "SUCCESSFUL"}})
			}
		}
	})
}
