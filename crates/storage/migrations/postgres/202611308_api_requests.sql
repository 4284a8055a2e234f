-- Idempotency-Key and rate limits on the API (issue #13), kept in the database so that every
-- instance on one PostgreSQL database sees the same keys and counts.
--
-- A key is claimed by inserting its row (the primary key makes the claim atomic across
-- instances); status stays NULL while the first request runs (until locked_until, after which
-- an abandoned claim may be taken over), then holds the first answer to replay.
CREATE TABLE idempotency_keys (
    company_id BIGINT NOT NULL REFERENCES companies(id),
    caller_id BIGINT NOT NULL REFERENCES users(id),
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT,
    headers TEXT,
    body TEXT,
    locked_until TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (company_id, caller_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys(expires_at);

-- One row per token owner (a user or a machine client's user): the requests counted in the
-- current fixed window. One upsert per request moves it.
CREATE TABLE rate_counters (
    owner_id BIGINT PRIMARY KEY REFERENCES users(id),
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL
);
