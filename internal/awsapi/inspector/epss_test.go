package inspector_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/epss"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/kev"
)

const (
	epssFixture = "enrichment/epss/vunnel-example-1.csv"
	kevFixture  = "enrichment/kev/known_exploited_vulnerabilities.json"
	// The CVEs of the test advisories: two scored in the EPSS fixture
	// (neither is in the KEV catalogue), and one in the KEV catalogue
	// without an EPSS row.
	cveHighEPSS = "CVE-1999-0005"
	cveLowEPSS  = "CVE-1999-0001"
	cveKEV      = "CVE-2021-44228"
)

// fixtureEPSS reads the EPSS fixture with a line scanner, independently
// of the feed adapter: CVE → score.
func fixtureEPSS(t *testing.T) map[string]float64 {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, epssFixture))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), ",")
		if len(cols) != 3 || !strings.HasPrefix(cols[0], "CVE-") {
			continue
		}
		v, err := strconv.ParseFloat(cols[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		out[cols[0]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// fixtureKEVAdded reads, with encoding/json, the date the KEV catalogue
// fixture added a CVE.
func fixtureKEVAdded(t *testing.T, cve string) time.Time {
	t.Helper()
	raw, err := os.ReadFile(testutil.Fixture(t, kevFixture))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vulnerabilities []struct {
			CveID     string `json:"cveID"`
			DateAdded string `json:"dateAdded"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, v := range doc.Vulnerabilities {
		if v.CveID == cve {
			d, err := time.Parse("2006-01-02", v.DateAdded)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatalf("%s is not in the KEV fixture", cve)
	return time.Time{}
}

// parseFixture reads a fixture with a feed adapter's Parse.
func parseFixture(t *testing.T, rel string, parse func(io.Reader, string) (*vulndb.FeedData, error), feed string) *vulndb.FeedData {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := parse(f, feed)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testAdvisory says every version of an Alpine 3.10 source package below
// 99-r0 is affected by cve. The real advisory feeds of the fixtures name
// none of the EPSS fixture's CVEs, so the test pairs real EPSS and KEV
// data with these advisories about packages of the real alpine:3.10 image.
func testAdvisory(id, cve, pkg string) vulndb.Advisory {
	return vulndb.Advisory{ID: id, Aliases: []string{cve}, Source: "enrichment-test", Affected: []vulndb.Affected{{
		Ecosystem: "Alpine:v3.10", Package: pkg, Status: vulndb.StatusFixed,
		Ranges: []vulndb.Range{{Type: vulndb.RangeEcosystem, Events: []vulndb.Event{{Introduced: "0"}, {Fixed: "99-r0"}}}},
	}}}
}

// applyAndReevaluate applies updates to the stack's vulnerability database
// and waits until the scanning service has re-evaluated its findings
// against the new generation (the re-evaluation job refreshes the index
// the scans match against).
func applyAndReevaluate(t *testing.T, s *stack, updates ...vulndb.SourceUpdate) {
	t.Helper()
	ctx := context.Background()
	vdb, err := vulndb.Open(ctx, s.db)
	if err != nil {
		t.Fatal(err)
	}
	res, err := vdb.Apply(ctx, updates)
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Failed(); len(f) > 0 || res.Generation == 0 {
		t.Fatalf("apply: generation %d, failed %+v", res.Generation, f)
	}
	if err := s.scan.QueueReevaluation(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cur, ok, err := s.scan.ReevaluationCursor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ok && cur >= res.Generation {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("re-evaluation cursor at %d (set %v), want %d", cur, ok, res.Generation)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// byCVE indexes findings by vulnerability id, failing on duplicates.
func byCVE(t *testing.T, fs []types.Finding) map[string]types.Finding {
	t.Helper()
	out := map[string]types.Finding{}
	for _, f := range fs {
		id := aws.ToString(f.PackageVulnerabilityDetails.VulnerabilityId)
		if _, dup := out[id]; dup {
			t.Fatalf("two findings for %s", id)
		}
		out[id] = f
	}
	return out
}

func vulnIDs(fs []types.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, aws.ToString(f.PackageVulnerabilityDetails.VulnerabilityId))
	}
	return out
}

// TestEPSSAndKEV scans the real alpine:3.10 image against advisories for
// CVEs of the real EPSS and KEV fixtures and reads the findings through
// aws-sdk-go-v2's inspector2 client: epss.score is the fixture's score,
// EPSS_SCORE sorts and epssScore filters; after the KEV catalogue lands,
// re-evaluation turns exploitAvailable to YES, and lastKnownExploitAt is
// the date KEV added the CVE.
func TestEPSSAndKEV(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newStack(t, db)
		ctx := context.Background()
		if _, err := s.scan.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced, Rules: []scan.Rule{
			{ScanFrequency: scan.ContinuousScan, RepositoryFilters: []scan.Filter{{Filter: "*", FilterType: scan.FilterWildcard}}},
		}}); err != nil {
			t.Fatal(err)
		}
		applyAndReevaluate(t, s,
			vulndb.SourceUpdate{Name: "enrichment-test", Data: &vulndb.FeedData{Advisories: []vulndb.Advisory{
				testAdvisory("TEST-ZLIB", cveHighEPSS, "zlib"),
				testAdvisory("TEST-APK", cveLowEPSS, "apk-tools"),
				testAdvisory("TEST-BASELAYOUT", cveKEV, "alpine-baselayout"),
			}}},
			vulndb.SourceUpdate{Name: "epss", Kind: "epss", Data: parseFixture(t, epssFixture, epss.Parse, "epss")},
		)
		dg := s.push(t, imagetest.Alpine310(t), "epss/app:1")
		s.waitScanned(t, "epss/app", dg)

		c := s.client(s.admin)
		want := fixtureEPSS(t)
		repo := &types.FilterCriteria{EcrImageRepositoryName: eq("epss/app")}
		got := byCVE(t, listAll(t, c, repo))
		if len(got) != 3 {
			t.Fatalf("findings for %v, want the three test CVEs", slices.Sorted(maps.Keys(got)))
		}
		for _, cve := range []string{cveHighEPSS, cveLowEPSS} {
			f := got[cve]
			if f.Epss == nil || f.Epss.Score != want[cve] {
				t.Errorf("%s: epss %+v, want score %v from the fixture", cve, f.Epss, want[cve])
			}
			if f.ExploitAvailable != types.ExploitAvailableNo || f.ExploitabilityDetails != nil {
				t.Errorf("%s: exploitAvailable %q, details %+v; the CVE is not in KEV", cve, f.ExploitAvailable, f.ExploitabilityDetails)
			}
		}
		if f := got[cveKEV]; f.Epss != nil {
			t.Errorf("%s: epss %+v, but the fixture has no row for it", cveKEV, f.Epss)
		}
		if f := got[cveKEV]; f.ExploitAvailable != types.ExploitAvailableNo {
			t.Errorf("%s: exploitAvailable %q before the KEV catalogue was applied", cveKEV, f.ExploitAvailable)
		}

		// Sorting by EPSS: a finding without a score sorts as 0.
		for _, c2 := range []struct {
			order types.SortOrder
			want  []string
		}{
			{types.SortOrderDesc, []string{cveHighEPSS, cveLowEPSS, cveKEV}},
			{types.SortOrderAsc, []string{cveKEV, cveLowEPSS, cveHighEPSS}},
		} {
			out, err := c.ListFindings(ctx, &inspector2.ListFindingsInput{FilterCriteria: repo,
				SortCriteria: &types.SortCriteria{Field: types.SortFieldEpssScore, SortOrder: c2.order}})
			if err != nil {
				t.Fatal(err)
			}
			if ids := vulnIDs(out.Findings); !slices.Equal(ids, c2.want) {
				t.Errorf("EPSS_SCORE %s: %v, want %v", c2.order, ids, c2.want)
			}
		}

		// Filtering by EPSS: bounds are inclusive; a finding without a
		// score matches no epssScore filter.
		hi, lo := want[cveHighEPSS], want[cveLowEPSS]
		for _, c2 := range []struct {
			name    string
			filters []types.NumberFilter
			want    []string
		}{
			{"at least the high score", []types.NumberFilter{{LowerInclusive: aws.Float64(hi)}}, []string{cveHighEPSS}},
			{"at most the low score", []types.NumberFilter{{UpperInclusive: aws.Float64(lo)}}, []string{cveLowEPSS}},
			{"exactly the low score", []types.NumberFilter{{LowerInclusive: aws.Float64(lo), UpperInclusive: aws.Float64(lo)}}, []string{cveLowEPSS}},
			{"between them, exclusive", []types.NumberFilter{{LowerInclusive: aws.Float64(lo + 1e-6), UpperInclusive: aws.Float64(hi - 1e-6)}}, nil},
			{"either bound (ORed)", []types.NumberFilter{{UpperInclusive: aws.Float64(lo)}, {LowerInclusive: aws.Float64(hi)}}, []string{cveLowEPSS, cveHighEPSS}},
			{"from 0", []types.NumberFilter{{LowerInclusive: aws.Float64(0)}}, []string{cveLowEPSS, cveHighEPSS}},
		} {
			crit := &types.FilterCriteria{EcrImageRepositoryName: eq("epss/app"), EpssScore: c2.filters}
			ids := vulnIDs(listAll(t, c, crit))
			slices.Sort(ids)
			if !slices.Equal(ids, c2.want) {
				t.Errorf("epssScore %s: %v, want %v", c2.name, ids, c2.want)
			}
		}
		tooMany := make([]types.NumberFilter, 11)
		for i := range tooMany {
			tooMany[i].LowerInclusive = aws.Float64(0)
		}
		_, err := c.ListFindings(ctx, &inspector2.ListFindingsInput{FilterCriteria: &types.FilterCriteria{EpssScore: tooMany}})
		wantCode(t, "11 epssScore filters", err, "ValidationException")

		// The KEV catalogue lands: re-evaluation marks the finding
		// exploitable, and the exploit date is KEV's dateAdded.
		applyAndReevaluate(t, s, vulndb.SourceUpdate{Name: "kev", Kind: "kev",
			Data: parseFixture(t, kevFixture, kev.Parse, "kev")})
		got = byCVE(t, listAll(t, c, repo))
		f := got[cveKEV]
		if f.ExploitAvailable != types.ExploitAvailableYes {
			t.Fatalf("%s: exploitAvailable %q after the KEV catalogue was applied", cveKEV, f.ExploitAvailable)
		}
		added := fixtureKEVAdded(t, cveKEV)
		if f.ExploitabilityDetails == nil || f.ExploitabilityDetails.LastKnownExploitAt == nil ||
			!f.ExploitabilityDetails.LastKnownExploitAt.Equal(added) {
			t.Errorf("%s: exploitabilityDetails %+v, want lastKnownExploitAt %s", cveKEV, f.ExploitabilityDetails, added)
		}
		for _, cve := range []string{cveHighEPSS, cveLowEPSS} {
			if f := got[cve]; f.ExploitAvailable != types.ExploitAvailableNo || f.ExploitabilityDetails != nil || f.Epss == nil || f.Epss.Score != want[cve] {
				t.Errorf("%s after KEV: exploitAvailable %q, details %+v, epss %+v", cve, f.ExploitAvailable, f.ExploitabilityDetails, f.Epss)
			}
		}
		ids := vulnIDs(listAll(t, c, &types.FilterCriteria{EcrImageRepositoryName: eq("epss/app"), ExploitAvailable: eq("YES")}))
		if !slices.Equal(ids, []string{cveKEV}) {
			t.Errorf("exploitAvailable YES: %v, want [%s]", ids, cveKEV)
		}
	})
}
