-- The endpoint asks every second which devices and integration clients were revoked or
-- decommissioned since its last look (revoked_at >= ?), to close their connections. No index
-- answered that, so each second it read the whole devices table on the event loop (100,000
-- devices: 8-20 ms). Partial indexes hold only the rows that have a revoked_at, and SQLite uses
-- them for any comparison on it.
CREATE INDEX devices_revoked ON devices(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX clients_revoked ON clients(revoked_at) WHERE revoked_at IS NOT NULL;
