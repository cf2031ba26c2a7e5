CREATE TABLE auth_principals (
	name TEXT PRIMARY KEY,
	created_at BIGINT NOT NULL
);
CREATE TABLE auth_grants (
	principal TEXT NOT NULL REFERENCES auth_principals (name) ON DELETE CASCADE,
	action TEXT NOT NULL,
	pattern TEXT NOT NULL,
	PRIMARY KEY (principal, action, pattern)
);
CREATE TABLE auth_keys (
	id TEXT PRIMARY KEY,
	principal TEXT NOT NULL REFERENCES auth_principals (name) ON DELETE CASCADE,
	secret TEXT NOT NULL,
	disabled INTEGER NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL
);
CREATE INDEX auth_keys_principal ON auth_keys (principal);
