-- Xero connections (issue #11). One grant per company: the organisation it exports to and the
-- OAuth tokens, which the server encrypts with the secrets key before they get here (like
-- connector secrets). The row is locked while a token is refreshed, so two workers or
-- instances never use one refresh token (Xero rotates it at every use).
CREATE TABLE xero_grants (
    company_id BIGINT PRIMARY KEY REFERENCES companies(id),
    -- NULL while the admin picks one of the organisations the grant covers.
    tenant_id TEXT,
    tenant_name TEXT,
    -- JSON array of {tenantId, tenantName, tenantType}: the organisations to pick from.
    tenants TEXT NOT NULL,
    access_token TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    access_expires_at TIMESTAMPTZ NOT NULL,
    -- 'connected' or 'needs_reconnect' (Xero said the grant is gone; problem says why).
    status TEXT NOT NULL,
    problem TEXT,
    connected_by BIGINT NOT NULL REFERENCES users(id),
    connected_at TIMESTAMPTZ NOT NULL
);
-- A sign-in to Xero under way: the state sent to Xero (only its SHA-256 is kept), bound to the
-- session and company that started it, with the PKCE verifier (encrypted); used once.
CREATE TABLE xero_oauth_states (
    state_hash TEXT PRIMARY KEY,
    company_id BIGINT NOT NULL REFERENCES companies(id),
    user_id BIGINT NOT NULL REFERENCES users(id),
    session_hash TEXT NOT NULL,
    verifier TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
