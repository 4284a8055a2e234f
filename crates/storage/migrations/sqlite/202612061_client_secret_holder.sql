-- Who was last shown an API client's secret: its creator, then whoever rotated it. That
-- person can act as the client, so their rights may not fall below the client's while they
-- hold its secret (rotate or revoke the client first), as with a password someone else chose.
ALTER TABLE api_clients ADD COLUMN secret_shown_to INTEGER REFERENCES users(id);
-- Whoever rotated a client last (the audit log says who), else its creator.
UPDATE api_clients SET secret_shown_to = COALESCE((SELECT a.actor_id FROM audit_events a WHERE
    a.company_id = api_clients.company_id AND a.entity_type = 'api_client' AND
    a.entity_id = api_clients.id AND a.action = 'api_client.rotated'
    ORDER BY a.id DESC LIMIT 1), created_by);
