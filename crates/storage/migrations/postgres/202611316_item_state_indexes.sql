-- An index that holds a queue item's state is rewritten whenever the item changes state, and
-- an exported code's item changes state twice (ready → exporting → synced); on PostgreSQL
-- every index of the table takes each new row version. So the indexes keep only what the
-- reads need:
-- * `erp_items_status` (company, state) is dropped: the reads by company and state are of
--   items no later item superseded, which `erp_items_queue` serves (an open item is always its
--   code's latest).
-- * `erp_items_code` (code, job) is dropped: a code's items are found by `erp_items_code_latest`.
-- * `erp_items_decided` loses the state: a decision's items are found by the time it was
--   taken, which is set once, when it is taken.
DROP INDEX erp_items_status;
DROP INDEX erp_items_code;
DROP INDEX erp_items_decided;
CREATE INDEX erp_items_decided ON erp_items(company_id, decided_at);
