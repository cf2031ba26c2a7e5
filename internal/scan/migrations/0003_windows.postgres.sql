-- Monitoring windows (Inspector's ECR re-scan duration). Times are Unix
-- milliseconds; 0 means never.

-- The re-scan duration settings: one row, written by Inspector's
-- UpdateConfiguration. No row means the default (LIFETIME).
CREATE TABLE scan_windows (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	rescan_duration TEXT NOT NULL,
	pull_date_rescan_duration TEXT NOT NULL DEFAULT '',
	pull_date_rescan_mode TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL
);

-- expired_at: when the image last went to SCAN_ELIGIBILITY_EXPIRED; a
-- pull recorded after it brings the image back.
ALTER TABLE scan_scans ADD COLUMN expired_at BIGINT NOT NULL DEFAULT 0;
-- The sweep reads the enhanced images by status.
CREATE INDEX scan_scans_status ON scan_scans (scan_type, status);
