-- Idempotency-Key and rate limits on the API (issue #13), kept in the database so that every
-- instance on one PostgreSQL database sees the same keys and counts.
--
-- A key is claimed by inserting its row (the primary key makes the claim atomic across
-- instances); status stays NULL while the first request runs (until locked_until, after which
-- an abandoned claim may be taken over), then holds the first answer to replay.
CREATE TABLE idempotency_keys (
    company_id INTEGER NOT NULL REFERENCES companies(id),
    caller_id INTEGER NOT NULL REFERENCES users(id),
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER,
    headers TEXT,
    body TEXT,
    locked_until TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (company_id, caller_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys(expires_at);

-- One row per token owner (a user or a machine client's user): the requests counted in the
-- current fixed window. One upsert per request moves it.
CREATE TABLE rate_counters (
    owner_id INTEGER PRIMARY KEY REFERENCES users(id),
    window_start INTEGER NOT NULL,
    hits INTEGER NOT NULL
);
