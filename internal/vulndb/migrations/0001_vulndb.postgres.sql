-- The vulnerability database. Times are Unix milliseconds. Text keys compare
-- bytewise (COLLATE "C", as on SQLite).

-- The current generation: the one readers see. Changed only in the
-- transaction that writes a generation's rows, so the switch is atomic.
CREATE TABLE vulndb_state (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	generation BIGINT NOT NULL
);
INSERT INTO vulndb_state (id, generation) VALUES (1, 0);

-- One row per generation, with its counts; sources holds the per-source
-- counts as JSON.
CREATE TABLE vulndb_generations (
	id BIGINT PRIMARY KEY,
	created_at BIGINT NOT NULL,
	advisories INTEGER NOT NULL,
	added INTEGER NOT NULL,
	modified INTEGER NOT NULL,
	withdrawn INTEGER NOT NULL,
	removed INTEGER NOT NULL,
	enrichment_changed INTEGER NOT NULL,
	sources TEXT NOT NULL
);

-- Configured sources as last synced: what to send upstream next time
-- (fetch_state, JSON), and how the last attempts went.
CREATE TABLE vulndb_sources (
	name TEXT COLLATE "C" PRIMARY KEY,
	kind TEXT NOT NULL,
	url TEXT NOT NULL,
	fetch_state TEXT NOT NULL,
	last_attempt_at BIGINT,
	last_success_at BIGINT,
	last_change_at BIGINT,
	last_error TEXT NOT NULL,
	last_error_at BIGINT,
	advisories INTEGER NOT NULL,
	enrichment INTEGER NOT NULL,
	rejected INTEGER NOT NULL,
	generation BIGINT NOT NULL
);

-- Advisories of the current generation: the JSON of vulndb.Advisory, and
-- the SHA-256 of that JSON, which tells a changed record from an unchanged
-- one without reading it.
CREATE TABLE vulndb_advisories (
	source TEXT COLLATE "C" NOT NULL,
	id TEXT COLLATE "C" NOT NULL,
	hash TEXT NOT NULL,
	modified BIGINT,
	withdrawn INTEGER NOT NULL,
	generation BIGINT NOT NULL,
	doc TEXT NOT NULL,
	PRIMARY KEY (source, id)
);
CREATE INDEX vulndb_advisories_id ON vulndb_advisories (id);

-- The (ecosystem, package) keys each advisory affects, for lookups.
CREATE TABLE vulndb_affected (
	ecosystem TEXT COLLATE "C" NOT NULL,
	package TEXT COLLATE "C" NOT NULL,
	source TEXT COLLATE "C" NOT NULL,
	advisory_id TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (ecosystem, package, source, advisory_id)
);
CREATE INDEX vulndb_affected_advisory ON vulndb_affected (source, advisory_id);

-- Aliases, upstream and related ids of each advisory, for the way from a
-- CVE to the advisories about it.
CREATE TABLE vulndb_aliases (
	alias TEXT COLLATE "C" NOT NULL,
	source TEXT COLLATE "C" NOT NULL,
	advisory_id TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (alias, source, advisory_id)
);
CREATE INDEX vulndb_aliases_advisory ON vulndb_aliases (source, advisory_id);

-- CVE-level enrichment, one row per source and CVE (vulndb.Enrichment JSON).
CREATE TABLE vulndb_enrichment (
	source TEXT COLLATE "C" NOT NULL,
	cve TEXT COLLATE "C" NOT NULL,
	hash TEXT NOT NULL,
	generation BIGINT NOT NULL,
	doc TEXT NOT NULL,
	PRIMARY KEY (source, cve)
);
CREATE INDEX vulndb_enrichment_cve ON vulndb_enrichment (cve);

-- Change sets: what each generation added, modified, withdrew or removed,
-- with the aspects that changed and the keys touched (JSON).
CREATE TABLE vulndb_changes (
	generation BIGINT NOT NULL,
	source TEXT COLLATE "C" NOT NULL,
	advisory_id TEXT COLLATE "C" NOT NULL,
	kind TEXT NOT NULL,
	aspects TEXT NOT NULL,
	pkg_keys TEXT NOT NULL,
	PRIMARY KEY (generation, source, advisory_id)
);

-- The union of keys each generation touched, for re-evaluation.
CREATE TABLE vulndb_change_keys (
	generation BIGINT NOT NULL,
	ecosystem TEXT COLLATE "C" NOT NULL,
	package TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (generation, ecosystem, package)
);

-- CVEs whose KEV membership or NVD rating changed in a generation (EPSS
-- moves daily for every CVE and is only counted).
CREATE TABLE vulndb_change_cves (
	generation BIGINT NOT NULL,
	cve TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (generation, cve)
);
