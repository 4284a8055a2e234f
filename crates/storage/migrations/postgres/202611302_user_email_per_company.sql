-- An email is unique within a company, not across the server (issue #9): creating a user must
-- not tell one company's admin that an address has an account in another.
ALTER TABLE users DROP CONSTRAINT users_email_key;
CREATE UNIQUE INDEX users_company_email ON users(company_id, lower(email));
CREATE INDEX users_email ON users(lower(email));
