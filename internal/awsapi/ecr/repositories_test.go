package ecr_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// TestRepositoriesSDK drives the repository operations with
// aws-sdk-go-v2's ECR client on SQLite and PostgreSQL.
func TestRepositoriesSDK(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		c := s.client(s.Admin)

		reg, err := c.DescribeRegistry(ctx, &sdkecr.DescribeRegistryInput{})
		if err != nil {
			t.Fatal(err)
		}
		regID := aws.ToString(reg.RegistryId)
		if len(regID) != 12 || regID != s.API.RegistryID() {
			t.Fatalf("registry id %q (service says %s)", regID, s.API.RegistryID())
		}
		if reg.ReplicationConfiguration == nil || len(reg.ReplicationConfiguration.Rules) != 0 {
			t.Errorf("replication configuration %+v, want empty rules", reg.ReplicationConfiguration)
		}

		before := time.Now().Add(-time.Second)
		out, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{
			RepositoryName:             aws.String("team/app"),
			ImageTagMutability:         types.ImageTagMutabilityImmutable,
			ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true},
			EncryptionConfiguration:    &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeKms, KmsKey: aws.String("alias/mine")},
			Tags:                       []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		r := out.Repository
		if got, want := aws.ToString(r.RepositoryArn), "arn:aws:ecr:us-west-2:"+regID+":repository/team/app"; got != want {
			t.Errorf("arn %s, want %s", got, want)
		}
		if got, want := aws.ToString(r.RepositoryUri), s.Host+"/team/app"; got != want {
			t.Errorf("uri %s, want %s", got, want)
		}
		if r.CreatedAt == nil || r.CreatedAt.Before(before) || r.CreatedAt.After(time.Now().Add(time.Second)) {
			t.Errorf("createdAt %v", r.CreatedAt)
		}
		if r.ImageTagMutability != types.ImageTagMutabilityImmutable || !r.ImageScanningConfiguration.ScanOnPush ||
			r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeKms || aws.ToString(r.EncryptionConfiguration.KmsKey) != "alias/mine" {
			t.Errorf("settings not kept: %+v %+v %+v", r.ImageTagMutability, r.ImageScanningConfiguration, r.EncryptionConfiguration)
		}

		// A region from another client's configuration shows in the ARN.
		other := sdkecr.New(s.client(s.Admin).Options(), func(o *sdkecr.Options) { o.Region = "eu-central-1" })
		d, err := other.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/app"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(d.Repositories[0].RepositoryArn); got != "arn:aws:ecr:eu-central-1:"+regID+":repository/team/app" {
			t.Errorf("arn from eu-central-1: %s", got)
		}
		if !d.Repositories[0].CreatedAt.Equal(*r.CreatedAt) {
			t.Errorf("createdAt %v then %v", r.CreatedAt, d.Repositories[0].CreatedAt)
		}

		_, err = c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("team/app")})
		wantCode(t, "create twice", err, "RepositoryAlreadyExistsException")
		for _, bad := range []string{"Team/App", "team//app", "-team", "team/", "a", "x_"} {
			_, err = c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String(bad)})
			wantCode(t, "create "+bad, err, "InvalidParameterException")
		}
		for name, in := range map[string]*sdkecr.CreateRepositoryInput{
			"mutability enum":  {ImageTagMutability: "SOMETIMES"},
			"encryption enum":  {EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: "ROT13"}},
			"kms key with AES": {EncryptionConfiguration: &types.EncryptionConfiguration{EncryptionType: types.EncryptionTypeAes256, KmsKey: aws.String("k")}},
			"exclusions without the mode": {ImageTagMutabilityExclusionFilters: []types.ImageTagMutabilityExclusionFilter{
				{FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard, Filter: aws.String("dev-*")}}},
			"mode without exclusions": {ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion},
			"registry id pattern":     {RegistryId: aws.String("notanaccount")},
			"other registry id":       {RegistryId: aws.String(otherID(regID))},
		} {
			in.RepositoryName = aws.String("valid-name")
			_, err := c.CreateRepository(ctx, in)
			wantCode(t, name, err, "InvalidParameterException")
		}
		many := make([]types.Tag, 51)
		for i := range many {
			many[i] = types.Tag{Key: aws.String(fmt.Sprint("k", i)), Value: aws.String("v")}
		}
		_, err = c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("tagged"), Tags: many})
		wantCode(t, "51 tags", err, "TooManyTagsException")
		_, err = c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("tagged"),
			Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}})
		wantCode(t, "aws: tag", err, "InvalidTagParameterException")
		// None of the refused requests created anything.
		all, err := c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all.Repositories) != 1 || all.NextToken != nil {
			t.Fatalf("after refused creates: %d repositories, token %v", len(all.Repositories), all.NextToken)
		}

		// With exclusions.
		ex, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{
			RepositoryName:     aws.String("team/excl"),
			ImageTagMutability: types.ImageTagMutabilityImmutableWithExclusion,
			ImageTagMutabilityExclusionFilters: []types.ImageTagMutabilityExclusionFilter{
				{FilterType: types.ImageTagMutabilityExclusionFilterTypeWildcard, Filter: aws.String("latest")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if f := ex.Repository.ImageTagMutabilityExclusionFilters; len(f) != 1 || aws.ToString(f[0].Filter) != "latest" {
			t.Errorf("exclusion filters %+v", f)
		}

		// Describe by name: missing names fail the call.
		_, err = c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/app", "nope-repo"}})
		wantCode(t, "describe a missing repository", err, "RepositoryNotFoundException")
		_, err = c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1001)})
		wantCode(t, "maxResults 1001", err, "InvalidParameterException")
		_, err = c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{MaxResults: aws.Int32(0)})
		wantCode(t, "maxResults 0", err, "InvalidParameterException")
		_, err = c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{NextToken: aws.String("forged")})
		wantCode(t, "forged token", err, "InvalidParameterException")

		// PutImageScanningConfiguration flips the stored flag.
		p, err := c.PutImageScanningConfiguration(ctx, &sdkecr.PutImageScanningConfigurationInput{
			RepositoryName: aws.String("team/app"), ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: false}})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(p.RegistryId) != regID || aws.ToString(p.RepositoryName) != "team/app" || p.ImageScanningConfiguration.ScanOnPush {
			t.Errorf("put image scanning configuration answered %+v", p)
		}
		d, err = c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{RepositoryNames: []string{"team/app"}})
		if err != nil {
			t.Fatal(err)
		}
		if d.Repositories[0].ImageScanningConfiguration.ScanOnPush || d.Repositories[0].ImageTagMutability != types.ImageTagMutabilityImmutable {
			t.Errorf("after put: %+v", d.Repositories[0])
		}
		_, err = c.PutImageScanningConfiguration(ctx, &sdkecr.PutImageScanningConfigurationInput{
			RepositoryName: aws.String("nope-repo"), ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}})
		wantCode(t, "put on a missing repository", err, "RepositoryNotFoundException")

		// A repository made by the registry (not through ECR) has ECR's
		// defaults, and PutImageScanningConfiguration works on it.
		if _, err := db.Registry().CreateRepository(ctx, "plain", time.Now()); err != nil {
			t.Fatal(err)
		}
		d, err = c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{RepositoryNames: []string{"plain"}})
		if err != nil {
			t.Fatal(err)
		}
		if r := d.Repositories[0]; r.ImageTagMutability != types.ImageTagMutabilityMutable || r.ImageScanningConfiguration.ScanOnPush ||
			r.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 {
			t.Errorf("defaults: %+v", r)
		}
		if _, err := c.PutImageScanningConfiguration(ctx, &sdkecr.PutImageScanningConfigurationInput{
			RepositoryName: aws.String("plain"), ImageScanningConfiguration: &types.ImageScanningConfiguration{ScanOnPush: true}}); err != nil {
			t.Fatal(err)
		}

		// Delete.
		del, err := c.DeleteRepository(ctx, &sdkecr.DeleteRepositoryInput{RepositoryName: aws.String("plain")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(del.Repository.RepositoryName) != "plain" || !del.Repository.ImageScanningConfiguration.ScanOnPush {
			t.Errorf("delete answered %+v", del.Repository)
		}
		_, err = c.DeleteRepository(ctx, &sdkecr.DeleteRepositoryInput{RepositoryName: aws.String("plain")})
		wantCode(t, "delete twice", err, "RepositoryNotFoundException")
		if _, err := db.Registry().Repository(ctx, "plain"); err != store.ErrRepositoryNotFound {
			t.Errorf("the registry still has the deleted repository: %v", err)
		}
		// A name can be used again, with fresh settings.
		again, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("plain")})
		if err != nil {
			t.Fatal(err)
		}
		if again.Repository.ImageScanningConfiguration.ScanOnPush {
			t.Error("a recreated repository inherited the old settings")
		}
	})
}

// otherID is a registry id that is not id.
func otherID(id string) string {
	if id == "111111111111" {
		return "222222222222"
	}
	return "111111111111"
}

// TestRepositoryPaginationSDK pages through repositories with the Go
// SDK's paginator and by hand: every repository once, in order, and no
// token twice.
func TestRepositoryPaginationSDK(t *testing.T) {
	ctx := context.Background()
	s := newStack(t, storetest.SQLite(t))
	c := s.client(s.Admin)
	var names []string
	for i := range 11 {
		n := fmt.Sprintf("page/repo-%02d", i)
		names = append(names, n)
		if _, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	pg := sdkecr.NewDescribeRepositoriesPaginator(c, &sdkecr.DescribeRepositoriesInput{MaxResults: aws.Int32(3)},
		func(o *sdkecr.DescribeRepositoriesPaginatorOptions) { o.StopOnDuplicateToken = true })
	pages := 0
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, r := range out.Repositories {
			got = append(got, aws.ToString(r.RepositoryName))
		}
	}
	if !slices.Equal(got, names) || pages != 4 {
		t.Fatalf("paginator: %d pages, %v", pages, got)
	}

	// By hand: tokens never repeat, even for the same position.
	seen := map[string]bool{}
	for range 2 {
		var token *string
		n := 0
		for {
			out, err := c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{MaxResults: aws.Int32(5), NextToken: token})
			if err != nil {
				t.Fatal(err)
			}
			n += len(out.Repositories)
			if out.NextToken == nil {
				break
			}
			if seen[*out.NextToken] {
				t.Fatalf("token %s repeated", *out.NextToken)
			}
			seen[*out.NextToken] = true
			token = out.NextToken
		}
		if n != len(names) {
			t.Fatalf("hand paging saw %d repositories", n)
		}
	}
	// A token is bound to its listing: DescribeImages refuses it.
	first, err := c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(names[0]), NextToken: first.NextToken})
	wantCode(t, "token of another operation", err, "InvalidParameterException")
	// A page size of 1000 returns everything at once.
	all, err := c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{MaxResults: aws.Int32(1000)})
	if err != nil || len(all.Repositories) != len(names) || all.NextToken != nil {
		t.Fatalf("page of 1000: %v, %d, %v", err, len(all.Repositories), all.NextToken)
	}
}

// TestPermissions checks what principals without the admin grant may do.
func TestPermissions(t *testing.T) {
	ctx := context.Background()
	s := newStack(t, storetest.SQLite(t))
	admin := s.client(s.Admin)
	for _, n := range []string{"team-a/app", "team-a/lib", "team-b/app"} {
		if _, err := admin.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	reader := s.client(s.key(t, "reader", auth.Grant{Action: auth.ActionPull, Pattern: "team-a/*"}))
	findings := s.client(s.key(t, "findings", auth.Grant{Action: auth.ActionReadFindings, Pattern: "team-b/*"}))

	_, err := reader.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("team-a/new")})
	wantCode(t, "create without admin", err, "AccessDeniedException")
	_, err = reader.DeleteRepository(ctx, &sdkecr.DeleteRepositoryInput{RepositoryName: aws.String("team-a/app")})
	wantCode(t, "delete without admin", err, "AccessDeniedException")
	_, err = reader.PutImageScanningConfiguration(ctx, &sdkecr.PutImageScanningConfigurationInput{
		RepositoryName: aws.String("team-a/app"), ImageScanningConfiguration: &types.ImageScanningConfiguration{}})
	wantCode(t, "put scanning configuration without admin", err, "AccessDeniedException")
	_, err = reader.BatchDeleteImage(ctx, &sdkecr.BatchDeleteImageInput{RepositoryName: aws.String("team-a/app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}}})
	wantCode(t, "batch delete without delete", err, "AccessDeniedException")

	list := func(c *sdkecr.Client, page int32) []string {
		t.Helper()
		var out []string
		pg := sdkecr.NewDescribeRepositoriesPaginator(c, &sdkecr.DescribeRepositoriesInput{MaxResults: aws.Int32(page)})
		for pg.HasMorePages() {
			p, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range p.Repositories {
				out = append(out, aws.ToString(r.RepositoryName))
			}
		}
		return out
	}
	if got := list(reader, 1); !slices.Equal(got, []string{"team-a/app", "team-a/lib"}) {
		t.Errorf("reader lists %v", got)
	}
	if got := list(findings, 1); !slices.Equal(got, []string{"team-b/app"}) {
		t.Errorf("findings reader lists %v", got)
	}
	// Named repositories out of reach are refused, whether they exist or not.
	for _, n := range []string{"team-b/app", "team-b/nope"} {
		_, err = reader.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{RepositoryNames: []string{n}})
		wantCode(t, "describe "+n, err, "AccessDeniedException")
	}
	_, err = findings.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("team-b/app")})
	if err != nil {
		t.Errorf("read-findings may describe images: %v", err)
	}
	_, err = findings.BatchGetImage(ctx, &sdkecr.BatchGetImageInput{RepositoryName: aws.String("team-b/app"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}}})
	wantCode(t, "read-findings may not pull manifests", err, "AccessDeniedException")
	// Every principal may log in (with its own grants).
	if _, err := findings.GetAuthorizationToken(ctx, &sdkecr.GetAuthorizationTokenInput{}); err != nil {
		t.Errorf("get authorization token: %v", err)
	}
}
