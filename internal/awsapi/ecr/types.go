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

// ImageScanFindings are an image's scan results: basic `findings` or
// `enhancedFindings`, with the severity counts of all its open findings.
type ImageScanFindings struct {
	ImageScanCompletedAt         awsapi.Time                `json:"imageScanCompletedAt,omitzero"`
	VulnerabilitySourceUpdatedAt awsapi.Time                `json:"vulnerabilitySourceUpdatedAt,omitzero"`
	FindingSeverityCounts        map[string]int             `json:"findingSeverityCounts"`
	Findings                     []ImageScanFinding         `json:"findings,omitempty"`
	EnhancedFindings             []EnhancedImageScanFinding `json:"enhancedFindings,omitempty"`
}

// describeFindingsOutput is DescribeImageScanFindings' answer.
type describeFindingsOutput struct {
	RegistryID        string             `json:"registryId"`
	RepositoryName    string             `json:"repositoryName"`
	ImageID           ImageIdentifier    `json:"imageId"`
	ImageScanStatus   *ImageScanStatus   `json:"imageScanStatus"`
	ImageScanFindings *ImageScanFindings `json:"imageScanFindings,omitempty"`
	NextToken         *string            `json:"nextToken,omitempty"`
}

// Attribute is a basic finding's key/value attribute.
type Attribute struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
}

// ImageScanFinding is a basic scanning finding.
type ImageScanFinding struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	URI         string      `json:"uri,omitempty"`
	Severity    string      `json:"severity"`
	Attributes  []Attribute `json:"attributes"`
}

// CvssScore is one CVSS rating of a vulnerability.
type CvssScore struct {
	BaseScore     float64 `json:"baseScore"`
	ScoringVector string  `json:"scoringVector"`
	Source        string  `json:"source"`
	Version       string  `json:"version"`
}

// VulnerablePackage is the package an enhanced finding is about.
type VulnerablePackage struct {
	Arch            string `json:"arch,omitempty"`
	Epoch           int    `json:"epoch"`
	FilePath        string `json:"filePath,omitempty"`
	Name            string `json:"name"`
	PackageManager  string `json:"packageManager"`
	Release         string `json:"release,omitempty"`
	SourceLayerHash string `json:"sourceLayerHash,omitempty"`
	Version         string `json:"version"`
	FixedInVersion  string `json:"fixedInVersion,omitempty"`
}

// PackageVulnerabilityDetails describe the vulnerability of an enhanced
// finding.
type PackageVulnerabilityDetails struct {
	Cvss                   []CvssScore         `json:"cvss"`
	ReferenceUrls          []string            `json:"referenceUrls"`
	RelatedVulnerabilities []string            `json:"relatedVulnerabilities"`
	Source                 string              `json:"source"`
	SourceURL              string              `json:"sourceUrl,omitempty"`
	VendorCreatedAt        awsapi.Time         `json:"vendorCreatedAt,omitzero"`
	VendorSeverity         string              `json:"vendorSeverity,omitempty"`
	VendorUpdatedAt        awsapi.Time         `json:"vendorUpdatedAt,omitzero"`
	VulnerabilityID        string              `json:"vulnerabilityId"`
	VulnerablePackages     []VulnerablePackage `json:"vulnerablePackages"`
}

// Recommendation is how to remediate a finding.
type Recommendation struct {
	URL  string `json:"url,omitempty"`
	Text string `json:"text,omitempty"`
}

// Remediation holds a finding's recommendation.
type Remediation struct {
	Recommendation Recommendation `json:"recommendation"`
}

// AwsEcrContainerImageDetails describe the image a finding is in.
type AwsEcrContainerImageDetails struct {
	Architecture   string      `json:"architecture,omitempty"`
	ImageHash      string      `json:"imageHash"`
	ImageTags      []string    `json:"imageTags"`
	Platform       string      `json:"platform,omitempty"`
	PushedAt       awsapi.Time `json:"pushedAt,omitzero"`
	Registry       string      `json:"registry"`
	RepositoryName string      `json:"repositoryName"`
}

// ResourceDetails hold the details of a finding's resource.
type ResourceDetails struct {
	AwsEcrContainerImage *AwsEcrContainerImageDetails `json:"awsEcrContainerImage,omitempty"`
}

// Resource is the resource a finding is in: the image.
type Resource struct {
	Details ResourceDetails   `json:"details"`
	ID      string            `json:"id"`
	Tags    map[string]string `json:"tags"`
	Type    string            `json:"type"`
}

// CvssScoreAdjustment is a change Inspector made to a CVSS score.
type CvssScoreAdjustment struct {
	Metric string `json:"metric"`
	Reason string `json:"reason"`
}

// CvssScoreDetails is the CVSS rating a finding's score comes from.
type CvssScoreDetails struct {
	Adjustments   []CvssScoreAdjustment `json:"adjustments"`
	Score         float64               `json:"score"`
	ScoreSource   string                `json:"scoreSource"`
	ScoringVector string                `json:"scoringVector"`
	Version       string                `json:"version"`
}

// ScoreDetails hold the details of a finding's score.
type ScoreDetails struct {
	Cvss *CvssScoreDetails `json:"cvss,omitempty"`
}

// EnhancedImageScanFinding is an enhanced scanning finding (ECR's field
// names, which differ from Inspector's Finding).
type EnhancedImageScanFinding struct {
	AwsAccountID                string                       `json:"awsAccountId"`
	Description                 string                       `json:"description,omitempty"`
	FindingArn                  string                       `json:"findingArn"`
	FirstObservedAt             awsapi.Time                  `json:"firstObservedAt,omitzero"`
	LastObservedAt              awsapi.Time                  `json:"lastObservedAt,omitzero"`
	PackageVulnerabilityDetails *PackageVulnerabilityDetails `json:"packageVulnerabilityDetails,omitempty"`
	Remediation                 *Remediation                 `json:"remediation,omitempty"`
	Resources                   []Resource                   `json:"resources"`
	Score                       *float64                     `json:"score,omitempty"`
	ScoreDetails                *ScoreDetails                `json:"scoreDetails,omitempty"`
	Severity                    string                       `json:"severity"`
	Status                      string                       `json:"status"`
	Title                       string                       `json:"title,omitempty"`
	Type                        string                       `json:"type"`
	UpdatedAt                   awsapi.Time                  `json:"updatedAt,omitzero"`
	FixAvailable                string                       `json:"fixAvailable,omitempty"`
	ExploitAvailable            string                       `json:"exploitAvailable,omitempty"`
}
