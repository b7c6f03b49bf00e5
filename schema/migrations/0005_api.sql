-- REST administration: API tokens, enrollment tokens, device tags. A token is kept only as the
-- hex SHA-256 of the whole token (server/token.h); the token itself is shown once.
CREATE TABLE api_tokens (
	id           TEXT PRIMARY KEY,      -- the token's public id (16 hex digits)
	name         TEXT NOT NULL UNIQUE,  -- what the audit log calls whoever used it
	hash         TEXT NOT NULL,
	scope        TEXT NOT NULL CHECK (scope IN ('read', 'operate', 'admin')),
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER,               -- NULL: does not expire
	last_used_at INTEGER,
	revoked_at   INTEGER
);

-- One-time tokens a device presents with its CSR to enroll.
CREATE TABLE enrollment_tokens (
	id           TEXT PRIMARY KEY,
	hash         TEXT NOT NULL,
	model        TEXT NOT NULL REFERENCES models(name),
	device_id    TEXT,                  -- if set, the only id the token enrolls
	created_by   TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	used_at      INTEGER,
	used_by      TEXT,                  -- the device it enrolled
	revoked_at   INTEGER
);

CREATE TABLE device_tags (
	device_id    TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	tag          TEXT NOT NULL,
	PRIMARY KEY (device_id, tag)
);
CREATE INDEX device_tags_tag ON device_tags(tag);

-- Where a change came from: the client address of a REST request (NULL for the host's CLI).
ALTER TABLE audit_log ADD COLUMN source TEXT;
