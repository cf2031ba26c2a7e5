-- SBOM exports (CreateSbomExport). destination and criteria are the
-- request's s3Destination and resourceFilterCriteria (JSON); principal is
-- the name of the access key's principal that asked for it. updated_at is
-- touched after each image written: an IN_PROGRESS export not touched for
-- a while belongs to a server that stopped.
CREATE TABLE inspector_sbom_exports (
	id TEXT PRIMARY KEY,
	principal TEXT NOT NULL,
	format TEXT NOT NULL,
	status TEXT NOT NULL,
	error_code TEXT NOT NULL DEFAULT '',
	error_message TEXT NOT NULL DEFAULT '',
	destination TEXT NOT NULL,
	criteria TEXT NOT NULL,
	images INTEGER NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
