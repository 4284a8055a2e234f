-- A page by number (`page=998`) walked every row before it in the list's index. Pages by
-- number now start from remembered marks (the key of every thousandth code, kept in the
-- server's memory per list and state), which stay right only while the codes of that list
-- and state are the same ones in the same order. `changes` grows whenever codes may have
-- entered or left a list and state (a stamp, not a count), moved by the same triggers and in
-- the same transaction as `n`; with the list's `version` (every rename bumps it), it tells
-- when the marks must be taken again.
ALTER TABLE list_state_counts ADD COLUMN changes BIGINT NOT NULL DEFAULT 0;

CREATE OR REPLACE FUNCTION list_state_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO list_state_counts (list_id, sync_status, n, changes)
        SELECT list_id, sync_status, COUNT(*), COUNT(*) FROM new_rows GROUP BY list_id, sync_status
        ON CONFLICT (list_id, sync_status) DO UPDATE
            SET n = list_state_counts.n + EXCLUDED.n, changes = list_state_counts.changes + EXCLUDED.changes;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION list_state_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE list_state_counts s SET n = s.n - o.n, changes = s.changes + o.n
        FROM (SELECT list_id, sync_status, COUNT(*) AS n FROM old_rows GROUP BY list_id, sync_status) o
        WHERE s.list_id = o.list_id AND s.sync_status = o.sync_status;
    RETURN NULL;
END $$;

-- A group whose sum is zero may still have changed: one code moved from A to B and another
-- from B to A in the same statement. Such groups count as changed whenever any row of the
-- statement changed its list or state, which only then costs a join of the old and new rows
-- (a send or an export moves whole groups, whose sums are not zero, and never reaches it).
CREATE OR REPLACE FUNCTION list_state_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO list_state_counts (list_id, sync_status, n, changes)
        SELECT list_id, sync_status, SUM(n), COUNT(*) FROM (
            SELECT list_id, sync_status, -COUNT(*) AS n FROM old_rows GROUP BY 1, 2
            UNION ALL
            SELECT list_id, sync_status, COUNT(*) FROM new_rows GROUP BY 1, 2
        ) delta GROUP BY 1, 2 HAVING SUM(n) <> 0 OR EXISTS (
            SELECT 1 FROM old_rows o JOIN new_rows w ON w.id = o.id
            WHERE o.sync_status <> w.sync_status OR o.list_id <> w.list_id)
        ON CONFLICT (list_id, sync_status) DO UPDATE
            SET n = list_state_counts.n + EXCLUDED.n, changes = list_state_counts.changes + EXCLUDED.changes;
    RETURN NULL;
END $$;
