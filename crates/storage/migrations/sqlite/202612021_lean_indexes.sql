-- Fewer index entries for the bulk steps to write (BENCHMARKS.md, session 16). Each index of a
-- table takes an entry for every row an import or a send inserts, and on PostgreSQL for every
-- row a state change rewrites (scripts/index-costs: 60-200 ms per index per 100,000 codes).
-- * The tree's index now leads with the parent, so it also answers what `cost_codes_parent`
--   did (a code's children, and the parent key's check when a code is deleted) and that index
--   goes. The tree's reads name both the parent (or `parent_id IS NULL`) and the list.
-- * An item has no job until it is accepted and no decision until it is decided, and nothing
--   looks items up by a missing job or decision: the two indexes keep only the items that have
--   one, so a send writes neither.
DROP INDEX cost_codes_parent;
DROP INDEX cost_codes_tree;
CREATE INDEX cost_codes_tree ON cost_codes(parent_id, list_id, sort_key, full_code);
DROP INDEX erp_items_job;
CREATE INDEX erp_items_job ON erp_items(export_job_id, status) WHERE export_job_id IS NOT NULL;
DROP INDEX erp_items_decided;
CREATE INDEX erp_items_decided ON erp_items(company_id, decided_at) WHERE decided_at IS NOT NULL;
