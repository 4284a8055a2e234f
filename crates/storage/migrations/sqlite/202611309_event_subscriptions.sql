-- Company-level event subscriptions (README, Integrations → Events). An event is written to
-- event_outbox in the same transaction as the change it tells of, one row per subscriber, and
-- only when the company has a subscriber for its type; a worker delivers each subscription's
-- events in order, in batches, claiming the subscription with a lease.
CREATE TABLE event_subscriptions (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    url TEXT NOT NULL,
    -- The signing secret, encrypted like connector secrets (enc:v1:…); never shown.
    secret TEXT NOT NULL,
    -- The types, each between spaces (' cost_code.sent export_job.done '): LIKE finds one.
    event_types TEXT NOT NULL,
    created_by INTEGER REFERENCES users(id),
    created_at TEXT NOT NULL,
    -- The lease of the worker delivering this subscription's events, and when its next
    -- batch may go (later after a failed one: the backoff).
    locked_until TEXT,
    retry_at TEXT NOT NULL
);
CREATE INDEX event_subscriptions_company ON event_subscriptions(company_id);

CREATE TABLE event_outbox (
    id INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES event_subscriptions(id) ON DELETE CASCADE,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    event_type TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- The code as it was when the event happened (no foreign key: a deleted code's events stay).
    cost_code_id INTEGER,
    list_id INTEGER,
    code TEXT,
    full_code TEXT,
    description TEXT,
    active BOOLEAN,
    sync_status TEXT,
    -- The approver's reason (rejected) or the ERP's message (failed).
    message TEXT,
    origin_id TEXT,
    export_job_id INTEGER,
    submission_id INTEGER,
    -- Anything else the event says, as JSON (an export job's counts).
    detail TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status INTEGER,
    last_response TEXT,
    last_error TEXT,
    delivered_at TEXT
);
CREATE INDEX event_outbox_due ON event_outbox(subscription_id, status, id);
