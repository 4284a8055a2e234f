-- Machine clients (issue #13): a system that calls the API with its own id and secret. Each
-- client acts through a users row of kind 'api_client' (never signs in, gets no email), so every
-- table that records who did something (audit events, submissions, export jobs) keeps its one
-- reference to users, and the audit log can name the actor as a client. The secret is stored as
-- its SHA-256 (256 random bits, like API tokens); the short-lived tokens it buys live in
-- api_tokens with an expiry.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person';
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;

CREATE TABLE api_clients (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    user_id INTEGER NOT NULL UNIQUE REFERENCES users(id),
    client_id TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    created_by INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    rotated_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_clients_company ON api_clients(company_id);
CREATE UNIQUE INDEX api_clients_live_name ON api_clients(company_id, lower(name))
    WHERE revoked_at IS NULL;
