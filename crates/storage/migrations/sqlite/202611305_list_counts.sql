-- A list page showed its total and the list's size by counting the whole list on every
-- request (twice). The counts per list and state are kept here instead, by triggers, in the
-- same transaction as the change that moves them, so no write path can forget them.
CREATE TABLE list_state_counts (
    list_id BIGINT NOT NULL REFERENCES cost_code_lists(id),
    sync_status TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (list_id, sync_status)
);
INSERT INTO list_state_counts (list_id, sync_status, n)
    SELECT list_id, sync_status, COUNT(*) FROM cost_codes GROUP BY list_id, sync_status;

CREATE TRIGGER cost_codes_counted_insert AFTER INSERT ON cost_codes BEGIN
    INSERT INTO list_state_counts (list_id, sync_status, n) VALUES (NEW.list_id, NEW.sync_status, 1)
        ON CONFLICT (list_id, sync_status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER cost_codes_counted_delete AFTER DELETE ON cost_codes BEGIN
    UPDATE list_state_counts SET n = n - 1 WHERE list_id = OLD.list_id AND sync_status = OLD.sync_status;
END;
-- Only rows whose list or state changed move a count (most updates change neither).
CREATE TRIGGER cost_codes_counted_update AFTER UPDATE OF list_id, sync_status ON cost_codes
    WHEN OLD.list_id <> NEW.list_id OR OLD.sync_status <> NEW.sync_status BEGIN
    UPDATE list_state_counts SET n = n - 1 WHERE list_id = OLD.list_id AND sync_status = OLD.sync_status;
    INSERT INTO list_state_counts (list_id, sync_status, n) VALUES (NEW.list_id, NEW.sync_status, 1)
        ON CONFLICT (list_id, sync_status) DO UPDATE SET n = n + 1;
END;

-- A page filtered by state reads its rows in list order straight from this index.
DROP INDEX cost_codes_status;
CREATE INDEX cost_codes_status ON cost_codes(list_id, sync_status, sort_key, full_code);
