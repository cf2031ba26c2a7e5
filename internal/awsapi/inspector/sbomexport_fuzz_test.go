package inspector

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/drydockhq/drydock/internal/awsapi"
)

// FuzzSbomExportInput feeds CreateSbomExport request bodies through the
// decoder, the validation and the matcher: no input may panic, and a
// destination that passes validation names a directory inside the
// bucket's, inside the export directory.
func FuzzSbomExportInput(f *testing.F) {
	// The body the AWS CLI v1 sent in the contract's capture, and others.
	f.Add([]byte(`{"resourceFilterCriteria": {"ecrRepositoryName": [{"comparison": "EQUALS", "value": "scanrepo-prod"}]}, "reportFormat": "CYCLONEDX_1_4", "s3Destination": {"bucketName": "sbom-bucket", "keyPrefix": "exports", "kmsKeyArn": "arn:aws:kms:us-west-2:123456789012:key/abcd"}}`))
	f.Add([]byte(`{"reportFormat":"SPDX_2_3","s3Destination":{"bucketName":"a..b","keyPrefix":"x/../../etc","kmsKeyArn":"k"}}`))
	f.Add([]byte(`{"reportFormat":"SPDX_2_3","s3Destination":{"bucketName":"ok-bucket","keyPrefix":"/a//b/./c\\d","kmsKeyArn":"k"},"resourceFilterCriteria":{"lambdaFunctionName":[{"comparison":"NOT_EQUALS","value":"f"}],"ec2InstanceTags":[{"comparison":"EQUALS","key":"k"}]}}`))
	const dir = "/exports"
	f.Fuzz(func(t *testing.T, body []byte) {
		var in createSbomExportInput
		if err := awsapi.Decode(body, &in); err != nil {
			return
		}
		if in.S3Destination != nil {
			if segs, err := in.S3Destination.validate(); err == nil {
				bucket := filepath.Join(dir, in.S3Destination.BucketName)
				root := filepath.Join(append([]string{bucket}, append(segs, "11111111-2222-3333-4444-555555555555")...)...)
				if rel, err := filepath.Rel(bucket, root); err != nil || strings.HasPrefix(rel, "..") || filepath.Dir(bucket) != dir {
					t.Fatalf("bucket %q prefix %q leads to %s", in.S3Destination.BucketName, in.S3Destination.KeyPrefix, root)
				}
			}
		}
		if in.ResourceFilterCriteria != nil && in.ResourceFilterCriteria.validate() == nil {
			m, err := in.ResourceFilterCriteria.matcher()
			if err != nil {
				t.Fatalf("valid criteria did not compile: %v", err)
			}
			m(&CoveredResource{ResourceType: "AWS_ECR_CONTAINER_IMAGE", ResourceID: "arn:aws:ecr:us-west-2:123456789012:repository/r/sha256:ab",
				AccountID: "123456789012", ScanStatus: &CoverageStatus{"ACTIVE", "SUCCESSFUL"}, repository: "r", tags: []string{"v1"}})
		}
	})
}
