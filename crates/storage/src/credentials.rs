//! Password reset links and revoking what signs a user in (README, Security): after a password change or
//! reset, every other session and API token of that user stops working.
use crate::outbox::Notice;
use crate::users::User;
use crate::{Db, StoreError, now};
use serde_json::json;
use time::OffsetDateTime;

/// Deletes the user's sessions and API tokens except `$keep` (the hash of the caller's own
/// session or token, or `""`), and audits how many went and why.
macro_rules! revoke_credentials {
    ($tx:expr, $company:expr, $actor:expr, $user:expr, $keep:expr, $reason:expr) => {{
        let keep: &str = $keep;
        let sessions = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind($user)
            .bind(keep)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        let tokens = sqlx::query("DELETE FROM api_tokens WHERE user_id = $1 AND token_hash <> $2")
            .bind($user)
            .bind(keep)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        audit!($tx, $company, $actor, "user.credentials_revoked", "user", $user, None,
            Some(serde_json::json!({"reason": $reason, "sessions": sessions, "api_tokens": tokens,
                "kept_current": !keep.is_empty()})));
    }};
}

/// A reset link's email: who gets it and what it says.
pub struct ResetMail {
    pub recipient: String,
    pub notice: Notice,
}

impl Db {
    /// Stores a new reset link for `user` (replacing older ones) and, when mail is on, queues its
    /// email in the same transaction.
    pub async fn create_password_reset(
        &self,
        company: i64,
        actor: i64,
        user: i64,
        token_hash: &str,
        expires_at: OffsetDateTime,
        mail: Option<ResetMail>,
    ) -> Result<(), StoreError> {
        let t = now();
        write_tx!(self, tx => {
            sqlx::query("DELETE FROM password_resets WHERE user_id = $1 OR expires_at < $2")
                .bind(user).bind(t).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO password_resets (token_hash, user_id, created_by, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5)")
                .bind(token_hash).bind(user).bind(actor).bind(expires_at).bind(t)
                .execute(&mut *tx).await?;
            if let Some(m) = &mail {
                enqueue_mail!(tx, company, Some(user), &m.recipient, &m.notice, None);
            }
            audit!(tx, company, Some(actor), "user.password_reset_issued", "user", user, None,
                Some(json!({"expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).ok(),
                    "emailed": mail.is_some()})));
        });
        Ok(())
    }

    /// Whether `token_hash` is a live reset link; the user it is for.
    pub async fn password_reset_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {} FROM password_resets r JOIN users u ON u.id = r.user_id \
             WHERE r.token_hash = $1 AND r.expires_at > $2",
            crate::users::USER_COLS
        );
        let row: Option<crate::users::UserRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token_hash).bind(now()).fetch_optional(p).await?);
        Ok(row.map(User::from))
    }

    /// Uses a reset link once: sets the password and ends every session and API token of the
    /// user. An unknown, used or expired link is a `token` field error and changes nothing.
    pub async fn use_password_reset(
        &self,
        token_hash: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let user = write_tx!(self, tx => {
            let found: Option<(i64, i64)> = sqlx::query_as(
                "SELECT u.id, u.company_id FROM password_resets r JOIN users u ON u.id = r.user_id \
                 WHERE r.token_hash = $1 AND r.expires_at > $2")
                .bind(token_hash).bind(now()).fetch_optional(&mut *tx).await?;
            let Some((user, company)) = found else {
                return Err(StoreError::field("token", "is not a valid reset link: it is unknown, used or expired"));
            };
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(user).bind(password_hash).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
                .bind(user).execute(&mut *tx).await?;
            audit!(tx, company, Some(user), "user.password_reset", "user", user, None,
                Some(json!({"password_changed": true})));
            revoke_credentials!(tx, company, Some(user), user, "", "password_reset");
            (company, user)
        });
        self.user(user.0, user.1).await
    }

    /// Audits a sign-in decision on every account of `email` (none when it is unknown), or only
    /// on `user`, who is then the actor too (a successful sign-in).
    pub async fn audit_sign_in(
        &self,
        email: &str,
        user: Option<i64>,
        action: &str,
        after: serde_json::Value,
    ) -> Result<(), StoreError> {
        with_pool!(self, p => { sqlx::query(
            "INSERT INTO audit_events (company_id, at, actor_id, action, entity_type, entity_id, before, after) \
             SELECT u.company_id, $2, $3, $4, 'user', u.id, NULL, $5 FROM users u \
             WHERE lower(u.email) = lower($1) AND ($3 IS NULL OR u.id = $3)")
            .bind(email.trim()).bind(now()).bind(user).bind(action).bind(after.to_string())
            .execute(p).await?; });
        Ok(())
    }

    /// The stored password hash of a user, to check their current password.
    pub async fn password_hash(&self, user: i64) -> Result<String, StoreError> {
        let hash: Option<String> = with_pool!(self, p => sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(user).fetch_optional(p).await?);
        hash.ok_or(StoreError::NotFound)
    }
}
