-- Nothing to change on SQLite: its foreign keys cost one lookup in the same B-tree engine per
-- row (see the PostgreSQL twin, which checks a code's parent and an item's code once per
-- statement instead). Kept so the two folders pair up.
SELECT 1;
