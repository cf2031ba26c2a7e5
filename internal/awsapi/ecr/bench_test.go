package ecr_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/scan"
	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
)

// Benchmarks of whole API calls through aws-sdk-go-v2 (signing, HTTP on
// loopback, SigV4 verification with a key lookup, the store, JSON):
//
//	go test -run '^$' -bench . -benchtime 200x -count 5 ./internal/awsapi/ecr/

// BenchmarkDescribeRegistry is the fixed cost of one call.
func BenchmarkDescribeRegistry(b *testing.B) {
	s := newBenchStack(b, storetest.SQLite(b))
	c := s.client(s.Admin)
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.DescribeRegistry(ctx, &sdkecr.DescribeRegistryInput{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDescribeRepositoriesPage reads a page of 100 out of 1,000
// repositories.
func BenchmarkDescribeRepositoriesPage(b *testing.B) {
	db := storetest.SQLite(b)
	s := newBenchStack(b, db)
	c := s.client(s.Admin)
	ctx := context.Background()
	for i := range 1000 {
		if _, err := db.Registry().CreateRepository(ctx, fmt.Sprintf("bench/repo-%04d", i), time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	first, err := c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{})
	if err != nil || len(first.Repositories) != 100 || first.NextToken == nil {
		b.Fatalf("first page: %v", err)
	}
	for b.Loop() {
		out, err := c.DescribeRepositories(ctx, &sdkecr.DescribeRepositoriesInput{NextToken: first.NextToken})
		if err != nil || len(out.Repositories) != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkDescribeImagesPage reads a page of 100 out of 500 images (one
// layer, two tags each).
func BenchmarkDescribeImagesPage(b *testing.B) {
	db := storetest.SQLite(b)
	s := newBenchStack(b, db)
	c := s.client(s.Admin)
	ctx := context.Background()
	seedImages(b, db, "bench/images", 500)
	first, err := c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("bench/images")})
	if err != nil || len(first.ImageDetails) != 100 || first.NextToken == nil {
		b.Fatalf("first page: %v", err)
	}
	for b.Loop() {
		out, err := c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("bench/images"), NextToken: first.NextToken})
		if err != nil || len(out.ImageDetails) != 100 {
			b.Fatal(err)
		}
	}
}

// BenchmarkListImagesPage reads a page of 1,000 image ids out of 1,000
// (500 images with two tags each).
func BenchmarkListImagesPage(b *testing.B) {
	db := storetest.SQLite(b)
	s := newBenchStack(b, db)
	c := s.client(s.Admin)
	ctx := context.Background()
	seedImages(b, db, "bench/images", 500)
	for b.Loop() {
		out, err := c.ListImages(ctx, &sdkecr.ListImagesInput{RepositoryName: aws.String("bench/images"), MaxResults: aws.Int32(1000)})
		if err != nil || len(out.ImageIds) != 1000 {
			b.Fatal(err)
		}
	}
}

func newBenchStack(b *testing.B, db *store.DB) *stack {
	b.Helper()
	return newStack(b, db)
}

// seedImages stores n image manifests with two tags each straight into the
// registry's metadata (one shared config and layer blob).
func seedImages(b testing.TB, db *store.DB, repoName string, n int) {
	b.Helper()
	ctx := context.Background()
	reg := db.Registry()
	repo, err := reg.CreateRepository(ctx, repoName, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	config, layer := digest.FromString("config"), digest.FromString("layer")
	for _, d := range []digest.Digest{config, layer} {
		if err := reg.CommitBlob(ctx, repo.ID, d.String(), 1000, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":1000},`+
			`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":1000}],`+
			`"annotations":{"n":"%d"}}`, config, layer, i)
		if err := reg.PutManifest(ctx, store.ManifestPut{
			RepositoryID: repo.ID, Repository: repoName, Digest: digest.FromString(m).String(),
			MediaType: "application/vnd.oci.image.manifest.v1+json", ArtifactType: "application/vnd.oci.image.config.v1+json",
			Content: []byte(m), Blobs: []store.BlobRef{{Digest: config.String(), Size: 1000}, {Digest: layer.String(), Size: 1000}},
			Tags: []string{fmt.Sprintf("v%d", i), fmt.Sprintf("build-%d", i)},
		}, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDescribeImageScanFindings reads the enhanced findings of an
// image (the real alpine:3.10 with openssl 1.1.1c-r0 against the Alpine
// secdb: 6 findings), with everything a call costs.
func BenchmarkDescribeImageScanFindings(b *testing.B) {
	s := newStackWith(b, storetest.SQLite(b), applySecdb(b))
	ctx := context.Background()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Scan.Run(runCtx, scan.RunOptions{PushPoll: 20 * time.Millisecond}) }()
	b.Cleanup(func() { stop(); <-done })
	c := s.client(s.Admin)
	if _, err := c.PutRegistryScanningConfiguration(ctx, &sdkecr.PutRegistryScanningConfigurationInput{ScanType: types.ScanTypeEnhanced}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("bench/scan")}); err != nil {
		b.Fatal(err)
	}
	ref, err := name.ParseReference(s.Host+"/bench/scan:v1", name.Insecure)
	if err != nil {
		b.Fatal(err)
	}
	pw, _, err := s.Auth.LoginPassword(ctx, s.Admin.ID)
	if err != nil {
		b.Fatal(err)
	}
	if err := remote.Write(ref, oldOpenSSLImage(b), remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw})); err != nil {
		b.Fatal(err)
	}
	in := &sdkecr.DescribeImageScanFindingsInput{RepositoryName: aws.String("bench/scan"), ImageId: &types.ImageIdentifier{ImageTag: aws.String("v1")}}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := c.DescribeImageScanFindings(ctx, in)
		if err == nil && out.ImageScanStatus.Status == types.ScanStatusActive {
			if len(out.ImageScanFindings.EnhancedFindings) != 6 {
				b.Fatalf("%d findings", len(out.ImageScanFindings.EnhancedFindings))
			}
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("scan not done: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for b.Loop() {
		if _, err := c.DescribeImageScanFindings(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}
