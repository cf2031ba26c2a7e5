package ecr_test

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdkecr "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/drydockhq/drydock/internal/store"
	"github.com/drydockhq/drydock/internal/store/storetest"
	"github.com/drydockhq/drydock/internal/testutil"
)

// want is what go-containerregistry (not Drydock) says of an image.
type want struct {
	digest, mediaType, configType string
	size                          int64
	manifest                      []byte
}

func describe(t *testing.T, img v1.Image) want {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	w := want{digest: d.String(), mediaType: string(mt), configType: string(m.Config.MediaType), manifest: raw}
	for _, l := range m.Layers {
		w.size += l.Size
	}
	return w
}

// pushed is the content TestImagesSDK pushes into team/app with
// go-containerregistry: two real images (Alpine 3.10 tagged 3.10 and
// latest, Docker's hello-world tagged hello), an index of both tagged
// multi, and an untagged variant of Alpine (another config, same layer).
type pushed struct {
	alpine, hello, variant want
	index                  string
	indexType              string
	indexRaw               []byte
	before, after          time.Time
}

func pushContent(t *testing.T, s *stack, pw, repo string) pushed {
	t.Helper()
	alpine, err := tarball.ImageFromPath(testutil.GunzipFixture(t, "images/alpine-3.10-docker-archive.tar.gz"), nil)
	if err != nil {
		t.Fatal(err)
	}
	hello, err := tarball.ImageFromPath(testutil.Fixture(t, "images/hello-world-v25.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	variant, err := mutate.Config(alpine, v1.Config{Env: []string{"DRYDOCK_TEST=1"}})
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: alpine}, mutate.IndexAddendum{Add: hello})
	opt := remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw})
	ref := func(r string) name.Reference {
		t.Helper()
		n, err := name.ParseReference(s.Host+"/"+repo+r, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	p := pushed{alpine: describe(t, alpine), hello: describe(t, hello), variant: describe(t, variant), before: time.Now().Add(-time.Second)}
	for _, w := range []struct {
		tag string
		img v1.Image
	}{{":3.10", alpine}, {":latest", alpine}, {":hello", hello}, {"@" + p.variant.digest, variant}} {
		if err := remote.Write(ref(w.tag), w.img, opt); err != nil {
			t.Fatalf("push %s: %v", w.tag, err)
		}
	}
	if err := remote.WriteIndex(ref(":multi"), idx, opt); err != nil {
		t.Fatalf("push index: %v", err)
	}
	p.after = time.Now().Add(time.Second)
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := idx.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	p.index, p.indexType, p.indexRaw = d.String(), string(mt), raw
	return p
}

// TestImagesSDK pushes real images with go-containerregistry (logged in
// with the password from GetAuthorizationToken) and reads them back with
// the Go SDK's DescribeImages, ListImages and BatchGetImage, then deletes
// with BatchDeleteImage. Expected digests, sizes and media types come from
// go-containerregistry's view of the pushed images.
func TestImagesSDK(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		c := s.client(s.Admin)
		const repo = "team/app"
		if _, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String(repo)}); err != nil {
			t.Fatal(err)
		}
		auth, err := c.GetAuthorizationToken(ctx, &sdkecr.GetAuthorizationTokenInput{})
		if err != nil {
			t.Fatal(err)
		}
		ad := auth.AuthorizationData[0]
		if aws.ToString(ad.ProxyEndpoint) != s.URL {
			t.Errorf("proxyEndpoint %s, want %s", aws.ToString(ad.ProxyEndpoint), s.URL)
		}
		if d := time.Until(aws.ToTime(ad.ExpiresAt)); d < 11*time.Hour+50*time.Minute || d > 12*time.Hour+time.Minute {
			t.Errorf("expiresAt %v is %v away, want 12 hours", ad.ExpiresAt, d)
		}
		p := pushContent(t, s, s.password(t, c), repo)

		// DescribeImages: every manifest is an image, the index's children
		// included.
		var details []types.ImageDetail
		pg := sdkecr.NewDescribeImagesPaginator(c, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo), MaxResults: aws.Int32(2)},
			func(o *sdkecr.DescribeImagesPaginatorOptions) { o.StopOnDuplicateToken = true })
		for pg.HasMorePages() {
			out, err := pg.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			details = append(details, out.ImageDetails...)
		}
		byDigest := map[string]types.ImageDetail{}
		for _, d := range details {
			byDigest[aws.ToString(d.ImageDigest)] = d
		}
		if len(details) != 4 || len(byDigest) != 4 {
			t.Fatalf("DescribeImages listed %d images: %v", len(details), keys(byDigest))
		}
		check := func(w want, tags []string) {
			t.Helper()
			d, ok := byDigest[w.digest]
			if !ok {
				t.Errorf("image %s not described", w.digest)
				return
			}
			if got := d.ImageTags; !slices.Equal(got, tags) {
				t.Errorf("%s: tags %v, want %v", w.digest, got, tags)
			}
			if aws.ToInt64(d.ImageSizeInBytes) != w.size {
				t.Errorf("%s: size %d, want %d (sum of its layers)", w.digest, aws.ToInt64(d.ImageSizeInBytes), w.size)
			}
			if aws.ToString(d.ImageManifestMediaType) != w.mediaType || aws.ToString(d.ArtifactMediaType) != w.configType {
				t.Errorf("%s: media types %s / %s, want %s / %s", w.digest, aws.ToString(d.ImageManifestMediaType),
					aws.ToString(d.ArtifactMediaType), w.mediaType, w.configType)
			}
			if d.ImagePushedAt == nil || d.ImagePushedAt.Before(p.before) || d.ImagePushedAt.After(p.after) {
				t.Errorf("%s: pushed at %v, not between %v and %v", w.digest, d.ImagePushedAt, p.before, p.after)
			}
			if aws.ToString(d.RegistryId) != s.API.RegistryID() || aws.ToString(d.RepositoryName) != repo {
				t.Errorf("%s: registry %s repository %s", w.digest, aws.ToString(d.RegistryId), aws.ToString(d.RepositoryName))
			}
			if d.ImageScanStatus != nil || d.ImageScanFindingsSummary != nil {
				t.Errorf("%s: scan fields before any scanning: %+v %+v", w.digest, d.ImageScanStatus, d.ImageScanFindingsSummary)
			}
		}
		check(p.alpine, []string{"3.10", "latest"})
		check(p.hello, []string{"hello"})
		check(p.variant, nil)
		idx := byDigest[p.index]
		if got := aws.ToString(idx.ImageManifestMediaType); got != p.indexType {
			t.Errorf("index media type %s, want %s", got, p.indexType)
		}
		if got := aws.ToInt64(idx.ImageSizeInBytes); got != max(p.alpine.size, p.hello.size) {
			t.Errorf("index size %d, want the largest platform image's %d", got, max(p.alpine.size, p.hello.size))
		}

		// Filters.
		tagged := describeDigests(t, c, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo),
			Filter: &types.DescribeImagesFilter{TagStatus: types.TagStatusTagged}})
		if want := sorted(p.alpine.digest, p.hello.digest, p.index); !slices.Equal(tagged, want) {
			t.Errorf("TAGGED: %v, want %v", tagged, want)
		}
		untagged := describeDigests(t, c, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo),
			Filter: &types.DescribeImagesFilter{TagStatus: types.TagStatusUntagged}})
		if !slices.Equal(untagged, []string{p.variant.digest}) {
			t.Errorf("UNTAGGED: %v", untagged)
		}
		byID := describeDigests(t, c, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{
			{ImageTag: aws.String("latest")}, {ImageDigest: aws.String(p.alpine.digest)}, {ImageDigest: aws.String(p.variant.digest)}}})
		if !slices.Equal(byID, sorted(p.alpine.digest, p.variant.digest)) {
			t.Errorf("by id: %v", byID)
		}
		_, err = c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo),
			ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}, {ImageTag: aws.String("nope")}}})
		wantCode(t, "describe a missing tag", err, "ImageNotFoundException")
		_, err = c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo),
			ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest"), ImageDigest: aws.String(p.hello.digest)}}})
		wantCode(t, "describe a tag with another digest", err, "ImageNotFoundException")
		_, err = c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String("nope-repo")})
		wantCode(t, "describe images of a missing repository", err, "RepositoryNotFoundException")
		_, err = c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo), Filter: &types.DescribeImagesFilter{TagStatus: "SOME"}})
		wantCode(t, "tagStatus enum", err, "InvalidParameterException")
		_, err = c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo), MaxResults: aws.Int32(5000)})
		wantCode(t, "maxResults 5000", err, "InvalidParameterException")
		_, err = c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo), MaxResults: aws.Int32(2),
			ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("latest")}}})
		wantCode(t, "maxResults with imageIds", err, "InvalidParameterException")

		// A pull shows as lastRecordedPullTime (the registry records it
		// just after answering, so poll).
		if _, err := remote.Get(mustRef(t, s.Host+"/"+repo+":hello"), remote.WithAuth(&authn.Basic{Username: "AWS", Password: s.password(t, c)})); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo),
				ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("hello")}}})
			if err != nil {
				t.Fatal(err)
			}
			if pt := out.ImageDetails[0].LastRecordedPullTime; pt != nil {
				if pt.Before(p.after.Add(-time.Second)) || pt.After(time.Now().Add(time.Second)) {
					t.Errorf("lastRecordedPullTime %v", pt)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the pull never showed in lastRecordedPullTime")
			}
			time.Sleep(50 * time.Millisecond)
		}

		// ListImages: one id per tag, the digest alone when untagged.
		var ids []string
		lp := sdkecr.NewListImagesPaginator(c, &sdkecr.ListImagesInput{RepositoryName: aws.String(repo), MaxResults: aws.Int32(1)},
			func(o *sdkecr.ListImagesPaginatorOptions) { o.StopOnDuplicateToken = true })
		pages := 0
		for lp.HasMorePages() {
			out, err := lp.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, id := range out.ImageIds {
				ids = append(ids, aws.ToString(id.ImageDigest)+" "+aws.ToString(id.ImageTag))
			}
		}
		wantIDs := []string{p.alpine.digest + " 3.10", p.alpine.digest + " latest", p.hello.digest + " hello", p.index + " multi", p.variant.digest + " "}
		sort.Strings(wantIDs)
		if !slices.Equal(ids, wantIDs) || pages != 5 {
			t.Errorf("ListImages in %d pages: %q, want %q", pages, ids, wantIDs)
		}
		lu, err := c.ListImages(ctx, &sdkecr.ListImagesInput{RepositoryName: aws.String(repo), Filter: &types.ListImagesFilter{TagStatus: types.TagStatusUntagged}})
		if err != nil {
			t.Fatal(err)
		}
		if len(lu.ImageIds) != 1 || aws.ToString(lu.ImageIds[0].ImageDigest) != p.variant.digest || lu.ImageIds[0].ImageTag != nil {
			t.Errorf("ListImages UNTAGGED: %+v", lu.ImageIds)
		}

		// BatchGetImage: the manifest bytes as pushed.
		bg, err := c.BatchGetImage(ctx, &sdkecr.BatchGetImageInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{
			{ImageTag: aws.String("3.10")}, {ImageDigest: aws.String(p.index)}, {ImageTag: aws.String("nope")},
			{ImageDigest: aws.String("sha256:0000000000000000000000000000000000000000000000000000000000000000")},
			{ImageDigest: aws.String("md5:abc")}, {}, {ImageTag: aws.String("hello"), ImageDigest: aws.String(p.alpine.digest)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(bg.Images) != 2 {
			t.Fatalf("BatchGetImage returned %d images", len(bg.Images))
		}
		if got := bg.Images[0]; aws.ToString(got.ImageManifest) != string(p.alpine.manifest) ||
			aws.ToString(got.ImageId.ImageDigest) != p.alpine.digest || aws.ToString(got.ImageId.ImageTag) != "3.10" ||
			aws.ToString(got.ImageManifestMediaType) != p.alpine.mediaType {
			t.Errorf("BatchGetImage 3.10: %+v", got)
		}
		if got := bg.Images[1]; aws.ToString(got.ImageManifest) != string(p.indexRaw) || aws.ToString(got.ImageManifestMediaType) != p.indexType {
			t.Errorf("BatchGetImage index: %+v", got)
		}
		codes := failureCodes(bg.Failures)
		if want := []string{"ImageNotFound", "ImageNotFound", "InvalidImageDigest", "MissingDigestAndTag", "ImageTagDoesNotMatchDigest"}; !slices.Equal(codes, want) {
			t.Errorf("BatchGetImage failures %v, want %v", codes, want)
		}
		acc, err := c.BatchGetImage(ctx, &sdkecr.BatchGetImageInput{RepositoryName: aws.String(repo),
			ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("3.10")}}, AcceptedMediaTypes: []string{"application/vnd.oci.image.manifest.v1+json"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(acc.Images) != 0 || len(acc.Failures) != 1 {
			t.Errorf("a Docker manifest was returned though only OCI was accepted: %+v", acc)
		}
		acc, err = c.BatchGetImage(ctx, &sdkecr.BatchGetImageInput{RepositoryName: aws.String(repo),
			ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("3.10")}}, AcceptedMediaTypes: []string{p.alpine.mediaType}})
		if err != nil || len(acc.Images) != 1 {
			t.Errorf("accepted media type: %v %+v", err, acc)
		}

		// BatchDeleteImage.
		bd, err := c.BatchDeleteImage(ctx, &sdkecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{
			{ImageTag: aws.String("latest")},                                        // one of two tags: the image stays
			{ImageDigest: aws.String(p.hello.digest)},                               // listed by the index: refused
			{ImageTag: aws.String("3.10"), ImageDigest: aws.String(p.hello.digest)}, // wrong pair
			{ImageDigest: aws.String(p.variant.digest)},                             // untagged: deleted
			{ImageTag: aws.String("nope")},
		}})
		if err != nil {
			t.Fatal(err)
		}
		removed := idStrings(bd.ImageIds)
		if want := []string{p.alpine.digest + " latest", p.variant.digest + " "}; !slices.Equal(removed, want) {
			t.Errorf("BatchDeleteImage removed %q, want %q", removed, want)
		}
		if want := []string{"ImageReferencedByManifestList", "ImageTagDoesNotMatchDigest", "ImageNotFound"}; !slices.Equal(failureCodes(bd.Failures), want) {
			t.Errorf("BatchDeleteImage failures %v, want %v", failureCodes(bd.Failures), want)
		}
		// Deleting the index frees its children; then the last tag of an
		// image takes the image with it.
		bd, err = c.BatchDeleteImage(ctx, &sdkecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{
			{ImageTag: aws.String("multi")}, {ImageTag: aws.String("3.10")}, {ImageDigest: aws.String(p.hello.digest)}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(bd.Failures) != 0 || len(bd.ImageIds) != 3 {
			t.Errorf("second BatchDeleteImage: %+v", bd)
		}
		left := describeDigests(t, c, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo)})
		if len(left) != 0 {
			t.Errorf("images left: %v", left)
		}
		_, err = c.BatchDeleteImage(ctx, &sdkecr.BatchDeleteImageInput{RepositoryName: aws.String("nope-repo"),
			ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("x")}}})
		wantCode(t, "batch delete in a missing repository", err, "RepositoryNotFoundException")

		// A repository with an image is not deleted without force.
		if err := remote.Write(mustRef(t, s.Host+"/"+repo+":again"), mustImage(t), remote.WithAuth(&authn.Basic{Username: "AWS", Password: s.password(t, c)})); err != nil {
			t.Fatal(err)
		}
		_, err = c.DeleteRepository(ctx, &sdkecr.DeleteRepositoryInput{RepositoryName: aws.String(repo)})
		wantCode(t, "delete a repository with an image", err, "RepositoryNotEmptyException")
		if got := describeDigests(t, c, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo)}); len(got) != 1 {
			t.Errorf("the refused delete changed the images: %v", got)
		}
		if _, err := c.DeleteRepository(ctx, &sdkecr.DeleteRepositoryInput{RepositoryName: aws.String(repo), Force: true}); err != nil {
			t.Fatal(err)
		}
		_, err = c.DescribeImages(ctx, &sdkecr.DescribeImagesInput{RepositoryName: aws.String(repo)})
		wantCode(t, "describe images after delete", err, "RepositoryNotFoundException")
	})
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// mustImage is Docker's hello-world from the fixtures.
func mustImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := tarball.ImageFromPath(testutil.Fixture(t, "images/hello-world-v25.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// describeDigests lists the digests DescribeImages returns, sorted.
func describeDigests(t *testing.T, c *sdkecr.Client, in *sdkecr.DescribeImagesInput) []string {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, d := range out.ImageDetails {
		ds = append(ds, aws.ToString(d.ImageDigest))
	}
	sort.Strings(ds)
	return ds
}

func sorted(s ...string) []string {
	sort.Strings(s)
	return s
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func failureCodes(fs []types.ImageFailure) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.FailureCode))
	}
	return out
}

func idStrings(ids []types.ImageIdentifier) []string {
	var out []string
	for _, id := range ids {
		out = append(out, aws.ToString(id.ImageDigest)+" "+aws.ToString(id.ImageTag))
	}
	return out
}

// TestDeleteRepositoryWithBlobsOnly deletes, without force, a repository
// that holds a pushed blob but no image: it is empty in ECR's sense, and
// the blob is no longer readable through the name once it is recreated.
func TestDeleteRepositoryWithBlobsOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newStack(t, db)
		c := s.client(s.Admin)
		if _, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("blobs/only")}); err != nil {
			t.Fatal(err)
		}
		layers, err := mustImage(t).Layers()
		if err != nil {
			t.Fatal(err)
		}
		repo, err := name.NewRepository(s.Host+"/blobs/only", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		opt := remote.WithAuth(&authn.Basic{Username: "AWS", Password: s.password(t, c)})
		if err := remote.WriteLayer(repo, layers[0], opt); err != nil {
			t.Fatal(err)
		}
		d, err := layers[0].Digest()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Layer(repo.Digest(d.String()), opt); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Registry().Blob(ctx, "blobs/only", d.String()); err != nil {
			t.Fatalf("the blob is not linked: %v", err)
		}
		if _, err := c.DeleteRepository(ctx, &sdkecr.DeleteRepositoryInput{RepositoryName: aws.String("blobs/only")}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateRepository(ctx, &sdkecr.CreateRepositoryInput{RepositoryName: aws.String("blobs/only")}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Registry().Blob(ctx, "blobs/only", d.String()); err != store.ErrBlobNotFound {
			t.Fatalf("the recreated repository still links the blob: %v", err)
		}
	})
}
