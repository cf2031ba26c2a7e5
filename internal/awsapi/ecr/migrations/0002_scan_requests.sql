-- StartImageScan calls that started a scan, by the identity of the client's
-- invocation (aws-sdk-go-v2 and newer botocore send amz-sdk-invocation-id,
-- the same on every retry). A retry of a call that started a scan is
-- answered like the call itself instead of with the 24-hour
-- LimitExceededException.
-- request_key is a SHA-256 (hex) of the principal and that identity.
CREATE TABLE ecr_scan_requests (
	request_key TEXT PRIMARY KEY,
	repository TEXT NOT NULL,
	image_digest TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX ecr_scan_requests_created ON ecr_scan_requests (created_at);
