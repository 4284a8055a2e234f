-- no-transaction
-- An email is unique within a company, not across the server (issue #9): creating a user must
-- not tell one company's admin that an address has an account in another. SQLite cannot drop
-- a column's UNIQUE, so the table is rebuilt the documented way (foreign keys off, copy,
-- rename), inside its own transaction; the columns are those of 0001_init.sql, unchanged.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE users_new (id INTEGER PRIMARY KEY, company_id INTEGER NOT NULL REFERENCES companies(id), email TEXT NOT NULL, name TEXT NOT NULL, password_hash TEXT NOT NULL, admin_tool TEXT NOT NULL, erp_integrations TEXT NOT NULL, can_push_to_accounting BOOLEAN NOT NULL, digest_emails BOOLEAN NOT NULL DEFAULT TRUE, created_at TEXT NOT NULL);
INSERT INTO users_new (id, company_id, email, name, password_hash, admin_tool, erp_integrations, can_push_to_accounting, digest_emails, created_at)
SELECT id, company_id, email, name, password_hash, admin_tool, erp_integrations, can_push_to_accounting, digest_emails, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_company ON users(company_id);
CREATE UNIQUE INDEX users_company_email ON users(company_id, lower(email));
CREATE INDEX users_email ON users(lower(email));
COMMIT;
PRAGMA foreign_keys = ON;
