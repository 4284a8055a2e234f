-- How many times in a row an export job's ERP (or the company's stored connection) could not
-- be reached. The give-up after [worker] max_attempts counts these, not claims: a restart or a
-- storage failure during a long job is no failure of the ERP, and they used up the job's
-- retries, so one short outage afterwards failed every code left at once. A batch recorded
-- sets it back to 0.
ALTER TABLE export_jobs ADD COLUMN erp_failures BIGINT NOT NULL DEFAULT 0;
