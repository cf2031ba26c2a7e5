package scan_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/testutil/imagetest"
	"github.com/drydockhq/drydock/internal/testutil/regtest"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"gopkg.in/yaml.v3"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/osv"
)

const secdbFile = "feeds/alpine-secdb/v3.10/main.yaml"

// apkVersion is a small comparator for the version forms that occur in
// this test ("1.1.1d-r2", "1.30.1-r3", "20190108-r0"): dotted numbers,
// an optional letter, a release. It is written here, apart from
// Drydock's version package, as the independent truth.
type apkVersion struct {
	nums   []int
	letter byte
	rel    int
}

func parseAPK(t *testing.T, s string) apkVersion {
	t.Helper()
	base, rel, ok := strings.Cut(s, "-r")
	if !ok {
		t.Fatalf("version %q has no release", s)
	}
	var v apkVersion
	var err error
	if v.rel, err = strconv.Atoi(rel); err != nil {
		t.Fatalf("version %q: %v", s, err)
	}
	if c := base[len(base)-1]; c >= 'a' && c <= 'z' {
		v.letter, base = c, base[:len(base)-1]
	}
	for _, p := range strings.Split(base, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("version %q: %v", s, err)
		}
		v.nums = append(v.nums, n)
	}
	return v
}

func lessAPK(a, b apkVersion) bool {
	for i := 0; i < len(a.nums) && i < len(b.nums); i++ {
		if a.nums[i] != b.nums[i] {
			return a.nums[i] < b.nums[i]
		}
	}
	if len(a.nums) != len(b.nums) {
		return len(a.nums) < len(b.nums)
	}
	if a.letter != b.letter {
		return a.letter < b.letter
	}
	return a.rel < b.rel
}

// expectedFindings computes "CVE package" pairs from the secdb YAML and
// the image's apk database: a package is affected by every CVE fixed in a
// version of its origin above the installed one.
func expectedFindings(t *testing.T, installed []byte) []string {
	t.Helper()
	raw, err := os.ReadFile(testutil.Fixture(t, secdbFile))
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
	fixes := map[string]map[string][]string{}
	for _, p := range doc.Packages {
		fixes[p.Pkg.Name] = p.Pkg.Secfixes
	}
	var out []string
	for _, rec := range strings.Split(string(installed), "\n\n") {
		var pkg, ver, origin string
		for _, line := range strings.Split(rec, "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "P":
				pkg = v
			case "V":
				ver = v
			case "o":
				origin = v
			}
		}
		if pkg == "" {
			continue
		}
		for fixed, cves := range fixes[origin] {
			if !lessAPK(parseAPK(t, ver), parseAPK(t, fixed)) {
				continue
			}
			for _, c := range cves {
				out = append(out, c+" "+pkg)
			}
		}
	}
	sort.Strings(out)
	return out
}

type stack struct {
	db   *store.DB
	svc  *scan.Service
	vdb  *vulndb.DB
	vix  *vulndb.Index
	feed *vulndb.FeedData
	host string
}

func newStack(t *testing.T, db *store.DB) *stack {
	t.Helper()
	s := newIdleStack(t, db, scan.QueueOptions{})
	s.run(t)
	return s
}

// run starts the service's workers and push poller until the test ends.
func (s *stack) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.svc.Run(ctx, scan.RunOptions{PushPoll: 50 * time.Millisecond, QueuePoll: 200 * time.Millisecond, VulnRefresh: 100 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// newIdleStack is a registry, a vulnerability database and a scan service
// whose workers do not run.
func newIdleStack(t testing.TB, db *store.DB, qo scan.QueueOptions) *stack {
	t.Helper()
	ctx := context.Background()
	bs, host := regtest.Registry(t, db)
	vdb, vix, data := regtest.AlpineVulns(t, db)
	svc, err := scan.New(ctx, scan.Options{Store: db, Blobs: bs, Vulns: vix, AccountID: "123456789012", Region: "us-east-1", Queue: qo})
	if err != nil {
		t.Fatal(err)
	}
	return &stack{db: db, svc: svc, vdb: vdb, vix: vix, feed: data, host: host}
}

func (s *stack) push(t *testing.T, img v1.Image, ref string) string {
	t.Helper()
	r, err := name.ParseReference(s.host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// waitStatus polls the image's scan status until it is one of want.
func (s *stack) waitStatus(t *testing.T, repo, dg string, want ...string) scan.Status {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := s.svc.ScanStatus(context.Background(), repo, dg)
		if err == nil {
			for _, w := range want {
				if st.Status == w {
					return st
				}
			}
		} else if !errors.Is(err, scan.ErrScanNotFound) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s@%s: status %+v (%v), want %v", repo, dg, st, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func findingPairs(t *testing.T, s *stack, repo, dg string) ([]string, *scan.FindingsResult) {
	t.Helper()
	res, err := s.svc.Findings(context.Background(), repo, dg, scan.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.VulnerabilityID+" "+f.Package.Name)
	}
	sort.Strings(got)
	return got, res
}

func TestScanPushedAlpineImages(t *testing.T) {
	orig := imagetest.Alpine310(t)
	old := imagetest.WithAPKVersions(t, orig, map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0", "musl": "1.1.22-r2", "musl-utils": "1.1.22-r2"})
	wantOrig := expectedFindings(t, imagetest.ReadFile(t, orig, imagetest.APKInstalled))
	wantOld := expectedFindings(t, imagetest.ReadFile(t, old, imagetest.APKInstalled))
	if len(wantOrig) != 0 || len(wantOld) == 0 {
		t.Fatalf("the fixture is not what the test expects: shipped %v, modified %v", wantOrig, wantOld)
	}
	t.Logf("expected findings of the modified image: %v", wantOld)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Basic, Rules: []scan.Rule{
			{ScanFrequency: scan.ScanOnPush, RepositoryFilters: []scan.Filter{{Filter: "alpine", FilterType: scan.FilterWildcard}}},
		}}); err != nil {
			t.Fatal(err)
		}
		origDigest := s.push(t, orig, "alpine/shipped:3.10")
		oldDigest := s.push(t, old, "alpine/old:3.10")
		manualDigest := s.push(t, old, "other/old:3.10")

		st := s.waitStatus(t, "alpine/shipped", origDigest, scan.StatusComplete, scan.StatusFailed)
		if st.Status != scan.StatusComplete || st.Description != "The scan was completed successfully." || st.Platform != "ALPINE_3_10" {
			t.Fatalf("shipped image: %+v", st)
		}
		got, res := findingPairs(t, s, "alpine/shipped", origDigest)
		if len(got) != 0 {
			t.Fatalf("shipped alpine:3.10 (openssl 1.1.1d-r2) has findings %v; the secdb has none for it", got)
		}
		if len(res.SeverityCounts) != 0 {
			t.Errorf("severity counts %v", res.SeverityCounts)
		}

		s.waitStatus(t, "alpine/old", oldDigest, scan.StatusComplete)
		got, res = findingPairs(t, s, "alpine/old", oldDigest)
		if strings.Join(got, "\n") != strings.Join(wantOld, "\n") {
			t.Fatalf("findings:\n%s\nwant (from the secdb):\n%s", strings.Join(got, "\n"), strings.Join(wantOld, "\n"))
		}
		for _, f := range res.Findings {
			// The secdb rates nothing and no NVD data is loaded.
			if f.Severity != scan.SevUndefined || f.FixAvailable != "YES" || f.Status != scan.FindingActive || f.Package.PackageManager != "OS" {
				t.Errorf("finding %+v", f)
			}
			if f.Package.Name == "libssl1.1" && (f.Package.Version != "1.1.1c" || f.Package.Release != "r0" || f.Package.FixedInVersion != "1.1.1d-r0") {
				t.Errorf("openssl finding package %+v", f.Package)
			}
		}
		if res.SeverityCounts[scan.SevUndefined] != len(wantOld) || len(res.SeverityCounts) != 1 {
			t.Errorf("severity counts %v", res.SeverityCounts)
		}
		sums, err := s.svc.Summaries(ctx, "alpine/old", []string{oldDigest, origDigest, "sha256:" + strings.Repeat("1", 64)})
		if err != nil {
			t.Fatal(err)
		}
		if len(sums) != 1 || sums[oldDigest].Status.Status != scan.StatusComplete || sums[oldDigest].SeverityCounts[scan.SevUndefined] != len(wantOld) {
			t.Errorf("summaries %+v", sums)
		}
		// Across images: the OpenSSL CVE in every repository it was found in.
		list, next, err := s.svc.ListFindings(ctx, scan.FindingQuery{VulnerabilityIDs: []string{"CVE-2019-1547"}, Repositories: []string{"alpine/old", "alpine/shipped"}}, scan.Page{})
		if err != nil || next != "" || len(list) != 2 {
			t.Fatalf("list findings: %d %q %v", len(list), next, err)
		}
		for _, f := range list {
			if f.Repository != "alpine/old" || f.Digest != oldDigest {
				t.Errorf("listed finding %s@%s", f.Repository, f.Digest)
			}
		}
		// Suppression flips ACTIVE to SUPPRESSED and back; counts keep them.
		if n, err := s.svc.Suppress(ctx, scan.FindingQuery{Repositories: []string{"alpine/old"}, PackageNames: []string{"musl"}}, true); err != nil || n != 1 {
			t.Fatalf("suppress: %d %v", n, err)
		}
		sup, _, err := s.svc.ListFindings(ctx, scan.FindingQuery{Statuses: []string{scan.FindingSuppressed}}, scan.Page{})
		if err != nil || len(sup) != 1 || sup[0].Package.Name != "musl" {
			t.Fatalf("suppressed: %+v %v", sup, err)
		}
		if n, err := s.svc.Suppress(ctx, scan.FindingQuery{Repositories: []string{"alpine/old"}}, false); err != nil || n != 1 {
			t.Fatalf("unsuppress: %d %v", n, err)
		}
		// Paging returns every finding once.
		var paged []string
		page := scan.Page{Limit: 3}
		for {
			r, err := s.svc.Findings(ctx, "alpine/old", oldDigest, page)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range r.Findings {
				paged = append(paged, f.VulnerabilityID+" "+f.Package.Name)
			}
			if r.Next == "" {
				break
			}
			page.After = r.Next
		}
		sort.Strings(paged)
		if strings.Join(paged, ",") != strings.Join(wantOld, ",") {
			t.Errorf("paged findings %v", paged)
		}

		// Scanned on push: a manual scan inside 24 hours is refused, the
		// same way each time the client retries.
		for i := 0; i < 3; i++ {
			if _, err := s.svc.StartImageScan(ctx, "alpine/old", oldDigest); !errors.Is(err, scan.ErrLimitExceeded) {
				t.Fatalf("manual scan after scan on push, try %d: %v", i+1, err)
			}
		}
		// A repository outside the rule is manual: not scanned on push.
		if _, err := s.svc.ScanStatus(ctx, "other/old", manualDigest); !errors.Is(err, scan.ErrScanNotFound) {
			t.Fatalf("manual repository scanned on push: %v", err)
		}
		if _, err := s.svc.StartImageScan(ctx, "other/old", "sha256:"+strings.Repeat("0", 64)); !errors.Is(err, scan.ErrImageNotFound) {
			t.Fatalf("scan of a missing image: %v", err)
		}
		if _, err := s.svc.StartImageScan(ctx, "other/old", manualDigest); err != nil {
			t.Fatal(err)
		}
		s.waitStatus(t, "other/old", manualDigest, scan.StatusComplete)
		if got, _ := findingPairs(t, s, "other/old", manualDigest); strings.Join(got, ",") != strings.Join(wantOld, ",") {
			t.Errorf("manual scan findings %v", got)
		}
		if _, err := s.svc.StartImageScan(ctx, "other/old", manualDigest); !errors.Is(err, scan.ErrLimitExceeded) {
			t.Fatalf("second manual scan: %v", err)
		}

		events, err := s.svc.Events(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		scans := 0
		for _, e := range events {
			if e.DetailType == scan.DetailECRImageScan {
				scans++
			}
		}
		if scans != 3 {
			t.Errorf("%d ECR Image Scan events, want 3", scans)
		}

		// Enhanced: continuous for repositories containing "prod"; the
		// others are not scanned; manual scans are not supported.
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced, Rules: []scan.Rule{
			{ScanFrequency: scan.ContinuousScan, RepositoryFilters: []scan.Filter{{Filter: "prod", FilterType: scan.FilterWildcard}}},
		}}); err != nil {
			t.Fatal(err)
		}
		prodDigest := s.push(t, old, "scanrepo-prod:v1")
		testDigest := s.push(t, old, "scanrepo-test:v1")
		st = s.waitStatus(t, "scanrepo-prod", prodDigest, scan.StatusActive, scan.StatusFailed)
		if st.Status != scan.StatusActive || st.Description != "Continuous scan is selected for image." {
			t.Fatalf("enhanced status %+v", st)
		}
		got, res = findingPairs(t, s, "scanrepo-prod", prodDigest)
		if strings.Join(got, ",") != strings.Join(wantOld, ",") {
			t.Errorf("enhanced findings %v", got)
		}
		for _, f := range res.Findings {
			if f.Severity != scan.SevUntriaged || !strings.HasPrefix(f.FindingArn, "arn:aws:inspector2:us-east-1:123456789012:finding/") {
				t.Errorf("enhanced finding %+v", f)
			}
		}
		if _, err := s.svc.StartImageScan(ctx, "scanrepo-prod", prodDigest); !errors.Is(err, scan.ErrNotSupported) {
			t.Errorf("manual scan under enhanced: %v", err)
		}
		if _, err := s.svc.ScanStatus(ctx, "scanrepo-test", testDigest); !errors.Is(err, scan.ErrScanNotFound) {
			t.Errorf("repository matching no rule was scanned: %v", err)
		}
		events, err = s.svc.Events(ctx, events[len(events)-1].ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]int{}
		for _, e := range events {
			kinds[e.DetailType]++
		}
		if kinds[scan.DetailInspector2Scan] != 1 || kinds[scan.DetailInspector2Finding] != len(wantOld) || kinds[scan.DetailECRImageScan] != 0 {
			t.Errorf("enhanced events %v", kinds)
		}
	})
}

// TestScanMultiPlatformIndex pushes an index of two platform images: each
// platform manifest is scanned by its own digest, the index is not.
func TestScanMultiPlatformIndex(t *testing.T) {
	orig := imagetest.Alpine310(t)
	old := imagetest.WithAPKVersions(t, orig, map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	wantOld := expectedFindings(t, imagetest.ReadFile(t, old, imagetest.APKInstalled))
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
			t.Fatal(err)
		}
		idx := mutate.AppendManifests(empty.Index,
			mutate.IndexAddendum{Add: orig, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: old, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
		r, err := name.ParseReference(s.host + "/multi/arch:latest")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteIndex(r, idx); err != nil {
			t.Fatal(err)
		}
		idxDigest, _ := idx.Digest()
		od, _ := orig.Digest()
		nd, _ := old.Digest()
		s.waitStatus(t, "multi/arch", od.String(), scan.StatusActive)
		s.waitStatus(t, "multi/arch", nd.String(), scan.StatusActive)
		if got, _ := findingPairs(t, s, "multi/arch", od.String()); len(got) != 0 {
			t.Errorf("amd64 image findings %v", got)
		}
		if got, _ := findingPairs(t, s, "multi/arch", nd.String()); strings.Join(got, ",") != strings.Join(wantOld, ",") {
			t.Errorf("arm64 image findings %v, want %v", got, wantOld)
		}
		if _, err := s.svc.ScanStatus(ctx, "multi/arch", idxDigest.String()); !errors.Is(err, scan.ErrScanNotFound) {
			t.Errorf("index scanned: %v", err)
		}
	})
}

// TestContinuousRescan: under continuous scanning a new database
// generation re-scans the image from its stored inventory; a finding the
// new data no longer supports is CLOSED, and comes back ACTIVE with its
// first observation kept when the data returns.
func TestContinuousRescan(t *testing.T) {
	orig := imagetest.Alpine310(t)
	old := imagetest.WithAPKVersions(t, orig, map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	wantOld := expectedFindings(t, imagetest.ReadFile(t, old, imagetest.APKInstalled))
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
			t.Fatal(err)
		}
		dg := s.push(t, old, "app/prod:v1")
		s.waitStatus(t, "app/prod", dg, scan.StatusActive)
		got, res := findingPairs(t, s, "app/prod", dg)
		if strings.Join(got, ",") != strings.Join(wantOld, ",") {
			t.Fatalf("findings %v, want %v", got, wantOld)
		}
		first := res.Findings[0].FirstObservedAt

		// A new generation without CVE-2019-1547.
		var fewer vulndb.FeedData
		for _, a := range s.feed.Advisories {
			if a.ID != "ALPINE-CVE-2019-1547" {
				fewer.Advisories = append(fewer.Advisories, a)
			}
		}
		if len(fewer.Advisories) != len(s.feed.Advisories)-1 {
			t.Fatalf("ALPINE-CVE-2019-1547 not in the feed")
		}
		if _, err := s.vdb.Apply(ctx, []vulndb.SourceUpdate{{Name: "alpine-secdb", Kind: "alpine-secdb", Data: &fewer}}); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, p := range wantOld {
			if !strings.HasPrefix(p, "CVE-2019-1547 ") {
				want = append(want, p)
			}
		}
		waitFindings(t, s, "app/prod", dg, want)
		var closed int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM scan_findings WHERE advisory_id = 'CVE-2019-1547' AND status = 'CLOSED'`).Scan(&closed); err != nil {
			t.Fatal(err)
		}
		if closed != 2 {
			t.Errorf("%d closed CVE-2019-1547 findings, want 2", closed)
		}
		events, err := s.svc.Events(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		closedEvents := 0
		for _, e := range events {
			var f scan.Finding
			if e.DetailType == scan.DetailInspector2Finding {
				if err := json.Unmarshal(e.Detail, &f); err != nil {
					t.Fatal(err)
				}
				if f.Status == scan.FindingClosed {
					if f.VulnerabilityID != "CVE-2019-1547" {
						t.Errorf("closed event for %s", f.VulnerabilityID)
					}
					closedEvents++
				}
			}
		}
		if closedEvents != 2 {
			t.Errorf("%d Inspector2 Finding events for closed findings, want 2", closedEvents)
		}

		if _, err := s.vdb.Apply(ctx, []vulndb.SourceUpdate{{Name: "alpine-secdb", Kind: "alpine-secdb", Data: s.feed}}); err != nil {
			t.Fatal(err)
		}
		res = waitFindings(t, s, "app/prod", dg, wantOld)
		for _, f := range res.Findings {
			if !f.FirstObservedAt.Equal(first) && f.FirstObservedAt.Before(first) {
				t.Errorf("%s first observed %v, before the first scan %v", f.VulnerabilityID, f.FirstObservedAt, first)
			}
			if f.VulnerabilityID == "CVE-2019-1547" && (!f.FirstObservedAt.Equal(first) || !f.LastObservedAt.After(first) || f.Status != scan.FindingActive) {
				t.Errorf("reopened finding %+v (first scan %v)", f, first)
			}
		}
	})
}

func waitFindings(t *testing.T, s *stack, repo, dg string, want []string) *scan.FindingsResult {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, res := findingPairs(t, s, repo, dg)
		if strings.Join(got, ",") == strings.Join(want, ",") {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("findings %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestScanSurvivesKilledWorker: a worker claims the scan of a pushed image
// and dies without a word; once its lease expires, the restarted service
// runs the scan, and the dead worker's lease is worthless.
func TestScanSurvivesKilledWorker(t *testing.T) {
	old := imagetest.WithAPKVersions(t, imagetest.Alpine310(t), map[string]string{"libcrypto1.1": "1.1.1c-r0", "libssl1.1": "1.1.1c-r0"})
	wantOld := expectedFindings(t, imagetest.ReadFile(t, old, imagetest.APKInstalled))
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// A lease long enough for a scan under the race detector on a
		// loaded machine (a live worker extends it every third).
		s := newIdleStack(t, db, scan.QueueOptions{Lease: 3 * time.Second})
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Basic, Rules: []scan.Rule{
			{ScanFrequency: scan.ScanOnPush, RepositoryFilters: []scan.Filter{{Filter: "*", FilterType: scan.FilterWildcard}}},
		}}); err != nil {
			t.Fatal(err)
		}
		dg := s.push(t, old, "app/api:v1")
		if n, err := s.svc.ConsumePushes(ctx); err != nil || n == 0 {
			t.Fatalf("consume pushes: %d %v", n, err)
		}
		// Consuming again finds nothing new: the cursor moved with the
		// jobs it queued.
		if n, err := s.svc.ConsumePushes(ctx); err != nil || n != 0 {
			t.Fatalf("second consume: %d %v", n, err)
		}
		doomed, err := s.svc.Queue().Claim(ctx)
		if err != nil || doomed == nil || doomed.Digest != dg {
			t.Fatalf("claim: %+v %v", doomed, err)
		}
		if st, err := s.svc.ScanStatus(ctx, "app/api", dg); err != nil || st.Status != scan.StatusInProgress {
			t.Fatalf("status while claimed: %+v %v", st, err)
		}
		s.run(t) // the restarted process
		s.waitStatus(t, "app/api", dg, scan.StatusComplete)
		if got, _ := findingPairs(t, s, "app/api", dg); strings.Join(got, ",") != strings.Join(wantOld, ",") {
			t.Errorf("findings %v, want %v", got, wantOld)
		}
		if err := s.svc.Queue().Complete(ctx, doomed); !errors.Is(err, scan.ErrLeaseLost) {
			t.Errorf("the dead worker completed its job: %v", err)
		}
	})
}

// TestScanUnsupportedImage: hello-world (a static binary, no OS package
// database) cannot be scanned by basic scanning.
func TestScanUnsupportedImage(t *testing.T) {
	img, err := tarball.ImageFromPath(testutil.Fixture(t, "images/hello-world-v25.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Basic, Rules: []scan.Rule{
			{ScanFrequency: scan.ScanOnPush, RepositoryFilters: []scan.Filter{{Filter: "*", FilterType: scan.FilterWildcard}}},
		}}); err != nil {
			t.Fatal(err)
		}
		dg := s.push(t, img, "hello/world:latest")
		st := s.waitStatus(t, "hello/world", dg, scan.StatusUnsupportedImage, scan.StatusComplete, scan.StatusFailed)
		if st.Status != scan.StatusUnsupportedImage || !strings.HasPrefix(st.Description, "UnsupportedImageError") {
			t.Fatalf("status %+v", st)
		}
	})
}

// jarLayer is a layer holding a jar with Maven's pom.properties for one
// artifact, as Maven builds it.
func jarLayer(t *testing.T, path, group, artifact, version string) v1.Layer {
	t.Helper()
	var jar bytes.Buffer
	zw := zip.NewWriter(&jar)
	w, err := zw.Create("META-INF/maven/" + group + "/" + artifact + "/pom.properties")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "#Created by Apache Maven\ngroupId=%s\nartifactId=%s\nversion=%s\n", group, artifact, version)
	w, err = zw.Create("META-INF/MANIFEST.MF")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "Manifest-Version: 1.0\r\nImplementation-Version: %s\r\n\r\n", version)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(jar.Len()), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(jar.Bytes())
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestEnhancedScansLanguagePackages: a log4j-core 2.14.1 jar on the
// alpine base is CVE-2021-44228 (GHSA-jfh8-c2jp-5v3q: fixed in 2.15.0,
// rated CRITICAL) under enhanced scanning; basic scanning reads OS packages
// only and reports nothing for the same image.
func TestEnhancedScansLanguagePackages(t *testing.T) {
	img, err := mutate.AppendLayers(imagetest.Alpine310(t), jarLayer(t, "app/lib/log4j-core-2.14.1.jar", "org.apache.logging.log4j", "log4j-core", "2.14.1"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile(testutil.Fixture(t, "feeds/osv/records/GHSA-jfh8-c2jp-5v3q.json"))
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		adv, err := osv.Parse(rec, "osv-Maven")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.vdb.Apply(ctx, []vulndb.SourceUpdate{{Name: "osv-Maven", Kind: "osv", Data: &vulndb.FeedData{Advisories: []vulndb.Advisory{adv}}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.vix.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
			t.Fatal(err)
		}
		dg := s.push(t, img, "java/prod:v1")
		s.waitStatus(t, "java/prod", dg, scan.StatusActive)
		got, res := findingPairs(t, s, "java/prod", dg)
		if strings.Join(got, ",") != "CVE-2021-44228 org.apache.logging.log4j:log4j-core" {
			t.Fatalf("enhanced findings %v", got)
		}
		f := res.Findings[0]
		if f.Severity != scan.SevCritical || f.Package.PackageManager != "JAR" || f.Package.Version != "2.14.1" ||
			f.Package.FixedInVersion != "2.15.0" || f.Package.FilePath != "app/lib/log4j-core-2.14.1.jar" || f.FixAvailable != "YES" {
			t.Errorf("log4j finding %+v (package %+v)", f, f.Package)
		}

		if _, err := s.svc.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Basic, Rules: []scan.Rule{
			{ScanFrequency: scan.ScanOnPush, RepositoryFilters: []scan.Filter{{Filter: "java", FilterType: scan.FilterWildcard}}},
		}}); err != nil {
			t.Fatal(err)
		}
		s.push(t, img, "java/basic:v1")
		s.waitStatus(t, "java/basic", dg, scan.StatusComplete)
		if got, _ := findingPairs(t, s, "java/basic", dg); len(got) != 0 {
			t.Errorf("basic scanning reported language packages: %v", got)
		}
	})
}
