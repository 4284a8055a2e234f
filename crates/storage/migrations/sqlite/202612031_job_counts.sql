-- How many items of each export job are in each state, kept in the same transaction as every
-- change: an export job's status (its page panel, `GET …/export_jobs/{id}`) counted the job's
-- items on each poll, 40-80 ms at 100,000 items on PostgreSQL, so a client polling while the
-- job ran kept a core busy. Counts items whether superseded or not, as the job's status did.
-- Not held through bulk statements (storage/src/held.rs): a recount would have to know which
-- jobs a statement touched, and each row costs one small upsert.
CREATE TABLE job_item_counts (
    export_job_id BIGINT NOT NULL,
    status TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (export_job_id, status)
);
INSERT INTO job_item_counts (export_job_id, status, n)
    SELECT export_job_id, status, COUNT(*) FROM erp_items WHERE export_job_id IS NOT NULL
    GROUP BY export_job_id, status;

CREATE TRIGGER erp_items_job_counted_insert AFTER INSERT ON erp_items
    WHEN NEW.export_job_id IS NOT NULL BEGIN
    INSERT INTO job_item_counts (export_job_id, status, n) VALUES (NEW.export_job_id, NEW.status, 1)
        ON CONFLICT (export_job_id, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER erp_items_job_counted_delete AFTER DELETE ON erp_items
    WHEN OLD.export_job_id IS NOT NULL BEGIN
    UPDATE job_item_counts SET n = n - 1
        WHERE export_job_id = OLD.export_job_id AND status = OLD.status;
END;
-- Only rows whose state or job changed move a count (a GL choice changes neither).
CREATE TRIGGER erp_items_job_counted_update AFTER UPDATE OF status, export_job_id ON erp_items
    WHEN OLD.status <> NEW.status OR OLD.export_job_id IS NOT NEW.export_job_id BEGIN
    UPDATE job_item_counts SET n = n - 1
        WHERE OLD.export_job_id IS NOT NULL AND export_job_id = OLD.export_job_id
        AND status = OLD.status;
    INSERT INTO job_item_counts (export_job_id, status, n)
        SELECT NEW.export_job_id, NEW.status, 1 WHERE NEW.export_job_id IS NOT NULL
        ON CONFLICT (export_job_id, status) DO UPDATE SET n = n + 1;
END;
