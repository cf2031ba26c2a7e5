package ecr

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/drydockhq/drydock/internal/awsapi"
	"github.com/drydockhq/drydock/internal/registry"
)

// ECR's error codes (the model's exception shapes).
const (
	CodeInvalidParameter      = "InvalidParameterException"
	CodeServer                = "ServerException"
	CodeRepositoryNotFound    = "RepositoryNotFoundException"
	CodeRepositoryExists      = "RepositoryAlreadyExistsException"
	CodeRepositoryNotEmpty    = "RepositoryNotEmptyException"
	CodeImageNotFound         = "ImageNotFoundException"
	CodeInvalidTagParameter   = "InvalidTagParameterException"
	CodeTooManyTags           = "TooManyTagsException"
	CodeLimitExceeded         = "LimitExceededException"
	CodeValidation            = "ValidationException"
	CodeUnsupportedImageType  = "UnsupportedImageTypeException"
	CodeScanNotFound          = "ScanNotFoundException"
	defaultPageSize           = 100
	maxPageSize               = 1000
	maxRepositoryTags         = 50
	maxTagKeyLength           = 128
	maxTagValueLength         = 256
	minRepositoryNameLength   = 2
	maxMutabilityExclusions   = 5
	maxImageTagLength         = 300
	maxBatchImageIDs          = 100
	maxAcceptedMediaTypes     = 100
	maxDescribeRepositoryList = 100
)

// The model's enums.
var (
	imageTagMutabilities = []string{"MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"}
	encryptionTypes      = []string{"AES256", "KMS", "KMS_DSSE"}
	tagStatuses          = []string{"TAGGED", "UNTAGGED", "ANY"}
	imageStatusFilters   = []string{"ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"}
	exclusionFilterTypes = []string{"WILDCARD"}
	exclusionFilterRE    = regexp.MustCompile(`^[0-9a-zA-Z._*-]{1,128}$`)
)

// repositoryNamePattern is the model's pattern for repository names, shown
// in error messages; registry.ValidateName checks the same grammar.
const repositoryNamePattern = `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`

// invalid is the InvalidParameterException ECR answers for a member that
// breaks a model constraint.
func invalid(member, constraint string, args ...any) *awsapi.Error {
	return awsapi.Errorf(CodeInvalidParameter, "Invalid parameter at '%s' failed to satisfy constraint: '%s'",
		member, fmt.Sprintf(constraint, args...))
}

func required(member string) *awsapi.Error {
	return invalid(member, "Member must not be null")
}

// checkRepositoryName checks a repository name: the model's 2 to 256
// characters and pattern, and the registry's own limit of 255 so that the
// repository can be pushed to.
func checkRepositoryName(member string, name *string) (string, error) {
	if name == nil {
		return "", required(member)
	}
	n := *name
	if len(n) < minRepositoryNameLength || len(n) > registry.MaxNameLength {
		return "", invalid(member, "Member must have length between %d and %d", minRepositoryNameLength, registry.MaxNameLength)
	}
	if registry.ValidateName(n) != nil {
		return "", invalid(member, "must satisfy regular expression '%s'", repositoryNamePattern)
	}
	return n, nil
}

// checkRegistryID accepts an absent registryId or this registry's id.
func (s *Service) checkRegistryID(id *string) error {
	if id == nil {
		return nil
	}
	if !awsapi.RegistryIDPattern.MatchString(*id) {
		return invalid("registryId", "must satisfy regular expression '[0-9]{12}'")
	}
	if *id != s.account.ID {
		return awsapi.Errorf(CodeInvalidParameter, "Invalid parameter at 'registryId': this registry's id is '%s', not '%s'", s.account.ID, *id)
	}
	return nil
}

// checkMaxResults returns the page size: the default when absent, else
// maxResults within 1..1000.
func checkMaxResults(n *int) (int, error) {
	if n == nil {
		return defaultPageSize, nil
	}
	if *n < 1 {
		return 0, invalid("maxResults", "Member must have value greater than or equal to 1")
	}
	if *n > maxPageSize {
		return 0, invalid("maxResults", "Member must have value less than or equal to %d", maxPageSize)
	}
	return *n, nil
}

// checkEnum checks an optional enum member and returns its value or def.
func checkEnum(member string, v *string, allowed []string, def string) (string, error) {
	if v == nil {
		return def, nil
	}
	for _, a := range allowed {
		if *v == a {
			return a, nil
		}
	}
	return "", invalid(member, "Member must satisfy enum value set: [%s]", strings.Join(allowed, ", "))
}

// imageRef is a checked image identifier: digest, tag or both.
type imageRef struct {
	digest, tag string
}

// imageIDFailure is a failure code and reason of a batch image operation.
type imageIDFailure struct {
	code, reason string
}

// checkImageID checks an image identifier the way the batch operations
// report it: a failure code, not an error.
func checkImageID(id ImageIdentifier) (imageRef, *imageIDFailure) {
	var ref imageRef
	if id.ImageDigest == nil && id.ImageTag == nil {
		return ref, &imageIDFailure{"MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null"}
	}
	if id.ImageDigest != nil {
		d, err := digest.Parse(*id.ImageDigest)
		if err != nil {
			return ref, &imageIDFailure{"InvalidImageDigest", "Invalid request parameters: the image digest must be ALGORITHM:HEX, such as sha256 and 64 hexadecimal digits"}
		}
		ref.digest = d.String()
	}
	if id.ImageTag != nil {
		if len(*id.ImageTag) < 1 || len(*id.ImageTag) > maxImageTagLength || !registry.ValidTag(*id.ImageTag) {
			return ref, &imageIDFailure{"InvalidImageTag", "Invalid request parameters: an image tag is 1 to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"}
		}
		ref.tag = *id.ImageTag
	}
	return ref, nil
}

// idOf is the ImageIdentifier of a reference, for output.
func idOf(digest, tag string) ImageIdentifier {
	var id ImageIdentifier
	if digest != "" {
		id.ImageDigest = &digest
	}
	if tag != "" {
		id.ImageTag = &tag
	}
	return id
}

// describeID renders an image identifier the way ECR's messages do.
func describeID(r imageRef) string {
	q := func(s string) string {
		if s == "" {
			return "null"
		}
		return s
	}
	return fmt.Sprintf("{imageDigest:'%s', imageTag:'%s'}", q(r.digest), q(r.tag))
}
