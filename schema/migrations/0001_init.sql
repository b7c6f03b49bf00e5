-- hearth schema, version 1: models, devices, certificates, CRL state, audit log.
-- Portable SQL only (SQLite is the embedded default; PostgreSQL must run it unchanged).
-- Times are Unix seconds (UTC).

CREATE TABLE models (
	name        TEXT PRIMARY KEY,
	policy      TEXT,               -- minimization policy (JSON); NULL stores nothing but last-seen
	created_at  INTEGER NOT NULL
);

CREATE TABLE devices (
	id          TEXT PRIMARY KEY,   -- = certificate CN; opaque, [A-Za-z0-9_-]{1,64}
	model       TEXT NOT NULL REFERENCES models(name),
	status      TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'decommissioned')),
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER
);
CREATE INDEX devices_model ON devices(model);

CREATE TABLE certificates (
	serial      TEXT PRIMARY KEY,   -- upper-case hex, as openssl prints it
	kind        TEXT NOT NULL CHECK (kind IN ('root', 'issuing', 'endpoint', 'device')),
	device_id   TEXT REFERENCES devices(id),
	subject     TEXT NOT NULL,
	fingerprint TEXT NOT NULL UNIQUE, -- hex SHA-256 of the DER certificate
	not_before  INTEGER NOT NULL,
	not_after   INTEGER NOT NULL,
	status      TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
	revoked_at  INTEGER,
	pem         TEXT NOT NULL,
	CHECK ((kind = 'device') = (device_id IS NOT NULL))
);
CREATE INDEX certificates_device ON certificates(device_id);
CREATE INDEX certificates_revoked ON certificates(status, not_after);

-- One row: the last CRL number issued (RFC 5280 wants it to grow monotonically).
CREATE TABLE crl_state (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	number      INTEGER NOT NULL
);
INSERT INTO crl_state (id, number) VALUES (1, 0);

CREATE TABLE audit_log (
	id          INTEGER PRIMARY KEY,
	at          INTEGER NOT NULL,
	actor       TEXT NOT NULL,      -- "cli:<user>" or, later, an API token's name
	action      TEXT NOT NULL,      -- e.g. "device.add", "device.revoke"
	target      TEXT,
	detail      TEXT
);
CREATE INDEX audit_log_at ON audit_log(at);
