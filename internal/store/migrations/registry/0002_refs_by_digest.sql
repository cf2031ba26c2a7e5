-- The garbage collector asks whether any manifest, in any repository,
-- references a blob.
CREATE INDEX registry_manifest_refs_digest ON registry_manifest_refs (child_digest);
