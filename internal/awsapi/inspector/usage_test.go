package inspector_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil/imagetest"
)

// TestListUsageTotals: two enhanced scans on push and one re-scan show as
// ECR_INITIAL_SCAN 2 and ECR_RESCAN 1 to the SDK and the AWS CLI; a key
// that reads one repository sees that repository's scans only; another
// account's totals are empty; bad parameters are ValidationExceptions.
func TestListUsageTotals(t *testing.T) {
	img := downgraded(t, imagetest.Alpine310(t))
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		account, err := awsapi.LoadAccount(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.scan.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced, Rules: []scan.Rule{
			{ScanFrequency: scan.ContinuousScan, RepositoryFilters: []scan.Filter{{Filter: "*", FilterType: scan.FilterWildcard}}},
		}}); err != nil {
			t.Fatal(err)
		}
		dg := s.push(t, img, "app-prod:v1")
		s.push(t, img, "team/api:v1")
		s.waitScanned(t, "app-prod", dg)
		s.waitScanned(t, "team/api", dg)
		// A continuous re-scan of app-prod's image, queued as Run queues
		// them when the vulnerability database changes.
		if _, err := s.scan.Queue().Enqueue(ctx, scan.NewJob{Repository: "app-prod", Digest: dg, Kind: "scan",
			Payload: `{"scanType":"ENHANCED","frequency":"CONTINUOUS_SCAN","trigger":"rescan"}`}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			rows, err := s.scan.Usage(ctx, time.Now().AddDate(0, 0, -1), time.Time{}, "app-prod")
			if err != nil {
				t.Fatal(err)
			}
			if scan.UsageTotals(rows)[scan.UsageRescan] == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("re-scan not counted: %+v", rows)
			}
			time.Sleep(25 * time.Millisecond)
		}

		totals := func(k auth.AccessKey, in *inspector2.ListUsageTotalsInput) map[types.UsageType]types.Usage {
			t.Helper()
			out, err := s.client(k).ListUsageTotals(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if out.NextToken != nil {
				t.Errorf("nextToken %q with one account", *out.NextToken)
			}
			if len(out.Totals) == 0 {
				return nil
			}
			if len(out.Totals) != 1 || aws.ToString(out.Totals[0].AccountId) != account.ID {
				t.Fatalf("totals %+v, want one for account %s", out.Totals, account.ID)
			}
			m := map[types.UsageType]types.Usage{}
			for _, u := range out.Totals[0].Usage {
				m[u.Type] = u
			}
			return m
		}
		check := func(who string, got map[types.UsageType]types.Usage, initial, rescan float64) {
			t.Helper()
			if len(got) != 2 {
				t.Errorf("%s: usage types %v, want ECR_INITIAL_SCAN and ECR_RESCAN", who, got)
			}
			for typ, want := range map[types.UsageType]float64{types.UsageTypeEcrInitialScan: initial, types.UsageTypeEcrRescan: rescan} {
				u := got[typ]
				if _, ok := got[typ]; !ok || u.Total != want || u.Currency != types.CurrencyUsd || u.EstimatedMonthlyCost != 0 {
					t.Errorf("%s: %s = %+v, want total %v at no cost in USD", who, typ, u, want)
				}
			}
		}
		check("admin", totals(s.admin, &inspector2.ListUsageTotalsInput{}), 2, 1)
		check("admin, own account", totals(s.admin, &inspector2.ListUsageTotalsInput{AccountIds: []string{"111122223333", account.ID}, MaxResults: aws.Int32(10)}), 2, 1)
		if got := totals(s.admin, &inspector2.ListUsageTotalsInput{AccountIds: []string{"111122223333"}}); got != nil {
			t.Errorf("another account's usage: %v", got)
		}
		reader, err := s.auth.CreateKey(ctx, "reader", []auth.Grant{{Action: auth.ActionPull, Pattern: "team/*"}})
		if err != nil {
			t.Fatal(err)
		}
		check("team reader", totals(reader, &inspector2.ListUsageTotalsInput{}), 1, 0)

		_, err = s.client(s.admin).ListUsageTotals(ctx, &inspector2.ListUsageTotalsInput{AccountIds: []string{"12345"}})
		wantCode(t, "short account id", err, "ValidationException")
		_, err = s.client(s.admin).ListUsageTotals(ctx, &inspector2.ListUsageTotalsInput{MaxResults: aws.Int32(501)})
		wantCode(t, "maxResults 501", err, "ValidationException")
		_, err = s.client(s.admin).ListUsageTotals(ctx, &inspector2.ListUsageTotalsInput{NextToken: aws.String("made-up")})
		wantCode(t, "made-up nextToken", err, "ValidationException")

		// The AWS CLI (it pages with maxResults).
		var cli struct {
			Totals []struct {
				AccountID string `json:"accountId"`
				Usage     []struct {
					Currency             string  `json:"currency"`
					EstimatedMonthlyCost float64 `json:"estimatedMonthlyCost"`
					Total                float64 `json:"total"`
					Type                 string  `json:"type"`
				} `json:"usage"`
			} `json:"totals"`
		}
		if err := json.Unmarshal(s.cliOK(t, "inspector2", "list-usage-totals", "--page-size", "5"), &cli); err != nil {
			t.Fatal(err)
		}
		if len(cli.Totals) != 1 || cli.Totals[0].AccountID != account.ID || len(cli.Totals[0].Usage) != 2 {
			t.Fatalf("CLI totals %+v", cli.Totals)
		}
		for _, u := range cli.Totals[0].Usage {
			want := map[string]float64{"ECR_INITIAL_SCAN": 2, "ECR_RESCAN": 1}[u.Type]
			if u.Total != want || u.Currency != "USD" || u.EstimatedMonthlyCost != 0 {
				t.Errorf("CLI usage %+v", u)
			}
		}
	})
}
