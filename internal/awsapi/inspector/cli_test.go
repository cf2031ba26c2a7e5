package inspector_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// awsCLI is the AWS CLI v2 from Debian's awscli package (not the pyenv
// shim earlier in PATH).
const awsCLI = "/usr/bin/aws"

// cli runs the AWS CLI against the stack with key; it returns stdout,
// stderr and the exit code.
func (s *stack) cli(t *testing.T, k auth.AccessKey, args ...string) ([]byte, string, int) {
	t.Helper()
	testutil.RequireTool(t, awsCLI)
	dir := t.TempDir()
	cmd := exec.Command(awsCLI, append(args, "--endpoint-url", s.URL, "--region", "us-west-2", "--output", "json")...)
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + dir,
		"AWS_ACCESS_KEY_ID=" + k.ID,
		"AWS_SECRET_ACCESS_KEY=" + k.Secret,
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("aws %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return stdout.Bytes(), stderr.String(), code
}

func (s *stack) cliOK(t *testing.T, args ...string) []byte {
	t.Helper()
	out, stderr, code := s.cli(t, s.admin, args...)
	if code != 0 {
		t.Fatalf("aws %v: exit %d: %s", args, code, stderr)
	}
	return out
}

func TestAWSCLI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s, _ := scannedStack(t, db)
		all := storeFindings(t, s, scan.FindingQuery{})
		app := storeFindings(t, s, scan.FindingQuery{Repositories: []string{"app-prod"}})

		var listed struct {
			Findings []struct {
				FindingArn string `json:"findingArn"`
				Status     string `json:"status"`
			} `json:"findings"`
		}
		arns := func() []string {
			var out []string
			for _, f := range listed.Findings {
				out = append(out, f.FindingArn)
			}
			sort.Strings(out)
			return out
		}
		// The CLI follows nextToken itself; small pages make it do so.
		if err := json.Unmarshal(s.cliOK(t, "inspector2", "list-findings", "--page-size", "3"), &listed); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(arns(), arnsOf(all)) {
			t.Errorf("list-findings: %v, want %v", arns(), arnsOf(all))
		}
		if err := json.Unmarshal(s.cliOK(t, "inspector2", "list-findings", "--filter-criteria",
			`{"ecrImageRepositoryName":[{"comparison":"EQUALS","value":"app-prod"}]}`), &listed); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(arns(), arnsOf(app)) {
			t.Errorf("list-findings for app-prod: %v, want %v", arns(), arnsOf(app))
		}

		var agg struct {
			AggregationType string `json:"aggregationType"`
			Responses       []struct {
				RepositoryAggregation struct {
					Repository     string         `json:"repository"`
					SeverityCounts map[string]int `json:"severityCounts"`
				} `json:"repositoryAggregation"`
			} `json:"responses"`
		}
		if err := json.Unmarshal(s.cliOK(t, "inspector2", "list-finding-aggregations", "--aggregation-type", "REPOSITORY"), &agg); err != nil {
			t.Fatal(err)
		}
		if agg.AggregationType != "REPOSITORY" || len(agg.Responses) != 2 {
			t.Fatalf("list-finding-aggregations: %+v", agg)
		}
		for _, r := range agg.Responses {
			n := len(storeFindings(t, s, scan.FindingQuery{Repositories: []string{r.RepositoryAggregation.Repository}}))
			if r.RepositoryAggregation.SeverityCounts["all"] != n {
				t.Errorf("%s: all=%d, want %d", r.RepositoryAggregation.Repository, r.RepositoryAggregation.SeverityCounts["all"], n)
			}
		}

		// The captured create-filter call, then its effect and its removal.
		var created struct {
			Arn string `json:"arn"`
		}
		if err := json.Unmarshal(s.cliOK(t, "inspector2", "create-filter", "--action", "SUPPRESS", "--name", "suppress-openssl",
			"--reason", "accepted risk", "--filter-criteria",
			`{"vulnerabilityId":[{"comparison":"EQUALS","value":"CVE-2019-1547"}],"ecrImageRepositoryName":[{"comparison":"EQUALS","value":"scanrepo-prod"}]}`), &created); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(created.Arn, "arn:aws:inspector2:us-west-2:") {
			t.Errorf("filter arn %q", created.Arn)
		}
		if err := json.Unmarshal(s.cliOK(t, "inspector2", "list-findings", "--filter-criteria",
			`{"findingStatus":[{"comparison":"EQUALS","value":"SUPPRESSED"}]}`), &listed); err != nil {
			t.Fatal(err)
		}
		if len(listed.Findings) != 2 {
			t.Errorf("suppressed findings: %v", arns())
		}
		s.cliOK(t, "inspector2", "delete-filter", "--arn", created.Arn)
		if err := json.Unmarshal(s.cliOK(t, "inspector2", "list-findings", "--filter-criteria",
			`{"findingStatus":[{"comparison":"EQUALS","value":"SUPPRESSED"}]}`), &listed); err != nil {
			t.Fatal(err)
		}
		if len(listed.Findings) != 0 {
			t.Errorf("suppressed findings after delete-filter: %v", arns())
		}

		s.cliOK(t, "inspector2", "update-configuration", "--ecr-configuration", "rescanDuration=DAYS_180")
		var conf struct {
			EcrConfiguration struct {
				RescanDurationState struct {
					RescanDuration string `json:"rescanDuration"`
					Status         string `json:"status"`
					// The CLI prints timestamps in ISO 8601.
					UpdatedAt string `json:"updatedAt"`
				} `json:"rescanDurationState"`
			} `json:"ecrConfiguration"`
		}
		raw := s.cliOK(t, "inspector2", "get-configuration")
		if err := json.Unmarshal(raw, &conf); err != nil {
			t.Fatalf("get-configuration: %v: %s", err, raw)
		}
		if st := conf.EcrConfiguration.RescanDurationState; st.RescanDuration != "DAYS_180" || st.Status != "SUCCESS" || !strings.HasPrefix(st.UpdatedAt, "20") {
			t.Errorf("get-configuration: %s", raw)
		}
		_, stderr, code := s.cli(t, s.admin, "inspector2", "update-configuration", "--ecr-configuration", "rescanDuration=DAYS_7")
		if code == 0 || !strings.Contains(stderr, "ValidationException") {
			t.Errorf("update-configuration DAYS_7: exit %d: %s", code, stderr)
		}
		// A wrong secret is refused with the signature error.
		bad := s.admin
		bad.Secret = strings.Repeat("x", len(bad.Secret))
		_, stderr, code = s.cli(t, bad, "inspector2", "list-findings")
		if code == 0 || !strings.Contains(stderr, "InvalidSignatureException") {
			t.Errorf("wrong secret: exit %d: %s", code, stderr)
		}
	})
}
