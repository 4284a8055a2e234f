-- The last foreign keys PostgreSQL checked row by row on the bulk paths: a code's list and
-- parent (every imported code), an item's code (every sent code). Each cost a trigger call and
-- a row lock per written row: a 98,000-code tier inserted in 1.35 s with them and 0.67 s without
-- (psql, the bench's database, one INSERT … SELECT from generate_series; BENCHMARKS.md).
--
-- A code's list is still checked by the database, once per list and state a statement writes:
-- the count trigger's row in `list_state_counts` has its foreign key to the list (and Costbridge
-- never deletes a list). A parent and an item's code can go (a code the ERP never had can be
-- deleted), so those two are refused by the database, checked once per statement over its rows
-- instead of once per row:
-- * inserted codes and items must name codes that exist;
-- * deleted codes must leave no code naming them as parent and no item naming them;
-- * an update that changes a parent or an item's code is checked per changed row only (the
--   WHEN clause keeps the bulk updates, which change neither, from paying for it).
-- Every write path takes the list's row first (codes.rs, import.rs, erp.rs), so a check here
-- cannot race a delete of the row it looked for: the foreign keys' row locks are not needed.
ALTER TABLE cost_codes DROP CONSTRAINT cost_codes_list_id_fkey,
    DROP CONSTRAINT cost_codes_parent_id_fkey;
ALTER TABLE erp_items DROP CONSTRAINT erp_items_cost_code_id_fkey;

-- One check for both references, given the column that names a code, the constraint it
-- stands for and the message: over a statement's inserted rows, or a row an update changed.
CREATE FUNCTION codes_named_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE missing boolean;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        SELECT NOT EXISTS (SELECT 1 FROM cost_codes
                           WHERE id = (to_jsonb(NEW) ->> TG_ARGV[0])::bigint) INTO missing;
    ELSE
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM new_rows n WHERE n.%1$I IS NOT NULL '
                       'AND NOT EXISTS (SELECT 1 FROM cost_codes c WHERE c.id = n.%1$I))',
                       TG_ARGV[0]) INTO missing;
    END IF;
    IF missing THEN
        RAISE foreign_key_violation USING CONSTRAINT = TG_ARGV[1], MESSAGE = TG_ARGV[2];
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION cost_codes_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM old_rows o JOIN cost_codes c ON c.parent_id = o.id) THEN
        RAISE foreign_key_violation USING CONSTRAINT = 'cost_codes_parent_id_fkey',
            MESSAGE = 'a deleted cost code is still the parent of another code';
    END IF;
    IF EXISTS (SELECT 1 FROM old_rows o JOIN erp_items i ON i.cost_code_id = o.id) THEN
        RAISE foreign_key_violation USING CONSTRAINT = 'erp_items_cost_code_id_fkey',
            MESSAGE = 'a deleted cost code still has queue items';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER cost_codes_parents_checked AFTER INSERT ON cost_codes
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION codes_named_exist('parent_id', 'cost_codes_parent_id_fkey',
        'a cost code names a parent code that does not exist');
CREATE TRIGGER cost_codes_parent_checked AFTER UPDATE OF parent_id ON cost_codes
    FOR EACH ROW WHEN (NEW.parent_id IS DISTINCT FROM OLD.parent_id AND NEW.parent_id IS NOT NULL)
    EXECUTE FUNCTION codes_named_exist('parent_id', 'cost_codes_parent_id_fkey',
        'a cost code names a parent code that does not exist');
CREATE TRIGGER cost_codes_unreferenced_checked AFTER DELETE ON cost_codes
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
    EXECUTE FUNCTION cost_codes_unreferenced();
CREATE TRIGGER erp_items_codes_checked AFTER INSERT ON erp_items
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION codes_named_exist('cost_code_id', 'erp_items_cost_code_id_fkey',
        'a queue item names a cost code that does not exist');
CREATE TRIGGER erp_items_code_checked AFTER UPDATE OF cost_code_id ON erp_items
    FOR EACH ROW WHEN (NEW.cost_code_id IS DISTINCT FROM OLD.cost_code_id)
    EXECUTE FUNCTION codes_named_exist('cost_code_id', 'erp_items_cost_code_id_fkey',
        'a queue item names a cost code that does not exist');
