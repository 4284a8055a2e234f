-- PostgreSQL's counting and superseding triggers run once per statement (transition tables),
-- so a bulk statement already does their work once; the SQLite twin of this migration lets
-- its once-per-row triggers be held for a bulk statement.
SELECT 1;
