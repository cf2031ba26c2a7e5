package ecr_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydockhq/drydock/internal/events"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// contractSamples reads the EventBridge examples of the contract's §11,
// by detail-type: the independent truth for the events' field names.
func contractSamples(t *testing.T) map[string][]map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "..", "shared", "contract", "CONTRACT.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "## 11. EventBridge events")
	end := strings.Index(text, "## 12. ")
	if start < 0 || end < start {
		t.Fatal("contract: no §11")
	}
	out := map[string][]map[string]any{}
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(text[start:end], -1) {
		var ev map[string]any
		if err := json.Unmarshal([]byte(m[1]), &ev); err != nil {
			t.Fatalf("contract example: %v\n%s", err, m[1])
		}
		dt, _ := ev["detail-type"].(string)
		out[dt] = append(out[dt], ev)
	}
	return out
}

// jsonKeys lists a JSON object's keys, sorted.
func jsonKeys(v any) []string {
	m, _ := v.(map[string]any)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sampleWhere returns the contract example of a detail-type whose detail
// has the given value.
func sampleWhere(t *testing.T, samples map[string][]map[string]any, detailType, key, value string) map[string]any {
	t.Helper()
	for _, ev := range samples[detailType] {
		if d, _ := ev["detail"].(map[string]any); value == "" || d[key] == value {
			return ev
		}
	}
	t.Fatalf("contract: no %s example with %s %q", detailType, key, value)
	return nil
}

// envelopeJSON is an envelope as a generic JSON value.
func envelopeJSON(t *testing.T, e events.Envelope) map[string]any {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDeleteImagesCloseFindings deletes scanned images through ECR's
// BatchDeleteImage and DeleteRepository (aws-sdk-go-v2) on SQLite and
// PostgreSQL: the image's findings close with reason IMAGE_DELETED,
// DescribeImageScanFindings answers as ECR does for a deleted image, the
// inventory goes once no repository holds the digest, and the events
// (ECR Image Action DELETE, Inspector2 Finding CLOSED, Inspector2
// Coverage, ECR Scan Resource Change) have the contract's field names.
func TestDeleteImagesCloseFindings(t *testing.T) {
	samples := contractSamples(t)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStackWith(t, db, applySecdb(t))
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.Scan.Run(runCtx, scan.RunOptions{PushPoll: 50 * time.Millisecond}) }()
		t.Cleanup(func() { stop(); <-done })
		evs, err := events.New(ctx, events.Options{Store: db, Account: "123456789012", Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		c := s.client(s.Admin)

		if _, err := c.PutRegistryScanningConfiguration(ctx, &sdkecr.PutRegistryScanningConfigurationInput{
			ScanType: types.ScanTypeEnhanced,
			Rules: []types.RegistryScanningRule{{ScanFrequency: types.ScanFrequencyContinuousScan,
				RepositoryFilters: []types.ScanningRepositoryFilter{{Filter: aws.String("prod"), FilterType: types.ScanningRepositoryFilterTypeWildcard}}}},
		}); err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"del-prod", "keep-prod", "scratch"} {
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
		for _, ref := range []string{"del-prod:v1", "del-prod:latest", "keep-prod:v1"} {
			r, err := name.ParseReference(s.Host+"/"+ref, name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw})); err != nil {
				t.Fatal(err)
			}
		}
		want := expectedOpenSSL(t)
		var findings int
		for _, repo := range []string{"del-prod", "keep-prod"} {
			out := waitEnhanced(t, c, repo, digest)
			findings = len(out.ImageScanFindings.EnhancedFindings)
			if findings != len(want) {
				t.Fatalf("%s: %d enhanced findings, want %d (%v)", repo, findings, len(want), want)
			}
		}
		// Both images become covered: one Inspector2 Coverage ACTIVE each.
		arn := func(repo string) string {
			return "arn:aws:ecr:us-east-1:123456789012:repository/" + repo + "/" + digest
		}
		waitEvents(t, evs, func(all []events.Envelope) bool {
			return len(coverage(all, arn("del-prod"))) == 1 && len(coverage(all, arn("keep-prod"))) == 1
		})

		// BatchDeleteImage by tag removes the tag only while the image
		// has another; by digest it removes the image with its last tag.
		del, err := c.BatchDeleteImage(ctx, &sdkecr.BatchDeleteImageInput{RepositoryName: aws.String("del-prod"),
			ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}}})
		if err != nil || len(del.ImageIds) != 1 || len(del.Failures) != 0 {
			t.Fatalf("BatchDeleteImage by tag: %+v %v", del, err)
		}
		if _, err := s.Scan.ScanStatus(ctx, "del-prod", digest); err != nil {
			t.Fatalf("untagged image lost its scan: %v", err)
		}
		del, err = c.BatchDeleteImage(ctx, &sdkecr.BatchDeleteImageInput{RepositoryName: aws.String("del-prod"),
			ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(digest)}}})
		if err != nil || len(del.ImageIds) != 1 || len(del.Failures) != 0 {
			t.Fatalf("BatchDeleteImage: %+v %v", del, err)
		}
		waitNoScan(t, s.Scan, "del-prod", digest)
		for _, id := range []types.ImageIdentifier{{ImageDigest: aws.String(digest)}, {ImageTag: aws.String("v1")}} {
			_, err := c.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("del-prod"), ImageId: &id})
			wantCode(t, "findings of a deleted image", err, "ImageNotFoundException")
		}
		closed := closedFindings(t, db, "del-prod", digest)
		if closed != findings {
			t.Fatalf("%d findings closed as IMAGE_DELETED, want %d", closed, findings)
		}
		// keep-prod still holds the digest: its scan, findings and the
		// shared inventory stay.
		if out := waitEnhanced(t, c, "keep-prod", digest); len(out.ImageScanFindings.EnhancedFindings) != findings {
			t.Fatalf("keep-prod lost findings: %d", len(out.ImageScanFindings.EnhancedFindings))
		}
		if n := countRows(t, db, `SELECT COUNT(*) FROM scan_inventories WHERE image_digest = ?`, digest); n != 1 {
			t.Fatalf("inventory of a digest still held: %d rows", n)
		}

		// DeleteRepository --force: the last holder goes, and the
		// inventory and inverted index with it.
		if _, err := c.DeleteRepository(ctx, &sdkecr.DeleteRepositoryInput{RepositoryName: aws.String("keep-prod"), Force: true}); err != nil {
			t.Fatal(err)
		}
		waitNoScan(t, s.Scan, "keep-prod", digest)
		if closed := closedFindings(t, db, "keep-prod", digest); closed != findings {
			t.Fatalf("keep-prod: %d findings closed as IMAGE_DELETED, want %d", closed, findings)
		}
		for _, q := range []string{`SELECT COUNT(*) FROM scan_inventories WHERE image_digest = ?`, `SELECT COUNT(*) FROM scan_package_keys WHERE image_digest = ?`,
			`SELECT COUNT(*) FROM scan_jobs WHERE image_digest = ? AND state <> 'running'`} {
			if n := countRows(t, db, q, digest); n != 0 {
				t.Errorf("%s: %d rows left after the last holder was deleted", q, n)
			}
		}
		_, err = c.DescribeImageScanFindings(ctx, &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("keep-prod"),
			ImageId: &types.ImageIdentifier{ImageDigest: aws.String(digest)}})
		wantCode(t, "findings in a deleted repository", err, "RepositoryNotFoundException")

		// The events, against the contract's examples.
		var all []events.Envelope
		waitEvents(t, evs, func(got []events.Envelope) bool {
			all = got
			return len(coverage(got, arn("keep-prod"))) == 2
		})
		var deletes, closedEvents []events.Envelope
		var scopes []map[string]any
		for _, e := range all {
			m := envelopeJSON(t, e)
			d, _ := m["detail"].(map[string]any)
			switch e.DetailType {
			case "ECR Image Action":
				if d["action-type"] == "DELETE" {
					deletes = append(deletes, e)
					sample := sampleWhere(t, samples, "ECR Image Action", "action-type", "DELETE")
					if !slices.Equal(jsonKeys(d), jsonKeys(sample["detail"])) || !slices.Equal(jsonKeys(m), jsonKeys(sample)) {
						t.Errorf("DELETE event fields %v / %v, contract %v / %v", jsonKeys(m), jsonKeys(d), jsonKeys(sample), jsonKeys(sample["detail"]))
					}
				}
			case "Inspector2 Finding":
				if d["status"] == "CLOSED" {
					closedEvents = append(closedEvents, e)
				}
			case "Inspector2 Coverage":
				sample := sampleWhere(t, samples, "Inspector2 Coverage", "", "")
				if !slices.Equal(jsonKeys(d), jsonKeys(sample["detail"])) || !slices.Equal(jsonKeys(d["scanStatus"]), jsonKeys(sample["detail"].(map[string]any)["scanStatus"])) {
					t.Errorf("coverage event fields %v, contract %v", jsonKeys(d), jsonKeys(sample["detail"]))
				}
			case "ECR Scan Resource Change":
				sample := sampleWhere(t, samples, "ECR Scan Resource Change", "", "")
				sd := sample["detail"].(map[string]any)
				if !slices.Equal(jsonKeys(d), jsonKeys(sd)) || len(e.Resources) != 0 {
					t.Errorf("scope event fields %v, contract %v", jsonKeys(d), jsonKeys(sd))
				}
				for _, r := range d["repositories"].([]any) {
					if !slices.Equal(jsonKeys(r), jsonKeys(sd["repositories"].([]any)[0])) {
						t.Errorf("scope event repository fields %v", jsonKeys(r))
					}
					scopes = append(scopes, r.(map[string]any))
				}
			}
		}
		var tags []string
		for _, e := range deletes {
			var d map[string]any
			json.Unmarshal(e.Detail, &d)
			if d["repository-name"] != "del-prod" && d["repository-name"] != "keep-prod" || d["image-digest"] != digest || d["result"] != "SUCCESS" {
				t.Errorf("DELETE event %s", e.Detail)
			}
			tags = append(tags, d["repository-name"].(string)+":"+d["image-tag"].(string))
		}
		sort.Strings(tags)
		// A repository deleted with its images gives no image events of
		// its own (AWS documents none); BatchDeleteImage one per tag it
		// removed.
		if want := []string{"del-prod:latest", "del-prod:v1"}; !slices.Equal(tags, want) {
			t.Errorf("DELETE events for %v, want %v", tags, want)
		}
		if len(closedEvents) != 2*findings {
			t.Errorf("%d Inspector2 Finding CLOSED events, want %d", len(closedEvents), 2*findings)
		}
		for _, repo := range []string{"del-prod", "keep-prod"} {
			cov := coverage(all, arn(repo))
			var got []string
			for _, e := range cov {
				var d scan.CoverageDetail
				json.Unmarshal(e.Detail, &d)
				got = append(got, d.ScanStatus.StatusCodeValue+"/"+d.ScanStatus.Reason)
				if d.ProviderRegion != "us-east-1" || d.ProviderAccountID != "123456789012" || d.ScanType != "PACKAGE" || d.Version != "1.0" {
					t.Errorf("coverage detail %s", e.Detail)
				}
				if _, err := time.Parse("2006-01-02T15:04:05.000000Z", d.EventTimestamp); err != nil {
					t.Errorf("eventTimestamp %q: %v", d.EventTimestamp, err)
				}
			}
			if want := []string{"ACTIVE/SUCCESSFUL", "INACTIVE/RESOURCE_TERMINATED"}; !slices.Equal(got, want) {
				t.Errorf("%s coverage %v, want %v", repo, got, want)
			}
		}
		// Repositories created under a CONTINUOUS_SCAN rule, and the one
		// deleted: ECR Scan Resource Change; "scratch" matches no rule.
		var moves []string
		for _, r := range scopes {
			moves = append(moves, r["repository-name"].(string)+" "+r["previous-scan-frequency"].(string)+"->"+r["scan-frequency"].(string))
			if r["repository-arn"] != "arn:aws:ecr:us-east-1:123456789012:repository/"+r["repository-name"].(string) {
				t.Errorf("repository-arn %v", r["repository-arn"])
			}
		}
		if want := []string{"del-prod MANUAL->CONTINUOUS_SCAN", "keep-prod MANUAL->CONTINUOUS_SCAN", "keep-prod CONTINUOUS_SCAN->MANUAL"}; !reflect.DeepEqual(moves, want) {
			t.Errorf("scope changes %v, want %v", moves, want)
		}
	})
}

// waitEnhanced waits for an image's enhanced scan to be ACTIVE and
// returns its findings.
func waitEnhanced(t *testing.T, c *sdkecr.Client, repo, digest string) *sdkecr.DescribeImageScanFindingsOutput {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := c.DescribeImageScanFindings(context.Background(), &sdkecr.DescribeImageScanFindingsInput{
			RepositoryName: aws.String(repo), ImageId: &types.ImageIdentifier{ImageDigest: aws.String(digest)}})
		var nf *types.ScanNotFoundException
		switch {
		case errors.As(err, &nf):
		case err != nil:
			t.Fatal(err)
		case out.ImageScanStatus.Status == types.ScanStatusActive:
			return out
		case out.ImageScanStatus.Status == types.ScanStatusFailed:
			t.Fatalf("%s: scan failed: %s", repo, aws.ToString(out.ImageScanStatus.Description))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s@%s: no ACTIVE scan: %+v %v", repo, digest, out, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitNoScan waits until the scanning service has forgotten the image.
func waitNoScan(t *testing.T, svc *scan.Service, repo, digest string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := svc.ScanStatus(context.Background(), repo, digest)
		if errors.Is(err, scan.ErrScanNotFound) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s@%s: scan status still there (%v)", repo, digest, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closedFindings counts an image's findings closed as IMAGE_DELETED with
// closed_at set, and fails on any other.
func closedFindings(t *testing.T, db *store.DB, repo, digest string) int {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT status, closed_reason, closed_at FROM scan_findings
		WHERE repository = ? AND image_digest = ?`, repo, digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var status, reason string
		var at int64
		if err := rows.Scan(&status, &reason, &at); err != nil {
			t.Fatal(err)
		}
		if status != "CLOSED" || reason != "IMAGE_DELETED" || at == 0 {
			t.Errorf("%s finding: status %s, reason %q, closed_at %d", repo, status, reason, at)
			continue
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func countRows(t *testing.T, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// coverage lists the Inspector2 Coverage events of one resource.
func coverage(all []events.Envelope, arn string) []events.Envelope {
	var out []events.Envelope
	for _, e := range all {
		if e.DetailType == "Inspector2 Coverage" && slices.Equal(e.Resources, []string{arn}) {
			out = append(out, e)
		}
	}
	return out
}

// waitEvents reads all events until ok holds for them.
func waitEvents(t *testing.T, svc *events.Service, ok func([]events.Envelope) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		all, _, err := svc.Read(context.Background(), events.Position{}, 100000)
		if err != nil {
			t.Fatal(err)
		}
		if ok(all) {
			return
		}
		if time.Now().After(deadline) {
			var types []string
			for _, e := range all {
				types = append(types, e.DetailType+" "+string(e.Detail))
			}
			t.Fatalf("events never matched; got:\n%s", strings.Join(types, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
