-- Scans by image digest alone: re-evaluation finds which of the images a
-- change touches are in continuous scope from their digests. The primary
-- key leads with the repository, so without this index every batch read
-- every enhanced scan.
CREATE INDEX scan_scans_digest ON scan_scans (image_digest);
