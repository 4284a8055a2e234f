-- The queue's filters show each code's latest item only (a later item for the same code
-- supersedes it): this index answers "is there a later item for this code" without a scan.
CREATE INDEX erp_items_code_latest ON erp_items(cost_code_id, id);
