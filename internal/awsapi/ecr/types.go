package ecr

import "github.com/drydockhq/drydock/internal/awsapi"

// The wire shapes of the ECR API (botocore model 1.43.11, the newest the
// contract captured). Optional output members are omitted when unset;
// input members are pointers where "absent" and "empty" differ.

// Tag is a repository tag. The model capitalises these two members.
type Tag struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

// ImageScanningConfiguration is the deprecated per-repository scan on push.
type ImageScanningConfiguration struct {
	ScanOnPush bool `json:"scanOnPush"`
}

// EncryptionConfiguration is how a repository is encrypted at rest.
type EncryptionConfiguration struct {
	EncryptionType *string `json:"encryptionType"`
	KmsKey         *string `json:"kmsKey,omitempty"`
}

// ImageTagMutabilityExclusionFilter names tags exempt from the tag
// mutability setting.
type ImageTagMutabilityExclusionFilter struct {
	FilterType *string `json:"filterType"`
	Filter     *string `json:"filter"`
}

// Repository describes a repository.
type Repository struct {
	RepositoryArn                      string                              `json:"repositoryArn"`
	RegistryID                         string                              `json:"registryId"`
	RepositoryName                     string                              `json:"repositoryName"`
	RepositoryURI                      string                              `json:"repositoryUri"`
	CreatedAt                          awsapi.Time                         `json:"createdAt,omitzero"`
	ImageTagMutability                 string                              `json:"imageTagMutability"`
	ImageTagMutabilityExclusionFilters []ImageTagMutabilityExclusionFilter `json:"imageTagMutabilityExclusionFilters,omitempty"`
	ImageScanningConfiguration         *ImageScanningConfiguration         `json:"imageScanningConfiguration,omitempty"`
	EncryptionConfiguration            *EncryptionConfiguration            `json:"encryptionConfiguration,omitempty"`
}

// ImageIdentifier names an image by digest, tag or both.
type ImageIdentifier struct {
	ImageDigest *string `json:"imageDigest,omitempty"`
	ImageTag    *string `json:"imageTag,omitempty"`
}

// ImageFailure reports an image a batch operation could not handle.
type ImageFailure struct {
	ImageID       ImageIdentifier `json:"imageId"`
	FailureCode   string          `json:"failureCode"`
	FailureReason string          `json:"failureReason"`
}

// Image is a manifest as BatchGetImage returns it.
type Image struct {
	RegistryID             string          `json:"registryId"`
	RepositoryName         string          `json:"repositoryName"`
	ImageID                ImageIdentifier `json:"imageId"`
	ImageManifest          string          `json:"imageManifest"`
	ImageManifestMediaType string          `json:"imageManifestMediaType,omitempty"`
}

// ImageScanStatus is the state of an image's scan.
type ImageScanStatus struct {
	Status      string `json:"status,omitempty"`
	Description string `json:"description,omitempty"`
}

// ImageScanFindingsSummary summarises an image's last completed scan.
type ImageScanFindingsSummary struct {
	ImageScanCompletedAt         awsapi.Time    `json:"imageScanCompletedAt,omitzero"`
	VulnerabilitySourceUpdatedAt awsapi.Time    `json:"vulnerabilitySourceUpdatedAt,omitzero"`
	FindingSeverityCounts        map[string]int `json:"findingSeverityCounts,omitempty"`
}

// ImageDetail is an image as DescribeImages returns it. The scan members
// are filled once scanning exists.
type ImageDetail struct {
	RegistryID               string                    `json:"registryId"`
	RepositoryName           string                    `json:"repositoryName"`
	ImageDigest              string                    `json:"imageDigest"`
	ImageTags                []string                  `json:"imageTags,omitempty"`
	ImageSizeInBytes         int64                     `json:"imageSizeInBytes"`
	ImagePushedAt            awsapi.Time               `json:"imagePushedAt,omitzero"`
	ImageScanStatus          *ImageScanStatus          `json:"imageScanStatus,omitempty"`
	ImageScanFindingsSummary *ImageScanFindingsSummary `json:"imageScanFindingsSummary,omitempty"`
	ImageManifestMediaType   string                    `json:"imageManifestMediaType,omitempty"`
	ArtifactMediaType        string                    `json:"artifactMediaType,omitempty"`
	LastRecordedPullTime     awsapi.Time               `json:"lastRecordedPullTime,omitzero"`
	SubjectManifestDigest    string                    `json:"subjectManifestDigest,omitempty"`
	ImageStatus              string                    `json:"imageStatus,omitempty"`
}

// AuthorizationData is a registry login.
type AuthorizationData struct {
	AuthorizationToken string      `json:"authorizationToken"`
	ExpiresAt          awsapi.Time `json:"expiresAt"`
	ProxyEndpoint      string      `json:"proxyEndpoint"`
}

// ReplicationConfiguration is a registry's replication rules (Drydock
// replicates nothing, so it is always empty).
type ReplicationConfiguration struct {
	Rules []struct{} `json:"rules"`
}
