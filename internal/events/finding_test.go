package events

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/scan"
)

// TestFindingEnvelope: a stored scan.Finding carrying the values of the
// contract's §11.5 example becomes that example's detail (one package,
// as Drydock stores one finding per package; no package remediation
// command, which Drydock does not know), its timestamps written as the
// example writes them, whatever the stored time's zone.
func TestFindingEnvelope(t *testing.T) {
	f := exampleFinding()
	digest := f.Digest
	stored, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	b := Builder{Account: "123456789012", Region: "eu-central-1",
		Exploitability: func(*scan.Finding) scan.Exploitability { return scan.Exploitability{EPSS: 0.00045, HasEPSS: true} }}
	img := &Image{Tags: []string{"ubuntu_latest"}, PushedAt: time.Date(2024, 9, 4, 16, 55, 28, 0, time.UTC)}
	env, err := b.FromScan(ScanEvent{ID: 7, CreatedAt: time.Date(2024, 9, 4, 16, 55, 38, 0, time.UTC), Source: "aws.inspector2",
		DetailType: scan.DetailInspector2Finding, Detail: stored, Image: img})
	if err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:ecr:eu-central-1:123456789012:repository/inspector2/" + digest
	got, _ := json.Marshal(env)
	sameJSON(t, got, `{"version":"0","id":"`+env.ID+`","detail-type":"Inspector2 Finding","source":"aws.inspector2",
		"account":"123456789012","time":"2024-09-04T16:55:38Z","region":"eu-central-1","resources":["`+arn+`"],
		"detail":{"awsAccountId":"123456789012","description":"Possible denial of service in X.509 name checks",
		"epss":{"score":0.00045},"exploitAvailable":"NO","findingArn":"arn:aws:inspector2:eu-central-1:123456789012:finding/abc",
		"firstObservedAt":"Wed Sep 04 16:55:38.411 UTC 2024","fixAvailable":"YES","lastObservedAt":"Wed Sep 04 16:55:38.411 UTC 2024",
		"packageVulnerabilityDetails":{"cvss":[],"referenceUrls":["https://www.cve.org/CVERecord?id=CVE-2024-6119","https://ubuntu.com/security/notices/USN-6986-1"],
			"relatedVulnerabilities":["USN-6986-1"],"source":"UBUNTU_CVE",
			"sourceUrl":"https://people.canonical.com/~ubuntu-security/cve/2024/CVE-2024-6119.html",
			"vendorCreatedAt":"Tue Sep 03 00:00:00.000 UTC 2024","vendorSeverity":"medium","vulnerabilityId":"CVE-2024-6119",
			"vulnerablePackages":[{"arch":"ARM64","epoch":0,"fixedInVersion":"0:3.0.13-0ubuntu3.4","name":"libssl3t64","packageManager":"OS",
				"release":"0ubuntu3.2","sourceLayerHash":"sha256:1567e7ea90b67fc95ccdeeec39bdc3045098dee7e0c604975b957a9f8c0e9616","version":"3.0.13"}]},
		"remediation":{"recommendation":{"text":"None Provided"}},
		"resources":[{"details":{
			"awsEcrContainerImage":{"architecture":"arm64","imageHash":"`+digest+`","imageTags":["ubuntu_latest"],"platform":"UBUNTU_24_04",
				"pushedAt":"Wed Sep 04 16:55:28.000 UTC 2024","registry":"123456789012","repositoryName":"inspector2"},
			"image":{"repositoryName":"inspector2","registry":"123456789012","imageTags":["ubuntu_latest"],"imageDigest":"`+digest+`",
				"pushedAt":"Wed Sep 04 16:55:28.000 UTC 2024","architecture":"arm64","platform":"UBUNTU_24_04"}},
			"id":"`+arn+`","partition":"aws","provider":"AWS","providerAccountId":"123456789012","region":"eu-central-1","type":"AWS_ECR_CONTAINER_IMAGE"}],
		"severity":"MEDIUM","status":"ACTIVE","title":"CVE-2024-6119 - libssl3t64, openssl","type":"PACKAGE_VULNERABILITY",
		"updatedAt":"Wed Sep 04 16:55:38.411 UTC 2024"}}`)

	// The image is gone (a CLOSED event after a deletion): no tags, no
	// push time, the same resources.
	f.Status = "CLOSED"
	stored, _ = json.Marshal(f)
	env, err = b.FromScan(ScanEvent{ID: 8, Source: "aws.inspector2", DetailType: scan.DetailInspector2Finding, Detail: stored})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Status    string `json:"status"`
		Resources []struct {
			Details map[string]map[string]any `json:"details"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		t.Fatal(err)
	}
	if d.Status != "CLOSED" || len(env.Resources) != 1 || env.Resources[0] != arn || len(d.Resources) != 1 {
		t.Fatalf("closed event %s (resources %v)", env.Detail, env.Resources)
	}
	for _, which := range []string{"awsEcrContainerImage", "image"} {
		im := d.Resources[0].Details[which]
		if _, ok := im["imageTags"]; ok {
			t.Errorf("%s of a deleted image has tags: %v", which, im)
		}
		if _, ok := im["pushedAt"]; ok {
			t.Errorf("%s of a deleted image has a push time: %v", which, im)
		}
	}
}

// exampleFinding is a stored finding with the values of the contract's
// §11.5 example, its times in a zone other than UTC.
func exampleFinding() scan.Finding {
	berlin := time.FixedZone("CEST", 2*3600)
	observed := time.Date(2024, 9, 4, 18, 55, 38, 411e6, berlin) // 16:55:38.411 UTC
	return scan.Finding{
		Digest:     "sha256:84f507df33c6864d49c296fb734192696e4cb6f78166ac51ac8b9b118181085d",
		FindingArn: "arn:aws:inspector2:eu-central-1:123456789012:finding/abc", Repository: "inspector2",
		VulnerabilityID: "CVE-2024-6119", Title: "CVE-2024-6119 - libssl3t64, openssl", Description: "Possible denial of service in X.509 name checks",
		Severity: "MEDIUM", CVSS: []scan.CVSS{},
		ReferenceURLs:          []string{"https://www.cve.org/CVERecord?id=CVE-2024-6119", "https://ubuntu.com/security/notices/USN-6986-1"},
		RelatedVulnerabilities: []string{"USN-6986-1"}, Source: "UBUNTU_CVE",
		SourceURL:      "https://people.canonical.com/~ubuntu-security/cve/2024/CVE-2024-6119.html",
		VendorSeverity: "medium", VendorCreatedAt: time.Date(2024, 9, 3, 0, 0, 0, 0, time.UTC),
		Package: scan.VulnerablePackage{Arch: "ARM64", Name: "libssl3t64", PackageManager: "OS", Release: "0ubuntu3.2",
			SourceLayerHash: "sha256:1567e7ea90b67fc95ccdeeec39bdc3045098dee7e0c604975b957a9f8c0e9616", Version: "3.0.13",
			FixedInVersion: "0:3.0.13-0ubuntu3.4"},
		FixAvailable: "YES", ExploitAvailable: "NO", Platform: "UBUNTU_24_04", Architecture: "arm64",
		Status: "ACTIVE", FirstObservedAt: observed, LastObservedAt: observed, UpdatedAt: observed,
	}
}

// BenchmarkFindingEnvelope measures turning one stored finding into its
// Inspector2 Finding envelope (JSON in, JSON out), without the store.
func BenchmarkFindingEnvelope(b *testing.B) {
	stored, err := json.Marshal(exampleFinding())
	if err != nil {
		b.Fatal(err)
	}
	bl := Builder{Account: "123456789012", Region: "eu-central-1"}
	img := &Image{Tags: []string{"ubuntu_latest"}, PushedAt: time.Date(2024, 9, 4, 16, 55, 28, 0, time.UTC)}
	for b.Loop() {
		if _, err := bl.FromScan(ScanEvent{ID: 1, DetailType: scan.DetailInspector2Finding, Detail: stored, Image: img}); err != nil {
			b.Fatal(err)
		}
	}
}
