-- Integration clients (Home Assistant, Node-RED, a vendor's pipeline): certificate identities that
-- are not devices. They may read the minimized telemetry stream and nothing else. Their ids share
-- one namespace with device ids (both are the certificate CN and the MQTT client id); hearth
-- refuses an id that either table already holds.
CREATE TABLE clients (
	id          TEXT PRIMARY KEY,
	role        TEXT NOT NULL CHECK (role IN ('integration')),
	status      TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER
);

-- certificates gains the kind 'client'. A CHECK constraint cannot be changed in place, so the
-- table is rebuilt (nothing references it).
CREATE TABLE certificates_v4 (
	serial      TEXT PRIMARY KEY,
	kind        TEXT NOT NULL CHECK (kind IN ('root', 'issuing', 'endpoint', 'device', 'client')),
	device_id   TEXT REFERENCES devices(id),
	client_id   TEXT REFERENCES clients(id),
	subject     TEXT NOT NULL,
	fingerprint TEXT NOT NULL UNIQUE,
	not_before  INTEGER NOT NULL,
	not_after   INTEGER NOT NULL,
	status      TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
	revoked_at  INTEGER,
	pem         TEXT NOT NULL,
	CHECK ((kind = 'device') = (device_id IS NOT NULL)),
	CHECK ((kind = 'client') = (client_id IS NOT NULL))
);
INSERT INTO certificates_v4 (serial, kind, device_id, subject, fingerprint, not_before, not_after,
			     status, revoked_at, pem)
	SELECT serial, kind, device_id, subject, fingerprint, not_before, not_after, status,
	       revoked_at, pem FROM certificates;
DROP TABLE certificates;
ALTER TABLE certificates_v4 RENAME TO certificates;
CREATE INDEX certificates_device ON certificates(device_id);
CREATE INDEX certificates_client ON certificates(client_id);
CREATE INDEX certificates_revoked ON certificates(status, not_after);

-- How far the minimized feed got: the records of every bucket that closed at or before
-- published_until were offered to subscribers.
CREATE TABLE feed_state (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	published_until INTEGER NOT NULL
);
