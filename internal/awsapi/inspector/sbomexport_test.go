package inspector_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"
	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
)

// apkPackages reads "name@version" of every package in the apk database
// of the real alpine:3.10 image (as shipped or downgraded), with
// archive/tar and plain text parsing, independently of Drydock's indexer.
func apkPackages(t *testing.T, old bool) []string {
	t.Helper()
	img := imagetest.Alpine310(t)
	if old {
		img = downgraded(t, img)
	}
	var out []string
	name := ""
	for _, line := range strings.Split(string(imagetest.ReadFile(t, img, imagetest.APKInstalled)), "\n") {
		if v, ok := strings.CutPrefix(line, "P:"); ok {
			name = v
		}
		if v, ok := strings.CutPrefix(line, "V:"); ok {
			out = append(out, name+"@"+v)
		}
	}
	slices.Sort(out)
	if len(out) < 10 {
		t.Fatalf("the fixture's apk database lists %d packages", len(out))
	}
	return out
}

// exportedFiles lists the files under dir, relative, with slashes.
func exportedFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// cyclonedx14Schema compiles the official CycloneDX 1.4 JSON schema that
// ships in the cyclonedx-go module.
func cyclonedx14Schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	out, err := exec.Command(testutil.RequireTool(t, "go"), "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("locate cyclonedx-go: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	for file, id := range map[string]string{
		"bom-1.4.schema.json":   "http://cyclonedx.org/schema/bom-1.4.schema.json",
		"spdx.schema.json":      "http://cyclonedx.org/schema/spdx.schema.json",
		"jsf-0.82.schemax.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("http://cyclonedx.org/schema/bom-1.4.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cyclonedxPackages validates a CycloneDX document against the 1.4 JSON
// schema, parses it with cyclonedx-go and returns its spec version,
// metadata properties and the "name@version" of its library components.
func cyclonedxPackages(t *testing.T, path string) (cdx.SpecVersion, map[string][]string, []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := cyclonedx14Schema(t).Validate(inst); err != nil {
		t.Errorf("%s does not validate against the CycloneDX 1.4 schema: %v", path, err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(raw), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var doc struct {
		SpecVersion string `json:"specVersion"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.SpecVersion != "1.4" {
		t.Errorf("%s: specVersion %q (%v), want 1.4", path, doc.SpecVersion, err)
	}
	props := map[string][]string{}
	if bom.Metadata != nil && bom.Metadata.Properties != nil {
		for _, p := range *bom.Metadata.Properties {
			props[p.Name] = append(props[p.Name], p.Value)
		}
	}
	var pkgs []string
	if bom.Components != nil {
		for _, c := range *bom.Components {
			if c.Type == cdx.ComponentTypeLibrary {
				pkgs = append(pkgs, c.Name+"@"+c.Version)
			}
		}
	}
	slices.Sort(pkgs)
	return bom.SpecVersion, props, pkgs
}

// spdxPackages parses an SPDX document with tools-golang, validates it and
// returns the "name@version" of its LIBRARY packages.
func spdxPackages(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := spdxjson.Read(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if doc.SPDXVersion != "SPDX-2.3" {
		t.Errorf("%s: %s, want SPDX-2.3", path, doc.SPDXVersion)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Errorf("%s: %v", path, err)
	}
	var pkgs []string
	for _, p := range doc.Packages {
		if p.PrimaryPackagePurpose == "LIBRARY" {
			pkgs = append(pkgs, p.PackageName+"@"+p.PackageVersion)
		}
	}
	slices.Sort(pkgs)
	return pkgs
}

// waitExport polls GetSbomExport until the export is no longer
// IN_PROGRESS.
func waitExport(t *testing.T, c *inspector2.Client, id string) *inspector2.GetSbomExportOutput {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := c.GetSbomExport(context.Background(), &inspector2.GetSbomExportInput{ReportId: aws.String(id)})
		if err != nil {
			t.Fatalf("GetSbomExport %s: %v", id, err)
		}
		if out.Status != types.ExternalReportStatusInProgress {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("export %s still in progress after a minute", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func resEq(v string) []types.ResourceStringFilter {
	return []types.ResourceStringFilter{{Comparison: types.ResourceStringComparisonEquals, Value: aws.String(v)}}
}

func TestSbomExportSDK(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, d := scannedStack(t, db)
		c := s.client(s.admin)
		ctx := context.Background()
		shipped, old := apkPackages(t, false), apkPackages(t, true)
		dest := &types.Destination{BucketName: aws.String("sbom-bucket"), KeyPrefix: aws.String("exports/nightly/"), KmsKeyArn: aws.String("arn:aws:kms:us-west-2:123456789012:key/abcd")}

		// CycloneDX: both images of scanrepo-prod.
		out, err := c.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{
			ReportFormat: types.SbomReportFormatCyclonedx14, S3Destination: dest,
			ResourceFilterCriteria: &types.ResourceFilterCriteria{EcrRepositoryName: resEq("scanrepo-prod")},
		})
		if err != nil {
			t.Fatal(err)
		}
		id := aws.ToString(out.ReportId)
		got := waitExport(t, c, id)
		if got.Status != types.ExternalReportStatusSucceeded || got.Format != types.SbomReportFormatCyclonedx14 || aws.ToString(got.ReportId) != id ||
			aws.ToString(got.S3Destination.BucketName) != "sbom-bucket" || aws.ToString(got.S3Destination.KeyPrefix) != "exports/nightly/" ||
			got.FilterCriteria == nil || len(got.FilterCriteria.EcrRepositoryName) != 1 || aws.ToString(got.FilterCriteria.EcrRepositoryName[0].Value) != "scanrepo-prod" {
			t.Fatalf("GetSbomExport: %+v %v %s", got, aws.ToString(got.ErrorMessage), got.ErrorCode)
		}
		root := filepath.Join(s.exportDir, "sbom-bucket", "exports", "nightly", id)
		file := func(dg string) string { return "scanrepo-prod/" + strings.Replace(dg, ":", "_", 1) + ".cyclonedx.json" }
		want := []string{file(d["old"]), file(d["shipped"])}
		slices.Sort(want)
		if files := exportedFiles(t, s.exportDir); !slices.Equal(files, prefixed("sbom-bucket/exports/nightly/"+id+"/", want)) {
			t.Fatalf("exported %v, want %v under sbom-bucket/exports/nightly/%s", files, want, id)
		}
		for dg, pkgs := range map[string][]string{d["old"]: old, d["shipped"]: shipped} {
			ver, props, comps := cyclonedxPackages(t, filepath.Join(root, file(dg)))
			if ver != cdx.SpecVersion1_4 || !slices.Equal(comps, pkgs) {
				t.Errorf("%s: CycloneDX %s with %d packages %v, want the apk database's %d %v", dg, ver, len(comps), comps, len(pkgs), pkgs)
			}
			if !slices.Equal(props["imageId"], []string{dg}) || !slices.Equal(props["resourceType"], []string{"AWS_ECR_CONTAINER_IMAGE"}) ||
				!slices.Equal(props["architecture"], []string{"amd64"}) || len(props["accountId"]) != 1 {
				t.Errorf("%s: metadata properties %v", dg, props)
			}
		}

		// SPDX: the image tagged v1 (app-prod), named by tag.
		out, err = c.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{
			ReportFormat: types.SbomReportFormatSpdx23, S3Destination: &types.Destination{BucketName: aws.String("spdx.bucket"), KmsKeyArn: aws.String("k")},
			ResourceFilterCriteria: &types.ResourceFilterCriteria{EcrImageTags: resEq("v1")},
		})
		if err != nil {
			t.Fatal(err)
		}
		id = aws.ToString(out.ReportId)
		if got := waitExport(t, c, id); got.Status != types.ExternalReportStatusSucceeded {
			t.Fatalf("SPDX export: %+v", got)
		}
		spdxFile := "spdx.bucket/" + id + "/app-prod/" + strings.Replace(d["old"], ":", "_", 1) + ".spdx.json"
		files := exportedFiles(t, filepath.Join(s.exportDir, "spdx.bucket"))
		if !slices.Equal(files, []string{strings.TrimPrefix(spdxFile, "spdx.bucket/")}) {
			t.Fatalf("SPDX export wrote %v", files)
		}
		if pkgs := spdxPackages(t, filepath.Join(s.exportDir, spdxFile)); !slices.Equal(pkgs, old) {
			t.Errorf("SPDX packages %v, want %v", pkgs, old)
		}

		// By resource id (the image ARN ListCoverage gives), with a
		// NOT_EQUALS that keeps it.
		cov, err := c.ListCoverage(ctx, &inspector2.ListCoverageInput{FilterCriteria: &types.CoverageFilterCriteria{
			EcrRepositoryName: []types.CoverageStringFilter{{Comparison: types.CoverageStringComparisonEquals, Value: aws.String("scanrepo-prod")}},
			ResourceType:      []types.CoverageStringFilter{{Comparison: types.CoverageStringComparisonEquals, Value: aws.String("AWS_ECR_CONTAINER_IMAGE")}},
		}})
		if err != nil || len(cov.CoveredResources) != 2 {
			t.Fatalf("ListCoverage: %v %+v", err, cov)
		}
		arn := aws.ToString(cov.CoveredResources[0].ResourceId)
		out, err = c.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{
			ReportFormat: types.SbomReportFormatCyclonedx14, S3Destination: &types.Destination{BucketName: aws.String("by-id"), KmsKeyArn: aws.String("k")},
			ResourceFilterCriteria: &types.ResourceFilterCriteria{ResourceId: resEq(arn),
				EcrRepositoryName: []types.ResourceStringFilter{{Comparison: types.ResourceStringComparisonNotEquals, Value: aws.String("app-prod")}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := waitExport(t, c, aws.ToString(out.ReportId)); got.Status != types.ExternalReportStatusSucceeded {
			t.Fatalf("export by resource id: %+v", got)
		}
		if files := exportedFiles(t, filepath.Join(s.exportDir, "by-id")); len(files) != 1 || !strings.HasSuffix(arn, strings.TrimSuffix(strings.Replace(files[0][strings.LastIndex(files[0], "/")+1:], "_", ":", 1), ".cyclonedx.json")) {
			t.Errorf("export by %s wrote %v", arn, files)
		}

		// Nothing scanned matches: FAILED with NO_FINDINGS_FOUND, no file.
		for _, crit := range []*types.ResourceFilterCriteria{
			{EcrRepositoryName: resEq("scanrepo-test")}, // never scanned (MANUAL)
			{EcrRepositoryName: resEq("no-such-repo")},
			{LambdaFunctionName: resEq("fn")},
			{ResourceType: resEq("AWS_ECR_REPOSITORY")},
		} {
			out, err := c.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{ReportFormat: types.SbomReportFormatSpdx23,
				S3Destination: &types.Destination{BucketName: aws.String("empty"), KmsKeyArn: aws.String("k")}, ResourceFilterCriteria: crit})
			if err != nil {
				t.Fatal(err)
			}
			if got := waitExport(t, c, aws.ToString(out.ReportId)); got.Status != types.ExternalReportStatusFailed || got.ErrorCode != types.ReportingErrorCodeNoFindingsFound || aws.ToString(got.ErrorMessage) == "" {
				t.Errorf("%+v: %+v", crit, got)
			}
		}
		if files := exportedFiles(t, filepath.Join(s.exportDir, "empty")); len(files) != 0 {
			t.Errorf("failed exports wrote %v", files)
		}

		// Invalid requests are refused and write nothing outside the
		// export directory.
		for name, in := range map[string]*inspector2.CreateSbomExportInput{
			"escaping bucket": {ReportFormat: types.SbomReportFormatSpdx23, S3Destination: &types.Destination{BucketName: aws.String(".."), KmsKeyArn: aws.String("k")}},
			"slash bucket":    {ReportFormat: types.SbomReportFormatSpdx23, S3Destination: &types.Destination{BucketName: aws.String("a/../../b"), KmsKeyArn: aws.String("k")}},
			"upper bucket":    {ReportFormat: types.SbomReportFormatSpdx23, S3Destination: &types.Destination{BucketName: aws.String("Bucket"), KmsKeyArn: aws.String("k")}},
			"escaping prefix": {ReportFormat: types.SbomReportFormatSpdx23, S3Destination: &types.Destination{BucketName: aws.String("ok-bucket"), KeyPrefix: aws.String("a/../../../etc"), KmsKeyArn: aws.String("k")}},
			"dot prefix":      {ReportFormat: types.SbomReportFormatSpdx23, S3Destination: &types.Destination{BucketName: aws.String("ok-bucket"), KeyPrefix: aws.String("./x"), KmsKeyArn: aws.String("k")}},
			"bad format":      {ReportFormat: "CYCLONEDX_1_6", S3Destination: &types.Destination{BucketName: aws.String("ok-bucket"), KmsKeyArn: aws.String("k")}},
			"bad comparison": {ReportFormat: types.SbomReportFormatSpdx23, S3Destination: &types.Destination{BucketName: aws.String("ok-bucket"), KmsKeyArn: aws.String("k")},
				ResourceFilterCriteria: &types.ResourceFilterCriteria{EcrRepositoryName: []types.ResourceStringFilter{{Comparison: "PREFIX", Value: aws.String("scan")}}}},
		} {
			_, err := c.CreateSbomExport(ctx, in)
			wantCode(t, name, err, "ValidationException")
		}
		// What the SDK checks itself, the server checks too.
		for name, body := range map[string]string{
			"no destination": `{"reportFormat":"SPDX_2_3"}`,
			"no kms key":     `{"reportFormat":"SPDX_2_3","s3Destination":{"bucketName":"ok-bucket"}}`,
			"no format":      `{"s3Destination":{"bucketName":"ok-bucket","kmsKeyArn":"k"}}`,
			"unknown member": `{"reportFormat":"SPDX_2_3","s3Destination":{"bucketName":"ok-bucket","kmsKeyArn":"k","region":"x"}}`,
		} {
			resp, out := s.raw(t, &s.admin, "POST", "/sbomexport/create", body)
			if resp.StatusCode != 400 || resp.Header.Get("x-amzn-ErrorType") != "ValidationException" {
				t.Errorf("%s: HTTP %d %s", name, resp.StatusCode, out)
			}
		}
		if files := exportedFiles(t, s.exportDir); len(files) != 4 {
			t.Errorf("the export directory holds %v", files)
		}
		for _, p := range []string{filepath.Join(s.exportDir, "ok-bucket"), filepath.Join(filepath.Dir(s.exportDir), "etc")} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("a refused export made %s", p)
			}
		}

		// GetSbomExport: unknown and malformed ids; another principal
		// does not see the admin's export.
		_, err = c.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: aws.String("11111111-2222-3333-4444-555555555555")})
		wantCode(t, "unknown report", err, "ResourceNotFoundException")
		_, err = c.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: aws.String("nope")})
		wantCode(t, "malformed report id", err, "ValidationException")
		reader, err := s.auth.CreateKey(ctx, "reader", []auth.Grant{{Action: auth.ActionReadFindings, Pattern: "app-*"}})
		if err != nil {
			t.Fatal(err)
		}
		rc := s.client(reader)
		_, err = rc.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: aws.String(id)})
		wantCode(t, "another principal's export", err, "ResourceNotFoundException")
		// A reader exports only what it may read.
		out, err = rc.CreateSbomExport(ctx, &inspector2.CreateSbomExportInput{ReportFormat: types.SbomReportFormatSpdx23,
			S3Destination: &types.Destination{BucketName: aws.String("reader"), KmsKeyArn: aws.String("k")}})
		if err != nil {
			t.Fatal(err)
		}
		if got := waitExport(t, rc, aws.ToString(out.ReportId)); got.Status != types.ExternalReportStatusSucceeded {
			t.Fatalf("reader's export: %+v", got)
		}
		if files := exportedFiles(t, filepath.Join(s.exportDir, "reader")); len(files) != 1 || !strings.Contains(files[0], "/app-prod/") {
			t.Errorf("reader's export wrote %v", files)
		}
		// Cancelling a finished export is refused.
		_, err = c.CancelSbomExport(ctx, &inspector2.CancelSbomExportInput{ReportId: aws.String(id)})
		wantCode(t, "cancel a finished export", err, "ValidationException")
	})
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// TestSbomExportCLI drives create-sbom-export and get-sbom-export with
// the real AWS CLI v2. Debian's CLI (2.9.19) predates the operations, so
// it is given the newer inspector2 service model of the contract the way
// the CLI loads extra models (AWS_DATA_PATH, as `aws configure
// add-model` would install it).
func TestSbomExportCLI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, d := scannedStack(t, db)
		model, err := os.ReadFile(filepath.Join(filepath.Dir(testutil.Fixtures(t)), "contract", "models", "inspector2-service-2.botocore-1.43.11.json"))
		if err != nil {
			t.Fatal(err)
		}
		dataPath := t.TempDir()
		dir := filepath.Join(dataPath, "inspector2", "2020-06-08")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "service-2.json"), model, 0o644); err != nil {
			t.Fatal(err)
		}
		run := func(args ...string) []byte {
			t.Helper()
			bin := testutil.RequireTool(t, awsCLI)
			home := t.TempDir()
			cmd := exec.Command(bin, append(args, "--endpoint-url", s.URL, "--region", "us-west-2", "--output", "json")...)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "AWS_ACCESS_KEY_ID=" + s.admin.ID, "AWS_SECRET_ACCESS_KEY=" + s.admin.Secret,
				"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
				"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_DATA_PATH=" + dataPath}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("aws %v: %v\n%s", args, err, stderr.String())
			}
			return stdout.Bytes()
		}
		var created struct {
			ReportID string `json:"reportId"`
		}
		if err := json.Unmarshal(run("inspector2", "create-sbom-export", "--report-format", "CYCLONEDX_1_4",
			"--s3-destination", "bucketName=sbom-bucket,keyPrefix=exports,kmsKeyArn=arn:aws:kms:us-west-2:123456789012:key/abcd",
			"--resource-filter-criteria", `{"ecrRepositoryName":[{"comparison":"EQUALS","value":"app-prod"}]}`), &created); err != nil || created.ReportID == "" {
			t.Fatalf("create-sbom-export printed no reportId: %v", err)
		}
		var got struct {
			ReportID      string `json:"reportId"`
			Format        string `json:"format"`
			Status        string `json:"status"`
			S3Destination struct {
				BucketName, KeyPrefix, KmsKeyArn string
			} `json:"s3Destination"`
			FilterCriteria struct {
				EcrRepositoryName []struct{ Comparison, Value string }
			} `json:"filterCriteria"`
		}
		deadline := time.Now().Add(time.Minute)
		for got.Status == "" || got.Status == "IN_PROGRESS" {
			if time.Now().After(deadline) {
				t.Fatalf("get-sbom-export: still %s", got.Status)
			}
			if err := json.Unmarshal(run("inspector2", "get-sbom-export", "--report-id", created.ReportID), &got); err != nil {
				t.Fatal(err)
			}
		}
		if got.ReportID != created.ReportID || got.Format != "CYCLONEDX_1_4" || got.Status != "SUCCEEDED" || got.S3Destination.BucketName != "sbom-bucket" ||
			got.S3Destination.KeyPrefix != "exports" || len(got.FilterCriteria.EcrRepositoryName) != 1 || got.FilterCriteria.EcrRepositoryName[0].Value != "app-prod" {
			t.Fatalf("get-sbom-export printed %+v", got)
		}
		path := filepath.Join(s.exportDir, "sbom-bucket", "exports", created.ReportID, "app-prod", strings.Replace(d["old"], ":", "_", 1)+".cyclonedx.json")
		if _, _, pkgs := cyclonedxPackages(t, path); !slices.Equal(pkgs, apkPackages(t, true)) {
			t.Errorf("exported packages %v", pkgs)
		}
	})
}

// TestSbomExportStaleAndCancel: an IN_PROGRESS export whose server stopped
// (nothing written for longer than the stale limit) reads FAILED; a
// running one can be cancelled once, and then reads CANCELLED.
func TestSbomExportStaleAndCancel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newStack(t, db)
		c := s.client(s.admin)
		ctx := context.Background()
		insert := func(id string, updated time.Time) {
			t.Helper()
			if _, err := db.ExecContext(ctx, `INSERT INTO inspector_sbom_exports (id, principal, format, status, destination, criteria, created_at, updated_at)
				VALUES (?, 'admin', 'SPDX_2_3', 'IN_PROGRESS', '{"bucketName":"b-1","kmsKeyArn":"k"}', '{}', ?, ?)`,
				id, updated.UnixMilli(), updated.UnixMilli()); err != nil {
				t.Fatal(err)
			}
		}
		stale, running := "aaaaaaaa-0000-4000-8000-000000000001", "aaaaaaaa-0000-4000-8000-000000000002"
		insert(stale, time.Now().Add(-time.Hour))
		insert(running, time.Now())
		got, err := c.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: aws.String(stale)})
		if err != nil || got.Status != types.ExternalReportStatusFailed || got.ErrorCode != types.ReportingErrorCodeInternalError {
			t.Errorf("stale export: %+v %v", got, err)
		}
		got, err = c.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: aws.String(running)})
		if err != nil || got.Status != types.ExternalReportStatusInProgress || aws.ToString(got.S3Destination.BucketName) != "b-1" {
			t.Errorf("running export: %+v %v", got, err)
		}
		if _, err := c.CancelSbomExport(ctx, &inspector2.CancelSbomExportInput{ReportId: aws.String(running)}); err != nil {
			t.Fatal(err)
		}
		got, err = c.GetSbomExport(ctx, &inspector2.GetSbomExportInput{ReportId: aws.String(running)})
		if err != nil || got.Status != types.ExternalReportStatusCancelled {
			t.Errorf("cancelled export: %+v %v", got, err)
		}
		_, err = c.CancelSbomExport(ctx, &inspector2.CancelSbomExportInput{ReportId: aws.String(running)})
		wantCode(t, "cancel twice", err, "ValidationException")
		_, err = c.CancelSbomExport(ctx, &inspector2.CancelSbomExportInput{ReportId: aws.String("11111111-2222-3333-4444-555555555555")})
		wantCode(t, "cancel an unknown export", err, "ResourceNotFoundException")
	})
}
