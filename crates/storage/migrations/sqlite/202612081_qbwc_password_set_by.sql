-- Who set the QuickBooks Web Connector password last (it is shown to them once): lowering their
-- rights below managing users is refused until someone sets a new one (`users::credentials_held`),
-- as for an API client's secret. NULL for passwords set before this was kept.
ALTER TABLE qbwc_logins ADD COLUMN password_set_by INTEGER REFERENCES users(id);
