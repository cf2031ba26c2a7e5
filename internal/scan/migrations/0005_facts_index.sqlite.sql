-- Re-evaluation reads an image's facts (OS, platform) beside each batch,
-- and the backfill looks for inventories whose facts and package keys were
-- never written. The facts column sits after the large inventory document
-- in the row, so both went through the document's pages: a covering index
-- answers the first, a partial index the second, whatever the number of
-- stored inventories.
CREATE INDEX scan_inventories_facts ON scan_inventories (image_digest, facts);
CREATE INDEX scan_inventories_unindexed ON scan_inventories (image_digest) WHERE facts = '';
