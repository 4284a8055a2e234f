-- Times are text in SQLite, compared and sorted as text. Until now they were written as sqlx
-- writes RFC 3339, which drops the fraction's trailing zeros ('…:03.12Z', '…:03Z'), and such a
-- value sorts after later times of the same second ('…:03.123Z'): an email, job or delivery due
-- at it could be passed over, and lists ordered by time could swap rows of one second. Times are
-- now written fixed width, in UTC, to the microsecond ('2026-11-30T21:06:03.120000Z', 27
-- characters); this rewrites the rows written before the same way. Every stored time is UTC
-- (written from the server clock), so only the fraction changes.
UPDATE api_clients SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE api_clients SET rotated_at = CASE WHEN instr(rotated_at, '.') = 0 THEN substr(rotated_at, 1, length(rotated_at) - 1) || '.000000Z'
    ELSE substr(rotated_at, 1, instr(rotated_at, '.')) || substr(substr(rotated_at, instr(rotated_at, '.') + 1, length(rotated_at) - instr(rotated_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE rotated_at GLOB '*Z' AND length(rotated_at) <> 27;
UPDATE api_clients SET revoked_at = CASE WHEN instr(revoked_at, '.') = 0 THEN substr(revoked_at, 1, length(revoked_at) - 1) || '.000000Z'
    ELSE substr(revoked_at, 1, instr(revoked_at, '.')) || substr(substr(revoked_at, instr(revoked_at, '.') + 1, length(revoked_at) - instr(revoked_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE revoked_at GLOB '*Z' AND length(revoked_at) <> 27;
UPDATE api_tokens SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE api_tokens SET expires_at = CASE WHEN instr(expires_at, '.') = 0 THEN substr(expires_at, 1, length(expires_at) - 1) || '.000000Z'
    ELSE substr(expires_at, 1, instr(expires_at, '.')) || substr(substr(expires_at, instr(expires_at, '.') + 1, length(expires_at) - instr(expires_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE expires_at GLOB '*Z' AND length(expires_at) <> 27;
UPDATE audit_events SET at = CASE WHEN instr(at, '.') = 0 THEN substr(at, 1, length(at) - 1) || '.000000Z'
    ELSE substr(at, 1, instr(at, '.')) || substr(substr(at, instr(at, '.') + 1, length(at) - instr(at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE at GLOB '*Z' AND length(at) <> 27;
UPDATE companies SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE cost_code_lists SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE cost_codes SET last_synced_at = CASE WHEN instr(last_synced_at, '.') = 0 THEN substr(last_synced_at, 1, length(last_synced_at) - 1) || '.000000Z'
    ELSE substr(last_synced_at, 1, instr(last_synced_at, '.')) || substr(substr(last_synced_at, instr(last_synced_at, '.') + 1, length(last_synced_at) - instr(last_synced_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE last_synced_at GLOB '*Z' AND length(last_synced_at) <> 27;
UPDATE cost_codes SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE cost_codes SET updated_at = CASE WHEN instr(updated_at, '.') = 0 THEN substr(updated_at, 1, length(updated_at) - 1) || '.000000Z'
    ELSE substr(updated_at, 1, instr(updated_at, '.')) || substr(substr(updated_at, instr(updated_at, '.') + 1, length(updated_at) - instr(updated_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE updated_at GLOB '*Z' AND length(updated_at) <> 27;
UPDATE erp_connections SET updated_at = CASE WHEN instr(updated_at, '.') = 0 THEN substr(updated_at, 1, length(updated_at) - 1) || '.000000Z'
    ELSE substr(updated_at, 1, instr(updated_at, '.')) || substr(substr(updated_at, instr(updated_at, '.') + 1, length(updated_at) - instr(updated_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE updated_at GLOB '*Z' AND length(updated_at) <> 27;
UPDATE erp_items SET decided_at = CASE WHEN instr(decided_at, '.') = 0 THEN substr(decided_at, 1, length(decided_at) - 1) || '.000000Z'
    ELSE substr(decided_at, 1, instr(decided_at, '.')) || substr(substr(decided_at, instr(decided_at, '.') + 1, length(decided_at) - instr(decided_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE decided_at GLOB '*Z' AND length(decided_at) <> 27;
UPDATE erp_items SET sent_at = CASE WHEN instr(sent_at, '.') = 0 THEN substr(sent_at, 1, length(sent_at) - 1) || '.000000Z'
    ELSE substr(sent_at, 1, instr(sent_at, '.')) || substr(substr(sent_at, instr(sent_at, '.') + 1, length(sent_at) - instr(sent_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE sent_at GLOB '*Z' AND length(sent_at) <> 27;
UPDATE event_outbox SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE event_outbox SET next_attempt_at = CASE WHEN instr(next_attempt_at, '.') = 0 THEN substr(next_attempt_at, 1, length(next_attempt_at) - 1) || '.000000Z'
    ELSE substr(next_attempt_at, 1, instr(next_attempt_at, '.')) || substr(substr(next_attempt_at, instr(next_attempt_at, '.') + 1, length(next_attempt_at) - instr(next_attempt_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE next_attempt_at GLOB '*Z' AND length(next_attempt_at) <> 27;
UPDATE event_outbox SET delivered_at = CASE WHEN instr(delivered_at, '.') = 0 THEN substr(delivered_at, 1, length(delivered_at) - 1) || '.000000Z'
    ELSE substr(delivered_at, 1, instr(delivered_at, '.')) || substr(substr(delivered_at, instr(delivered_at, '.') + 1, length(delivered_at) - instr(delivered_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE delivered_at GLOB '*Z' AND length(delivered_at) <> 27;
UPDATE event_subscriptions SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE event_subscriptions SET locked_until = CASE WHEN instr(locked_until, '.') = 0 THEN substr(locked_until, 1, length(locked_until) - 1) || '.000000Z'
    ELSE substr(locked_until, 1, instr(locked_until, '.')) || substr(substr(locked_until, instr(locked_until, '.') + 1, length(locked_until) - instr(locked_until, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE locked_until GLOB '*Z' AND length(locked_until) <> 27;
UPDATE event_subscriptions SET retry_at = CASE WHEN instr(retry_at, '.') = 0 THEN substr(retry_at, 1, length(retry_at) - 1) || '.000000Z'
    ELSE substr(retry_at, 1, instr(retry_at, '.')) || substr(substr(retry_at, instr(retry_at, '.') + 1, length(retry_at) - instr(retry_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE retry_at GLOB '*Z' AND length(retry_at) <> 27;
UPDATE export_jobs SET run_after = CASE WHEN instr(run_after, '.') = 0 THEN substr(run_after, 1, length(run_after) - 1) || '.000000Z'
    ELSE substr(run_after, 1, instr(run_after, '.')) || substr(substr(run_after, instr(run_after, '.') + 1, length(run_after) - instr(run_after, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE run_after GLOB '*Z' AND length(run_after) <> 27;
UPDATE export_jobs SET locked_until = CASE WHEN instr(locked_until, '.') = 0 THEN substr(locked_until, 1, length(locked_until) - 1) || '.000000Z'
    ELSE substr(locked_until, 1, instr(locked_until, '.')) || substr(substr(locked_until, instr(locked_until, '.') + 1, length(locked_until) - instr(locked_until, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE locked_until GLOB '*Z' AND length(locked_until) <> 27;
UPDATE export_jobs SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE export_jobs SET finished_at = CASE WHEN instr(finished_at, '.') = 0 THEN substr(finished_at, 1, length(finished_at) - 1) || '.000000Z'
    ELSE substr(finished_at, 1, instr(finished_at, '.')) || substr(substr(finished_at, instr(finished_at, '.') + 1, length(finished_at) - instr(finished_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE finished_at GLOB '*Z' AND length(finished_at) <> 27;
UPDATE idempotency_keys SET locked_until = CASE WHEN instr(locked_until, '.') = 0 THEN substr(locked_until, 1, length(locked_until) - 1) || '.000000Z'
    ELSE substr(locked_until, 1, instr(locked_until, '.')) || substr(substr(locked_until, instr(locked_until, '.') + 1, length(locked_until) - instr(locked_until, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE locked_until GLOB '*Z' AND length(locked_until) <> 27;
UPDATE idempotency_keys SET expires_at = CASE WHEN instr(expires_at, '.') = 0 THEN substr(expires_at, 1, length(expires_at) - 1) || '.000000Z'
    ELSE substr(expires_at, 1, instr(expires_at, '.')) || substr(substr(expires_at, instr(expires_at, '.') + 1, length(expires_at) - instr(expires_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE expires_at GLOB '*Z' AND length(expires_at) <> 27;
UPDATE outbox SET next_attempt_at = CASE WHEN instr(next_attempt_at, '.') = 0 THEN substr(next_attempt_at, 1, length(next_attempt_at) - 1) || '.000000Z'
    ELSE substr(next_attempt_at, 1, instr(next_attempt_at, '.')) || substr(substr(next_attempt_at, instr(next_attempt_at, '.') + 1, length(next_attempt_at) - instr(next_attempt_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE next_attempt_at GLOB '*Z' AND length(next_attempt_at) <> 27;
UPDATE outbox SET locked_until = CASE WHEN instr(locked_until, '.') = 0 THEN substr(locked_until, 1, length(locked_until) - 1) || '.000000Z'
    ELSE substr(locked_until, 1, instr(locked_until, '.')) || substr(substr(locked_until, instr(locked_until, '.') + 1, length(locked_until) - instr(locked_until, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE locked_until GLOB '*Z' AND length(locked_until) <> 27;
UPDATE outbox SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE outbox SET sent_at = CASE WHEN instr(sent_at, '.') = 0 THEN substr(sent_at, 1, length(sent_at) - 1) || '.000000Z'
    ELSE substr(sent_at, 1, instr(sent_at, '.')) || substr(substr(sent_at, instr(sent_at, '.') + 1, length(sent_at) - instr(sent_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE sent_at GLOB '*Z' AND length(sent_at) <> 27;
UPDATE password_resets SET expires_at = CASE WHEN instr(expires_at, '.') = 0 THEN substr(expires_at, 1, length(expires_at) - 1) || '.000000Z'
    ELSE substr(expires_at, 1, instr(expires_at, '.')) || substr(substr(expires_at, instr(expires_at, '.') + 1, length(expires_at) - instr(expires_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE expires_at GLOB '*Z' AND length(expires_at) <> 27;
UPDATE password_resets SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE qbwc_logins SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE qbwc_logins SET last_seen_at = CASE WHEN instr(last_seen_at, '.') = 0 THEN substr(last_seen_at, 1, length(last_seen_at) - 1) || '.000000Z'
    ELSE substr(last_seen_at, 1, instr(last_seen_at, '.')) || substr(substr(last_seen_at, instr(last_seen_at, '.') + 1, length(last_seen_at) - instr(last_seen_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE last_seen_at GLOB '*Z' AND length(last_seen_at) <> 27;
UPDATE qbwc_logins SET accounts_at = CASE WHEN instr(accounts_at, '.') = 0 THEN substr(accounts_at, 1, length(accounts_at) - 1) || '.000000Z'
    ELSE substr(accounts_at, 1, instr(accounts_at, '.')) || substr(substr(accounts_at, instr(accounts_at, '.') + 1, length(accounts_at) - instr(accounts_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE accounts_at GLOB '*Z' AND length(accounts_at) <> 27;
UPDATE qbwc_logins SET last_pull_at = CASE WHEN instr(last_pull_at, '.') = 0 THEN substr(last_pull_at, 1, length(last_pull_at) - 1) || '.000000Z'
    ELSE substr(last_pull_at, 1, instr(last_pull_at, '.')) || substr(substr(last_pull_at, instr(last_pull_at, '.') + 1, length(last_pull_at) - instr(last_pull_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE last_pull_at GLOB '*Z' AND length(last_pull_at) <> 27;
UPDATE qbwc_sessions SET expires_at = CASE WHEN instr(expires_at, '.') = 0 THEN substr(expires_at, 1, length(expires_at) - 1) || '.000000Z'
    ELSE substr(expires_at, 1, instr(expires_at, '.')) || substr(substr(expires_at, instr(expires_at, '.') + 1, length(expires_at) - instr(expires_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE expires_at GLOB '*Z' AND length(expires_at) <> 27;
UPDATE qbwc_sessions SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE sessions SET expires_at = CASE WHEN instr(expires_at, '.') = 0 THEN substr(expires_at, 1, length(expires_at) - 1) || '.000000Z'
    ELSE substr(expires_at, 1, instr(expires_at, '.')) || substr(substr(expires_at, instr(expires_at, '.') + 1, length(expires_at) - instr(expires_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE expires_at GLOB '*Z' AND length(expires_at) <> 27;
UPDATE sessions SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE submissions SET sent_at = CASE WHEN instr(sent_at, '.') = 0 THEN substr(sent_at, 1, length(sent_at) - 1) || '.000000Z'
    ELSE substr(sent_at, 1, instr(sent_at, '.')) || substr(substr(sent_at, instr(sent_at, '.') + 1, length(sent_at) - instr(sent_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE sent_at GLOB '*Z' AND length(sent_at) <> 27;
UPDATE users SET created_at = CASE WHEN instr(created_at, '.') = 0 THEN substr(created_at, 1, length(created_at) - 1) || '.000000Z'
    ELSE substr(created_at, 1, instr(created_at, '.')) || substr(substr(created_at, instr(created_at, '.') + 1, length(created_at) - instr(created_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE created_at GLOB '*Z' AND length(created_at) <> 27;
UPDATE xero_grants SET access_expires_at = CASE WHEN instr(access_expires_at, '.') = 0 THEN substr(access_expires_at, 1, length(access_expires_at) - 1) || '.000000Z'
    ELSE substr(access_expires_at, 1, instr(access_expires_at, '.')) || substr(substr(access_expires_at, instr(access_expires_at, '.') + 1, length(access_expires_at) - instr(access_expires_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE access_expires_at GLOB '*Z' AND length(access_expires_at) <> 27;
UPDATE xero_grants SET connected_at = CASE WHEN instr(connected_at, '.') = 0 THEN substr(connected_at, 1, length(connected_at) - 1) || '.000000Z'
    ELSE substr(connected_at, 1, instr(connected_at, '.')) || substr(substr(connected_at, instr(connected_at, '.') + 1, length(connected_at) - instr(connected_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE connected_at GLOB '*Z' AND length(connected_at) <> 27;
UPDATE xero_oauth_states SET expires_at = CASE WHEN instr(expires_at, '.') = 0 THEN substr(expires_at, 1, length(expires_at) - 1) || '.000000Z'
    ELSE substr(expires_at, 1, instr(expires_at, '.')) || substr(substr(expires_at, instr(expires_at, '.') + 1, length(expires_at) - instr(expires_at, '.') - 1) || '000000', 1, 6) || 'Z' END
    WHERE expires_at GLOB '*Z' AND length(expires_at) <> 27;
