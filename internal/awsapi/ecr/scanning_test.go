package ecr_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil/imagetest"
	"github.com/drydockhq/drydock/internal/testutil/vulntest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"gopkg.in/yaml.v3"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/osv"
)

const alpineSecdb = vulntest.AlpineSecdbPath

// importSecdb applies the real Alpine 3.10 secdb to the store of a data
// directory as a vulnerability database generation, before `drydock
// serve` opens it.
func importSecdb(t *testing.T, dataDir string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	vdb, err := vulndb.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vdb.Apply(ctx, []vulndb.SourceUpdate{vulntest.AlpineSecdb(t)}); err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile(testutil.Fixture(t, log4jRecord))
	if err != nil {
		t.Fatal(err)
	}
	adv, err := osv.Parse(rec, "osv-Maven")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vdb.Apply(ctx, []vulndb.SourceUpdate{{Name: "osv-Maven", Kind: "osv", Data: &vulndb.FeedData{Advisories: []vulndb.Advisory{adv}}}}); err != nil {
		t.Fatal(err)
	}
}

const log4jRecord = "feeds/osv/records/GHSA-jfh8-c2jp-5v3q.json"

// log4jExpectation reads from the real GHSA record what a log4j-core
// 2.14.1 finding must say: the CVE alias, the severity and the fixed
// version of the range holding 2.14.1.
func log4jExpectation(t *testing.T) (cve, severity, fixed string) {
	t.Helper()
	raw, err := os.ReadFile(testutil.Fixture(t, log4jRecord))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Aliases          []string
		DatabaseSpecific struct{ Severity string } `json:"database_specific"`
		Affected         []struct {
			Ranges []struct {
				Events []struct{ Introduced, Fixed string }
			}
		}
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	nums := func(v string) []int {
		var out []int
		for _, p := range strings.Split(v, ".") {
			n, _ := strconv.Atoi(p)
			out = append(out, n)
		}
		return out
	}
	installed := nums("2.14.1")
	for _, a := range rec.Affected {
		for _, r := range a.Ranges {
			var lo, hi string
			for _, e := range r.Events {
				if e.Introduced != "" {
					lo = e.Introduced
				}
				if e.Fixed != "" {
					hi = e.Fixed
				}
			}
			if slices.Compare(nums(lo), installed) <= 0 && slices.Compare(installed, nums(hi)) < 0 {
				fixed = hi
			}
		}
	}
	if len(rec.Aliases) != 1 || fixed == "" {
		t.Fatalf("record: aliases %v, no range holds 2.14.1", rec.Aliases)
	}
	return rec.Aliases[0], rec.DatabaseSpecific.Severity, fixed
}

// jarLayer is a layer with a log4j-core 2.14.1 jar as Maven builds it
// (pom.properties and manifest).
func jarLayer(t *testing.T, path string) v1.Layer {
	t.Helper()
	var jar bytes.Buffer
	zw := zip.NewWriter(&jar)
	for _, f := range []struct{ name, body string }{
		{"META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\nImplementation-Title: Apache Log4j Core\r\nImplementation-Version: 2.14.1\r\n\r\n"},
		{"META-INF/maven/org.apache.logging.log4j/log4j-core/pom.properties", "#Created by Apache Maven 3.6.3\ngroupId=org.apache.logging.log4j\nartifactId=log4j-core\nversion=2.14.1\n"},
	} {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(jar.Len()), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(jar.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// oldOpenSSLImage is the real alpine:3.10 image with a layer on top whose
// apk database says the openssl libraries are 1.1.1c-r0 instead of the
// shipped 1.1.1d-r2 (the fixture's documented positive case).
func oldOpenSSLImage(t testing.TB) v1.Image {
	t.Helper()
	return imagetest.WithAPKVersions(t, imagetest.Alpine310(t), map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
}

// expectedOpenSSL is the independent expectation for oldOpenSSLImage:
// "CVE package" for each CVE the secdb YAML lists under a fixed openssl
// version above 1.1.1c-r0, for both libraries of origin openssl. The
// versions there are all 1.1.1<letter>-r<n>, compared here by letter
// then release.
func expectedOpenSSL(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(testutil.Fixture(t, alpineSecdb))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Packages []struct {
			Pkg struct {
				Name     string              `yaml:"name"`
				Secfixes map[string][]string `yaml:"secfixes"`
			} `yaml:"pkg"`
		} `yaml:"packages"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	above := func(v string) bool {
		rest, ok := strings.CutPrefix(v, "1.1.1")
		if !ok || len(rest) < 4 {
			t.Fatalf("unexpected openssl version %q in the secdb", v)
		}
		rel, err := strconv.Atoi(strings.TrimPrefix(rest[1:], "-r"))
		if err != nil {
			t.Fatalf("version %q: %v", v, err)
		}
		return rest[0] > 'c' || rest[0] == 'c' && rel > 0
	}
	var out []string
	for _, p := range doc.Packages {
		if p.Pkg.Name != "openssl" {
			continue
		}
		for fixed, cves := range p.Pkg.Secfixes {
			if above(fixed) {
				for _, c := range cves {
					out = append(out, c+" libcrypto1.1", c+" libssl1.1")
				}
			}
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatal("the secdb lists no openssl fix above 1.1.1c-r0")
	}
	return out
}

// dropFirstResponse makes the SDK throw away the answer to the first
// attempt of a call and retry it, as it does when a connection drops
// after the server acted.
var errDropped = errors.New("test: answer dropped")

func sdkClient(endpoint, keyID, secret string, dropFirst bool) *sdkecr.Client {
	o := sdkecr.Options{
		Region:       "us-west-2",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		// The SDK's default retryer (standard mode: LimitExceeded is a
		// throttling error, 3 attempts), plus the dropped answer.
		Retryer: retry.NewStandard(func(so *retry.StandardOptions) {
			so.Retryables = append(slices.Clone(so.Retryables), retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if errors.Is(err, errDropped) {
					return aws.TrueTernary
				}
				return aws.UnknownTernary
			}))
			so.MaxBackoff = 100 * time.Millisecond
		}),
	}
	if dropFirst {
		dropped := false
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("dropFirst",
				func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleDeserialize(ctx, in)
					if err == nil && !dropped {
						dropped = true
						return out, md, errDropped
					}
					return out, md, err
				}), middleware.After)
		})
	}
	return sdkecr.New(o)
}

// TestScanningCLI is the scanning walkthrough against a real `drydock
// serve` with the real AWS CLI v2 and aws-sdk-go-v2: enhanced scanning
// with a continuous rule for `prod`, then basic scanning with scan on
// push, manual scans and the 24-hour limit.
func TestScanningCLI(t *testing.T) {
	dataDir := t.TempDir()
	importSecdb(t, dataDir)
	host, _ := serve(t, dataDir)
	endpoint := "http://" + host
	type accessKey struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
	}
	newKey := func(args ...string) accessKey {
		t.Helper()
		out, err := exec.Command(drydockBinary(t), append([]string{"keys", "create", "--data-dir", dataDir}, args...)...).Output()
		if err != nil {
			t.Fatalf("drydock keys create %v: %v", args, err)
		}
		var k accessKey
		if err := json.Unmarshal(out, &k); err != nil || k.AccessKeyID == "" {
			t.Fatalf("drydock keys create printed %q: %v", out, err)
		}
		return k
	}
	admin := newKey("--name", "scan-admin", "--admin")
	puller := newKey("--name", "puller", "--pull", "scanrepo-*")
	auditor := newKey("--name", "auditor", "--read-findings", "scanrepo-prod")
	cli := newCLI(t, endpoint, admin.AccessKeyID, admin.SecretAccessKey)
	sdk := sdkClient(endpoint, admin.AccessKeyID, admin.SecretAccessKey, false)
	ctx := context.Background()

	var reg struct{ RegistryID string }
	cli.ok(&reg, "ecr", "describe-registry")

	// Enhanced scanning, continuous for repositories whose name holds prod.
	var put struct {
		RegistryScanningConfiguration struct {
			ScanType string
			Rules    []struct {
				ScanFrequency     string
				RepositoryFilters []struct{ Filter, FilterType string }
			}
		}
	}
	cli.ok(&put, "ecr", "put-registry-scanning-configuration", "--scan-type", "ENHANCED", "--rules",
		`[{"repositoryFilters":[{"filter":"prod","filterType":"WILDCARD"}],"scanFrequency":"CONTINUOUS_SCAN"}]`)
	if c := put.RegistryScanningConfiguration; c.ScanType != "ENHANCED" || len(c.Rules) != 1 || c.Rules[0].ScanFrequency != "CONTINUOUS_SCAN" ||
		len(c.Rules[0].RepositoryFilters) != 1 || c.Rules[0].RepositoryFilters[0].Filter != "prod" || c.Rules[0].RepositoryFilters[0].FilterType != "WILDCARD" {
		t.Fatalf("put-registry-scanning-configuration printed %+v", c)
	}
	var got struct {
		RegistryID            string
		ScanningConfiguration struct {
			ScanType string
			Rules    []struct {
				ScanFrequency     string
				RepositoryFilters []struct{ Filter, FilterType string }
			}
		}
	}
	cli.ok(&got, "ecr", "get-registry-scanning-configuration")
	if got.RegistryID != reg.RegistryID || got.ScanningConfiguration.ScanType != "ENHANCED" || len(got.ScanningConfiguration.Rules) != 1 ||
		got.ScanningConfiguration.Rules[0].RepositoryFilters[0].Filter != "prod" {
		t.Fatalf("get-registry-scanning-configuration printed %+v", got)
	}
	// What the CLI does not check, the server does.
	for _, bad := range []struct{ code, rules string }{
		{"InvalidParameterException", `[{"repositoryFilters":[{"filter":"prod","filterType":"PREFIX"}],"scanFrequency":"CONTINUOUS_SCAN"}]`},
		{"InvalidParameterException", `[{"repositoryFilters":[{"filter":"prod","filterType":"WILDCARD"}],"scanFrequency":"HOURLY"}]`},
		{"InvalidParameterException", `[{"repositoryFilters":[],"scanFrequency":"SCAN_ON_PUSH"},{"repositoryFilters":[],"scanFrequency":"SCAN_ON_PUSH"},{"repositoryFilters":[],"scanFrequency":"SCAN_ON_PUSH"}]`},
		{"ValidationException", `[{"repositoryFilters":[{"filter":"Prod!","filterType":"WILDCARD"}],"scanFrequency":"SCAN_ON_PUSH"}]`},
	} {
		cli.fails(bad.code, "PutRegistryScanningConfiguration", "ecr", "put-registry-scanning-configuration", "--scan-type", "ENHANCED", "--rules", bad.rules)
	}
	cli.fails("InvalidParameterException", "PutRegistryScanningConfiguration", "ecr", "put-registry-scanning-configuration", "--scan-type", "FOO")
	many := make([]string, 101)
	for i := range many {
		many[i] = `{"filter":"f` + strconv.Itoa(i) + `","filterType":"WILDCARD"}`
	}
	cli.fails("InvalidParameterException", "PutRegistryScanningConfiguration", "ecr", "put-registry-scanning-configuration", "--scan-type", "ENHANCED", "--rules",
		`[{"repositoryFilters":[`+strings.Join(many, ",")+`],"scanFrequency":"SCAN_ON_PUSH"}]`)
	// Refusals changed nothing; only admins configure.
	cli.ok(&got, "ecr", "get-registry-scanning-configuration")
	if got.ScanningConfiguration.ScanType != "ENHANCED" || len(got.ScanningConfiguration.Rules) != 1 {
		t.Fatalf("after refused changes: %+v", got)
	}
	newCLI(t, endpoint, auditor.AccessKeyID, auditor.SecretAccessKey).fails("AccessDeniedException", "PutRegistryScanningConfiguration",
		"ecr", "put-registry-scanning-configuration", "--scan-type", "BASIC")

	for _, r := range []string{"scanrepo-prod", "scanrepo-test"} {
		cli.ok(nil, "ecr", "create-repository", "--repository-name", r)
	}
	type repoScan struct {
		RepositoryArn, RepositoryName, ScanFrequency string
		ScanOnPush                                   bool
		AppliedScanFilters                           []struct{ Filter, FilterType string }
	}
	var batch struct {
		ScanningConfigurations []repoScan
		Failures               []struct{ RepositoryName, FailureCode, FailureReason string }
	}
	cli.ok(&batch, "ecr", "batch-get-repository-scanning-configuration", "--repository-names", "scanrepo-prod", "scanrepo-test", "scanrepo-missing")
	if len(batch.ScanningConfigurations) != 2 || len(batch.Failures) != 1 {
		t.Fatalf("batch-get-repository-scanning-configuration printed %+v", batch)
	}
	prod, test := batch.ScanningConfigurations[0], batch.ScanningConfigurations[1]
	if prod.RepositoryName != "scanrepo-prod" || prod.RepositoryArn != "arn:aws:ecr:us-west-2:"+reg.RegistryID+":repository/scanrepo-prod" ||
		prod.ScanFrequency != "CONTINUOUS_SCAN" || !prod.ScanOnPush || len(prod.AppliedScanFilters) != 1 ||
		prod.AppliedScanFilters[0].Filter != "prod" || prod.AppliedScanFilters[0].FilterType != "WILDCARD" {
		t.Errorf("scanrepo-prod: %+v", prod)
	}
	if test.RepositoryName != "scanrepo-test" || test.ScanFrequency != "MANUAL" || test.ScanOnPush || len(test.AppliedScanFilters) != 0 {
		t.Errorf("scanrepo-test: %+v", test)
	}
	if f := batch.Failures[0]; f.RepositoryName != "scanrepo-missing" || f.FailureCode != "REPOSITORY_NOT_FOUND" || f.FailureReason == "" {
		t.Errorf("failure: %+v", f)
	}

	// Push the same vulnerable image to both, logged in with the
	// password of get-login-password.
	out, _, code := cli.run("ecr", "get-login-password")
	if code != 0 {
		t.Fatalf("get-login-password: exit %d", code)
	}
	pw := strings.TrimSpace(out)
	img := oldOpenSSLImage(t)
	dg, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	digest := dg.String()
	push := func(ref string) {
		t.Helper()
		r, err := name.ParseReference(host+"/"+ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw})); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	push("scanrepo-prod:latest")
	push("scanrepo-test:latest")
	want := expectedOpenSSL(t)

	// Poll the findings with the SDK until the enhanced scan is done.
	id := &types.ImageIdentifier{ImageTag: aws.String("latest")}
	var findings *sdkecr.DescribeImageScanFindingsOutput
	deadline := time.Now().Add(2 * time.Minute)
	for {
		findings, err = sdk.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scanrepo-prod"), ImageId: id})
		var nf *types.ScanNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Fatal(err)
		}
		if err == nil && findings.ImageScanStatus.Status == types.ScanStatusActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("enhanced scan not done: %+v %v", findings, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if aws.ToString(findings.ImageScanStatus.Description) == "" || aws.ToString(findings.ImageId.ImageDigest) != digest || aws.ToString(findings.ImageId.ImageTag) != "latest" {
		t.Errorf("status %+v, image %+v", findings.ImageScanStatus, findings.ImageId)
	}
	isf := findings.ImageScanFindings
	if isf == nil || isf.ImageScanCompletedAt == nil || isf.VulnerabilitySourceUpdatedAt == nil || len(isf.Findings) != 0 {
		t.Fatalf("imageScanFindings: %+v", isf)
	}
	var gotPairs []string
	total := int32(0)
	for _, n := range isf.FindingSeverityCounts {
		total += n
	}
	for _, f := range isf.EnhancedFindings {
		d := f.PackageVulnerabilityDetails
		if d == nil || len(d.VulnerablePackages) != 1 {
			t.Fatalf("finding without its package: %+v", f)
		}
		p := d.VulnerablePackages[0]
		gotPairs = append(gotPairs, aws.ToString(d.VulnerabilityId)+" "+aws.ToString(p.Name))
		if aws.ToString(p.Version) != "1.1.1c" || aws.ToString(p.Release) != "r0" || aws.ToString(p.PackageManager) != "OS" ||
			aws.ToString(p.FixedInVersion) == "" || !strings.HasPrefix(aws.ToString(p.SourceLayerHash), "sha256:") {
			t.Errorf("vulnerable package %+v", p)
		}
		if aws.ToString(f.Status) != "ACTIVE" || aws.ToString(f.Type) != "PACKAGE_VULNERABILITY" || aws.ToString(f.AwsAccountId) != reg.RegistryID ||
			!strings.HasPrefix(aws.ToString(f.FindingArn), "arn:aws:inspector2:") || f.FirstObservedAt == nil || f.UpdatedAt == nil || aws.ToString(f.Severity) == "" {
			t.Errorf("finding %+v", f)
		}
		if len(f.Resources) != 1 || aws.ToString(f.Resources[0].Type) != "AWS_ECR_CONTAINER_IMAGE" ||
			aws.ToString(f.Resources[0].Id) != "arn:aws:ecr:us-west-2:"+reg.RegistryID+":repository/scanrepo-prod/"+digest ||
			f.Resources[0].Details == nil || f.Resources[0].Details.AwsEcrContainerImage == nil ||
			aws.ToString(f.Resources[0].Details.AwsEcrContainerImage.ImageHash) != digest ||
			!slices.Equal(f.Resources[0].Details.AwsEcrContainerImage.ImageTags, []string{"latest"}) {
			t.Errorf("resources %+v", f.Resources)
		}
	}
	sort.Strings(gotPairs)
	if !slices.Equal(gotPairs, want) || int(total) != len(want) {
		t.Fatalf("enhanced findings %v (counts %v), want (from the secdb) %v", gotPairs, isf.FindingSeverityCounts, want)
	}

	// Paging with opaque tokens: one finding a page, never a token twice;
	// the CLI pages by itself and merges.
	var paged []string
	tokens := map[string]bool{}
	var next *string
	for {
		page, err := sdk.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{
			RepositoryName: aws.String("scanrepo-prod"), ImageId: id, MaxResults: aws.Int32(1), NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range page.ImageScanFindings.EnhancedFindings {
			paged = append(paged, aws.ToString(f.PackageVulnerabilityDetails.VulnerabilityId)+" "+aws.ToString(f.PackageVulnerabilityDetails.VulnerablePackages[0].Name))
		}
		if page.NextToken == nil {
			break
		}
		if tokens[*page.NextToken] || strings.Contains(*page.NextToken, "scanrepo") {
			t.Fatalf("token %q repeated or not opaque", *page.NextToken)
		}
		tokens[*page.NextToken] = true
		next = page.NextToken
	}
	sort.Strings(paged)
	if !slices.Equal(paged, want) {
		t.Errorf("paged findings %v, want %v", paged, want)
	}
	var cliFindings struct {
		ImageScanStatus   struct{ Status, Description string }
		ImageScanFindings struct {
			EnhancedFindings []struct {
				PackageVulnerabilityDetails struct {
					VulnerabilityID    string `json:"vulnerabilityId"`
					VulnerablePackages []struct{ Name string }
				}
			}
			FindingSeverityCounts map[string]int
		}
	}
	cli.ok(&cliFindings, "ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-prod", "--image-id", "imageTag=latest", "--page-size", "2")
	var cliPairs []string
	for _, f := range cliFindings.ImageScanFindings.EnhancedFindings {
		cliPairs = append(cliPairs, f.PackageVulnerabilityDetails.VulnerabilityID+" "+f.PackageVulnerabilityDetails.VulnerablePackages[0].Name)
	}
	sort.Strings(cliPairs)
	if cliFindings.ImageScanStatus.Status != "ACTIVE" || !slices.Equal(cliPairs, want) {
		t.Errorf("CLI printed %+v", cliFindings)
	}

	// DescribeImages carries the scan status and the severity counts.
	images, err := sdk.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("scanrepo-prod")})
	if err != nil {
		t.Fatal(err)
	}
	if len(images.ImageDetails) != 1 || images.ImageDetails[0].ImageScanStatus == nil || images.ImageDetails[0].ImageScanStatus.Status != types.ScanStatusActive ||
		images.ImageDetails[0].ImageScanFindingsSummary == nil || !mapsEqual(images.ImageDetails[0].ImageScanFindingsSummary.FindingSeverityCounts, isf.FindingSeverityCounts) {
		t.Errorf("describe-images: %+v", images.ImageDetails)
	}

	// A log4j-core 2.14.1 jar on top: the enhanced scan reports
	// CVE-2021-44228 as the GHSA record says, with the jar's path.
	javaImg, err := mutate.AppendLayers(img, jarLayer(t, "app/lib/log4j-core-2.14.1.jar"))
	if err != nil {
		t.Fatal(err)
	}
	jr, err := name.ParseReference(host+"/scanrepo-prod:java", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(jr, javaImg, remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw})); err != nil {
		t.Fatal(err)
	}
	cve, severity, fixed := log4jExpectation(t)
	javaID := &types.ImageIdentifier{ImageTag: aws.String("java")}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		findings, err = sdk.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scanrepo-prod"), ImageId: javaID})
		var nf *types.ScanNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Fatal(err)
		}
		if err == nil && findings.ImageScanStatus.Status == types.ScanStatusActive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("enhanced scan of the java image not done: %+v %v", findings, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var javaFindings struct {
		ImageScanFindings struct {
			EnhancedFindings []struct {
				Severity                    string
				PackageVulnerabilityDetails struct {
					VulnerabilityID    string `json:"vulnerabilityId"`
					VulnerablePackages []struct {
						Name, Version, PackageManager, FilePath string
					}
				}
			}
			FindingSeverityCounts map[string]int
		}
	}
	cli.ok(&javaFindings, "ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-prod", "--image-id", "imageTag=java")
	var log4j, osFindings int
	for _, f := range javaFindings.ImageScanFindings.EnhancedFindings {
		p := f.PackageVulnerabilityDetails.VulnerablePackages[0]
		if p.PackageManager != "JAR" {
			osFindings++
			continue
		}
		log4j++
		if f.PackageVulnerabilityDetails.VulnerabilityID != cve || f.Severity != severity || p.Version != "2.14.1" ||
			p.FilePath != "app/lib/log4j-core-2.14.1.jar" || !strings.HasSuffix(p.Name, "log4j-core") {
			t.Errorf("log4j finding %+v", f)
		}
	}
	// The CLI 2.9.19's model predates fixedInVersion and fixAvailable (it
	// drops them); the SDK shows them.
	for _, f := range findings.ImageScanFindings.EnhancedFindings {
		if p := f.PackageVulnerabilityDetails.VulnerablePackages[0]; aws.ToString(p.PackageManager) == "JAR" &&
			(aws.ToString(p.FixedInVersion) != fixed || aws.ToString(f.FixAvailable) != "YES") {
			t.Errorf("log4j finding through the SDK: fixedInVersion %q, fixAvailable %q, want %q, YES", aws.ToString(p.FixedInVersion), aws.ToString(f.FixAvailable), fixed)
		}
	}
	if log4j != 1 || osFindings != len(want) || javaFindings.ImageScanFindings.FindingSeverityCounts[severity] < 1 {
		t.Errorf("java image: %d log4j and %d OS findings (want 1 and %d), counts %v", log4j, osFindings, len(want), javaFindings.ImageScanFindings.FindingSeverityCounts)
	}

	// The test repository matches no rule: scanning off.
	cli.fails("ScanNotFoundException", "DescribeImageScanFindings", "ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-test", "--image-id", "imageTag=latest")
	// Enhanced scanning takes no manual scan.
	cli.fails("ValidationException", "StartImageScan", "ecr", "start-image-scan", "--repository-name", "scanrepo-test", "--image-id", "imageTag=latest")
	// Findings need read-findings on the repository; pull is not enough.
	newCLI(t, endpoint, puller.AccessKeyID, puller.SecretAccessKey).fails("AccessDeniedException", "DescribeImageScanFindings",
		"ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-prod", "--image-id", "imageTag=latest")
	aud := newCLI(t, endpoint, auditor.AccessKeyID, auditor.SecretAccessKey)
	aud.ok(nil, "ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-prod", "--image-id", "imageTag=latest")
	aud.fails("AccessDeniedException", "DescribeImageScanFindings", "ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-test", "--image-id", "imageTag=latest")

	// Basic scanning with scan on push for repositories named *-basic.
	cli.ok(nil, "ecr", "put-registry-scanning-configuration", "--scan-type", "BASIC", "--rules",
		`[{"repositoryFilters":[{"filter":"*-basic","filterType":"WILDCARD"}],"scanFrequency":"SCAN_ON_PUSH"}]`)
	for _, r := range []string{"scanrepo-basic", "scanrepo-manual", "scanrepo-sdk"} {
		cli.ok(nil, "ecr", "create-repository", "--repository-name", r)
	}
	cli.ok(&batch, "ecr", "batch-get-repository-scanning-configuration", "--repository-names", "scanrepo-basic", "scanrepo-manual")
	if c := batch.ScanningConfigurations; len(c) != 2 || c[0].ScanFrequency != "SCAN_ON_PUSH" || !c[0].ScanOnPush || len(c[0].AppliedScanFilters) != 1 ||
		c[1].ScanFrequency != "MANUAL" || c[1].ScanOnPush {
		t.Errorf("basic configurations: %+v", c)
	}
	push("scanrepo-basic:latest")
	push("scanrepo-manual:latest")
	push("scanrepo-sdk:latest")

	// Scanned on push: the CLI's waiter sees COMPLETE.
	cli.ok(nil, "ecr", "wait", "image-scan-complete", "--repository-name", "scanrepo-basic", "--image-id", "imageTag=latest")
	var basic struct {
		ImageID           struct{ ImageDigest, ImageTag string }
		ImageScanStatus   struct{ Status, Description string }
		ImageScanFindings struct {
			Findings []struct {
				Name, Severity, URI string
				Attributes          []struct{ Key, Value string }
			}
			EnhancedFindings      []any
			FindingSeverityCounts map[string]int
			ImageScanCompletedAt  string
		}
	}
	cli.ok(&basic, "ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-basic", "--image-id", "imageTag=latest")
	var basicPairs []string
	for _, f := range basic.ImageScanFindings.Findings {
		pkg := ""
		for _, a := range f.Attributes {
			if a.Key == "package_name" {
				pkg = a.Value
			}
		}
		basicPairs = append(basicPairs, f.Name+" "+pkg)
	}
	sort.Strings(basicPairs)
	if basic.ImageScanStatus.Status != "COMPLETE" || basic.ImageID.ImageDigest != digest || len(basic.ImageScanFindings.EnhancedFindings) != 0 ||
		!slices.Equal(basicPairs, want) || basic.ImageScanFindings.ImageScanCompletedAt == "" {
		t.Errorf("basic findings: %+v, want %v", basic, want)
	}
	// The scan on push used the image's 24 hours: the CLI retries the
	// refusal (3 requests) and prints it.
	cli.fails("LimitExceededException", "StartImageScan", "ecr", "start-image-scan", "--repository-name", "scanrepo-basic", "--image-id", "imageTag=latest")

	// A manual scan: never scanned, started, waited for, and refused the
	// second time within 24 hours.
	cli.fails("ScanNotFoundException", "DescribeImageScanFindings", "ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-manual", "--image-id", "imageTag=latest")
	var started struct {
		RegistryID, RepositoryName string
		ImageID                    struct{ ImageDigest, ImageTag string }
		ImageScanStatus            struct{ Status string }
	}
	cli.ok(&started, "ecr", "start-image-scan", "--repository-name", "scanrepo-manual", "--image-id", "imageTag=latest")
	if started.RegistryID != reg.RegistryID || started.RepositoryName != "scanrepo-manual" || started.ImageID.ImageDigest != digest ||
		started.ImageID.ImageTag != "latest" || started.ImageScanStatus.Status != "IN_PROGRESS" {
		t.Errorf("start-image-scan printed %+v", started)
	}
	cli.ok(nil, "ecr", "wait", "image-scan-complete", "--repository-name", "scanrepo-manual", "--image-id", "imageTag=latest")
	_, errOut, exit := cli.run("ecr", "start-image-scan", "--repository-name", "scanrepo-manual", "--image-id", "imageTag=latest")
	if exit == 0 || !strings.Contains(errOut, "An error occurred (LimitExceededException) when calling the StartImageScan operation (reached max retries: 2): The scan quota per image has been exceeded. Wait and try again.") {
		t.Errorf("second start-image-scan: exit %d\n%s", exit, errOut)
	}
	cli.ok(&basic, "ecr", "describe-image-scan-findings", "--repository-name", "scanrepo-manual", "--image-id", "imageTag=latest")
	if basic.ImageScanStatus.Status != "COMPLETE" || len(basic.ImageScanFindings.Findings) != len(want) {
		t.Errorf("after the refused scan: %+v", basic)
	}

	// The Go SDK: the first call's answer is lost and the SDK retries it;
	// the retry gets the call's success, not the 24-hour refusal. A new
	// call is refused after the SDK's 3 attempts.
	dropping := sdkClient(endpoint, admin.AccessKeyID, admin.SecretAccessKey, true)
	st, err := dropping.StartImageScan(ctx, &sdkecr.StartImageScanInput{RepositoryName: aws.String("scanrepo-sdk"), ImageId: &types.ImageIdentifier{ImageDigest: aws.String(digest)}})
	if err != nil {
		t.Fatalf("retried StartImageScan: %v", err)
	}
	if aws.ToString(st.ImageId.ImageDigest) != digest || st.ImageScanStatus == nil {
		t.Errorf("StartImageScan: %+v", st)
	}
	_, err = sdk.StartImageScan(ctx, &sdkecr.StartImageScanInput{RepositoryName: aws.String("scanrepo-sdk"), ImageId: &types.ImageIdentifier{ImageDigest: aws.String(digest)}})
	var le *types.LimitExceededException
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "attempt") && !strings.Contains(err.Error(), "retry") {
		t.Errorf("second StartImageScan: %v", err)
	}
	waiter := sdkecr.NewImageScanCompleteWaiter(sdk, func(o *sdkecr.ImageScanCompleteWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := waiter.Wait(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scanrepo-sdk"), ImageId: id}, 2*time.Minute); err != nil {
		t.Errorf("image scan complete waiter: %v", err)
	}
	// Unknown images and repositories.
	_, err = sdk.StartImageScan(ctx, &sdkecr.StartImageScanInput{RepositoryName: aws.String("scanrepo-sdk"), ImageId: &types.ImageIdentifier{ImageTag: aws.String("nope")}})
	var inf *types.ImageNotFoundException
	if !errors.As(err, &inf) {
		t.Errorf("StartImageScan of a missing tag: %v", err)
	}
	_, err = sdk.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scanrepo-nope"), ImageId: id})
	var rnf *types.RepositoryNotFoundException
	if !errors.As(err, &rnf) {
		t.Errorf("DescribeImageScanFindings in a missing repository: %v", err)
	}
}

func mapsEqual(a, b map[string]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) > 0
}

// applySecdb is a newStackWith feed: the real Alpine 3.10 secdb.
func applySecdb(t testing.TB) func(ctx context.Context, vdb *vulndb.DB) error {
	return func(ctx context.Context, vdb *vulndb.DB) error {
		_, err := vdb.Apply(ctx, []vulndb.SourceUpdate{vulntest.AlpineSecdb(t)})
		return err
	}
}

// TestScanningSDK runs basic scanning through aws-sdk-go-v2 on SQLite and
// PostgreSQL: scan on push, the 24-hour limit with a retried first call,
// findings against the secdb, DescribeImages' summary, validation and
// permissions.
func TestScanningSDK(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStackWith(t, db, applySecdb(t))
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Scan.Run(runCtx, scan.RunOptions{PushPoll: 50 * time.Millisecond}) }()
		t.Cleanup(func() { stop(); <-done })
		c := s.client(s.Admin)
		retrying := sdkClient(s.URL, s.Admin.ID, s.Admin.Secret, false)

		if _, err := c.PutRegistryScanningConfiguration(ctx, &sdkecr.PutRegistryScanningConfigurationInput{
			ScanType: types.ScanTypeBasic,
			Rules: []types.RegistryScanningRule{{ScanFrequency: types.ScanFrequencyScanOnPush,
				RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("*-onpush"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}}},
		}); err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"scan-onpush", "scan-manual"} {
			if _, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String(r)}); err != nil {
				t.Fatal(err)
			}
		}
		pw := s.password(t, c)
		img := oldOpenSSLImage(t)
		dg, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digest := dg.String()
		for _, r := range []string{"scan-onpush", "scan-manual"} {
			ref, err := name.ParseReference(s.Host+"/"+r+":v1", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw})); err != nil {
				t.Fatal(err)
			}
		}
		want := expectedOpenSSL(t)
		id := &types.ImageIdentifier{ImageTag: aws.String("v1")}
		waiter := sdkecr.NewImageScanCompleteWaiter(c, func(o *sdkecr.ImageScanCompleteWaiterOptions) {
			o.MinDelay = 50 * time.Millisecond
			o.MaxDelay = 500 * time.Millisecond
			// Right after the push the scan may not be recorded yet.
			o.Retryable = func(ctx context.Context, in *sdkecr.DescribeImageScanFindingsInput, out *sdkecr.DescribeImageScanFindingsOutput, err error) (bool, error) {
				var nf *types.ScanNotFoundException
				if errors.As(err, &nf) {
					return true, nil
				}
				if err != nil {
					return false, err
				}
				switch out.ImageScanStatus.Status {
				case types.ScanStatusComplete:
					return false, nil
				case types.ScanStatusFailed:
					return false, errors.New("scan failed: " + aws.ToString(out.ImageScanStatus.Description))
				}
				return true, nil
			}
		})
		out, err := waiter.WaitForOutput(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scan-onpush"), ImageId: id}, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range out.ImageScanFindings.Findings {
			pkg, ver := "", ""
			for _, a := range f.Attributes {
				switch aws.ToString(a.Key) {
				case "package_name":
					pkg = aws.ToString(a.Value)
				case "package_version":
					ver = aws.ToString(a.Value)
				}
			}
			got = append(got, aws.ToString(f.Name)+" "+pkg)
			if ver == "" || f.Severity == "" {
				t.Errorf("basic finding %+v", f)
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, want) || len(out.ImageScanFindings.EnhancedFindings) != 0 {
			t.Fatalf("basic findings %v, want (from the secdb) %v", got, want)
		}

		// Scanned on push: a manual scan is refused, the same way on each
		// of the SDK's three attempts.
		_, err = retrying.StartImageScan(ctx, &sdkecr.StartImageScanInput{RepositoryName: aws.String("scan-onpush"), ImageId: id})
		var le *types.LimitExceededException
		if !errors.As(err, &le) {
			t.Fatalf("StartImageScan after scan on push: %v", err)
		}
		// Never scanned, then scanned by a call whose first answer is lost.
		_, err = c.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scan-manual"), ImageId: id})
		wantCode(t, "findings of an image never scanned", err, "ScanNotFoundException")
		dropping := sdkClient(s.URL, s.Admin.ID, s.Admin.Secret, true)
		st, err := dropping.StartImageScan(ctx, &sdkecr.StartImageScanInput{RepositoryName: aws.String("scan-manual"), ImageId: id})
		if err != nil {
			t.Fatalf("StartImageScan retried after a lost answer: %v", err)
		}
		if aws.ToString(st.ImageId.ImageDigest) != digest || aws.ToString(st.ImageId.ImageTag) != "v1" || st.ImageScanStatus == nil {
			t.Errorf("StartImageScan: %+v", st)
		}
		_, err = dropping.StartImageScan(ctx, &sdkecr.StartImageScanInput{RepositoryName: aws.String("scan-manual"), ImageId: id})
		if !errors.As(err, &le) {
			t.Errorf("second StartImageScan: %v", err)
		}
		out, err = waiter.WaitForOutput(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scan-manual"), ImageId: id}, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ImageScanFindings.Findings) != len(want) {
			t.Errorf("manual scan found %d, want %d", len(out.ImageScanFindings.Findings), len(want))
		}

		// DescribeImages: status and counts for a findings reader only.
		di, err := c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("scan-manual")})
		if err != nil {
			t.Fatal(err)
		}
		if d := di.ImageDetails; len(d) != 1 || d[0].ImageScanStatus == nil || d[0].ImageScanStatus.Status != types.ScanStatusComplete ||
			d[0].ImageScanFindingsSummary == nil || !mapsEqual(d[0].ImageScanFindingsSummary.FindingSeverityCounts, out.ImageScanFindings.FindingSeverityCounts) {
			t.Errorf("DescribeImages: %+v", d)
		}
		puller := s.client(s.key(t, "puller", auth.Grant{Action: auth.ActionPull, Pattern: "scan-*"}))
		di, err = puller.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("scan-manual")})
		if err != nil || len(di.ImageDetails) != 1 || di.ImageDetails[0].ImageScanStatus != nil {
			t.Errorf("DescribeImages for a puller: %+v %v", di, err)
		}
		_, err = puller.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scan-manual"), ImageId: id})
		wantCode(t, "findings for a puller", err, "AccessDeniedException")
		_, err = puller.BatchGetRepositoryScanningConfiguration(ctx, &sdkecr.BatchGetRepositoryScanningConfigurationInput{RepositoryNames: []string{"scan-manual"}})
		wantCode(t, "configuration for a puller", err, "AccessDeniedException")

		// The deprecated per-repository scanOnPush counts under BASIC as
		// scan on push with no filter applied.
		if _, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("legacy"),
			ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}}); err != nil {
			t.Fatal(err)
		}
		bg, err := c.BatchGetRepositoryScanningConfiguration(ctx, &sdkecr.BatchGetRepositoryScanningConfigurationInput{RepositoryNames: []string{"legacy", "scan-manual", "nothere"}})
		if err != nil {
			t.Fatal(err)
		}
		if sc := bg.ScanningConfigurations; len(sc) != 2 || aws.ToString(sc[0].RepositoryName) != "legacy" || sc[0].ScanFrequency != types.ScanFrequencyScanOnPush ||
			!sc[0].ScanOnPush || len(sc[0].AppliedScanFilters) != 0 || sc[1].ScanFrequency != types.ScanFrequencyManual || sc[1].ScanOnPush ||
			len(bg.Failures) != 1 || aws.ToString(bg.Failures[0].RepositoryName) != "nothere" || bg.Failures[0].FailureCode != types.ScanningConfigurationFailureCodeRepositoryNotFound {
			t.Errorf("BatchGetRepositoryScanningConfiguration: %+v %+v", bg.ScanningConfigurations, bg.Failures)
		}

		// Validation.
		names := make([]string, 26)
		for i := range names {
			names[i] = "scan-r" + strconv.Itoa(i)
		}
		_, err = c.BatchGetRepositoryScanningConfiguration(ctx, &sdkecr.BatchGetRepositoryScanningConfigurationInput{RepositoryNames: names})
		wantCode(t, "26 repositories", err, "InvalidParameterException")
		_, err = c.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scan-manual"), ImageId: id, NextToken: aws.String("bm90LWEtdG9rZW4")})
		wantCode(t, "forged nextToken", err, "InvalidParameterException")
		_, err = c.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("scan-manual"), ImageId: id, MaxResults: aws.Int32(1001)})
		wantCode(t, "maxResults 1001", err, "InvalidParameterException")
		_, err = c.StartImageScan(ctx, &sdkecr.StartImageScanInput{RepositoryName: aws.String("scan-manual"), ImageId: &types.ImageIdentifier{ImageDigest: aws.String("sha256:" + strings.Repeat("0", 64))}})
		wantCode(t, "unknown digest", err, "ImageNotFoundException")
		_, err = c.PutRegistryScanningConfiguration(ctx, &sdkecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeBasic,
			Rules: []types.RegistryScanningRule{{ScanFrequency: types.ScanFrequencyContinuousScan,
				RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("*"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}}}})
		wantCode(t, "continuous under BASIC", err, "ValidationException")
	})
}
