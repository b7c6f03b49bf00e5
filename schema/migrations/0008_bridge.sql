-- The northbound bridge (server/bridge.h): minimized records on their way to an external MQTT
-- broker, and what hearth left retained there. Only what the store already holds goes in here.

-- How far the bridge got. until: records of buckets that closed at or before it are in the outbox
-- (or were sent); 0 before the bridge first ran. next_seq numbers outbox rows (never reused, so the
-- sender's cursor stays valid when the outbox runs empty). dropped counts records that left the
-- outbox unsent (it was full, they were too old, or their data passed its retention).
CREATE TABLE bridge_state (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	until       INTEGER NOT NULL,
	next_seq    INTEGER NOT NULL,
	dropped     INTEGER NOT NULL,
	connected   INTEGER NOT NULL,        -- 1 while the running server is connected to the broker
	changed_at  INTEGER NOT NULL         -- when connected last changed (0: never)
);
INSERT INTO bridge_state (id, until, next_seq, dropped, connected, changed_at) VALUES (1, 0, 1, 0, 0, 0);

-- Records waiting for the broker's acknowledgement, sent in seq order; a row goes when the broker
-- acknowledged it. expires_at: when the oldest data in it passes its retention (it goes unsent
-- then, as the store's own copy does).
CREATE TABLE bridge_outbox (
	seq         INTEGER PRIMARY KEY,
	device_id   TEXT NOT NULL,
	topic       TEXT NOT NULL,
	payload     TEXT NOT NULL,
	retain      INTEGER NOT NULL,
	bytes       INTEGER NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
);
CREATE INDEX bridge_outbox_device ON bridge_outbox(device_id);
CREATE INDEX bridge_outbox_created ON bridge_outbox(created_at);
CREATE INDEX bridge_outbox_expires ON bridge_outbox(expires_at);

-- Retained topics hearth set on the broker (Home Assistant discovery configs, device status), so
-- that it can clear them (an empty retained message) when a device goes or a field leaves its
-- policy, even after a restart. A topic is added before it is published, removed once cleared.
CREATE TABLE bridge_topics (
	topic       TEXT PRIMARY KEY,
	device_id   TEXT NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('status', 'config'))
);
CREATE INDEX bridge_topics_device ON bridge_topics(device_id);
