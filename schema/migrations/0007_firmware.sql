-- Firmware releases and their rollouts (server/firmware.h), and what devices report of themselves.
-- A release's image is a file, DIR/firmware/<id>.bin; the table holds what identifies it.
CREATE TABLE firmware_releases (
	id               TEXT PRIMARY KEY,   -- 32 hex, random
	model            TEXT NOT NULL REFERENCES models(name),
	version          TEXT NOT NULL,      -- the vendor's, [A-Za-z0-9._+-]{1,64}
	security_version INTEGER NOT NULL CHECK (security_version >= 0),
	sha256           TEXT NOT NULL,      -- lower-case hex of the image
	size             INTEGER NOT NULL CHECK (size > 0),
	created_at       INTEGER NOT NULL,
	UNIQUE (model, version)
);
CREATE INDEX firmware_releases_created ON firmware_releases(created_at);

-- A rollout offers one release to a cohort of its model's devices: a percent of them (a stable
-- hash bucket per rollout and device, computed by hearth), an explicit list (rollout_members) or
-- a tag. model is the release's, kept here so that "one live rollout per model" is an index.
CREATE TABLE rollouts (
	id                TEXT PRIMARY KEY,  -- 32 hex, random
	release_id        TEXT NOT NULL REFERENCES firmware_releases(id),
	model             TEXT NOT NULL REFERENCES models(name),
	state             TEXT NOT NULL CHECK (state IN ('active', 'paused', 'aborted')),
	cohort            TEXT NOT NULL CHECK (cohort IN ('percent', 'list', 'tag')),
	percent           INTEGER CHECK (percent BETWEEN 1 AND 100),
	tag               TEXT,
	failure_threshold INTEGER NOT NULL CHECK (failure_threshold BETWEEN 0 AND 100),
	abort_reason      TEXT,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	CHECK ((cohort = 'percent') = (percent IS NOT NULL)),
	CHECK ((cohort = 'tag') = (tag IS NOT NULL))
);
-- At most one rollout per model is active or paused, whichever process creates it.
CREATE UNIQUE INDEX rollouts_live_model ON rollouts(model) WHERE state <> 'aborted';
CREATE INDEX rollouts_release ON rollouts(release_id);

-- The devices of a list cohort.
CREATE TABLE rollout_members (
	rollout_id  TEXT NOT NULL REFERENCES rollouts(id),
	device_id   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	PRIMARY KEY (rollout_id, device_id)
);

-- The devices a rollout offered its release to, with the version of the firmware manifest that
-- did it: the device's acks of that version are its status. installed_at: when hearth recorded an
-- "installed" ack as the device's firmware (once).
CREATE TABLE rollout_devices (
	rollout_id       TEXT NOT NULL REFERENCES rollouts(id),
	device_id        TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
	manifest_version INTEGER NOT NULL,
	offered_at       INTEGER NOT NULL,
	installed_at     INTEGER,
	PRIMARY KEY (rollout_id, device_id)
);
CREATE INDEX rollout_devices_device ON rollout_devices(device_id);

-- What a device last said of itself (status topic), or what hearth recorded when it acknowledged
-- an installation. security_version only grows: a device is never offered anything below it.
ALTER TABLE devices ADD COLUMN firmware_version TEXT;
ALTER TABLE devices ADD COLUMN security_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN reported_at INTEGER;
