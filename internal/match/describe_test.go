package match

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/vulndb"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/epss"
	"github.com/drydockhq/drydock/internal/vulndb/feeds/nvd"
)

// nvdEnrichment reads real NVD records with the feed adapter.
func nvdEnrichment(t *testing.T, cves ...string) []vulndb.Enrichment {
	t.Helper()
	var out []vulndb.Enrichment
	for _, cve := range cves {
		f, err := os.Open(testutil.Fixture(t, "enrichment/nvd/nvdcve-2.0-per-cve/"+cve+".json"))
		if err != nil {
			t.Fatal(err)
		}
		fd, err := nvd.Parse(f, "nvd")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fd.Enrichment...)
	}
	return out
}

// nvdMetric reads, with encoding/json, the base score and vector of the
// CVE's metric of the given kind ("cvssMetricV31", ...) from source.
func nvdMetric(t *testing.T, cve, kind, source string) (float64, string) {
	t.Helper()
	data, err := os.ReadFile(testutil.Fixture(t, "enrichment/nvd/nvdcve-2.0-per-cve/"+cve+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vulnerabilities []struct {
			CVE struct {
				Metrics map[string][]struct {
					Source   string `json:"source"`
					CVSSData struct {
						BaseScore    float64 `json:"baseScore"`
						VectorString string  `json:"vectorString"`
					} `json:"cvssData"`
				} `json:"metrics"`
			} `json:"cve"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range doc.Vulnerabilities[0].CVE.Metrics[kind] {
		if m.Source == source {
			return m.CVSSData.BaseScore, m.CVSSData.VectorString
		}
	}
	t.Fatalf("%s has no %s from %s", cve, kind, source)
	return 0, ""
}

// epssRows reads the real EPSS sample with a line scanner: cve → score,
// percentile.
func epssRows(t *testing.T) map[string][2]float64 {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, "enrichment/epss/vunnel-example-1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][2]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.Split(sc.Text(), ",")
		if len(p) != 3 || !strings.HasPrefix(p[0], "CVE-") {
			continue
		}
		s, _ := strconv.ParseFloat(p[1], 64)
		pc, _ := strconv.ParseFloat(p[2], 64)
		out[p[0]] = [2]float64{s, pc}
	}
	return out
}

func epssEnrichment(t *testing.T) []vulndb.Enrichment {
	t.Helper()
	f, err := os.Open(testutil.Fixture(t, "enrichment/epss/vunnel-example-1.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := epss.Parse(f, "epss")
	if err != nil {
		t.Fatal(err)
	}
	return fd.Enrichment
}

// describe matches one package against one advisory and describes the
// finding with the enrichment held in the lookup index.
func describe(t *testing.T, adv *vulndb.Advisory, p index.Package, enrichment []vulndb.Enrichment) Details {
	t.Helper()
	inv := &index.Inventory{Packages: []index.Package{p}}
	res, snap := matchInventory(t, inv, []*vulndb.Advisory{adv}, enrichment)
	if len(res.Findings) != 1 {
		t.Fatalf("%s: %d findings", adv.ID, len(res.Findings))
	}
	f := &res.Findings[0]
	return Describe(f, nil, snap.Enrichment(f.Advisory))
}

func alpineAdv(id string, aliases ...string) *vulndb.Advisory {
	return &vulndb.Advisory{ID: id, Aliases: aliases, Source: "alpine-secdb", Affected: []vulndb.Affected{{
		Ecosystem: "Alpine:v3.10", Package: "pkg", Status: vulndb.StatusFixed, Ranges: rng(intro("0"), fixed("2.0-r0")),
	}}}
}

var alpinePkg = index.Package{Type: index.TypeApk, Ecosystem: "Alpine:v3.10", Name: "pkg", Version: "1.0-r0", Path: "lib/apk/db/installed"}

// Advisories without a score of their own (Alpine's secdb has none) take
// NVD's: NVD's own rating over a CNA's, v3 over v2.
func TestDescribeCVSSFromNVD(t *testing.T) {
	for _, c := range []struct {
		cve, kind, source, level string
	}{
		{"CVE-2016-1585", "cvssMetricV31", "nvd@nist.gov", SeverityCritical},                    // beside a CNA's 3.9 and NVD's v2
		{"CVE-2022-2956", "cvssMetricV31", "nvd@nist.gov", SeverityMedium},                      // beside a CNA's 3.5
		{"CVE-2024-47177", "cvssMetricV31", "security-advisories@github.com", SeverityCritical}, // only a CNA's
		{"CVE-2014-1424", "cvssMetricV2", "nvd@nist.gov", SeverityMedium},                       // only v2: NVD's bands
	} {
		score, vector := nvdMetric(t, c.cve, c.kind, c.source)
		d := describe(t, alpineAdv("ALPINE-"+c.cve, c.cve), alpinePkg, nvdEnrichment(t, c.cve))
		if d.CVSS == nil || d.CVSS.BaseScore != score || d.CVSS.Vector != vector || d.CVSS.Source != c.source {
			t.Errorf("%s: CVSS %+v, want %.1f %s from %s", c.cve, d.CVSS, score, vector, c.source)
		}
		if d.Severity != c.level || d.SeveritySource != "cvss" || d.VendorSeverity != nil {
			t.Errorf("%s: severity %s from %q, vendor %+v", c.cve, d.Severity, d.SeveritySource, d.VendorSeverity)
		}
		if d.Aliases[0] != c.cve || d.Status != "fixed" || d.ExploitAvailable || d.EPSS != nil {
			t.Errorf("%s: %+v", c.cve, d)
		}
	}
}

// The vendor's word comes first; the CVSS rating stays beside it.
func TestDescribeVendorFirst(t *testing.T) {
	score, _ := nvdMetric(t, "CVE-2016-1585", "cvssMetricV31", "nvd@nist.gov")
	for word, level := range map[string]string{
		"low": SeverityLow, "unimportant": SeverityInformational, "negligible": SeverityInformational, "Important": SeverityHigh,
		"Moderate": SeverityMedium, "critical": SeverityCritical, "medium": SeverityMedium, "high": SeverityHigh,
		"not yet assigned": SeverityCritical, // says nothing: the CVSS rating decides
	} {
		adv := &vulndb.Advisory{ID: "CVE-2016-1585", Source: "osv-Debian", Affected: []vulndb.Affected{{
			Ecosystem: "Debian:12", Package: "apparmor", Status: vulndb.StatusUnfixed, VendorSeverity: word,
		}}}
		p := index.Package{Type: index.TypeDpkg, Ecosystem: "Debian:12", Name: "libapparmor1", SourceName: "apparmor", Version: "3.0.8-3", Path: "var/lib/dpkg/status"}
		d := describe(t, adv, p, nvdEnrichment(t, "CVE-2016-1585"))
		if d.Severity != level || d.VendorSeverity == nil || d.VendorSeverity.Rating != word || d.VendorSeverity.Source != "osv-Debian" {
			t.Errorf("%q: severity %s (%s), vendor %+v", word, d.Severity, d.SeveritySource, d.VendorSeverity)
		}
		if d.CVSS == nil || d.CVSS.BaseScore != score {
			t.Errorf("%q: CVSS %+v", word, d.CVSS)
		}
		if d.FixAvailable != FixNo || d.Status != "unfixed" || len(d.FixedVersions) != 0 || d.MatchedName != "apparmor" {
			t.Errorf("%q: %s %s %v %s", word, d.FixAvailable, d.Status, d.FixedVersions, d.MatchedName)
		}
	}
}

// EPSS: the highest score among the advisory's CVEs, with its percentile.
func TestDescribeEPSS(t *testing.T) {
	rows := epssRows(t)
	d := describe(t, alpineAdv("ALPINE-TEST", "CVE-1999-0001", "CVE-1999-0005"), alpinePkg, epssEnrichment(t))
	want := rows["CVE-1999-0005"]
	if d.EPSS == nil || d.EPSS.CVE != "CVE-1999-0005" || d.EPSS.Score != want[0] || d.EPSS.Percentile != want[1] || d.EPSS.Date == nil {
		t.Errorf("EPSS %+v, want CVE-1999-0005 %v", d.EPSS, want)
	}
	if d.Severity != SeverityUntriaged || d.SeveritySource != "" || d.CVSS != nil {
		t.Errorf("no rating at all: severity %s from %q, CVSS %+v", d.Severity, d.SeveritySource, d.CVSS)
	}
}

func TestShorten(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"a  b\n\tc", 10, "a b c"},
		{"one two three four", 12, "one two…"},
		{"ééééé", 5, "éé…"},
	} {
		if got := shorten(c.in, c.max); got != c.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
