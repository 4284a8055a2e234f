-- QuickBooks Desktop through the QuickBooks Web Connector (issue #10). QuickBooks pulls its
-- work, so the worker leaves the jobs of a `pulled` connection to the Web Connector's session.
ALTER TABLE erp_connections ADD COLUMN pulled BOOLEAN NOT NULL DEFAULT FALSE;

-- One Web Connector login per company: the password is stored hashed (argon2), shown once.
-- What QBWC last told (when, which QuickBooks, which company file, the last error) and the
-- accounts QuickBooks last reported (JSON) are kept for the ERP connection page and pickers.
-- Sync from ERP waits for the next session (`pull_requested_by`); its result (JSON) is kept.
CREATE TABLE qbwc_logins (
    company_id BIGINT PRIMARY KEY REFERENCES companies(id),
    user_name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ,
    qb_version TEXT,
    company_file TEXT,
    last_error TEXT,
    accounts TEXT,
    accounts_at TIMESTAMPTZ,
    pull_requested_by BIGINT REFERENCES users(id),
    last_pull TEXT,
    last_pull_at TIMESTAMPTZ
);

-- A Web Connector session: the ticket is stored as its SHA-256 and expires. `pending` is the
-- qbXML request handed out next; `total` the codes waiting when it started (for the percentage).
CREATE TABLE qbwc_sessions (
    ticket_hash TEXT PRIMARY KEY,
    company_id BIGINT NOT NULL REFERENCES companies(id),
    expires_at TIMESTAMPTZ NOT NULL,
    accounts_read BOOLEAN NOT NULL DEFAULT FALSE,
    pending TEXT,
    total BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX qbwc_sessions_company ON qbwc_sessions(company_id);

-- What this session's queries found in QuickBooks per queue item (NULL: nothing). Kept per
-- session: a new session asks again, so an add cut off by a crash is found, not repeated.
CREATE TABLE qbwc_found (
    ticket_hash TEXT NOT NULL REFERENCES qbwc_sessions(ticket_hash) ON DELETE CASCADE,
    item_id BIGINT NOT NULL,
    item TEXT,
    PRIMARY KEY (ticket_hash, item_id)
);

-- The EditSequence QuickBooks gave when it last confirmed a code, and the item's accounts then:
-- a newer EditSequence with a confirmed value changed is a change made in QuickBooks (a
-- conflict, never overwritten).
CREATE TABLE qbwc_items (
    cost_code_id BIGINT PRIMARY KEY,
    company_id BIGINT NOT NULL REFERENCES companies(id),
    list_id TEXT NOT NULL,
    edit_sequence TEXT NOT NULL,
    income_account TEXT,
    expense_account TEXT
);
