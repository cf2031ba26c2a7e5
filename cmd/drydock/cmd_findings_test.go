package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
)

// seedLedger stores findings with ledger times as the scan service does.
func seedLedger(t *testing.T, db *store.DB, rows []ledgerRow) {
	t.Helper()
	ctx := context.Background()
	if _, err := scan.New(ctx, scan.Options{Store: db}); err != nil { // migrates
		t.Fatal(err)
	}
	for i, r := range rows {
		body, err := json.Marshal(scan.Finding{ID: r.id, Repository: r.repo, Digest: "sha256:" + strings.Repeat("ab", 32),
			VulnerabilityID: r.vuln, Severity: r.severity, Package: scan.VulnerablePackage{Name: "openssl", Version: "3.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO scan_findings (repository, image_digest, finding_key, finding_id, advisory_id,
			package_name, package_version, package_manager, severity, status, fix_available, first_observed_at, last_observed_at,
			updated_at, finding, fix_available_since, closed_at, closed_reason)
			VALUES (?, ?, ?, ?, ?, 'openssl', '3.0.1', 'OS', ?, ?, 'YES', ?, ?, ?, ?, ?, ?, ?)`,
			r.repo, "sha256:"+strings.Repeat("ab", 32), r.vuln+"|"+string(rune('a'+i)), r.id, r.vuln, r.severity, r.status,
			r.first.UnixMilli(), r.first.UnixMilli(), r.first.UnixMilli(), string(body), ms0(r.fixable), ms0(r.closed), r.reason); err != nil {
			t.Fatal(err)
		}
	}
}

func ms0(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

type ledgerRow struct {
	id, repo, vuln, severity, status, reason string
	first, fixable, closed                   time.Time
}

// TestFindingsCommand: drydock findings list answers "new since",
// "fixable since" and "closed since", and summary the open counts and the
// mean time to remediate, counting only remediations (a withdrawn
// advisory is not one).
func TestFindingsCommand(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	day := func(n int) time.Time { return now.Add(-time.Duration(n) * 24 * time.Hour) }
	seedLedger(t, db, []ledgerRow{
		{id: "f1", repo: "app/api", vuln: "CVE-2024-0001", severity: "HIGH", status: "ACTIVE", first: day(20), fixable: day(2)},
		{id: "f2", repo: "app/api", vuln: "CVE-2024-0002", severity: "LOW", status: "ACTIVE", first: day(1)},
		{id: "f3", repo: "app/api", vuln: "CVE-2024-0003", severity: "CRITICAL", status: "CLOSED", first: day(10), fixable: day(9), closed: day(4), reason: "FIXED_BY_NEW_IMAGE"},
		{id: "f4", repo: "app/api", vuln: "CVE-2024-0004", severity: "HIGH", status: "CLOSED", first: day(8), closed: day(6), reason: "IMAGE_DELETED"},
		{id: "f5", repo: "app/api", vuln: "CVE-2024-0005", severity: "HIGH", status: "CLOSED", first: day(8), closed: day(7), reason: "ADVISORY_WITHDRAWN"},
		{id: "f6", repo: "web", vuln: "CVE-2024-0006", severity: "MEDIUM", status: "SUPPRESSED", first: day(40), closed: day(3), reason: "SUPPRESSED"},
	})
	db.Close()

	ids := func(args ...string) string {
		t.Helper()
		code, out, errOut := runDrydock(t, append(append([]string{"findings", "list"}, args...), "--data-dir", dir, "--json")...)
		if code != 0 {
			t.Fatalf("findings list %v: %d %s", args, code, errOut)
		}
		var fs []scan.Finding
		if err := json.Unmarshal([]byte(out), &fs); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var got []string
		for _, f := range fs {
			got = append(got, f.ID)
		}
		slices.Sort(got)
		return strings.Join(got, ",")
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--new-since", "7d"}, "f2"},
		{[]string{"--new-since", "15d"}, "f2,f3,f4,f5"},
		{[]string{"--fixable-since", "3d"}, "f1"},
		{[]string{"--fixable-since", day(30).Format(time.DateOnly)}, "f1,f3"},
		{[]string{"--closed-since", "5d"}, "f3,f6"},
		{[]string{"--closed-since", "30d", "--status", "CLOSED"}, "f3,f4,f5"},
		{[]string{"--repository", "web"}, "f6"},
		{[]string{"--severity", "HIGH", "--status", "ACTIVE"}, "f1"},
	} {
		if got := ids(c.args...); got != c.want {
			t.Errorf("findings list %v: %s, want %s", c.args, got, c.want)
		}
	}
	code, out, errOut := runDrydock(t, "findings", "summary", "--since", "30d", "--data-dir", dir, "--json")
	if code != 0 {
		t.Fatalf("summary: %d %s", code, errOut)
	}
	var sum struct {
		Repositories []struct {
			Repository                 string         `json:"repository"`
			OpenN                      int            `json:"open"`
			SuppressedN                int            `json:"suppressed"`
			NewN                       int            `json:"new"`
			Fixable                    int            `json:"fixable"`
			Closed                     map[string]int `json:"closed"`
			Remediated                 int            `json:"remediated"`
			MeanTimeToRemediateSeconds float64        `json:"meanTimeToRemediateSeconds"`
		} `json:"repositories"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(sum.Repositories) != 2 || sum.Repositories[0].Repository != "app/api" {
		t.Fatalf("summary %s", out)
	}
	api := sum.Repositories[0]
	// f3 took 6 days, f4 2 days: 4 days on average; f5 does not count.
	if api.OpenN != 2 || api.NewN != 5 || api.Fixable != 2 || api.Remediated != 2 || api.Closed["ADVISORY_WITHDRAWN"] != 1 ||
		api.MeanTimeToRemediateSeconds < 4*86400-1 || api.MeanTimeToRemediateSeconds > 4*86400+1 {
		t.Errorf("app/api summary %+v", api)
	}
	if web := sum.Repositories[1]; web.SuppressedN != 1 || web.Closed["SUPPRESSED"] != 1 || web.Remediated != 0 {
		t.Errorf("web summary %+v", web)
	}
	code, out, _ = runDrydock(t, "findings", "summary", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "MEAN TIME TO REMEDIATE") || !strings.Contains(out, "96h0m0s") {
		t.Errorf("summary table:\n%s", out)
	}
	if code, _, errOut := runDrydock(t, "findings", "list", "--new-since", "yesterday", "--data-dir", dir); code != 2 || !strings.Contains(errOut, "not a time") {
		t.Errorf("bad time: %d %s", code, errOut)
	}
}
