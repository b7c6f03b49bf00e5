-- Signed manifests (DSSE envelopes, ota/dsse.h) and what devices said about them.
-- A manifest is addressed to one device ('device:<id>'), every device of a model
-- ('model:<name>') or every device ('all'); the endpoint publishes each new one, retained, on
-- hearth/v1/<id>/manifest/<type> of every device it addresses. Versions come from one counter per
-- type for the whole installation, so they grow per type and device whatever the addressing, and
-- are never reused.
CREATE TABLE manifests (
	seq         INTEGER PRIMARY KEY,     -- the order of issue; the endpoint's cursor
	target      TEXT NOT NULL,           -- 'device:<id>', 'model:<name>' or 'all'
	type        TEXT NOT NULL CHECK (type IN ('pins', 'firmware', 'keys')),
	version     INTEGER NOT NULL,
	issued_at   INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	envelope    TEXT NOT NULL,
	UNIQUE (type, version)
);
CREATE INDEX manifests_target ON manifests(target, type);

CREATE TABLE manifest_acks (
	device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	type        TEXT NOT NULL,
	version     INTEGER NOT NULL,
	status      TEXT NOT NULL,           -- 'applied', 'rejected', 'downloading', 'installed', 'failed', ...
	at          INTEGER NOT NULL,
	PRIMARY KEY (device_id, type, version)
);

-- How far the endpoint got in publishing manifests (their seq), so one issued while it was down is
-- published when it starts.
CREATE TABLE manifest_delivery (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	seq         INTEGER NOT NULL
);
INSERT INTO manifest_delivery (id, seq) VALUES (1, 0);
