-- Email waiting to go out. Rows are written in the same transaction as the change they tell
-- about, then delivered by a worker that claims them with a lease (like export_jobs).
-- `payload` is what happened (JSON); the server renders subject and bodies from it on the first
-- attempt and keeps them, so every retry sends the same message.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    user_id INTEGER REFERENCES users(id),
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    payload TEXT NOT NULL,
    subject TEXT,
    text_body TEXT,
    html_body TEXT,
    headers TEXT,
    -- Once per key: `digest:<user>:<local date>` makes the daily summary once a day per person
    -- across restarts and instances.
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    locked_until TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);

-- The key that signs one-click unsubscribe links, made once per installation.
CREATE TABLE mail_keys (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL
);
INSERT INTO mail_keys (name, secret) VALUES ('unsubscribe', lower(hex(randomblob(32))));
