-- PostgreSQL stores times as TIMESTAMPTZ, which compare as times; the SQLite twin of this
-- migration rewrites its text times to a fixed width so they compare as times too.
SELECT 1;
