-- Metering (domain "scan"): how many scans ran, per repository, per UTC
-- day and per kind (INITIAL_SCAN_BASIC, INITIAL_SCAN_ENHANCED, RESCAN).
-- day is the Unix milliseconds of the day's 00:00 UTC. A scan adds to its
-- row in the transaction that stores its result, so a retried job counts
-- once.
CREATE TABLE scan_usage (
	day BIGINT NOT NULL,
	repository TEXT NOT NULL,
	kind TEXT NOT NULL,
	count BIGINT NOT NULL,
	PRIMARY KEY (day, repository, kind)
);
CREATE INDEX scan_usage_repository ON scan_usage (repository, day);

-- The re-indexer looks for inventories made by another cataloger set.
CREATE INDEX scan_inventories_catalogers ON scan_inventories (catalogers);
