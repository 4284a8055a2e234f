-- Nothing to change on SQLite: it checks a foreign key with one lookup in the same B-tree
-- engine, a small part of a bulk write's time (on PostgreSQL it is a trigger call per row;
-- see the PostgreSQL twin of this migration, which drops the references to companies and
-- users from the tables written in bulk). Kept so the two folders pair up.
SELECT 1;
