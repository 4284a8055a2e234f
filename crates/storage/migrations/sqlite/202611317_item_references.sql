-- Nothing to change on SQLite: it checks a foreign key with one lookup in the same B-tree
-- engine (see the PostgreSQL twin, which drops the item's references to its submission and its
-- export job). Kept so the two folders pair up.
SELECT 1;
