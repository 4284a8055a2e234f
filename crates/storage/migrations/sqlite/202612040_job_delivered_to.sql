-- Where an export job's synced codes went when no ERP confirmed them (the file connector): the
-- file's name and the ERP it is for, written with the job's outcomes. The queue's rows and the
-- job's panel said "written to <file>" from the company's *current* connection, so after a
-- switch to another connector (or from IIF to CSV) an old file export read as "added to the
-- ERP", or named a file that was never written. NULL for a job an ERP confirmed, and for jobs
-- finished before this column existed (their connection's settings were never stored per job).
ALTER TABLE export_jobs ADD COLUMN delivered_to TEXT;
ALTER TABLE export_jobs ADD COLUMN delivered_for TEXT;
-- The same for an event's code or job as it was when the event happened: `cost_code.synced`
-- and `export_job.done` tell subscribers the file, since no ERP confirmed those codes.
ALTER TABLE event_outbox ADD COLUMN delivered_to TEXT;
