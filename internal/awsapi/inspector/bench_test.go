package inspector_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/drydockhq/drydock/internal/testutil/imagetest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/inspector2"
	"github.com/aws/aws-sdk-go-v2/service/inspector2/types"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// BenchmarkInspector measures ListFindings (a filtered first page) and
// ListFindingAggregations (REPOSITORY) through aws-sdk-go-v2 over HTTP,
// with the downgraded alpine image scanned in 50 repositories.
func BenchmarkInspector(b *testing.B) {
	for _, backend := range []struct {
		name string
		open func(testing.TB) *storeDB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		b.Run(backend.name, func(b *testing.B) {
			s := newStack(b, backend.open(b))
			ctx := context.Background()
			if _, err := s.scan.PutRegistryScanningConfiguration(ctx, scan.Config{ScanType: scan.Enhanced}); err != nil {
				b.Fatal(err)
			}
			img := downgraded(b, imagetest.Alpine310(b))
			const repos = 50
			var dg string
			for i := range repos {
				dg = s.push(b, img, fmt.Sprintf("bench-%02d:1.0", i))
			}
			for i := range repos {
				s.waitScanned(b, fmt.Sprintf("bench-%02d", i), dg)
			}
			fs, _, err := s.scan.ListFindings(ctx, scan.FindingQuery{}, scan.Page{})
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%d findings", len(fs))
			c := s.client(s.admin)
			b.Run("ListFindings/severity-and-prefix", func(b *testing.B) {
				for b.Loop() {
					if _, err := c.ListFindings(ctx, &inspector2.ListFindingsInput{MaxResults: aws.Int32(25), FilterCriteria: &types.FilterCriteria{
						Severity:               eq("MEDIUM"),
						EcrImageRepositoryName: []types.StringFilter{{Comparison: types.StringComparisonPrefix, Value: aws.String("bench-1")}},
					}}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("ListFindingAggregations/REPOSITORY", func(b *testing.B) {
				for b.Loop() {
					if _, err := c.ListFindingAggregations(ctx, &inspector2.ListFindingAggregationsInput{AggregationType: types.AggregationTypeRepository}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

type storeDB = store.DB

func openSQLite(t testing.TB) *storeDB   { return storetest.SQLite(t) }
func openPostgres(t testing.TB) *storeDB { return storetest.Postgres(t) }
