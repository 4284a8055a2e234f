-- Who was last shown an API client's secret: its creator, then whoever rotated it. That
-- person can act as the client, so their rights may not fall below the client's while they
-- hold its secret (rotate or revoke the client first), as with a password someone else chose.
ALTER TABLE api_clients ADD COLUMN secret_shown_to INTEGER REFERENCES users(id);
UPDATE api_clients SET secret_shown_to = created_by;
