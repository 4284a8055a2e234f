-- A list page showed its total and the list's size by counting the whole list on every
-- request (twice). The counts per list and state are kept here instead, by triggers, in the
-- same transaction as the change that moves them, so no write path can forget them. The
-- triggers are per statement, over the statement's changed rows: a 100,000-code import
-- updates each counter once, not 100,000 times.
CREATE TABLE list_state_counts (
    list_id BIGINT NOT NULL REFERENCES cost_code_lists(id),
    sync_status TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (list_id, sync_status)
);
INSERT INTO list_state_counts (list_id, sync_status, n)
    SELECT list_id, sync_status, COUNT(*) FROM cost_codes GROUP BY list_id, sync_status;

CREATE FUNCTION list_state_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO list_state_counts (list_id, sync_status, n)
        SELECT list_id, sync_status, COUNT(*) FROM new_rows GROUP BY list_id, sync_status
        ON CONFLICT (list_id, sync_status) DO UPDATE SET n = list_state_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION list_state_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE list_state_counts s SET n = s.n - o.n
        FROM (SELECT list_id, sync_status, COUNT(*) AS n FROM old_rows GROUP BY list_id, sync_status) o
        WHERE s.list_id = o.list_id AND s.sync_status = o.sync_status;
    RETURN NULL;
END $$;

CREATE FUNCTION list_state_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only rows whose list or state changed move a count (most updates change neither).
    WITH moved AS (
        SELECT o.list_id AS old_list, o.sync_status AS old_status, n.list_id AS new_list, n.sync_status AS new_status
        FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE o.sync_status <> n.sync_status OR o.list_id <> n.list_id
    ), delta AS (
        SELECT old_list AS list_id, old_status AS sync_status, -COUNT(*) AS n FROM moved GROUP BY 1, 2
        UNION ALL
        SELECT new_list, new_status, COUNT(*) FROM moved GROUP BY 1, 2
    )
    INSERT INTO list_state_counts (list_id, sync_status, n)
        SELECT list_id, sync_status, SUM(n) FROM delta GROUP BY 1, 2
        ON CONFLICT (list_id, sync_status) DO UPDATE SET n = list_state_counts.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE TRIGGER cost_codes_counted_insert AFTER INSERT ON cost_codes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION list_state_counts_add();
CREATE TRIGGER cost_codes_counted_delete AFTER DELETE ON cost_codes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION list_state_counts_remove();
CREATE TRIGGER cost_codes_counted_update AFTER UPDATE ON cost_codes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION list_state_counts_move();

-- A page filtered by state reads its rows in list order straight from this index.
DROP INDEX cost_codes_status;
CREATE INDEX cost_codes_status ON cost_codes(list_id, sync_status, sort_key, full_code);
