-- One-time password reset links (issue #9). Only the SHA-256 of the token is stored, like API
-- tokens and session ids; a link is deleted when used, and a new one replaces the user's older
-- ones. Revoking a user's credentials deletes their sessions and API tokens by user.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id),
    created_by BIGINT REFERENCES users(id),
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX password_resets_user ON password_resets(user_id);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
