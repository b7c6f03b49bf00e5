-- The telemetry table again, with its aggregate check written as comparisons. SQLite evaluates a
-- CHECK of the form `agg IN (six values)` by building a temporary index on every insert and
-- update, and a telemetry row is upserted for every kept field of every message: that index was
-- most of the cost of storing a message (docs/performance.md). Same columns, same rows, same
-- meaning.
CREATE TABLE telemetry_v9 (
	device_id    TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	field        TEXT NOT NULL,
	bucket_start INTEGER NOT NULL,   -- Unix seconds, a multiple of bucket_s
	bucket_s     INTEGER NOT NULL,
	agg          TEXT NOT NULL CHECK (agg = 'none' OR agg = 'mean' OR agg = 'min' OR agg = 'max'
	                                  OR agg = 'last' OR agg = 'count'),
	n            INTEGER NOT NULL,
	value        REAL,
	text         TEXT,
	retention_days INTEGER NOT NULL,
	PRIMARY KEY (device_id, field, bucket_start)
);
INSERT INTO telemetry_v9 (device_id, field, bucket_start, bucket_s, agg, n, value, text, retention_days)
	SELECT device_id, field, bucket_start, bucket_s, agg, n, value, text, retention_days FROM telemetry;
DROP TABLE telemetry;
ALTER TABLE telemetry_v9 RENAME TO telemetry;
CREATE INDEX telemetry_retention ON telemetry(bucket_start);
