-- ECR settings of repositories. A repository made outside the ECR API (by
-- `drydock repo create` or a push with --create-on-push) has no row and
-- gets ECR's defaults. The row goes with its repository.
CREATE TABLE ecr_repositories (
	repository_id BIGINT PRIMARY KEY REFERENCES registry_repositories (id) ON DELETE CASCADE,
	image_tag_mutability TEXT NOT NULL,
	-- JSON list of {filterType, filter}, or NULL
	mutability_exclusions TEXT,
	scan_on_push INTEGER NOT NULL DEFAULT 0,
	encryption_type TEXT NOT NULL,
	kms_key TEXT,
	-- JSON list of {Key, Value}, or NULL
	tags TEXT
);
