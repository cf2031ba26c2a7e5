-- The scanning service's tables (domain "scan"). Times are Unix milliseconds.

-- The registry scanning configuration: one row, JSON as the API shapes it.
CREATE TABLE scan_config (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	config TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- The durable job queue. One live job per (repository, digest, kind):
-- state is queued, running, done or dead. A running job belongs to the
-- holder of lease_token until lease_until; after that any worker may claim
-- it again.
CREATE TABLE scan_jobs (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	repository TEXT NOT NULL,
	image_digest TEXT NOT NULL,
	kind TEXT NOT NULL,
	state TEXT NOT NULL,
	payload TEXT NOT NULL DEFAULT '',
	attempts INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL,
	run_at BIGINT NOT NULL,
	lease_token TEXT NOT NULL DEFAULT '',
	lease_until BIGINT NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	UNIQUE (repository, image_digest, kind)
);
CREATE INDEX scan_jobs_ready ON scan_jobs (state, run_at);
CREATE INDEX scan_jobs_lease ON scan_jobs (state, lease_until);

-- The last scan of each image in each repository.
CREATE TABLE scan_scans (
	repository TEXT NOT NULL,
	image_digest TEXT NOT NULL,
	scan_type TEXT NOT NULL,
	status TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	started_at BIGINT NOT NULL,
	completed_at BIGINT NOT NULL DEFAULT 0,
	vuln_source_updated_at BIGINT NOT NULL DEFAULT 0,
	generation BIGINT NOT NULL DEFAULT 0,
	platform TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (repository, image_digest)
);

-- Every scan started, for the registry's 24-hour basic scan quota.
CREATE TABLE scan_starts (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	repository TEXT NOT NULL,
	image_digest TEXT NOT NULL,
	started_at BIGINT NOT NULL
);
CREATE INDEX scan_starts_at ON scan_starts (started_at);

-- Findings, stored once for the ECR and Inspector views. finding_key is
-- the advisory id with the package identity; finding holds the JSON the
-- APIs are shaped from.
CREATE TABLE scan_findings (
	repository TEXT NOT NULL,
	image_digest TEXT NOT NULL,
	finding_key TEXT NOT NULL,
	finding_id TEXT NOT NULL,
	advisory_id TEXT NOT NULL,
	package_name TEXT NOT NULL,
	package_version TEXT NOT NULL,
	package_manager TEXT NOT NULL,
	severity TEXT NOT NULL,
	status TEXT NOT NULL,
	fix_available TEXT NOT NULL,
	first_observed_at BIGINT NOT NULL,
	last_observed_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	finding TEXT NOT NULL,
	PRIMARY KEY (repository, image_digest, finding_key)
);
CREATE INDEX scan_findings_advisory ON scan_findings (advisory_id);
CREATE UNIQUE INDEX scan_findings_id ON scan_findings (finding_id);

-- Image inventories by manifest digest, so re-evaluation reads no layer.
CREATE TABLE scan_inventories (
	image_digest TEXT PRIMARY KEY,
	catalogers TEXT NOT NULL,
	inventory TEXT NOT NULL,
	created_at BIGINT NOT NULL
);

-- Events for the event delivery service (EventBridge-shaped detail).
CREATE TABLE scan_outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	created_at BIGINT NOT NULL,
	source TEXT NOT NULL,
	detail_type TEXT NOT NULL,
	detail TEXT NOT NULL
);

-- Positions of readers of other domains' outboxes.
CREATE TABLE scan_cursors (
	name TEXT PRIMARY KEY,
	position BIGINT NOT NULL
);
