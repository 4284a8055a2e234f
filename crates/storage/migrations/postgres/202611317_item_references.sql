-- PostgreSQL checks a foreign key with a trigger call per written row, also on an UPDATE that
-- sets the key: sending 100,000 codes paid one for each item's submission, and accepting them
-- one for each item's export job (`EXPLAIN ANALYZE` of 500 items: "Trigger for constraint
-- erp_items_submission_id_fkey: calls=500", ~3.5 µs a row). A send writes its submission and
-- its items in one transaction, an accept its job and its items; Costbridge never deletes a
-- submission or an export job. `costbridge check` verifies both references instead, and more
-- strictly: the submission and the job must be of the item's own company (integrity.rs).
ALTER TABLE erp_items DROP CONSTRAINT erp_items_submission_id_fkey,
    DROP CONSTRAINT erp_items_export_job_id_fkey;
