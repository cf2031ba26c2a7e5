package scan

import (
	"encoding/json"
	"testing"
	"time"
)

func TestOpenedEncoder(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)
	e, err := newOpenedEncoder(now)
	if err != nil {
		t.Fatal(err)
	}
	full := Finding{
		ID: "abc", FindingArn: "arn:aws:inspector2:us-east-1:1:finding/abc", Repository: "team/app", Digest: "sha256:00",
		VulnerabilityID: "CVE-2024-1", AdvisoryID: "GO-2024-1", Title: "t", Severity: SevHigh, Score: 7.5,
		// Text that looks like the ledger fields must not confuse it.
		Description:   `ends with ,"status":"","updatedAt":"0001-01-01T00:00:00Z"}`,
		CVSS:          []CVSS{{BaseScore: 7.5, ScoringVector: "CVSS:3.1/AV:N", Version: "3.1", Source: "NVD"}},
		ReferenceURLs: []string{"https://example.com"}, Source: "GHSA", FixAvailable: "YES",
		Package:    VulnerablePackage{Name: "example.com/m", Version: "v1.0.0", PackageManager: "GOBINARY"},
		Attributes: []Attribute{{Key: "k", Value: "v"}}, Platform: "DEBIAN_12", Architecture: "amd64",
	}
	for _, c := range []struct {
		name string
		f    Finding
	}{
		{"empty", Finding{}},
		{"full", full},
		{"ledger already set", func() Finding { f := full; f.Status, f.ClosedReason = FindingClosed, ClosedFixedByNewImage; return f }()},
		{"fix available since set", func() Finding { f := full; f.FixAvailableSince = now.Add(-time.Hour); return f }()},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, err := json.Marshal(&c.f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.encode(&c.f, body)
			if err != nil {
				t.Fatal(err)
			}
			g := c.f
			g.Status, g.FirstObservedAt, g.LastObservedAt, g.UpdatedAt = FindingActive, now, now, now
			want, err := json.Marshal(&g)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}
