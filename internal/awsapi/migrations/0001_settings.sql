-- Settings of the AWS-compatible APIs shared by every replica: the
-- registry's 12-digit account id and the key that seals pagination tokens.
CREATE TABLE awsapi_settings (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
