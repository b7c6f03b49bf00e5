-- Retention: once an hour the endpoint deletes the telemetry rows whose bucket ended more than
-- their retention ago, `bucket_start + bucket_s + retention_days * 86400 <= now`. No index
-- answered that, so the DELETE read the whole table on the event loop, stalling every device for
-- as long (2,000,000 rows: 0.3-0.4 s when nothing had expired). An index on that expression,
-- written exactly as the DELETE writes it, lets it read only the rows that go. Upserts of an
-- existing bucket do not touch these columns, so only a new bucket's row updates it.
CREATE INDEX telemetry_expiry ON telemetry(bucket_start + bucket_s + retention_days * 86400);
