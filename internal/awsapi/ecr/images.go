package ecr

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"github.com/drydockhq/drydock/internal/auth"
	"github.com/drydockhq/drydock/internal/awsapi"
)

type imageFilter struct {
	TagStatus   *string `json:"tagStatus"`
	ImageStatus *string `json:"imageStatus"`
}

// check returns the filter's tag status and image status, with defaults.
func (f *imageFilter) check() (tagStatus, imageStatus string, err error) {
	if f == nil {
		return "ANY", "ACTIVE", nil
	}
	if tagStatus, err = checkEnum("filter.tagStatus", f.TagStatus, tagStatuses, "ANY"); err != nil {
		return "", "", err
	}
	if imageStatus, err = checkEnum("filter.imageStatus", f.ImageStatus, imageStatusFilters, "ACTIVE"); err != nil {
		return "", "", err
	}
	return tagStatus, imageStatus, nil
}

// archivedOnly reports whether an image status filter matches nothing:
// Drydock has no archive, every image is ACTIVE.
func archivedOnly(imageStatus string) bool {
	return imageStatus == "ARCHIVED" || imageStatus == "ACTIVATING"
}

// readableRepo checks the repository name, that the caller may read it
// (see canRead) or do action when action is set, and that it exists.
func (s *Service) readableRepo(ctx context.Context, req *awsapi.Request, registryID, name *string, action auth.Action) (repo, error) {
	if err := s.checkRegistryID(registryID); err != nil {
		return repo{}, err
	}
	n, err := checkRepositoryName("repositoryName", name)
	if err != nil {
		return repo{}, err
	}
	ok := canRead(req.Principal, n)
	if action != "" {
		ok = req.Principal.Can(n, action)
	}
	if err := s.require(req, n, ok); err != nil {
		return repo{}, err
	}
	r, err := s.repository(ctx, n)
	if err != nil {
		return repo{}, s.repoError(n, err)
	}
	return r, nil
}

type describeImagesInput struct {
	RegistryID     *string           `json:"registryId"`
	RepositoryName *string           `json:"repositoryName"`
	ImageIDs       []ImageIdentifier `json:"imageIds"`
	NextToken      *string           `json:"nextToken"`
	MaxResults     *int              `json:"maxResults"`
	Filter         *imageFilter      `json:"filter"`
}

type describeImagesOutput struct {
	ImageDetails []ImageDetail `json:"imageDetails"`
	NextToken    *string       `json:"nextToken,omitempty"`
}

// imageCursor is where the next page of DescribeImages starts.
type imageCursor struct {
	After string `json:"a"`
}

// describeImagesOp serves DescribeImages: the images named by imageIds,
// or a page of the repository's images in order of digest. Every manifest
// is an image, the platform manifests of an index included (untagged),
// as in ECR.
func (s *Service) describeImagesOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in describeImagesInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	r, err := s.readableRepo(ctx, req, in.RegistryID, in.RepositoryName, "")
	if err != nil {
		return nil, err
	}
	size, err := checkMaxResults(in.MaxResults)
	if err != nil {
		return nil, err
	}
	tagStatus, imageStatus, err := in.Filter.check()
	if err != nil {
		return nil, err
	}
	out := describeImagesOutput{ImageDetails: []ImageDetail{}}
	if in.ImageIDs != nil {
		if len(in.ImageIDs) < 1 || len(in.ImageIDs) > maxBatchImageIDs {
			return nil, invalid("imageIds", "Member must have length between 1 and %d", maxBatchImageIDs)
		}
		if in.MaxResults != nil || in.NextToken != nil {
			return nil, awsapi.Errorf(CodeInvalidParameter, "maxResults and nextToken cannot be used with imageIds")
		}
		ims, err := s.describeByID(ctx, r, in.ImageIDs)
		if err != nil {
			return nil, err
		}
		for _, im := range ims {
			if matchesTagStatus(im, tagStatus) && !archivedOnly(imageStatus) {
				out.ImageDetails = append(out.ImageDetails, s.detail(r, im))
			}
		}
		if err := s.fillSizes(ctx, r, out.ImageDetails, ims); err != nil {
			return nil, err
		}
		if err := s.fillScanSummaries(ctx, req, r, out.ImageDetails); err != nil {
			return nil, err
		}
		return out, nil
	}
	if archivedOnly(imageStatus) {
		return out, nil
	}
	scope := "DescribeImages\x00" + r.Name + "\x00" + tagStatus
	var cur imageCursor
	if err := s.openPage(scope, in.NextToken, &cur); err != nil {
		return nil, err
	}
	ims, err := s.imagesPage(ctx, r.ID, cur.After, size+1, tagStatus)
	if err != nil {
		return nil, err
	}
	more := len(ims) > size
	if more {
		ims = ims[:size]
		if out.NextToken, err = s.nextPage(scope, true, imageCursor{After: ims[size-1].Digest}); err != nil {
			return nil, err
		}
	}
	for _, im := range ims {
		out.ImageDetails = append(out.ImageDetails, s.detail(r, im))
	}
	if err := s.fillSizes(ctx, r, out.ImageDetails, ims); err != nil {
		return nil, err
	}
	if err := s.fillScanSummaries(ctx, req, r, out.ImageDetails); err != nil {
		return nil, err
	}
	return out, nil
}

func matchesTagStatus(im image, tagStatus string) bool {
	switch tagStatus {
	case "TAGGED":
		return len(im.Tags) > 0
	case "UNTAGGED":
		return len(im.Tags) == 0
	}
	return true
}

// describeByID resolves DescribeImages' imageIds, in order and without
// repeats. Any identifier that names no image fails the call with
// ImageNotFoundException.
func (s *Service) describeByID(ctx context.Context, r repo, ids []ImageIdentifier) ([]image, error) {
	var digests []string
	seen := map[string]bool{}
	for _, id := range ids {
		ref, f := checkImageID(id)
		if f != nil {
			return nil, awsapi.Errorf(CodeInvalidParameter, "%s", f.reason)
		}
		d, err := s.resolve(ctx, r, ref)
		if err != nil {
			return nil, err
		}
		if !seen[d] {
			seen[d] = true
			digests = append(digests, d)
		}
	}
	found, err := s.imagesByDigest(ctx, r.ID, digests)
	if err != nil {
		return nil, err
	}
	out := make([]image, 0, len(digests))
	for _, d := range digests {
		im, ok := found[d]
		if !ok {
			return nil, s.imageNotFound(r, imageRef{digest: d})
		}
		out = append(out, im)
	}
	return out, nil
}

// resolve returns the digest an image reference names: its tag's digest
// (which must equal its digest when both are given), or its digest. A tag
// that does not exist is ImageNotFoundException.
func (s *Service) resolve(ctx context.Context, r repo, ref imageRef) (string, error) {
	if ref.tag == "" {
		return ref.digest, nil
	}
	d, err := s.tagDigest(ctx, r.ID, ref.tag)
	if errors.Is(err, errNotFound) || err == nil && ref.digest != "" && d != ref.digest {
		return "", s.imageNotFound(r, ref)
	}
	return d, err
}

func (s *Service) imageNotFound(r repo, ref imageRef) *awsapi.Error {
	return awsapi.Errorf(CodeImageNotFound, "The image with imageId %s does not exist within the repository with name '%s' in the registry with id '%s'",
		describeID(ref), r.Name, s.account.ID)
}

// detail is an image as DescribeImages returns it, without its size (see
// fillSizes).
func (s *Service) detail(r repo, im image) ImageDetail {
	d := ImageDetail{
		RegistryID:             s.account.ID,
		RepositoryName:         r.Name,
		ImageDigest:            im.Digest,
		ImageTags:              im.Tags,
		ImagePushedAt:          awsapi.At(im.PushedAt),
		ImageManifestMediaType: im.MediaType,
		ArtifactMediaType:      im.ArtifactType,
		SubjectManifestDigest:  im.Subject,
		ImageStatus:            "ACTIVE",
	}
	if !im.PulledAt.IsZero() {
		d.LastRecordedPullTime = awsapi.At(im.PulledAt)
	}
	return d
}

// manifestRefs is the part of a manifest that sizes an image.
type manifestRefs struct {
	Layers []struct {
		Size int64 `json:"size"`
	} `json:"layers"`
	Manifests []struct {
		Digest string `json:"digest"`
	} `json:"manifests"`
}

func parseRefs(content []byte) manifestRefs {
	var m manifestRefs
	_ = json.Unmarshal(content, &m) // the registry validated it when it was pushed
	return m
}

func layerSum(m manifestRefs) int64 {
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

// fillSizes sets imageSizeInBytes of details (which describe ims, in the
// same order, possibly fewer after filtering) as ECR defines it: the sum
// of the (compressed) layer sizes of an image manifest, and for an index
// the largest of its platform manifests in the repository.
func (s *Service) fillSizes(ctx context.Context, r repo, details []ImageDetail, ims []image) error {
	sizes := map[string]int64{}
	var missing []string
	refs := map[string]manifestRefs{}
	for _, im := range ims {
		m := parseRefs(im.Content)
		refs[im.Digest] = m
		sizes[im.Digest] = layerSum(m)
	}
	for _, m := range refs {
		for _, c := range m.Manifests {
			if _, ok := sizes[c.Digest]; !ok && !slices.Contains(missing, c.Digest) {
				missing = append(missing, c.Digest)
			}
		}
	}
	if len(missing) > 0 {
		children, err := s.imagesByDigest(ctx, r.ID, missing)
		if err != nil {
			return err
		}
		for d, c := range children {
			sizes[d] = layerSum(parseRefs(c.Content))
		}
	}
	for i := range details {
		m := refs[details[i].ImageDigest]
		if len(m.Manifests) == 0 {
			details[i].ImageSizeInBytes = sizes[details[i].ImageDigest]
			continue
		}
		var biggest int64
		for _, c := range m.Manifests {
			biggest = max(biggest, sizes[c.Digest])
		}
		details[i].ImageSizeInBytes = biggest
	}
	return nil
}

type listImagesOutput struct {
	ImageIDs  []ImageIdentifier `json:"imageIds"`
	NextToken *string           `json:"nextToken,omitempty"`
}

// listImagesOp serves ListImages: one identifier per tag of each image
// (digest and tag), and the digest alone for untagged images, in order of
// digest then tag.
func (s *Service) listImagesOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct {
		RegistryID     *string      `json:"registryId"`
		RepositoryName *string      `json:"repositoryName"`
		NextToken      *string      `json:"nextToken"`
		MaxResults     *int         `json:"maxResults"`
		Filter         *imageFilter `json:"filter"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	r, err := s.readableRepo(ctx, req, in.RegistryID, in.RepositoryName, "")
	if err != nil {
		return nil, err
	}
	size, err := checkMaxResults(in.MaxResults)
	if err != nil {
		return nil, err
	}
	tagStatus, imageStatus, err := in.Filter.check()
	if err != nil {
		return nil, err
	}
	out := listImagesOutput{ImageIDs: []ImageIdentifier{}}
	if archivedOnly(imageStatus) {
		return out, nil
	}
	scope := "ListImages\x00" + r.Name + "\x00" + tagStatus
	var cur imageID
	if err := s.openPage(scope, in.NextToken, &cur); err != nil {
		return nil, err
	}
	ids, err := s.imageIDs(ctx, r.ID, cur, size+1, tagStatus)
	if err != nil {
		return nil, err
	}
	if len(ids) > size {
		ids = ids[:size]
		if out.NextToken, err = s.nextPage(scope, true, ids[size-1]); err != nil {
			return nil, err
		}
	}
	for _, id := range ids {
		out.ImageIDs = append(out.ImageIDs, idOf(id.Digest, id.Tag))
	}
	return out, nil
}

// batchInput is the input of BatchGetImage and BatchDeleteImage.
type batchInput struct {
	RegistryID         *string           `json:"registryId"`
	RepositoryName     *string           `json:"repositoryName"`
	ImageIDs           []ImageIdentifier `json:"imageIds"`
	AcceptedMediaTypes []string          `json:"acceptedMediaTypes"`
}

func checkBatchIDs(ids []ImageIdentifier) error {
	if ids == nil {
		return required("imageIds")
	}
	if len(ids) < 1 || len(ids) > maxBatchImageIDs {
		return invalid("imageIds", "Member must have length between 1 and %d", maxBatchImageIDs)
	}
	return nil
}

type batchGetImageOutput struct {
	Images   []Image        `json:"images"`
	Failures []ImageFailure `json:"failures"`
}

// batchGetImageOp serves BatchGetImage: the manifests of the named images,
// and a failure for each identifier that names none. With
// acceptedMediaTypes, a manifest of another media type is a failure
// (Drydock does not convert manifests).
func (s *Service) batchGetImageOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in batchInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := checkBatchIDs(in.ImageIDs); err != nil {
		return nil, err
	}
	if in.AcceptedMediaTypes != nil && (len(in.AcceptedMediaTypes) < 1 || len(in.AcceptedMediaTypes) > maxAcceptedMediaTypes) {
		return nil, invalid("acceptedMediaTypes", "Member must have length between 1 and %d", maxAcceptedMediaTypes)
	}
	r, err := s.readableRepo(ctx, req, in.RegistryID, in.RepositoryName, auth.ActionPull)
	if err != nil {
		return nil, err
	}
	out := batchGetImageOutput{Images: []Image{}, Failures: []ImageFailure{}}
	// One slot per identifier, answered in the request's order.
	type slot struct {
		id      ImageIdentifier // as requested
		tag     string
		digest  string
		failure *imageIDFailure
	}
	var slots []slot
	var digests []string
	seen := map[imageRef]bool{}
	for _, id := range in.ImageIDs {
		ref, f := checkImageID(id)
		if f != nil {
			slots = append(slots, slot{id: id, failure: f})
			continue
		}
		if seen[ref] {
			continue
		}
		seen[ref] = true
		sl := slot{id: id, tag: ref.tag, digest: ref.digest}
		if ref.tag != "" {
			td, err := s.tagDigest(ctx, r.ID, ref.tag)
			switch {
			case errors.Is(err, errNotFound):
				sl.failure = failNotFound
			case err != nil:
				return nil, err
			case ref.digest != "" && td != ref.digest:
				sl.failure = failMismatch
			}
			sl.digest = td
		}
		if sl.failure == nil {
			digests = append(digests, sl.digest)
		}
		slots = append(slots, sl)
	}
	found, err := s.imagesByDigest(ctx, r.ID, uniq(digests))
	if err != nil {
		return nil, err
	}
	for _, sl := range slots {
		im, ok := found[sl.digest]
		switch {
		case sl.failure != nil:
		case !ok:
			sl.failure = failNotFound
		case in.AcceptedMediaTypes != nil && !slices.Contains(in.AcceptedMediaTypes, im.MediaType):
			sl.failure = &imageIDFailure{failNotFound.code, "The image's manifest media type " + im.MediaType + " is not among the accepted media types"}
		}
		if sl.failure != nil {
			out.Failures = append(out.Failures, ImageFailure{ImageID: sl.id, FailureCode: sl.failure.code, FailureReason: sl.failure.reason})
			continue
		}
		out.Images = append(out.Images, Image{
			RegistryID:             s.account.ID,
			RepositoryName:         r.Name,
			ImageID:                idOf(sl.digest, sl.tag),
			ImageManifest:          string(im.Content),
			ImageManifestMediaType: im.MediaType,
		})
	}
	return out, nil
}

type batchDeleteImageOutput struct {
	ImageIDs []ImageIdentifier `json:"imageIds"`
	Failures []ImageFailure    `json:"failures"`
}

// batchDeleteImageOp serves BatchDeleteImage. Each identifier is applied
// on its own (see deleteImage); the answer lists what was removed and a
// failure for each identifier that removed nothing.
func (s *Service) batchDeleteImageOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct {
		RegistryID     *string           `json:"registryId"`
		RepositoryName *string           `json:"repositoryName"`
		ImageIDs       []ImageIdentifier `json:"imageIds"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := checkBatchIDs(in.ImageIDs); err != nil {
		return nil, err
	}
	r, err := s.readableRepo(ctx, req, in.RegistryID, in.RepositoryName, auth.ActionDelete)
	if err != nil {
		return nil, err
	}
	out := batchDeleteImageOutput{ImageIDs: []ImageIdentifier{}, Failures: []ImageFailure{}}
	for _, id := range in.ImageIDs {
		ref, f := checkImageID(id)
		if f == nil {
			var res deleteOutcome
			if res, err = s.deleteImage(ctx, r.ID, ref); err != nil {
				return nil, err
			}
			for _, rm := range res.removed {
				out.ImageIDs = append(out.ImageIDs, idOf(rm.Digest, rm.Tag))
			}
			f = res.failure
		}
		if f != nil {
			out.Failures = append(out.Failures, ImageFailure{ImageID: id, FailureCode: f.code, FailureReason: f.reason})
		}
	}
	return out, nil
}
