-- A page by number (`page=998`) walked every row before it in the list's index. Pages by
-- number now start from remembered marks (the key of every thousandth code, kept in the
-- server's memory per list and state), which stay right only while the codes of that list
-- and state are the same ones in the same order. `changes` counts every code that entered or
-- left a list and state, moved by the same triggers and in the same transaction as `n`; with
-- the list's `version` (every rename bumps it), it tells when the marks must be taken again.
ALTER TABLE list_state_counts ADD COLUMN changes BIGINT NOT NULL DEFAULT 0;

DROP TRIGGER cost_codes_counted_insert;
DROP TRIGGER cost_codes_counted_delete;
DROP TRIGGER cost_codes_counted_update;
CREATE TRIGGER cost_codes_counted_insert AFTER INSERT ON cost_codes BEGIN
    INSERT INTO list_state_counts (list_id, sync_status, n, changes)
        VALUES (NEW.list_id, NEW.sync_status, 1, 1)
        ON CONFLICT (list_id, sync_status) DO UPDATE SET n = n + 1, changes = changes + 1;
END;
CREATE TRIGGER cost_codes_counted_delete AFTER DELETE ON cost_codes BEGIN
    UPDATE list_state_counts SET n = n - 1, changes = changes + 1
        WHERE list_id = OLD.list_id AND sync_status = OLD.sync_status;
END;
-- Only rows whose list or state changed move a count (most updates change neither).
CREATE TRIGGER cost_codes_counted_update AFTER UPDATE OF list_id, sync_status ON cost_codes
    WHEN OLD.list_id <> NEW.list_id OR OLD.sync_status <> NEW.sync_status BEGIN
    UPDATE list_state_counts SET n = n - 1, changes = changes + 1
        WHERE list_id = OLD.list_id AND sync_status = OLD.sync_status;
    INSERT INTO list_state_counts (list_id, sync_status, n, changes)
        VALUES (NEW.list_id, NEW.sync_status, 1, 1)
        ON CONFLICT (list_id, sync_status) DO UPDATE SET n = n + 1, changes = changes + 1;
END;
