-- PostgreSQL checks a foreign key with one trigger call per written row: on a 100,000-code
-- import, send or export those calls were about half of the database's time (EXPLAIN ANALYZE:
-- "Trigger for constraint audit_events_company_id_fkey: calls=100000"). These references point
-- at companies and users, which Costbridge never deletes, from the tables written in bulk; a
-- row cannot name a company or user that does not exist unless written by hand. `costbridge
-- check` verifies them instead, and more strictly than a foreign key could: each row's company
-- is also its list's or its code's company (integrity.rs, reference_violations). The
-- references that can break (a code's list and parent, an item's code, submission and job)
-- keep their foreign keys.
ALTER TABLE cost_codes DROP CONSTRAINT cost_codes_company_id_fkey;
ALTER TABLE erp_items DROP CONSTRAINT erp_items_company_id_fkey,
    DROP CONSTRAINT erp_items_sent_by_fkey,
    DROP CONSTRAINT erp_items_decided_by_fkey;
ALTER TABLE audit_events DROP CONSTRAINT audit_events_company_id_fkey,
    DROP CONSTRAINT audit_events_actor_id_fkey;

-- An update's counts moved by joining its old and new rows on id (a hash join over every
-- updated row: 100,000 on a send). Each row's old state counts -1 and its new state +1, so
-- summing the two sides per list and state gives the same deltas with no join; rows whose
-- state did not change cancel out.
CREATE OR REPLACE FUNCTION list_state_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO list_state_counts (list_id, sync_status, n)
        SELECT list_id, sync_status, SUM(n) FROM (
            SELECT list_id, sync_status, -COUNT(*) AS n FROM old_rows GROUP BY 1, 2
            UNION ALL
            SELECT list_id, sync_status, COUNT(*) FROM new_rows GROUP BY 1, 2
        ) delta GROUP BY 1, 2 HAVING SUM(n) <> 0
        ON CONFLICT (list_id, sync_status) DO UPDATE SET n = list_state_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;
