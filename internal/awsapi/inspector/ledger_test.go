package inspector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
)

// curlSigV4 calls one of Drydock's ledger operations with curl's own
// SigV4 signer, as the docs tell users to.
func (s *stack) curlSigV4(t *testing.T, k auth.AccessKey, path string, body any) (int, []byte) {
	t.Helper()
	testutil.RequireTool(t, "curl")
	in, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:inspector2",
		"--user", k.ID+":"+k.Secret, "-H", "Content-Type: application/json", "--data-binary", string(in), s.URL+path).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", path, err)
	}
	i := strings.LastIndexByte(string(out), '\n')
	var code int
	fmt.Sscan(string(out[i+1:]), &code)
	return code, out[:i]
}

// TestLedgerAPI: the ledger operations answer what closed since a time
// and the time to remediate, over SigV4 from curl, limited to what the
// caller may read.
func TestLedgerAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		if _, err := s.scan.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
			t.Fatal(err)
		}
		start := time.Now().Add(-time.Second)
		fixed := imagetest.Alpine310(t)
		old := downgraded(t, fixed)
		oldProd := s.push(t, old, "app-prod:v1")
		oldOther := s.push(t, old, "other:v1")
		s.waitScanned(t, "app-prod", oldProd)
		s.waitScanned(t, "other", oldOther)
		newProd := s.push(t, fixed, "app-prod:v1")
		s.waitScanned(t, "app-prod", newProd)

		var ledger struct {
			Findings []struct {
				RepositoryName, ImageDigest, VulnerabilityID, Status, ClosedReason string
				FirstObservedAt, ClosedAt                                          float64
			} `json:"findings"`
		}
		deadline := time.Now().Add(time.Minute)
		for {
			code, body := s.curlSigV4(t, s.admin, "/drydock/findings/ledger/list", map[string]any{"closedSince": start.Unix()})
			if code != 200 {
				t.Fatalf("ledger: %d %s", code, body)
			}
			if err := json.Unmarshal(body, &ledger); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			if len(ledger.Findings) == 6 || time.Now().After(deadline) {
				break
			}
			time.Sleep(25 * time.Millisecond)
		}
		// downgraded: OpenSSL 1.1.1c, three CVEs fixed in 1.1.1d, in
		// libcrypto1.1 and libssl1.1.
		if len(ledger.Findings) != 6 {
			t.Fatalf("closed since the start: %+v", ledger.Findings)
		}
		for _, f := range ledger.Findings {
			if f.RepositoryName != "app-prod" || f.ImageDigest != oldProd || f.Status != "CLOSED" || f.ClosedReason != "FIXED_BY_NEW_IMAGE" || f.ClosedAt < f.FirstObservedAt {
				t.Errorf("closed finding %+v", f)
			}
		}
		code, body := s.curlSigV4(t, s.admin, "/drydock/remediation/list", map[string]any{})
		var rem struct {
			Repositories []struct {
				RepositoryName      string
				Open, Remediated    int
				MeanTimeToRemediate float64
			} `json:"repositories"`
		}
		if code != 200 || json.Unmarshal(body, &rem) != nil || len(rem.Repositories) != 2 {
			t.Fatalf("remediation: %d %s", code, body)
		}
		if r := rem.Repositories[0]; r.RepositoryName != "app-prod" || r.Remediated != 6 || r.Open != 0 || r.MeanTimeToRemediate <= 0 {
			t.Errorf("app-prod: %+v", r)
		}
		if r := rem.Repositories[1]; r.RepositoryName != "other" || r.Remediated != 0 || r.Open != 6 {
			t.Errorf("other: %+v (the OpenSSL CVEs in libcrypto and libssl)", r)
		}

		// A reader of app-* sees app-prod only; an unknown key nothing.
		reader, err := s.auth.CreateKey(ctx, "reader", []auth.Grant{{Action: auth.ActionReadFindings, Pattern: "app-*"}})
		if err != nil {
			t.Fatal(err)
		}
		code, body = s.curlSigV4(t, reader, "/drydock/remediation/list", map[string]any{})
		if code != 200 || json.Unmarshal(body, &rem) != nil || len(rem.Repositories) != 1 || rem.Repositories[0].RepositoryName != "app-prod" {
			t.Errorf("reader's remediation: %d %s", code, body)
		}
		code, body = s.curlSigV4(t, auth.AccessKey{ID: "AKIANOTAKEY000000000", Secret: "x"}, "/drydock/remediation/list", map[string]any{})
		if code != 403 && code != 401 {
			t.Errorf("unknown key: %d %s", code, body)
		}
		code, body = s.curlSigV4(t, s.admin, "/drydock/findings/ledger/list", map[string]any{"statuses": []string{"GONE"}})
		if code != 400 || !strings.Contains(string(body), "is not ACTIVE, SUPPRESSED or CLOSED") {
			t.Errorf("bad status: %d %s", code, body)
		}
	})
}
