-- Once a second the ticker looks for firmware installations it has not recorded yet
-- (rollout_devices.installed_at IS NULL). No index answered that, so it read every device ever
-- offered in any rollout. A partial index holds only the offers not yet installed.
CREATE INDEX rollout_devices_pending ON rollout_devices(rollout_id) WHERE installed_at IS NULL;
