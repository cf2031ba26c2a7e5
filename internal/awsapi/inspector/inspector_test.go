package inspector_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/drydockhq/drydock/internal/testutil/imagetest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// scannedStack pushes the downgraded alpine image to scanrepo-prod (tag
// 1.0) and app-prod (tag v1), the shipped one to scanrepo-prod (tag
// shipped), and the downgraded one to scanrepo-test, which no rule covers,
// under ENHANCED scanning with a CONTINUOUS_SCAN rule for "prod"; it waits
// for the three scans.
func scannedStack(t *testing.T, db *store.DB) (*stack, map[string]string) {
	t.Helper()
	s := newStack(t, db)
	ctx := context.Background()
	if _, err := s.scan.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced, Rules: []scan.Rule{
		{ScanFrequency: scan.ContinuousScan, RepositoryFilters: []scan.Filter{{Filter: "prod", FilterType: scan.FilterWildcard}}},
	}}); err != nil {
		t.Fatal(err)
	}
	shipped := imagetest.Alpine310(t)
	old := downgraded(t, shipped)
	d := map[string]string{
		"old":     s.push(t, old, "scanrepo-prod:1.0"),
		"shipped": s.push(t, shipped, "scanrepo-prod:shipped"),
	}
	s.push(t, old, "app-prod:v1")
	s.push(t, old, "scanrepo-test:1.0")
	s.waitScanned(t, "scanrepo-prod", d["old"])
	s.waitScanned(t, "scanrepo-prod", d["shipped"])
	s.waitScanned(t, "app-prod", d["old"])
	return s, d
}

// storeFindings reads the scan store's findings for q directly.
func storeFindings(t *testing.T, s *stack, q scan.FindingQuery) []scan.Finding {
	t.Helper()
	var out []scan.Finding
	page := scan.Page{}
	for {
		fs, next, err := s.scan.ListFindings(context.Background(), q, page)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fs...)
		if next == "" {
			return out
		}
		page.After = next
	}
}

func arnsOf(fs []scan.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.FindingArn)
	}
	sort.Strings(out)
	return out
}

// listAll pages through ListFindings with small pages.
func listAll(t *testing.T, c *inspector2.Client, crit *types.FilterCriteria) []types.Finding {
	t.Helper()
	var out []types.Finding
	p := inspector2.NewListFindingsPaginator(c, &inspector2.ListFindingsInput{FilterCriteria: crit, MaxResults: aws.Int32(4)})
	seen := map[string]bool{}
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.Findings {
			if seen[aws.ToString(f.FindingArn)] {
				t.Fatalf("finding %s on two pages", aws.ToString(f.FindingArn))
			}
			seen[aws.ToString(f.FindingArn)] = true
		}
		out = append(out, page.Findings...)
	}
	return out
}

func wireArns(fs []types.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, aws.ToString(f.FindingArn))
	}
	sort.Strings(out)
	return out
}

func eq(v string) []types.StringFilter {
	return []types.StringFilter{{Comparison: types.StringComparisonEquals, Value: aws.String(v)}}
}

func TestListFindingsAgreesWithStore(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, d := scannedStack(t, db)
		c := s.client(s.admin)
		all := storeFindings(t, s, scan.FindingQuery{})
		if len(all) == 0 {
			t.Fatal("the scan store holds no findings")
		}
		got := listAll(t, c, nil)
		if !slices.Equal(wireArns(got), arnsOf(all)) {
			t.Fatalf("list-findings:\n%v\nstore:\n%v", wireArns(got), arnsOf(all))
		}
		byArn := map[string]scan.Finding{}
		for _, f := range all {
			byArn[f.FindingArn] = f
		}
		// The fixture's truth: OpenSSL 1.1.1c-r0 has the three CVEs fixed in
		// 1.1.1d-r0, for both libraries, in both prod repositories.
		want := map[string]bool{}
		for _, repo := range []string{"scanrepo-prod", "app-prod"} {
			for _, pkg := range []string{"libcrypto1.1", "libssl1.1"} {
				for _, cve := range []string{"CVE-2019-1547", "CVE-2019-1549", "CVE-2019-1563"} {
					want[repo+" "+pkg+" "+cve] = true
				}
			}
		}
		for _, f := range got {
			sf := byArn[aws.ToString(f.FindingArn)]
			img := f.Resources[0].Details.AwsEcrContainerImage
			vd := f.PackageVulnerabilityDetails
			delete(want, aws.ToString(img.RepositoryName)+" "+aws.ToString(vd.VulnerablePackages[0].Name)+" "+aws.ToString(vd.VulnerabilityId))
			if aws.ToString(vd.VulnerabilityId) != sf.VulnerabilityID || aws.ToString(vd.VulnerablePackages[0].Name) != sf.Package.Name ||
				aws.ToString(vd.VulnerablePackages[0].Version) != sf.Package.Version || string(f.Severity) != sf.Severity ||
				string(f.Status) != sf.Status || aws.ToString(img.RepositoryName) != sf.Repository || aws.ToString(img.ImageHash) != sf.Digest ||
				!f.FirstObservedAt.Equal(sf.FirstObservedAt.Truncate(1e6)) || !f.LastObservedAt.Equal(sf.LastObservedAt.Truncate(1e6)) ||
				string(f.FixAvailable) != sf.FixAvailable || f.Type != types.FindingTypePackageVulnerability ||
				f.Resources[0].Type != types.ResourceTypeAwsEcrContainerImage || aws.ToString(f.AwsAccountId) == "" {
				t.Errorf("finding %s:\nwire %+v\nstore %+v", aws.ToString(f.FindingArn), f, sf)
			}
			if sf.Repository == "scanrepo-prod" && !slices.Equal(img.ImageTags, []string{"1.0"}) {
				t.Errorf("%s: imageTags %v", aws.ToString(f.FindingArn), img.ImageTags)
			}
			if img.PushedAt == nil || img.PushedAt.IsZero() {
				t.Errorf("%s: no pushedAt", aws.ToString(f.FindingArn))
			}
		}
		if len(want) != 0 {
			t.Errorf("missing the fixture's findings: %v", want)
		}
		for _, f := range all {
			if f.Digest == d["shipped"] {
				t.Errorf("the shipped image has a finding: %+v", f)
			}
		}

		// Filters, each checked against the store selected independently.
		prod := storeFindings(t, s, scan.FindingQuery{Repositories: []string{"scanrepo-prod"}})
		app := storeFindings(t, s, scan.FindingQuery{Repositories: []string{"app-prod"}})
		var cve1547, libssl, fixed, high []scan.Finding
		for _, f := range all {
			if f.VulnerabilityID == "CVE-2019-1547" {
				cve1547 = append(cve1547, f)
			}
			// The store splits the apk version into version and release.
			if f.Package.Name == "libssl1.1" && f.Package.Version+"-"+f.Package.Release == "1.1.1c-r0" {
				libssl = append(libssl, f)
			}
			if f.FixAvailable == "YES" {
				fixed = append(fixed, f)
			}
			if f.Severity == "HIGH" {
				high = append(high, f)
			}
		}
		if len(libssl) == 0 || len(cve1547) == 0 || len(fixed) == 0 {
			t.Fatalf("fixture findings missing: libssl %d, CVE-2019-1547 %d, fixed %d", len(libssl), len(cve1547), len(fixed))
		}
		for _, tc := range []struct {
			name string
			crit types.FilterCriteria
			want []scan.Finding
		}{
			{"repository EQUALS", types.FilterCriteria{EcrImageRepositoryName: eq("scanrepo-prod")}, prod},
			{"repository PREFIX", types.FilterCriteria{EcrImageRepositoryName: []types.StringFilter{{Comparison: types.StringComparisonPrefix, Value: aws.String("app-")}}}, app},
			{"repository NOT_EQUALS", types.FilterCriteria{EcrImageRepositoryName: []types.StringFilter{{Comparison: types.StringComparisonNotEquals, Value: aws.String("scanrepo-prod")}}}, app},
			{"image hash", types.FilterCriteria{EcrImageHash: eq(d["old"]), EcrImageRepositoryName: eq("app-prod")}, app},
			{"image tag", types.FilterCriteria{EcrImageTags: eq("1.0")}, prod},
			{"tag that no image has", types.FilterCriteria{EcrImageTags: eq("2.0")}, nil},
			{"vulnerability id", types.FilterCriteria{VulnerabilityId: eq("CVE-2019-1547")}, cve1547},
			{"package name and version", types.FilterCriteria{VulnerablePackages: []types.PackageFilter{{
				Name:    &types.StringFilter{Comparison: types.StringComparisonEquals, Value: aws.String("libssl1.1")},
				Version: &types.StringFilter{Comparison: types.StringComparisonEquals, Value: aws.String("1.1.1c")}}}}, libssl},
			{"fix available", types.FilterCriteria{FixAvailable: eq("YES")}, fixed},
			{"severity", types.FilterCriteria{Severity: eq("HIGH")}, high},
			{"finding status", types.FilterCriteria{FindingStatus: eq("ACTIVE")}, all},
			{"resource type", types.FilterCriteria{ResourceType: eq("AWS_ECR_CONTAINER_IMAGE")}, all},
		} {
			got := listAll(t, c, &tc.crit)
			if !slices.Equal(wireArns(got), arnsOf(tc.want)) {
				t.Errorf("%s: got %v, want %v", tc.name, wireArns(got), arnsOf(tc.want))
			}
		}

		// Sorted by severity, most severe first.
		out, err := c.ListFindings(context.Background(), &inspector2.ListFindingsInput{
			SortCriteria: &types.SortCriteria{Field: types.SortFieldSeverity, SortOrder: types.SortOrderDesc}, MaxResults: aws.Int32(100)})
		if err != nil {
			t.Fatal(err)
		}
		rank := map[types.Severity]int{"INFORMATIONAL": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4, "UNTRIAGED": 5}
		for i := 1; i < len(out.Findings); i++ {
			if rank[out.Findings[i].Severity] > rank[out.Findings[i-1].Severity] {
				t.Errorf("severity order broken at %d: %s after %s", i, out.Findings[i].Severity, out.Findings[i-1].Severity)
			}
		}
		_, err = c.ListFindings(context.Background(), &inspector2.ListFindingsInput{MaxResults: aws.Int32(101)})
		wantCode(t, "maxResults 101", err, "ValidationException")
		_, err = c.ListFindings(context.Background(), &inspector2.ListFindingsInput{NextToken: aws.String("bogus")})
		wantCode(t, "bad nextToken", err, "ValidationException")
		first, err := c.ListFindings(context.Background(), &inspector2.ListFindingsInput{MaxResults: aws.Int32(1)})
		if err != nil || first.NextToken == nil {
			t.Fatalf("first page: %v %+v", err, first)
		}
		_, err = c.ListFindings(context.Background(), &inspector2.ListFindingsInput{MaxResults: aws.Int32(1), NextToken: first.NextToken,
			FilterCriteria: &types.FilterCriteria{Severity: eq("HIGH")}})
		wantCode(t, "nextToken of another query", err, "ValidationException")

		// A principal reading findings of app-prod only sees those.
		k, err := s.auth.CreateKey(context.Background(), "reader", []auth.Grant{{Action: auth.ActionReadFindings, Pattern: "app-prod"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := listAll(t, s.client(k), nil); !slices.Equal(wireArns(got), arnsOf(app)) {
			t.Errorf("reader sees %v, want %v", wireArns(got), arnsOf(app))
		}
		_, err = s.client(k).CreateFilter(context.Background(), &inspector2.CreateFilterInput{Action: types.FilterActionSuppress,
			Name: aws.String("x"), FilterCriteria: &types.FilterCriteria{Severity: eq("LOW")}})
		wantCode(t, "create-filter by a reader", err, "AccessDeniedException")
	})
}

// counts computes severity counts of findings, the way the test expects
// Inspector's aggregations: open, unsuppressed findings.
func counts(fs []scan.Finding) types.SeverityCounts {
	var c types.SeverityCounts
	var all, med, high, crit int64
	for _, f := range fs {
		if f.Status != scan.FindingActive {
			continue
		}
		all++
		switch f.Severity {
		case "MEDIUM":
			med++
		case "HIGH":
			high++
		case "CRITICAL":
			crit++
		}
	}
	c.All, c.Medium, c.High, c.Critical = &all, &med, &high, &crit
	return c
}

func countsString(c *types.SeverityCounts) string {
	if c == nil {
		return "nil"
	}
	return fmt.Sprintf("all=%d medium=%d high=%d critical=%d", aws.ToInt64(c.All), aws.ToInt64(c.Medium), aws.ToInt64(c.High), aws.ToInt64(c.Critical))
}

func TestAggregationsAndSuppression(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, d := scannedStack(t, db)
		c := s.client(s.admin)
		all := storeFindings(t, s, scan.FindingQuery{})
		byRepo := map[string][]scan.Finding{}
		byPkg := map[string][]scan.Finding{}
		byLayer := map[string][]scan.Finding{}
		for _, f := range all {
			byRepo[f.Repository] = append(byRepo[f.Repository], f)
			byPkg[f.Package.Name] = append(byPkg[f.Package.Name], f)
			if f.Package.SourceLayerHash != "" {
				byLayer[f.Repository+" "+f.Package.SourceLayerHash] = append(byLayer[f.Repository+" "+f.Package.SourceLayerHash], f)
			}
		}
		check := func(what string, got map[string]string, want map[string][]scan.Finding) {
			t.Helper()
			w := map[string]string{}
			for k, fs := range want {
				if c := counts(fs); aws.ToInt64(c.All) > 0 {
					w[k] = countsString(&c)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("%s:\ngot  %v\nwant %v", what, got, w)
			}
		}
		aggregate := func(typ types.AggregationType) []types.AggregationResponse {
			t.Helper()
			out, err := c.ListFindingAggregations(ctx, &inspector2.ListFindingAggregationsInput{AggregationType: typ})
			if err != nil {
				t.Fatal(err)
			}
			if out.AggregationType != typ {
				t.Errorf("aggregationType %s, want %s", out.AggregationType, typ)
			}
			return out.Responses
		}
		repositories := func() map[string]string {
			got := map[string]string{}
			for _, r := range aggregate(types.AggregationTypeRepository) {
				v := r.(*types.AggregationResponseMemberRepositoryAggregation).Value
				got[aws.ToString(v.Repository)] = countsString(v.SeverityCounts)
				if aws.ToInt64(v.AffectedImages) != 1 {
					t.Errorf("%s: affectedImages %d", aws.ToString(v.Repository), aws.ToInt64(v.AffectedImages))
				}
			}
			return got
		}
		check("REPOSITORY", repositories(), byRepo)
		got := map[string]string{}
		for _, r := range aggregate(types.AggregationTypePackage) {
			v := r.(*types.AggregationResponseMemberPackageAggregation).Value
			got[aws.ToString(v.PackageName)] = countsString(v.SeverityCounts)
		}
		check("PACKAGE", got, byPkg)
		got = map[string]string{}
		for _, r := range aggregate(types.AggregationTypeAwsEcrContainer) {
			v := r.(*types.AggregationResponseMemberAwsEcrContainerAggregation).Value
			if aws.ToString(v.ImageSha) != d["old"] {
				t.Errorf("container aggregation of %s", aws.ToString(v.ImageSha))
			}
			got[aws.ToString(v.Repository)] = countsString(v.SeverityCounts)
		}
		check("AWS_ECR_CONTAINER", got, byRepo)
		got = map[string]string{}
		for _, r := range aggregate(types.AggregationTypeImageLayer) {
			v := r.(*types.AggregationResponseMemberImageLayerAggregation).Value
			got[aws.ToString(v.Repository)+" "+aws.ToString(v.LayerHash)] = countsString(v.SeverityCounts)
		}
		check("IMAGE_LAYER", got, byLayer)
		got = map[string]string{}
		for _, r := range aggregate(types.AggregationTypeFindingType) {
			v := r.(*types.AggregationResponseMemberFindingTypeAggregation).Value
			got["PACKAGE_VULNERABILITY"] = countsString(v.SeverityCounts)
		}
		check("FINDING_TYPE", got, map[string][]scan.Finding{"PACKAGE_VULNERABILITY": all})
		for rt, want := range map[types.AggregationResourceType]int{
			types.AggregationResourceTypeAwsEcrContainerImage: 1, types.AggregationResourceTypeAwsLambdaFunction: 0} {
			out, err := c.ListFindingAggregations(ctx, &inspector2.ListFindingAggregationsInput{AggregationType: types.AggregationTypeFindingType,
				AggregationRequest: &types.AggregationRequestMemberFindingTypeAggregation{Value: types.FindingTypeAggregation{ResourceType: rt}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Responses) != want {
				t.Errorf("FINDING_TYPE for %s: %d groups, want %d", rt, len(out.Responses), want)
			}
		}
		// One repository asked for, by the request member's filter.
		out, err := c.ListFindingAggregations(ctx, &inspector2.ListFindingAggregationsInput{AggregationType: types.AggregationTypeRepository,
			AggregationRequest: &types.AggregationRequestMemberRepositoryAggregation{Value: types.RepositoryAggregation{Repositories: eq("app-prod")}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Responses) != 1 || aws.ToString(out.Responses[0].(*types.AggregationResponseMemberRepositoryAggregation).Value.Repository) != "app-prod" {
			t.Errorf("REPOSITORY for app-prod: %+v", out.Responses)
		}

		// A SUPPRESS filter for one CVE in scanrepo-prod.
		var suppressed []scan.Finding
		for _, f := range byRepo["scanrepo-prod"] {
			if f.VulnerabilityID == "CVE-2019-1547" {
				suppressed = append(suppressed, f)
			}
		}
		if len(suppressed) != 2 {
			t.Fatalf("fixture: %d findings of CVE-2019-1547 in scanrepo-prod, want 2", len(suppressed))
		}
		crit := &types.FilterCriteria{VulnerabilityId: eq("CVE-2019-1547"), EcrImageRepositoryName: eq("scanrepo-prod")}
		created, err := c.CreateFilter(ctx, &inspector2.CreateFilterInput{Action: types.FilterActionSuppress, Name: aws.String("suppress-openssl"),
			FilterCriteria: crit, Reason: aws.String("accepted risk")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateFilter(ctx, &inspector2.CreateFilterInput{Action: types.FilterActionSuppress, Name: aws.String("suppress-openssl"), FilterCriteria: crit})
		wantCode(t, "duplicate filter name", err, "ValidationException")
		_, err = c.CreateFilter(ctx, &inspector2.CreateFilterInput{Action: "DROP", Name: aws.String("x"), FilterCriteria: crit})
		wantCode(t, "bad action", err, "ValidationException")
		listed, err := c.ListFilters(ctx, &inspector2.ListFiltersInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(listed.Filters) != 1 || aws.ToString(listed.Filters[0].Arn) != aws.ToString(created.Arn) ||
			aws.ToString(listed.Filters[0].Reason) != "accepted risk" || listed.Filters[0].Action != types.FilterActionSuppress ||
			aws.ToString(listed.Filters[0].Criteria.VulnerabilityId[0].Value) != "CVE-2019-1547" {
			t.Fatalf("list-filters: %+v", listed.Filters)
		}
		if got := listAll(t, c, &types.FilterCriteria{FindingStatus: eq("SUPPRESSED")}); !slices.Equal(wireArns(got), arnsOf(suppressed)) {
			t.Errorf("suppressed: got %v, want %v", wireArns(got), arnsOf(suppressed))
		}
		if got := listAll(t, c, &types.FilterCriteria{FindingStatus: eq("ACTIVE")}); len(got) != len(all)-2 {
			t.Errorf("active after suppression: %d, want %d", len(got), len(all)-2)
		}
		// Aggregations count unsuppressed findings only.
		for i := range byRepo["scanrepo-prod"] {
			f := &byRepo["scanrepo-prod"][i]
			if f.VulnerabilityID == "CVE-2019-1547" {
				f.Status = scan.FindingSuppressed
			}
		}
		check("REPOSITORY while suppressed", repositories(), byRepo)

		// Updating the filter to NONE lifts the suppression; back to SUPPRESS.
		if _, err := c.UpdateFilter(ctx, &inspector2.UpdateFilterInput{FilterArn: created.Arn, Action: types.FilterActionNone}); err != nil {
			t.Fatal(err)
		}
		if got := listAll(t, c, &types.FilterCriteria{FindingStatus: eq("SUPPRESSED")}); len(got) != 0 {
			t.Errorf("suppressed after action NONE: %v", wireArns(got))
		}
		if _, err := c.UpdateFilter(ctx, &inspector2.UpdateFilterInput{FilterArn: created.Arn, Action: types.FilterActionSuppress,
			Reason: aws.String("still accepted")}); err != nil {
			t.Fatal(err)
		}
		if got := listAll(t, c, &types.FilterCriteria{FindingStatus: eq("SUPPRESSED")}); len(got) != 2 {
			t.Errorf("suppressed after action SUPPRESS again: %v", wireArns(got))
		}

		// Deleting it restores the findings.
		if _, err := c.DeleteFilter(ctx, &inspector2.DeleteFilterInput{Arn: created.Arn}); err != nil {
			t.Fatal(err)
		}
		_, err = c.DeleteFilter(ctx, &inspector2.DeleteFilterInput{Arn: created.Arn})
		wantCode(t, "delete twice", err, "ResourceNotFoundException")
		if got := listAll(t, c, &types.FilterCriteria{FindingStatus: eq("ACTIVE")}); !slices.Equal(wireArns(got), arnsOf(all)) {
			t.Errorf("active after delete-filter: %d findings, want %d", len(got), len(all))
		}
		for i := range byRepo["scanrepo-prod"] {
			byRepo["scanrepo-prod"][i].Status = scan.FindingActive
		}
		check("REPOSITORY after delete-filter", repositories(), byRepo)
	})
}

func TestCoverageAndConfiguration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, d := scannedStack(t, db)
		c := s.client(s.admin)
		out, err := c.ListCoverage(ctx, &inspector2.ListCoverageInput{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range out.CoveredResources {
			key := string(r.ResourceType) + " " + aws.ToString(r.ResourceId)
			v := string(r.ScanStatus.StatusCode) + "/" + string(r.ScanStatus.Reason)
			if r.ResourceType == types.CoverageResourceTypeAwsEcrContainerImage {
				if r.LastScannedAt == nil || r.LastScannedAt.IsZero() {
					t.Errorf("%s: no lastScannedAt", key)
				}
				v += " " + fmt.Sprint(r.ResourceMetadata.EcrImage.Tags)
			} else {
				v += " " + string(r.ResourceMetadata.EcrRepository.ScanFrequency)
			}
			if r.ScanType != types.ScanTypePackage {
				t.Errorf("%s: scanType %s", key, r.ScanType)
			}
			got[key] = v
		}
		acct := aws.ToString(out.CoveredResources[0].AccountId)
		arn := func(repo string) string { return "arn:aws:ecr:us-west-2:" + acct + ":repository/" + repo }
		want := map[string]string{
			"AWS_ECR_REPOSITORY " + arn("scanrepo-prod"):                           "ACTIVE/SUCCESSFUL CONTINUOUS_SCAN",
			"AWS_ECR_REPOSITORY " + arn("app-prod"):                                "ACTIVE/SUCCESSFUL CONTINUOUS_SCAN",
			"AWS_ECR_REPOSITORY " + arn("scanrepo-test"):                           "INACTIVE/SCAN_FREQUENCY_MANUAL MANUAL",
			"AWS_ECR_CONTAINER_IMAGE " + arn("scanrepo-prod") + "/" + d["old"]:     "ACTIVE/SUCCESSFUL [1.0]",
			"AWS_ECR_CONTAINER_IMAGE " + arn("scanrepo-prod") + "/" + d["shipped"]: "ACTIVE/SUCCESSFUL [shipped]",
			"AWS_ECR_CONTAINER_IMAGE " + arn("app-prod") + "/" + d["old"]:          "ACTIVE/SUCCESSFUL [v1]",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("coverage:\ngot  %v\nwant %v", got, want)
		}
		filtered, err := c.ListCoverage(ctx, &inspector2.ListCoverageInput{FilterCriteria: &types.CoverageFilterCriteria{
			ResourceType:      []types.CoverageStringFilter{{Comparison: types.CoverageStringComparisonEquals, Value: aws.String("AWS_ECR_CONTAINER_IMAGE")}},
			EcrRepositoryName: []types.CoverageStringFilter{{Comparison: types.CoverageStringComparisonNotEquals, Value: aws.String("app-prod")}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(filtered.CoveredResources) != 2 {
			t.Errorf("filtered coverage: %d resources, want the 2 images of scanrepo-prod", len(filtered.CoveredResources))
		}
		paged := 0
		p := inspector2.NewListCoveragePaginator(c, &inspector2.ListCoverageInput{MaxResults: aws.Int32(2)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			paged += len(page.CoveredResources)
		}
		if paged != len(want) {
			t.Errorf("paged coverage: %d resources, want %d", paged, len(want))
		}

		// Configuration: LIFETIME until changed, then what was stored.
		conf, err := c.GetConfiguration(ctx, &inspector2.GetConfigurationInput{})
		if err != nil {
			t.Fatal(err)
		}
		if st := conf.EcrConfiguration.RescanDurationState; st.RescanDuration != types.EcrRescanDurationLifetime || st.Status != types.EcrRescanDurationStatusSuccess {
			t.Errorf("default configuration: %+v", st)
		}
		if _, err := c.UpdateConfiguration(ctx, &inspector2.UpdateConfigurationInput{EcrConfiguration: &types.EcrConfiguration{
			RescanDuration: types.EcrRescanDurationDays30, PullDateRescanDuration: types.EcrPullDateRescanDurationDays14,
			PullDateRescanMode: types.EcrPullDateRescanModeLastPullDate}}); err != nil {
			t.Fatal(err)
		}
		conf, err = c.GetConfiguration(ctx, &inspector2.GetConfigurationInput{})
		if err != nil {
			t.Fatal(err)
		}
		st := conf.EcrConfiguration.RescanDurationState
		if st.RescanDuration != types.EcrRescanDurationDays30 || st.PullDateRescanDuration != types.EcrPullDateRescanDurationDays14 ||
			st.PullDateRescanMode != types.EcrPullDateRescanModeLastPullDate || st.UpdatedAt == nil || st.UpdatedAt.IsZero() {
			t.Errorf("stored configuration: %+v", st)
		}
		_, err = c.UpdateConfiguration(ctx, &inspector2.UpdateConfigurationInput{EcrConfiguration: &types.EcrConfiguration{RescanDuration: "DAYS_7"}})
		wantCode(t, "rescanDuration DAYS_7", err, "ValidationException")
		if conf, err = c.GetConfiguration(ctx, &inspector2.GetConfigurationInput{}); err != nil {
			t.Fatal(err)
		} else if conf.EcrConfiguration.RescanDurationState.RescanDuration != types.EcrRescanDurationDays30 {
			t.Errorf("a refused update changed the configuration: %+v", conf.EcrConfiguration.RescanDurationState)
		}
	})
}
