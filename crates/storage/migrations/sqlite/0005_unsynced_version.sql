-- The stale-page check compares what a client saw with what Send to ERP would send now. Only
-- writes that change the unsynced set (or an unsynced code's values) move `unsynced_version`;
-- it takes the list's `version` at that write, so a client may quote either number. Each code
-- remembers the list version of its last such change, to say which codes changed.
ALTER TABLE cost_code_lists ADD COLUMN unsynced_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cost_codes ADD COLUMN changed_version BIGINT NOT NULL DEFAULT 0;
-- Submissions were not readable per list in time order; auditors page through them.
CREATE INDEX submissions_company ON submissions(company_id, id);
CREATE INDEX erp_items_submission ON erp_items(submission_id, status);
-- A reject tells each sender about the items it decided at that instant; without this it read
-- every item the company ever had rejected.
CREATE INDEX erp_items_decided ON erp_items(company_id, status, decided_at);
