-- Looking up a code's items (parent checks during export, history per code) without scanning.
CREATE INDEX erp_items_code ON erp_items(cost_code_id, export_job_id);
