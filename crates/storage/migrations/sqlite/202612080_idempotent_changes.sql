-- Whether the first request with an Idempotency-Key has changed data: set by each write
-- transaction the request commits, in that same transaction (`requests::mark_changed`). A
-- request that changed data is never run again with its key, even when it then fails with a
-- server error or its server stops before answering (a retry used to repeat the change).
ALTER TABLE idempotency_keys ADD COLUMN changed BOOLEAN NOT NULL DEFAULT FALSE;
