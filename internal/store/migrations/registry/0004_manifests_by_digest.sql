-- The scanning service asks, when an image is deleted, whether any other
-- repository still holds its digest (to keep or drop the digest's stored
-- inventory).
CREATE INDEX registry_manifests_digest ON registry_manifests (digest);
