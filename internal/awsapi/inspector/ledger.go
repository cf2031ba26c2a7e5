package inspector

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
)

// Drydock's findings ledger has no Inspector operation: these two are
// Drydock's own, served beside Inspector's under /drydock/ with the same
// protocol (restJson1, SigV4 for service inspector2, epoch-second times),
// so any SigV4 client reaches them, `curl --aws-sigv4` included.
const (
	ledgerPath      = "/drydock/findings/ledger/list"
	remediationPath = "/drydock/remediation/list"
)

type listLedgerInput struct {
	RepositoryNames []string     `json:"repositoryNames,omitempty"`
	Statuses        []string     `json:"statuses,omitempty"`
	NewSince        *awsapi.Time `json:"newSince,omitempty"`
	FixableSince    *awsapi.Time `json:"fixableSince,omitempty"`
	ClosedSince     *awsapi.Time `json:"closedSince,omitempty"`
	MaxResults      *int         `json:"maxResults,omitempty"`
	NextToken       *string      `json:"nextToken,omitempty"`
}

// LedgerEntry is one finding as the ledger records it.
type LedgerEntry struct {
	FindingArn        string      `json:"findingArn"`
	RepositoryName    string      `json:"repositoryName"`
	ImageDigest       string      `json:"imageDigest"`
	VulnerabilityID   string      `json:"vulnerabilityId"`
	PackageName       string      `json:"packageName"`
	PackageVersion    string      `json:"packageVersion"`
	Severity          string      `json:"severity"`
	Status            string      `json:"status"`
	FixAvailable      string      `json:"fixAvailable"`
	FirstObservedAt   awsapi.Time `json:"firstObservedAt"`
	LastObservedAt    awsapi.Time `json:"lastObservedAt"`
	FixAvailableSince awsapi.Time `json:"fixAvailableSince,omitzero"`
	ClosedAt          awsapi.Time `json:"closedAt,omitzero"`
	ClosedReason      string      `json:"closedReason,omitempty"`
}

type listLedgerOutput struct {
	Findings  []LedgerEntry `json:"findings"`
	NextToken *string       `json:"nextToken,omitempty"`
}

func since(t *awsapi.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}

// listLedgerOp lists findings with their ledger times: new, fixable or
// closed since a time, in the repositories the caller may read.
func (s *Service) listLedgerOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in listLedgerInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	limit, err := maxResults(in.MaxResults, 1000, 100)
	if err != nil {
		return nil, err
	}
	for _, st := range in.Statuses {
		if st != scan.FindingActive && st != scan.FindingSuppressed && st != scan.FindingClosed {
			return nil, validation("statuses: %q is not ACTIVE, SUPPRESSED or CLOSED", truncate(st, 40))
		}
	}
	scope := scopeOf("ListLedger", []any{in.RepositoryNames, in.Statuses, in.NewSince, in.FixableSince, in.ClosedSince})
	var cur offsetCursor
	if err := s.open(scope, in.NextToken, &cur); err != nil {
		return nil, err
	}
	q := scan.FindingQuery{Repositories: in.RepositoryNames, Statuses: in.Statuses,
		FirstObservedSince: since(in.NewSince), FixAvailableSince: since(in.FixableSince), ClosedSince: since(in.ClosedSince)}
	var all []LedgerEntry
	page := scan.Page{}
	for {
		list, next, err := s.scan.ListFindings(ctx, q, page)
		if err != nil {
			return nil, err
		}
		for _, f := range list {
			if !canRead(req.Principal, f.Repository) {
				continue
			}
			all = append(all, LedgerEntry{
				FindingArn: f.FindingArn, RepositoryName: f.Repository, ImageDigest: f.Digest, VulnerabilityID: f.VulnerabilityID,
				PackageName: f.Package.Name, PackageVersion: f.Package.Version, Severity: f.Severity, Status: f.Status,
				FixAvailable: f.FixAvailable, FirstObservedAt: awsapi.At(f.FirstObservedAt), LastObservedAt: awsapi.At(f.LastObservedAt),
				FixAvailableSince: awsapi.At(f.FixAvailableSince), ClosedAt: awsapi.At(f.ClosedAt), ClosedReason: string(f.ClosedReason),
			})
		}
		if next == "" {
			break
		}
		page.After = next
	}
	slices.SortStableFunc(all, func(a, b LedgerEntry) int { return strings.Compare(a.FindingArn, b.FindingArn) })
	out := listLedgerOutput{Findings: []LedgerEntry{}}
	if cur.Offset < len(all) {
		out.Findings = all[cur.Offset:min(cur.Offset+limit, len(all))]
	}
	next := cur.Offset + limit
	out.NextToken, err = s.seal(scope, next < len(all), offsetCursor{next})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type listRemediationInput struct {
	RepositoryNames []string     `json:"repositoryNames,omitempty"`
	Since           *awsapi.Time `json:"since,omitempty"`
	Until           *awsapi.Time `json:"until,omitempty"`
}

// RemediationEntry is one repository's ledger summary.
type RemediationEntry struct {
	RepositoryName string         `json:"repositoryName"`
	Open           int            `json:"open"`
	Suppressed     int            `json:"suppressed"`
	New            int            `json:"new"`
	Fixable        int            `json:"fixable"`
	Closed         map[string]int `json:"closed"`
	Remediated     int            `json:"remediated"`
	// MeanTimeToRemediate is in seconds (0 without a remediation).
	MeanTimeToRemediate float64 `json:"meanTimeToRemediate"`
}

type listRemediationOutput struct {
	Since        awsapi.Time        `json:"since"`
	Until        awsapi.Time        `json:"until"`
	Repositories []RemediationEntry `json:"repositories"`
}

// listRemediationOp summarises the ledger per repository the caller may
// read over a period (default: the last 30 days).
func (s *Service) listRemediationOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in listRemediationInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	until := s.now().UTC()
	if in.Until != nil {
		until = in.Until.Time
	}
	from := until.AddDate(0, 0, -30)
	if in.Since != nil {
		from = in.Since.Time
	}
	if !from.Before(until) {
		return nil, validation("since must be before until")
	}
	stats, err := s.scan.Remediation(ctx, in.RepositoryNames, from, until)
	if err != nil {
		return nil, err
	}
	out := listRemediationOutput{Since: awsapi.At(from), Until: awsapi.At(until), Repositories: []RemediationEntry{}}
	for _, st := range stats {
		if !canRead(req.Principal, st.Repository) {
			continue
		}
		e := RemediationEntry{RepositoryName: st.Repository, Open: st.Open, Suppressed: st.Suppressed, New: st.New,
			Fixable: st.Fixable, Closed: map[string]int{}, Remediated: st.Remediated, MeanTimeToRemediate: st.MeanTimeToRemediate.Seconds()}
		for r, n := range st.Closed {
			e.Closed[string(r)] = n
		}
		out.Repositories = append(out.Repositories, e)
	}
	return out, nil
}
