-- A finished job's counts, kept as it finished. Its live counts (job_item_counts) follow its
-- items, and a retry moves failed items to the new job: the old job, done with 7 synced and 3
-- failed, then said 7 and 0, and its export_job.done event had said 7 and 3. NULL for jobs
-- finished before this was kept (their live counts are shown, as before).
ALTER TABLE export_jobs ADD COLUMN done_synced BIGINT;
ALTER TABLE export_jobs ADD COLUMN done_failed BIGINT;
