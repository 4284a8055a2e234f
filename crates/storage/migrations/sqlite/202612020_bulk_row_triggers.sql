-- SQLite runs a trigger once per row (it has no statement-level triggers), so for every code or
-- item a bulk statement moved, each counting trigger of 202611314 and 202611315 wrote a count
-- row (~1.2 µs a row: python3 on this schema, 563 ms for 100,000 codes' state moved with the
-- trigger, 446 ms without) and each inserted item looked up its code's earlier items to
-- supersede them (~2.5 µs a row: 629 ms for a send's 100,000 items with it, 275 ms without).
-- A statement that moves a thousand rows or more now runs with these row triggers held, by a
-- row of `triggers_held` inserted and deleted in its own transaction, and does their work once:
-- the send supersedes earlier items in one statement, and the commit recounts the company's
-- counts from their indexes (storage/src/held.rs). A transaction that fails rolls the row back
-- with everything else, so the triggers cannot stay held.
CREATE TABLE triggers_held (held INTEGER PRIMARY KEY);

DROP TRIGGER cost_codes_counted_insert;
DROP TRIGGER cost_codes_counted_delete;
DROP TRIGGER cost_codes_counted_update;
CREATE TRIGGER cost_codes_counted_insert AFTER INSERT ON cost_codes
    WHEN NOT EXISTS (SELECT 1 FROM triggers_held) BEGIN
    INSERT INTO list_state_counts (list_id, sync_status, n, changes)
        VALUES (NEW.list_id, NEW.sync_status, 1, 1)
        ON CONFLICT (list_id, sync_status) DO UPDATE SET n = n + 1, changes = changes + 1;
END;
CREATE TRIGGER cost_codes_counted_delete AFTER DELETE ON cost_codes
    WHEN NOT EXISTS (SELECT 1 FROM triggers_held) BEGIN
    UPDATE list_state_counts SET n = n - 1, changes = changes + 1
        WHERE list_id = OLD.list_id AND sync_status = OLD.sync_status;
END;
CREATE TRIGGER cost_codes_counted_update AFTER UPDATE OF list_id, sync_status ON cost_codes
    WHEN NOT EXISTS (SELECT 1 FROM triggers_held)
        AND (OLD.list_id <> NEW.list_id OR OLD.sync_status <> NEW.sync_status) BEGIN
    UPDATE list_state_counts SET n = n - 1, changes = changes + 1
        WHERE list_id = OLD.list_id AND sync_status = OLD.sync_status;
    INSERT INTO list_state_counts (list_id, sync_status, n, changes)
        VALUES (NEW.list_id, NEW.sync_status, 1, 1)
        ON CONFLICT (list_id, sync_status) DO UPDATE SET n = n + 1, changes = changes + 1;
END;

DROP TRIGGER erp_items_supersede;
DROP TRIGGER erp_items_counted_insert;
DROP TRIGGER erp_items_counted_delete;
DROP TRIGGER erp_items_counted_update;
CREATE TRIGGER erp_items_supersede AFTER INSERT ON erp_items
    WHEN NOT EXISTS (SELECT 1 FROM triggers_held) BEGIN
    UPDATE erp_items SET superseded = TRUE
        WHERE cost_code_id = NEW.cost_code_id AND id < NEW.id AND NOT superseded;
END;
CREATE TRIGGER erp_items_counted_insert AFTER INSERT ON erp_items
    WHEN NOT EXISTS (SELECT 1 FROM triggers_held) AND NOT NEW.superseded BEGIN
    INSERT INTO erp_item_counts (company_id, status, n) VALUES (NEW.company_id, NEW.status, 1)
        ON CONFLICT (company_id, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER erp_items_counted_delete AFTER DELETE ON erp_items
    WHEN NOT EXISTS (SELECT 1 FROM triggers_held) AND NOT OLD.superseded BEGIN
    UPDATE erp_item_counts SET n = n - 1 WHERE company_id = OLD.company_id AND status = OLD.status;
END;
CREATE TRIGGER erp_items_counted_update AFTER UPDATE OF status, superseded ON erp_items
    WHEN NOT EXISTS (SELECT 1 FROM triggers_held)
        AND (OLD.status <> NEW.status OR OLD.superseded <> NEW.superseded) BEGIN
    UPDATE erp_item_counts SET n = n - 1
        WHERE NOT OLD.superseded AND company_id = OLD.company_id AND status = OLD.status;
    INSERT INTO erp_item_counts (company_id, status, n)
        SELECT NEW.company_id, NEW.status, 1 WHERE NOT NEW.superseded
        ON CONFLICT (company_id, status) DO UPDATE SET n = n + 1;
END;
