package events

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
	"github.com/drydockhq/drydock/internal/testutil/regtest"
)

// contractFindingSample reads the contract's §11.5 Inspector2 Finding
// example: the independent truth for the event's field names.
func contractFindingSample(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "..", "shared", "contract", "CONTRACT.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "### 11.5 `Inspector2 Finding`")
	end := strings.Index(text, "### 11.6 ")
	if start < 0 || end < start {
		t.Fatal("contract: no §11.5")
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)```").FindStringSubmatch(text[start:end])
	if m == nil {
		t.Fatal("contract: no JSON example in §11.5")
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(m[1]), &ev); err != nil {
		t.Fatalf("contract example: %v", err)
	}
	// AWS's sample has a stray top-level "detail.resources.tags.testkey"
	// line that the contract says is not part of the schema.
	delete(ev, "detail.resources.tags.testkey")
	return ev
}

// findingOptional are the keys of the §11.5 example an event may leave
// out: the ones §11.5 calls optional, and those §10.1's model marks
// optional that a finding may not have (an image deleted since has no
// tags and push time; an advisory may give no vendor dates or URL; the
// package's remediation command is not known).
var findingOptional = map[string]bool{
	"epss": true, "exploitAvailable": true, "fixAvailable": true, "exploitabilityDetails": true,
	"inspectorScore": true, "inspectorScoreDetails": true,
	"imageTags": true, "pushedAt": true, "architecture": true, "platform": true,
	"sourceUrl": true, "vendorSeverity": true, "vendorCreatedAt": true,
	"arch": true, "release": true, "sourceLayerHash": true, "remediation": true, "fixedInVersion": true,
	"relatedVulnerabilities": true, "title": true, "updatedAt": true,
}

// findingExtra are §10.1 Finding members the example does not show that
// an event may carry.
var findingExtra = map[string]bool{
	"inspectorScore": true, "inspectorScoreDetails": true, "exploitabilityDetails": true,
	"vendorUpdatedAt": true, "filePath": true, "epoch": true,
}

// sameKeys compares the keys of got with those of the example want,
// recursively (array elements against the example's first element):
// every key of got is in the example or a known extra, and every key of
// the example is in got unless optional.
func sameKeys(t *testing.T, path string, got, want any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			t.Errorf("%s: %T, want an object", path, got)
			return
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				if !findingOptional[k] {
					t.Errorf("%s.%s: missing", path, k)
				}
				continue
			}
			sameKeys(t, path+"."+k, gv, wv)
		}
		for k := range g {
			if _, ok := w[k]; !ok && !findingExtra[k] {
				t.Errorf("%s.%s: not in the contract's example", path, k)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			t.Errorf("%s: %T, want an array", path, got)
			return
		}
		if len(w) == 0 {
			return
		}
		for _, gv := range g {
			sameKeys(t, path+"[]", gv, w[0])
		}
	}
}

// parseJavaTime parses a Java-style timestamp of a finding event detail.
func parseJavaTime(t *testing.T, what string, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok {
		t.Errorf("%s: %v (%T), want a string", what, v, v)
		return time.Time{}
	}
	at, err := time.Parse("Mon Jan 02 15:04:05.000 MST 2006", s)
	if err != nil {
		t.Errorf("%s %q: %v", what, s, err)
	}
	return at
}

// obj walks a JSON value by object keys and array index 0.
func obj(v any, keys ...string) any {
	for _, k := range keys {
		if a, ok := v.([]any); ok {
			if len(a) == 0 {
				return nil
			}
			v = a[0]
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestScanDeliversFindingEvents pushes an alpine:3.10 image with known
// vulnerable libssl packages into a registry scanned by a real scan
// service (ENHANCED, continuous), and checks the Inspector2 Finding
// events the webhook receives against the contract's §11.5 example: its
// field names, the Java-style timestamps, the provider fields and image
// copy of the resource, the image ARN in the envelope resources; then
// deletes the image and checks the CLOSED events, without the tags and
// push time of an image that is gone. On SQLite and PostgreSQL.
func TestScanDeliversFindingEvents(t *testing.T) {
	sample := contractFindingSample(t)
	for _, k := range []string{"firstObservedAt", "lastObservedAt", "updatedAt"} {
		parseJavaTime(t, "contract example "+k, obj(sample, "detail", k)) // the layout reads AWS's own example
	}
	img := imagetest.WithAPKVersions(t, imagetest.Alpine310(t), map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	const account, region = "123456789012", "eu-west-1"
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bs, host := regtest.Registry(t, db)
		_, vix, _ := regtest.AlpineVulns(t, db)
		svc, err := scan.New(ctx, scan.Options{Store: db, Blobs: bs, Vulns: vix, AccountID: account, Region: region})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced, Rules: []scan.Rule{
			{ScanFrequency: scan.ContinuousScan, RepositoryFilters: []scan.Filter{{Filter: "alpine", FilterType: scan.FilterWildcard}}},
		}}); err != nil {
			t.Fatal(err)
		}
		scanDone := make(chan error, 1)
		go func() {
			scanDone <- svc.Run(ctx, scan.RunOptions{PushPoll: 50 * time.Millisecond, QueuePoll: 200 * time.Millisecond, VulnRefresh: 100 * time.Millisecond})
		}()

		rcv := newReceiver(t, "finding-secret", nil)
		ev := newService(t, db, nil, Options{Exploitability: svc.Exploitability})
		addTarget(t, ev, "findings", rcv.srv.URL, "finding-secret", `{"source":["aws.inspector2"],"detail-type":["Inspector2 Finding"]}`)
		evDone := make(chan error, 1)
		go func() { evDone <- ev.Run(ctx, RunOptions{Poll: 20 * time.Millisecond}) }()

		before := time.Now().Add(-time.Second)
		ref, err := name.ParseReference(host + "/team/alpine:3.10")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		dg := d.String()
		imageArn := "arn:aws:ecr:" + region + ":" + account + ":repository/team/alpine/" + dg

		// The stored findings (the scan service's own view) say how many
		// events to expect; the events' content is checked against the
		// contract, not against them.
		var stored []scan.Finding
		waitFor(t, "the scan's findings", func() bool {
			res, err := svc.Findings(ctx, "team/alpine", dg, scan.Page{})
			if err != nil || len(res.Findings) == 0 {
				return false
			}
			stored = res.Findings
			return true
		})
		byStatus := func(status string) []received {
			var out []received
			for _, r := range rcv.requests() {
				var st struct {
					Status string `json:"status"`
				}
				json.Unmarshal(r.env.Detail, &st)
				if st.Status == status {
					out = append(out, r)
				}
			}
			return out
		}
		waitFor(t, "ACTIVE finding events", func() bool { return len(byStatus("ACTIVE")) >= len(stored) })
		active := byStatus("ACTIVE")
		if len(active) != len(stored) {
			t.Fatalf("%d ACTIVE finding events, %d findings stored", len(active), len(stored))
		}
		after := time.Now().Add(time.Second)
		arns, ids := map[string]bool{}, map[string]bool{}
		for _, r := range active {
			{
				env := r.env
				// The scan's events share packed outbox rows; each has
				// its own id all the same.
				if ids[env.ID] {
					t.Errorf("event id %s delivered for two events", env.ID)
				}
				ids[env.ID] = true
				if !r.sigOK || env.Source != "aws.inspector2" || env.DetailType != "Inspector2 Finding" || env.Account != account || env.Region != region {
					t.Errorf("envelope %+v (signature ok %v)", env, r.sigOK)
				}
				if !reflect.DeepEqual(env.Resources, []string{imageArn}) {
					t.Errorf("envelope resources %v, want [%s]", env.Resources, imageArn)
				}
				var detail any
				if err := json.Unmarshal(env.Detail, &detail); err != nil {
					t.Fatal(err)
				}
				sameKeys(t, "detail", detail, sample["detail"])
				for _, k := range []string{"firstObservedAt", "lastObservedAt", "updatedAt"} {
					if at := parseJavaTime(t, k, obj(detail, k)); at.Before(before) || at.After(time.Now().Add(time.Second)) {
						t.Errorf("%s %v not during the test", k, at)
					}
				}
				if v := obj(detail, "packageVulnerabilityDetails", "vendorCreatedAt"); v != nil {
					parseJavaTime(t, "vendorCreatedAt", v)
				}
				res := obj(detail, "resources").([]any)
				if len(res) != 1 {
					t.Fatalf("%d resources", len(res))
				}
				want := map[string]any{"id": imageArn, "type": "AWS_ECR_CONTAINER_IMAGE", "partition": "aws", "region": region,
					"provider": "AWS", "providerAccountId": account}
				for k, v := range want {
					if got := obj(res[0], k); got != v {
						t.Errorf("resource %s = %v, want %v", k, got, v)
					}
				}
				for _, which := range []string{"awsEcrContainerImage", "image"} {
					im := obj(res[0], "details", which)
					hash := "imageHash"
					if which == "image" {
						hash = "imageDigest"
					}
					if obj(im, "repositoryName") != "team/alpine" || obj(im, "registry") != account || obj(im, hash) != dg {
						t.Errorf("%s %v", which, im)
					}
					if tags, _ := obj(im, "imageTags").([]any); !slices.Equal(tags, []any{"3.10"}) {
						t.Errorf("%s imageTags %v", which, obj(im, "imageTags"))
					}
					if at := parseJavaTime(t, which+" pushedAt", obj(im, "pushedAt")); at.Before(before) || at.After(after) {
						t.Errorf("%s pushedAt %v not during the test", which, at)
					}
				}
				arn, _ := obj(detail, "findingArn").(string)
				if !strings.HasPrefix(arn, "arn:aws:inspector2:"+region+":"+account+":finding/") {
					t.Errorf("findingArn %q", arn)
				}
				arns[arn] = true
			}
		}
		if len(arns) != len(stored) {
			t.Errorf("%d distinct findingArns in %d events", len(arns), len(active))
		}
		var outboxRows int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_outbox WHERE detail_type = 'Inspector2 Finding'`).Scan(&outboxRows); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d finding events in %d outbox rows", len(stored), outboxRows)
		if len(stored) >= 2 && outboxRows >= len(stored) {
			t.Errorf("%d finding events in %d outbox rows: not packed", len(stored), outboxRows)
		}

		// Deleting the image closes its findings: one CLOSED event each.
		regtest.DeleteManifest(t, host, "team/alpine", dg)
		waitFor(t, "CLOSED finding events", func() bool { return len(byStatus("CLOSED")) >= len(stored) })
		closed := byStatus("CLOSED")
		if len(closed) != len(stored) {
			t.Errorf("%d CLOSED finding events, want %d", len(closed), len(stored))
		}
		for _, r := range closed {
			env := r.env
			if !reflect.DeepEqual(env.Resources, []string{imageArn}) {
				t.Errorf("CLOSED envelope resources %v", env.Resources)
			}
			var detail any
			if err := json.Unmarshal(env.Detail, &detail); err != nil {
				t.Fatal(err)
			}
			sameKeys(t, "closed detail", detail, sample["detail"])
			parseJavaTime(t, "closed updatedAt", obj(detail, "updatedAt"))
			res := obj(detail, "resources")
			for _, which := range []string{"awsEcrContainerImage", "image"} {
				im := obj(res, "details", which)
				if obj(im, "imageTags") != nil || obj(im, "pushedAt") != nil {
					t.Errorf("deleted image's %s has tags or a push time: %v", which, im)
				}
			}
			if arn, _ := obj(detail, "findingArn").(string); !arns[arn] {
				t.Errorf("CLOSED event for %s, which had no ACTIVE event", arn)
			}
		}
		cancel()
		if err := <-evDone; err != nil {
			t.Error(err)
		}
		if err := <-scanDone; err != nil {
			t.Error(err)
		}
	})
}

// waitFor polls ok every 20 ms until it holds, failing the test after a
// minute and a half.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 90 s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}
