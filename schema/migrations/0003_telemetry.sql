-- Minimized telemetry: one row per device, field and time bucket, holding only the bucket's
-- aggregate so far (never a raw payload, never a per-message timestamp). For mean: value = sum
-- and n = count; min/max/last: value (or text for strings); count: n.
CREATE TABLE telemetry (
	device_id    TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	field        TEXT NOT NULL,
	bucket_start INTEGER NOT NULL,   -- Unix seconds, a multiple of bucket_s
	bucket_s     INTEGER NOT NULL,
	agg          TEXT NOT NULL CHECK (agg IN ('none', 'mean', 'min', 'max', 'last', 'count')),
	n            INTEGER NOT NULL,
	value        REAL,
	text         TEXT,
	retention_days INTEGER NOT NULL,
	PRIMARY KEY (device_id, field, bucket_start)
);
CREATE INDEX telemetry_retention ON telemetry(bucket_start);

-- When a device last reported, coarsened to its policy's last_seen_bucket_s.
CREATE TABLE last_seen (
	device_id    TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
	bucket_start INTEGER NOT NULL
);

-- What devices over-send: how often each field (normalised name) was dropped, per model. A count,
-- never a value.
CREATE TABLE dropped_fields (
	model        TEXT NOT NULL,
	field        TEXT NOT NULL,
	sensitive    INTEGER NOT NULL,
	count        INTEGER NOT NULL,
	PRIMARY KEY (model, field)
);
