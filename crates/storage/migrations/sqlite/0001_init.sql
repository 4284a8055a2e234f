-- Costbridge schema, SQLite flavour. Paired with ../postgres/0001_init.sql (same tables,
-- same columns); times are RFC 3339 text, JSON is text.
CREATE TABLE companies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    delimiter TEXT NOT NULL DEFAULT '-',
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    admin_tool TEXT NOT NULL,
    erp_integrations TEXT NOT NULL,
    can_push_to_accounting BOOLEAN NOT NULL,
    digest_emails BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL
);
CREATE INDEX users_company ON users(company_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE cost_code_lists (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    name TEXT NOT NULL,
    is_erp_list BOOLEAN NOT NULL DEFAULT FALSE,
    version INTEGER NOT NULL DEFAULT 1,
    sent_once BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL,
    UNIQUE (company_id, name)
);
CREATE UNIQUE INDEX cost_code_lists_one_erp_list ON cost_code_lists(company_id) WHERE is_erp_list;

CREATE TABLE cost_codes (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    list_id INTEGER NOT NULL REFERENCES cost_code_lists(id),
    parent_id INTEGER REFERENCES cost_codes(id),
    code TEXT NOT NULL,
    full_code TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    description TEXT NOT NULL,
    tier INTEGER NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    sync_status TEXT NOT NULL DEFAULT 'new',
    status_before_send TEXT,
    confirmed_code TEXT,
    confirmed_full_code TEXT,
    confirmed_description TEXT,
    confirmed_active BOOLEAN,
    origin_id TEXT,
    last_synced_at TEXT,
    rejection_reason TEXT,
    erp_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (list_id, full_code)
);
CREATE INDEX cost_codes_order ON cost_codes(list_id, sort_key, full_code);
CREATE INDEX cost_codes_parent ON cost_codes(parent_id);
CREATE INDEX cost_codes_status ON cost_codes(list_id, sync_status);

CREATE TABLE erp_connections (
    company_id INTEGER PRIMARY KEY REFERENCES companies(id),
    profile TEXT NOT NULL,
    connector TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    list_id INTEGER NOT NULL REFERENCES cost_code_lists(id),
    sent_by INTEGER NOT NULL REFERENCES users(id),
    sent_at TEXT NOT NULL,
    code_count INTEGER NOT NULL
);

CREATE TABLE export_jobs (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    created_by INTEGER NOT NULL REFERENCES users(id),
    status TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    run_after TEXT NOT NULL,
    locked_until TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX export_jobs_due ON export_jobs(status, run_after);

CREATE TABLE erp_items (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    cost_code_id INTEGER NOT NULL REFERENCES cost_codes(id),
    change TEXT NOT NULL,
    code TEXT NOT NULL,
    full_code TEXT NOT NULL,
    description TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    tier INTEGER NOT NULL,
    sort_key TEXT NOT NULL,
    parent_full_code TEXT,
    from_code TEXT,
    from_full_code TEXT,
    from_description TEXT,
    from_active BOOLEAN,
    origin_id TEXT,
    status TEXT NOT NULL DEFAULT 'ready',
    gl_income_account TEXT,
    gl_expense_account TEXT,
    note TEXT,
    erp_message TEXT,
    rejection_reason TEXT,
    decided_by INTEGER REFERENCES users(id),
    decided_at TEXT,
    export_job_id INTEGER REFERENCES export_jobs(id),
    sent_by INTEGER NOT NULL REFERENCES users(id),
    sent_at TEXT NOT NULL
);
-- At most one open item per code: the database itself refuses a duplicate send.
CREATE UNIQUE INDEX erp_items_open ON erp_items(cost_code_id) WHERE status IN ('ready', 'exporting', 'failed');
CREATE INDEX erp_items_status ON erp_items(company_id, status, id);
CREATE INDEX erp_items_job ON erp_items(export_job_id, status);

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    company_id INTEGER NOT NULL REFERENCES companies(id),
    at TEXT NOT NULL,
    actor_id INTEGER REFERENCES users(id),
    action TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id INTEGER NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX audit_events_company ON audit_events(company_id, id);
CREATE INDEX audit_events_entity ON audit_events(company_id, entity_type, entity_id);
