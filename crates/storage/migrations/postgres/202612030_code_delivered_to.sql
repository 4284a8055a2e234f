-- The file a synced code's last export was written to, when no ERP confirmed it (the file
-- connector): the codes page says "in file", not "synced", until the ERP itself confirms.
-- NULL for a code an ERP confirmed. Codes synced through a file before this column existed
-- stay NULL: which file held them is not stored anywhere (the connection's settings are
-- encrypted and may have changed since).
ALTER TABLE cost_codes ADD COLUMN delivered_to TEXT;
