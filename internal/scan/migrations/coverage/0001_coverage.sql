-- The coverage announcer's memory (domain "scan_coverage"): for each image
-- under enhanced scanning, the scan status it last saw and the coverage
-- status it last announced in an Inspector2 Coverage event
-- ('STATUSCODE/REASON', '' when none yet). Times are Unix milliseconds.
CREATE TABLE scan_coverage (
	repository TEXT NOT NULL,
	image_digest TEXT NOT NULL,
	scan_status TEXT NOT NULL,
	announced TEXT NOT NULL DEFAULT '',
	updated_at BIGINT NOT NULL,
	PRIMARY KEY (repository, image_digest)
);
