package registry_test

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// TestConformance runs the official OCI Distribution conformance suite
// (scripts/install-test-deps installs it as oci-conformance) against a real
// `drydock serve`, on each metadata backend, with authentication on and
// every workflow the suite has switched on. It must report no failure and
// no skip.
func TestConformance(t *testing.T) {
	suite := testutil.RequireTool(t, "oci-conformance")
	backends := []struct {
		name  string
		flags func(t *testing.T) []string
	}{
		{"sqlite", func(*testing.T) []string { return nil }},
		{"postgres", func(t *testing.T) []string { return []string{"--store", storetest.PostgresURL(t)} }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			flags := append([]string{"--create-on-push"}, b.flags(t)...)
			srv := startServer(t, t.TempDir(), flags...)
			results := t.TempDir()
			cmd := exec.Command(suite)
			cmd.Dir = results
			cmd.Env = append(os.Environ(),
				"OCI_REGISTRY="+srv.Host,
				"OCI_TLS=disabled",
				"OCI_REPO1=conformance/team/repo1",
				"OCI_REPO2=conformance/team/repo2",
				"OCI_VERSION=1.1",
				"OCI_USERNAME=AWS",
				"OCI_PASSWORD="+srv.password(t),
				"OCI_RESULTS_DIR="+results,
				// Every API workflow on, beyond the 1.1 defaults.
				"OCI_API_PULL=true",
				"OCI_API_PUSH=true",
				"OCI_API_BLOBS_ATOMIC=true",
				"OCI_API_BLOBS_DELETE=true",
				"OCI_API_BLOBS_MOUNT_ANONYMOUS=true",
				"OCI_API_BLOBS_UPLOAD_CANCEL=true",
				"OCI_API_BLOBS_DIGEST_HEADER=true",
				"OCI_API_MANIFESTS_ATOMIC=true",
				"OCI_API_MANIFESTS_DELETE=true",
				"OCI_API_MANIFESTS_DIGEST_HEADER=true",
				"OCI_API_MANIFESTS_TAG_PARAM=true",
				"OCI_API_TAGS_ATOMIC=true",
				"OCI_API_TAGS_DELETE=true",
				"OCI_API_TAGS_LIST=true",
				"OCI_API_REFERRER=true",
				"OCI_DATA_SHA512=true",
				// Sparse manifests (blobs never pushed) stay off: Drydock
				// refuses manifests naming blobs it does not hold.
				"OCI_DATA_SPARSE=false",
			)
			out, err := cmd.CombinedOutput()
			var junit struct {
				Suites []struct {
					Tests    int `xml:"tests,attr"`
					Failures int `xml:"failures,attr"`
					Errors   int `xml:"errors,attr"`
					Skipped  int `xml:"skipped,attr"`
					Disabled int `xml:"disabled,attr"`
				} `xml:"testsuite"`
			}
			b, rerr := os.ReadFile(filepath.Join(results, "junit.xml"))
			if rerr != nil {
				t.Fatalf("conformance suite wrote no junit.xml (%v): %v\n%s", err, rerr, out)
			}
			if err := xml.Unmarshal(b, &junit); err != nil {
				t.Fatalf("junit.xml: %v", err)
			}
			var tests, failures, skipped int
			for _, s := range junit.Suites {
				tests += s.Tests
				failures += s.Failures + s.Errors
				skipped += s.Skipped + s.Disabled
			}
			t.Logf("conformance: %d checks, %d failures, %d skipped", tests, failures, skipped)
			if err != nil || failures != 0 || skipped != 0 || tests < 900 {
				t.Fatalf("conformance suite: exit %v, %d checks, %d failures, %d skipped\n%s\nserver log:\n%s",
					err, tests, failures, skipped, out, srv.log)
			}
		})
	}
}
