-- The company's time zone (an IANA name such as Europe/Berlin) for every time shown to its
-- people: pages, CSV downloads and emails. NULL means the server's own zone.
ALTER TABLE companies ADD COLUMN time_zone TEXT;
-- Who refused a failed export row, as emails name it: "Costbridge" (a check of its own, a
-- folder it cannot write, an ERP it gave up on) or the ERP by name. NULL for rows failed
-- before this column existed.
ALTER TABLE erp_items ADD COLUMN refused_by TEXT;
