package ecr

import (
	"context"
	"errors"
	"strings"

	"github.com/drydockhq/drydock/internal/awsapi"
)

// repositoryOut is a repository as the API describes it. Its URI is the
// registry as the client reached it, so `docker push URI:tag` works.
func (s *Service) repositoryOut(req *awsapi.Request, r repo) Repository {
	enc := r.Encryption
	ec := &EncryptionConfiguration{EncryptionType: &enc}
	if r.KmsKey != "" {
		k := r.KmsKey
		ec.KmsKey = &k
	}
	return Repository{
		RepositoryArn:                      s.arn(req, r.Name),
		RegistryID:                         s.account.ID,
		RepositoryName:                     r.Name,
		RepositoryURI:                      req.Host + "/" + r.Name,
		CreatedAt:                          awsapi.At(r.CreatedAt),
		ImageTagMutability:                 r.Mutability,
		ImageTagMutabilityExclusionFilters: r.Exclusions,
		ImageScanningConfiguration:         &ImageScanningConfiguration{ScanOnPush: r.ScanOnPush},
		EncryptionConfiguration:            ec,
	}
}

type createRepositoryInput struct {
	RegistryID                         *string                             `json:"registryId"`
	RepositoryName                     *string                             `json:"repositoryName"`
	Tags                               []Tag                               `json:"tags"`
	ImageTagMutability                 *string                             `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters"`
	ImageScanningConfiguration         *ImageScanningConfiguration         `json:"imageScanningConfiguration"`
	EncryptionConfiguration            *EncryptionConfiguration            `json:"encryptionConfiguration"`
}

// createRepositoryOp serves CreateRepository. The settings are stored and
// returned as given; Drydock encrypts nothing with KMS (blobs are files in
// the data directory or objects in the configured bucket) and does not yet
// enforce tag immutability on push.
func (s *Service) createRepositoryOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in createRepositoryInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := s.checkRegistryID(in.RegistryID); err != nil {
		return nil, err
	}
	name, err := checkRepositoryName("repositoryName", in.RepositoryName)
	if err != nil {
		return nil, err
	}
	st, err := checkSettings(in)
	if err != nil {
		return nil, err
	}
	if err := s.requireAdmin(req, s.arn(req, name)); err != nil {
		return nil, err
	}
	r, err := s.createRepository(ctx, name, st, s.now())
	if errors.Is(err, errRepoExists) {
		return nil, awsapi.Errorf(CodeRepositoryExists, "The repository with name '%s' already exists in the registry with id '%s'", name, s.account.ID)
	}
	if err != nil {
		return nil, err
	}
	return struct {
		Repository Repository `json:"repository"`
	}{s.repositoryOut(req, r)}, nil
}

// checkSettings validates CreateRepository's settings and fills in the
// defaults.
func checkSettings(in createRepositoryInput) (settings, error) {
	st := defaultSettings()
	var err error
	if st.Mutability, err = checkEnum("imageTagMutability", in.ImageTagMutability, imageTagMutabilities, "MUTABLE"); err != nil {
		return st, err
	}
	if ex := in.ImageTagMutabilityExclusionFilters; ex != nil {
		if len(ex) < 1 || len(ex) > maxMutabilityExclusions {
			return st, invalid("imageTagMutabilityExclusionFilters", "Member must have length between 1 and %d", maxMutabilityExclusions)
		}
		for _, f := range ex {
			if f.FilterType == nil {
				return st, required("imageTagMutabilityExclusionFilters.filterType")
			}
			if _, err := checkEnum("imageTagMutabilityExclusionFilters.filterType", f.FilterType, exclusionFilterTypes, ""); err != nil {
				return st, err
			}
			if f.Filter == nil {
				return st, required("imageTagMutabilityExclusionFilters.filter")
			}
			if !exclusionFilterRE.MatchString(*f.Filter) {
				return st, invalid("imageTagMutabilityExclusionFilters.filter", "must satisfy regular expression '^[0-9a-zA-Z._*-]{1,128}$'")
			}
		}
		st.Exclusions = ex
	}
	withExclusion := strings.HasSuffix(st.Mutability, "_WITH_EXCLUSION")
	if withExclusion && st.Exclusions == nil {
		return st, awsapi.Errorf(CodeInvalidParameter, "imageTagMutabilityExclusionFilters are required when imageTagMutability is %s", st.Mutability)
	}
	if !withExclusion && st.Exclusions != nil {
		return st, awsapi.Errorf(CodeInvalidParameter, "imageTagMutabilityExclusionFilters can only be used with MUTABLE_WITH_EXCLUSION or IMMUTABLE_WITH_EXCLUSION")
	}
	if in.ImageScanningConfiguration != nil {
		st.ScanOnPush = in.ImageScanningConfiguration.ScanOnPush
	}
	if ec := in.EncryptionConfiguration; ec != nil {
		if ec.EncryptionType == nil {
			return st, required("encryptionConfiguration.encryptionType")
		}
		if st.Encryption, err = checkEnum("encryptionConfiguration.encryptionType", ec.EncryptionType, encryptionTypes, ""); err != nil {
			return st, err
		}
		if ec.KmsKey != nil {
			if st.Encryption == "AES256" {
				return st, awsapi.Errorf(CodeInvalidParameter, "Invalid parameter at 'encryptionConfiguration': a kmsKey can only be given with the KMS or KMS_DSSE encryption type")
			}
			if len(*ec.KmsKey) < 1 || len(*ec.KmsKey) > 2048 {
				return st, invalid("encryptionConfiguration.kmsKey", "Member must have length between 1 and 2048")
			}
			st.KmsKey = *ec.KmsKey
		}
	}
	if len(in.Tags) > maxRepositoryTags {
		return st, awsapi.Errorf(CodeTooManyTags, "A repository can have at most %d tags; %d were given", maxRepositoryTags, len(in.Tags))
	}
	seen := map[string]bool{}
	for _, t := range in.Tags {
		if t.Key == nil || t.Value == nil {
			return st, awsapi.Errorf(CodeInvalidTagParameter, "Every tag needs a Key and a Value")
		}
		k := *t.Key
		if len(k) < 1 || len(k) > maxTagKeyLength || len(*t.Value) > maxTagValueLength {
			return st, awsapi.Errorf(CodeInvalidTagParameter, "Tag keys are 1 to %d characters and tag values at most %d", maxTagKeyLength, maxTagValueLength)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return st, awsapi.Errorf(CodeInvalidTagParameter, "Tag keys starting with 'aws:' are reserved")
		}
		if seen[k] {
			return st, awsapi.Errorf(CodeInvalidTagParameter, "The tag key '%s' is given more than once", k)
		}
		seen[k] = true
	}
	if len(in.Tags) > 0 {
		st.Tags = in.Tags
	}
	return st, nil
}

type describeRepositoriesInput struct {
	RegistryID      *string  `json:"registryId"`
	RepositoryNames []string `json:"repositoryNames"`
	NextToken       *string  `json:"nextToken"`
	MaxResults      *int     `json:"maxResults"`
}

type describeRepositoriesOutput struct {
	Repositories []Repository `json:"repositories"`
	NextToken    *string      `json:"nextToken,omitempty"`
}

// repoCursor is where the next page of DescribeRepositories starts.
type repoCursor struct {
	After string `json:"a"`
}

// describeRepositoriesOp serves DescribeRepositories: the named
// repositories, or a page of all those the caller may see.
func (s *Service) describeRepositoriesOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in describeRepositoriesInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := s.checkRegistryID(in.RegistryID); err != nil {
		return nil, err
	}
	size, err := checkMaxResults(in.MaxResults)
	if err != nil {
		return nil, err
	}
	out := describeRepositoriesOutput{Repositories: []Repository{}}
	if in.RepositoryNames != nil {
		if len(in.RepositoryNames) < 1 || len(in.RepositoryNames) > maxDescribeRepositoryList {
			return nil, invalid("repositoryNames", "Member must have length between 1 and %d", maxDescribeRepositoryList)
		}
		if in.MaxResults != nil || in.NextToken != nil {
			return nil, awsapi.Errorf(CodeInvalidParameter, "maxResults and nextToken cannot be used with repositoryNames")
		}
		seen := map[string]bool{}
		for i := range in.RepositoryNames {
			name, err := checkRepositoryName("repositoryNames", &in.RepositoryNames[i])
			if err != nil {
				return nil, err
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			if err := s.require(req, name, canRead(req.Principal, name)); err != nil {
				return nil, err
			}
			r, err := s.repository(ctx, name)
			if err != nil {
				return nil, s.repoError(name, err)
			}
			out.Repositories = append(out.Repositories, s.repositoryOut(req, r))
		}
		return out, nil
	}
	const scope = "DescribeRepositories"
	var cur repoCursor
	if err := s.openPage(scope, in.NextToken, &cur); err != nil {
		return nil, err
	}
	// Read one more than a page to know whether another follows, skipping
	// the repositories the caller may not see.
	var page []repo
	after := cur.After
	for len(page) <= size {
		batch, err := s.repositories(ctx, after, size+1)
		if err != nil {
			return nil, err
		}
		for _, r := range batch {
			if canRead(req.Principal, r.Name) {
				page = append(page, r)
			}
		}
		if len(batch) < size+1 {
			break
		}
		after = batch[len(batch)-1].Name
	}
	more := len(page) > size
	if more {
		page = page[:size]
	}
	for _, r := range page {
		out.Repositories = append(out.Repositories, s.repositoryOut(req, r))
	}
	if more {
		if out.NextToken, err = s.nextPage(scope, true, repoCursor{After: page[len(page)-1].Name}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deleteRepositoryOp serves DeleteRepository.
func (s *Service) deleteRepositoryOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct {
		RegistryID     *string `json:"registryId"`
		RepositoryName *string `json:"repositoryName"`
		Force          bool    `json:"force"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := s.checkRegistryID(in.RegistryID); err != nil {
		return nil, err
	}
	name, err := checkRepositoryName("repositoryName", in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if err := s.requireAdmin(req, s.arn(req, name)); err != nil {
		return nil, err
	}
	r, err := s.deleteRepository(ctx, name, in.Force)
	if errors.Is(err, errRepoNotEmpty) {
		return nil, awsapi.Errorf(CodeRepositoryNotEmpty,
			"The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images", name, s.account.ID)
	}
	if err != nil {
		return nil, s.repoError(name, err)
	}
	return struct {
		Repository Repository `json:"repository"`
	}{s.repositoryOut(req, r)}, nil
}

// putImageScanningConfigurationOp serves the deprecated
// PutImageScanningConfiguration: it stores the repository's scanOnPush.
func (s *Service) putImageScanningConfigurationOp(ctx context.Context, req *awsapi.Request) (any, error) {
	var in struct {
		RegistryID                 *string                     `json:"registryId"`
		RepositoryName             *string                     `json:"repositoryName"`
		ImageScanningConfiguration *ImageScanningConfiguration `json:"imageScanningConfiguration"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := s.checkRegistryID(in.RegistryID); err != nil {
		return nil, err
	}
	name, err := checkRepositoryName("repositoryName", in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if in.ImageScanningConfiguration == nil {
		return nil, required("imageScanningConfiguration")
	}
	if err := s.requireAdmin(req, s.arn(req, name)); err != nil {
		return nil, err
	}
	r, err := s.setScanOnPush(ctx, name, in.ImageScanningConfiguration.ScanOnPush)
	if err != nil {
		return nil, s.repoError(name, err)
	}
	return struct {
		RegistryID                 string                     `json:"registryId"`
		RepositoryName             string                     `json:"repositoryName"`
		ImageScanningConfiguration ImageScanningConfiguration `json:"imageScanningConfiguration"`
	}{s.account.ID, r.Name, ImageScanningConfiguration{ScanOnPush: r.ScanOnPush}}, nil
}
