-- Retained MQTT messages (the last message a topic kept for new subscribers), so they survive a
-- restart: device status, and the manifests hearth publishes.
CREATE TABLE retained (
	topic       TEXT PRIMARY KEY,
	payload     BLOB NOT NULL,
	qos         INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
	updated_at  INTEGER NOT NULL
);
