-- The inverted package index, clustered by its key: re-evaluation reads
-- every image under each changed (ecosystem, package) key, and in a rowid
-- table those rows lay in the order images were indexed, one page read
-- per image. WITHOUT ROWID keeps each key's rows together, and its rows
-- are small. PostgreSQL has no clustered tables to keep; its table stays.
CREATE TABLE scan_package_keys_clustered (
	ecosystem TEXT NOT NULL,
	package TEXT NOT NULL,
	image_digest TEXT NOT NULL,
	packages TEXT NOT NULL,
	PRIMARY KEY (ecosystem, package, image_digest)
) WITHOUT ROWID;
INSERT INTO scan_package_keys_clustered (ecosystem, package, image_digest, packages)
	SELECT ecosystem, package, image_digest, packages FROM scan_package_keys;
DROP TABLE scan_package_keys;
ALTER TABLE scan_package_keys_clustered RENAME TO scan_package_keys;
CREATE INDEX scan_package_keys_image ON scan_package_keys (image_digest);
