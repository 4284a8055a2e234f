-- A password reset link is in its email's payload and rendered bodies until the email is sent;
-- once sent or given up on, they are cleared (`outbox::FORGET_LINK`), so a reader of the
-- database or a backup cannot use a link from there. Rows closed before that are cleared here.
UPDATE outbox SET payload = '{}', text_body = NULL, html_body = NULL
WHERE kind = 'password_reset' AND status <> 'pending';
