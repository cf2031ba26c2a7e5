-- The Inspector API's tables (domain "inspector"). Times are Unix milliseconds.

-- Suppression rules and other finding filters (CreateFilter). criteria is
-- the FilterCriteria as the client sent it (JSON), tags a JSON object.
CREATE TABLE inspector_filters (
	id TEXT PRIMARY KEY,
	arn TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL,
	action TEXT NOT NULL,
	criteria TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	reason TEXT NOT NULL DEFAULT '',
	tags TEXT NOT NULL DEFAULT '{}',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- Settings (the ECR re-scan durations), one row per name.
CREATE TABLE inspector_settings (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);
