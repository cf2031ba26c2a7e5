-- The findings ledger and the inverted package index (continuous
-- re-evaluation). Times are Unix milliseconds; 0 means never.

-- package_ref is the package identity part of finding_key (type, name,
-- version, declaring file): re-evaluation compares an image's findings
-- for the packages a change touches, and only those.
ALTER TABLE scan_findings ADD COLUMN package_ref TEXT NOT NULL DEFAULT '';
-- fix_available_since: when a fix first became available for the
-- finding (0 while there is none).
ALTER TABLE scan_findings ADD COLUMN fix_available_since BIGINT NOT NULL DEFAULT 0;
-- closed_at and closed_reason: when and why the finding closed (or was
-- suppressed); 0 and '' while it is open.
ALTER TABLE scan_findings ADD COLUMN closed_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE scan_findings ADD COLUMN closed_reason TEXT NOT NULL DEFAULT '';
UPDATE scan_findings SET package_ref = substr(finding_key, strpos(finding_key, '|') + 1);
UPDATE scan_findings SET fix_available_since = first_observed_at WHERE fix_available <> 'NO';
UPDATE scan_findings SET closed_at = updated_at, closed_reason = 'NOT_OBSERVED' WHERE status = 'CLOSED';
UPDATE scan_findings SET closed_at = updated_at, closed_reason = 'SUPPRESSED' WHERE status = 'SUPPRESSED';
CREATE INDEX scan_findings_package ON scan_findings (image_digest, package_ref);
CREATE INDEX scan_findings_first ON scan_findings (first_observed_at);
CREATE INDEX scan_findings_closed ON scan_findings (closed_at);
CREATE INDEX scan_findings_fixable ON scan_findings (fix_available_since);

-- The inverted index: for each vulnerability-database lookup key of a
-- stored inventory's packages (ecosystem with its release, normalised
-- name), the image and the packages (JSON array of index.Package) that
-- carry it. A generation's change set is resolved through it to the
-- images it touches, and re-matching reads these packages only.
CREATE TABLE scan_package_keys (
	ecosystem TEXT NOT NULL,
	package TEXT NOT NULL,
	image_digest TEXT NOT NULL,
	packages TEXT NOT NULL,
	PRIMARY KEY (ecosystem, package, image_digest)
);
CREATE INDEX scan_package_keys_image ON scan_package_keys (image_digest);

-- The inventory's facts a finding needs besides its package (JSON: os,
-- platform), so re-evaluation need not decode the whole inventory.
ALTER TABLE scan_inventories ADD COLUMN facts TEXT NOT NULL DEFAULT '';
