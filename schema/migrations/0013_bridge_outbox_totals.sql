-- The bridge bounds its outbox by bytes on every producer step, inside its write transaction. It
-- summed the whole outbox to do so (and its status counted it), a read that grew with the outbox
-- while the broker was away. bridge_state now keeps the outbox's row count and byte total,
-- maintained by triggers on every insert and delete, whoever deletes (acknowledgement, trim,
-- decommissioning a device).
ALTER TABLE bridge_state ADD COLUMN outbox_rows INTEGER NOT NULL DEFAULT 0;
ALTER TABLE bridge_state ADD COLUMN outbox_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE bridge_state SET outbox_rows = (SELECT COUNT(*) FROM bridge_outbox),
	outbox_bytes = (SELECT COALESCE(SUM(bytes), 0) FROM bridge_outbox) WHERE id = 1;
CREATE TRIGGER bridge_outbox_added AFTER INSERT ON bridge_outbox BEGIN
	UPDATE bridge_state SET outbox_rows = outbox_rows + 1, outbox_bytes = outbox_bytes + NEW.bytes
	WHERE id = 1;
END;
CREATE TRIGGER bridge_outbox_removed AFTER DELETE ON bridge_outbox BEGIN
	UPDATE bridge_state SET outbox_rows = outbox_rows - 1, outbox_bytes = outbox_bytes - OLD.bytes
	WHERE id = 1;
END;
