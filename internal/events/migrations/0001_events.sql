-- Event delivery: webhook targets, outbox read positions and the durable
-- delivery queue. Times are Unix milliseconds.

CREATE TABLE events_targets (
	name TEXT PRIMARY KEY,
	url TEXT NOT NULL,
	secret TEXT NOT NULL,
	pattern TEXT NOT NULL,
	enabled INTEGER NOT NULL,
	created_at BIGINT NOT NULL
);

-- Position of the delivery service in each outbox it reads.
CREATE TABLE events_cursors (
	name TEXT PRIMARY KEY,
	position BIGINT NOT NULL
);

-- One row per (event, target). status is pending, delivered or dead.
-- A claimed row is leased by moving next_attempt past the lease and
-- recording the claimant in lease_owner.
CREATE TABLE events_deliveries (
	event_id TEXT NOT NULL,
	target TEXT NOT NULL,
	detail_type TEXT NOT NULL,
	body TEXT NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	next_attempt BIGINT NOT NULL,
	lease_owner TEXT NOT NULL DEFAULT '',
	last_error TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (event_id, target)
);

CREATE INDEX events_deliveries_due ON events_deliveries (status, next_attempt);
