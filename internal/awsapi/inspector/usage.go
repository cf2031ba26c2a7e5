package inspector

import (
	"context"
	"time"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
)

// usageDays is the window ListUsageTotals sums: the last 30 UTC days,
// today included.
const usageDays = 30

type listUsageTotalsInput struct {
	AccountIDs []string `json:"accountIds,omitempty"`
	MaxResults *int     `json:"maxResults,omitempty"`
	NextToken  *string  `json:"nextToken,omitempty"`
}

// usage is inspector2's Usage. Drydock charges nothing:
// estimatedMonthlyCost is 0 (in the model's only currency, USD).
type usage struct {
	Currency             string  `json:"currency"`
	EstimatedMonthlyCost float64 `json:"estimatedMonthlyCost"`
	Total                float64 `json:"total"`
	Type                 string  `json:"type"`
}

type usageTotal struct {
	AccountID string  `json:"accountId"`
	Usage     []usage `json:"usage"`
}

type listUsageTotalsOutput struct {
	NextToken *string      `json:"nextToken,omitempty"`
	Totals    []usageTotal `json:"totals"`
}

// listUsageTotalsOp is ListUsageTotals: the registry's scans over the last
// 30 UTC days, in the repositories the caller may read, as the usage types
// of container image scanning: ECR_INITIAL_SCAN (enhanced scans of newly
// pushed or newly covered images; basic scans are ECR's, not Inspector's,
// and are left out) and ECR_RESCAN (re-evaluations of stored images).
// There is one account, so one total and never a next page.
func (s *Service) listUsageTotalsOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in listUsageTotalsInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.AccountIDs != nil && (len(in.AccountIDs) < 1 || len(in.AccountIDs) > 7000) {
		return nil, validation("accountIds: between 1 and 7000 account ids")
	}
	mine := len(in.AccountIDs) == 0
	for _, id := range in.AccountIDs {
		if !awsapi.RegistryIDPattern.MatchString(id) {
			return nil, validation("accountIds: %q is not a 12-digit account id", truncate(id, 40))
		}
		mine = mine || id == s.account.ID
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 500) {
		return nil, validation("maxResults: must be between 1 and 500")
	}
	// No listing here ever has a second page, so no token is valid.
	var cursor struct{}
	if err := s.open(scopeOf("ListUsageTotals", in.AccountIDs), in.NextToken, &cursor); err != nil {
		return nil, err
	}
	out := listUsageTotalsOutput{Totals: []usageTotal{}}
	if !mine {
		return out, nil
	}
	today := s.now().UTC().Truncate(24 * time.Hour)
	rows, err := s.scan.Usage(ctx, today.AddDate(0, 0, 1-usageDays), time.Time{}, "")
	if err != nil {
		return nil, err
	}
	var initial, rescan int64
	for _, r := range rows {
		if !canRead(req.Principal, r.Repository) {
			continue
		}
		switch r.Kind {
		case scan.UsageInitialEnhanced:
			initial += r.Count
		case scan.UsageRescan:
			rescan += r.Count
		}
	}
	out.Totals = append(out.Totals, usageTotal{AccountID: s.account.ID, Usage: []usage{
		{Currency: "USD", Total: float64(initial), Type: "ECR_INITIAL_SCAN"},
		{Currency: "USD", Total: float64(rescan), Type: "ECR_RESCAN"},
	}})
	return out, nil
}
