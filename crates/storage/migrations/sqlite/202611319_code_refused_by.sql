-- Who refused a failed code: `Costbridge` (a check of its own) or the ERP by name, as its item
-- already says. The codes page said "ERP says" of every failure, Costbridge's own included.
-- Codes that failed before keep their latest item's refuser.
ALTER TABLE cost_codes ADD COLUMN refused_by TEXT;
UPDATE cost_codes SET refused_by = (
    SELECT i.refused_by FROM erp_items i WHERE i.cost_code_id = cost_codes.id ORDER BY i.id DESC LIMIT 1
) WHERE sync_status = 'failed';
