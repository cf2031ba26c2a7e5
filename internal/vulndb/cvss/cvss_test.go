package cvss

import (
	"archive/zip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/testutil"
)

// nvdMetric is the part of an NVD API 2.0 CVSS metric the tests compare:
// the vector and the base score NVD computed for it.
type nvdMetric struct {
	Source   string `json:"source"`
	CVSSData struct {
		Version      string  `json:"version"`
		VectorString string  `json:"vectorString"`
		BaseScore    float64 `json:"baseScore"`
	} `json:"cvssData"`
}

// TestBaseScoreMatchesNVD scores every CVSS v2, v3.0 and v3.1 vector of the
// real NVD API 2.0 fixtures and compares with the base score NVD publishes
// beside it.
func TestBaseScoreMatchesNVD(t *testing.T) {
	dir := testutil.Fixture(t, "enrichment/nvd")
	files, err := filepath.Glob(filepath.Join(dir, "nvdcve-2.0-per-cve", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(dir, "nvd-api-2.0-full-page.json"))
	seen := map[Version]int{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Vulnerabilities []struct {
				CVE struct {
					ID      string                 `json:"id"`
					Metrics map[string][]nvdMetric `json:"metrics"`
				} `json:"cve"`
			} `json:"vulnerabilities"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range page.Vulnerabilities {
			for kind, ms := range v.CVE.Metrics {
				if !strings.HasPrefix(kind, "cvssMetric") {
					continue
				}
				for _, m := range ms {
					got, ver, err := BaseScore(m.CVSSData.VectorString)
					if err != nil {
						t.Errorf("%s %s: %v", v.CVE.ID, m.CVSSData.VectorString, err)
						continue
					}
					if string(ver) != m.CVSSData.Version {
						t.Errorf("%s %s: version %s, NVD says %s", v.CVE.ID, m.CVSSData.VectorString, ver, m.CVSSData.Version)
					}
					if got != m.CVSSData.BaseScore {
						t.Errorf("%s %s (%s): base score %.1f, NVD says %.1f", v.CVE.ID, m.CVSSData.VectorString, m.Source, got, m.CVSSData.BaseScore)
					}
					seen[ver]++
				}
			}
		}
	}
	for _, v := range []Version{V2, V30, V31} {
		if seen[v] == 0 {
			t.Errorf("the NVD fixtures gave no CVSS %s vector to check", v)
		}
	}
	t.Logf("checked against NVD: %v", seen)
}

// TestBaseScoreV4MatchesReferenceCalculator scores every CVSS v4.0 vector in
// the real RustSec OSV feed and compares with an independent implementation
// (the ae-cvss-calculator npm package, run with node), whose
// "baseMetricsOnly" score is the CVSS-B score this package returns.
func TestBaseScoreV4MatchesReferenceCalculator(t *testing.T) {
	node := testutil.RequireTool(t, "node")
	modules := nodeModules(t)
	vectors := osvVectors(t, "feeds/osv/crates.io/all.zip", "CVSS_V4")
	if len(vectors) < 35 {
		t.Fatalf("only %d distinct CVSS v4 vectors in the RustSec fixture; expected 39", len(vectors))
	}
	// Vectors the feed lacks: threat and environmental metrics, and the
	// extremes.
	vectors = append(vectors,
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H",
		"CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U/CR:H/MAV:L",
	)
	script := filepath.Join(t.TempDir(), "score.js")
	if err := os.WriteFile(script, []byte(`
const c = require("ae-cvss-calculator");
const out = {};
for (const v of JSON.parse(require("fs").readFileSync(0, "utf8"))) {
  out[v] = c.fromVector(v).calculateScores().baseMetricsOnly;
}
process.stdout.write(JSON.stringify(out));
`), 0o600); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(vectors)
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node reference calculator: %v", err)
	}
	var want map[string]float64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("reference output %q: %v", out, err)
	}
	for _, v := range vectors {
		got, ver, err := BaseScore(v)
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		if ver != V40 {
			t.Errorf("%s: version %s", v, ver)
		}
		if got != want[v] {
			t.Errorf("%s: base score %.1f, reference calculator says %.1f", v, got, want[v])
		}
	}
}

// nodeModules returns the node_modules directory scripts/install-test-deps
// fills with the reference CVSS calculator.
func nodeModules(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DRYDOCK_TEST_NPM_PREFIX")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(home, ".cache", "drydock-test-npm")
	}
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "ae-cvss-calculator")); err != nil {
		t.Fatalf("the reference CVSS calculator is not installed in %s; run scripts/install-test-deps: %v", modules, err)
	}
	return modules
}

// osvVectors returns the distinct vectors of one severity type in an OSV zip.
func osvVectors(t *testing.T, rel, typ string) []string {
	t.Helper()
	zr, err := zip.OpenReader(testutil.Fixture(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	seen := map[string]bool{}
	var out []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Severity []struct{ Type, Score string } `json:"severity"`
		}
		err = json.NewDecoder(rc).Decode(&rec)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		for _, s := range rec.Severity {
			if s.Type == typ && !seen[s.Score] {
				seen[s.Score] = true
				out = append(out, s.Score)
			}
		}
	}
	return out
}

func TestBaseScoreRejects(t *testing.T) {
	for _, v := range []string{
		"",
		"CVSS:3.1/AV:N",
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:9.9/AV:N",
		"CVSS:4.0/AV:N/AC:L",
		"AV:N/AC:L/Au:N/C:P/I:P",
		"garbage",
	} {
		if s, _, err := BaseScore(v); err == nil {
			t.Errorf("BaseScore(%q) = %.1f, want an error", v, s)
		}
	}
}

func TestRating(t *testing.T) {
	for _, c := range []struct {
		score float64
		v     Version
		want  string
	}{
		{0, V31, "NONE"}, {3.9, V31, "LOW"}, {4.0, V31, "MEDIUM"}, {6.9, V40, "MEDIUM"},
		{7.0, V30, "HIGH"}, {8.9, V31, "HIGH"}, {9.0, V40, "CRITICAL"}, {10, V31, "CRITICAL"},
		{3.9, V2, "LOW"}, {4.0, V2, "MEDIUM"}, {7.0, V2, "HIGH"}, {10, V2, "HIGH"},
	} {
		if got := Rating(c.score, c.v); got != c.want {
			t.Errorf("Rating(%.1f, %s) = %s, want %s", c.score, c.v, got, c.want)
		}
	}
}

func FuzzBaseScore(f *testing.F) {
	for _, s := range []string{
		"AV:N/AC:L/Au:N/C:P/I:P/A:P",
		"CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:N/A:H/E:P",
		"CVSS:4.0/AV:N/AC:L/AT:P/PR:L/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N/E:P",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, _, err := BaseScore(v)
		if err == nil && (s < 0 || s > 10) {
			t.Fatalf("BaseScore(%q) = %v, outside 0..10", v, s)
		}
	})
}
