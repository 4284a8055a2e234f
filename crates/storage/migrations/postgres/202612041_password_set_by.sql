-- Who chose a user's current password, when it was not the user: the admin who created them
-- or typed a new one, or who issued the reset link it was set through. NULL when the user chose
-- it themselves (their own change, which needs the current one), and for passwords set before
-- this column existed. Granting such a user a permission that person does not hold is refused
-- until the user has chosen their own password: otherwise a plain admin who set it could sign
-- in as the new approver (docs: README, Security → Accounts).
ALTER TABLE users ADD COLUMN password_set_by BIGINT REFERENCES users(id);
