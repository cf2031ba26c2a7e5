-- The registry's metadata. Times are Unix milliseconds.

CREATE TABLE registry_repositories (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL
);

-- Every blob the blob store holds for a repository (updated_at is the last
-- time a push or mount used it, the garbage collector's clock).
CREATE TABLE registry_blobs (
	digest TEXT PRIMARY KEY,
	size BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- Blobs per repository: a blob is readable in a repository only when it was
-- pushed or mounted there.
CREATE TABLE registry_repository_blobs (
	repository_id BIGINT NOT NULL REFERENCES registry_repositories (id) ON DELETE CASCADE,
	digest TEXT NOT NULL REFERENCES registry_blobs (digest),
	size BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (repository_id, digest)
);
CREATE INDEX registry_repository_blobs_digest ON registry_repository_blobs (digest);

CREATE TABLE registry_uploads (
	id TEXT PRIMARY KEY,
	repository_id BIGINT NOT NULL REFERENCES registry_repositories (id) ON DELETE CASCADE,
	created_at BIGINT NOT NULL
);

CREATE TABLE registry_manifests (
	repository_id BIGINT NOT NULL REFERENCES registry_repositories (id) ON DELETE CASCADE,
	digest TEXT NOT NULL,
	media_type TEXT NOT NULL,
	artifact_type TEXT NOT NULL DEFAULT '',
	size BIGINT NOT NULL,
	content BLOB NOT NULL,
	subject_digest TEXT,
	annotations TEXT,
	pushed_at BIGINT NOT NULL,
	last_pulled_at BIGINT,
	PRIMARY KEY (repository_id, digest)
);
CREATE INDEX registry_manifests_subject ON registry_manifests (repository_id, subject_digest);

CREATE TABLE registry_tags (
	repository_id BIGINT NOT NULL,
	name TEXT NOT NULL,
	manifest_digest TEXT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (repository_id, name),
	FOREIGN KEY (repository_id, manifest_digest) REFERENCES registry_manifests (repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX registry_tags_manifest ON registry_tags (repository_id, manifest_digest);

-- What each manifest references: blobs (config, layers) and manifests (index
-- children). Used to keep referenced blobs from the garbage collector.
CREATE TABLE registry_manifest_refs (
	repository_id BIGINT NOT NULL,
	manifest_digest TEXT NOT NULL,
	child_digest TEXT NOT NULL,
	kind TEXT NOT NULL,
	PRIMARY KEY (repository_id, manifest_digest, child_digest),
	FOREIGN KEY (repository_id, manifest_digest) REFERENCES registry_manifests (repository_id, digest) ON DELETE CASCADE
);
CREATE INDEX registry_manifest_refs_child ON registry_manifest_refs (repository_id, child_digest);

-- Events written in the same transaction as the change they describe;
-- delivered later by the events package.
CREATE TABLE registry_outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	created_at BIGINT NOT NULL,
	kind TEXT NOT NULL,
	payload TEXT NOT NULL
);
