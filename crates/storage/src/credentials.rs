//! Password reset links and revoking what signs a user in (README, Security): after a password
//! change or reset, every other session and API token of that user stops working.
use crate::outbox::{self, Notice};
use crate::tx::{Queries, Tx};
use crate::users::User;
use crate::users::{USER_COLS, UserRow, chooser, lock_user};
use crate::{Db, StoreError, audit, now};
use serde_json::json;
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

/// Deletes the user's sessions and API tokens except `keep` (the hash of the caller's own
/// session or token, or `""`), and audits how many went and why.
pub(crate) async fn revoke(
    tx: &mut Tx<'_>, company: i64, actor: Option<i64>, user: i64, keep: &str, reason: &str,
) -> Result<(), StoreError> {
    let sessions = tx
        .execute(
            "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2",
            [user.into(), keep.into()],
        )
        .await?;
    let tokens = tx
        .execute(
            "DELETE FROM api_tokens WHERE user_id = $1 AND token_hash <> \
             $2",
            [user.into(), keep.into()],
        )
        .await?;
    audit::record(
        tx,
        company,
        actor,
        "user.credentials_revoked",
        ("user", user),
        None,
        Some(
            json!({"reason": reason, "sessions": sessions, "api_tokens": tokens,
            "kept_current": !keep.is_empty()}),
        ),
    )
    .await
}

/// A reset link's email: who gets it and what it says.
pub struct ResetMail {
    pub recipient: String,
    pub notice: Notice,
}

/// A reset link that is unknown, used or expired, as a `token` field error.
pub fn invalid_reset() -> StoreError {
    StoreError::field(
        "token",
        "is not a valid reset link: it is unknown, used or expired",
    )
}

impl Db {
    /// Stores a new reset link for `user` (replacing older ones) and, when mail is on, queues its
    /// email in the same transaction.
    pub async fn create_password_reset(
        &self, company: i64, actor: i64, user: i64, token_hash: &str, expires_at: OffsetDateTime,
        mail: Option<ResetMail>,
    ) -> Result<(), StoreError> {
        let t = now();
        let mail = &mail;
        let expires = expires_at
            .format(&time::format_description::well_known::Rfc3339)
            .ok();
        let expires = &expires;
        self.write(|tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM password_resets WHERE user_id = $1 OR \
                     expires_at < $2",
                    [user.into(), t.into()],
                )
                .await?;
                tx.execute(
                    "INSERT INTO password_resets (token_hash, user_id, \
                     created_by, expires_at, created_at) VALUES ($1, $2, $3, $4, \
                     $5)",
                    [
                        token_hash.into(),
                        user.into(),
                        actor.into(),
                        expires_at.into(),
                        t.into(),
                    ],
                )
                .await?;
                if let Some(m) = mail {
                    outbox::enqueue(tx, company, Some(user), &m.recipient, &m.notice, None).await?;
                }
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "user.password_reset_issued",
                    ("user", user),
                    None,
                    Some(json!({"expires_at": expires, "emailed": mail.is_some()})),
                )
                .await
            })
        })
        .await
    }

    /// Whether `token_hash` is a live reset link; the user it is for.
    pub async fn password_reset_user(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS} FROM password_resets r JOIN users u ON \
             u.id = r.user_id WHERE r.token_hash = $1 AND r.expires_at > \
             $2"
        );
        let row: Option<UserRow> = self
            .pool()
            .fetch_optional(AssertSqlSafe(sql), [token_hash.into(), now().into()])
            .await?;
        Ok(row.map(User::from))
    }

    /// Uses a reset link once: sets the password and ends every session and API token of the
    /// user. An unknown, used or expired link is a `token` field error and changes nothing.
    pub async fn use_password_reset(
        &self, token_hash: &str, password_hash: &str,
    ) -> Result<User, StoreError> {
        let (company, user) = self
            .write(|tx| {
                Box::pin(async move {
                    let found: Option<(i64, i64)> = tx
                        .fetch_optional(
                            "SELECT u.id, u.company_id FROM password_resets r JOIN users u ON \
                             u.id = r.user_id WHERE r.token_hash = $1 AND r.expires_at > $2",
                            [token_hash.into(), now().into()],
                        )
                        .await?;
                    let (user, company) = found.ok_or_else(invalid_reset)?;
                    // The user's row first (the order every change of a user takes), then the
                    // link, claimed: a grant or a second use of the link that committed
                    // meanwhile has taken it, and nothing is set.
                    let (rights, _) = lock_user(tx, company, user).await?;
                    let issuer: Option<i64> = tx
                        .scalar_optional(
                            "DELETE FROM password_resets WHERE token_hash = $1 AND \
                             expires_at > $2 RETURNING created_by",
                            [token_hash.into(), now().into()],
                        )
                        .await?;
                    let issuer = issuer.ok_or_else(invalid_reset)?;
                    // The rule the link was issued under must still hold: checked only at
                    // issue, a plain admin's link for a user granted Push to accounting before
                    // it was used set the new approver's password.
                    let (who, theirs) = chooser(tx, issuer).await?;
                    if let Err(missing) = theirs.authorize_account_change(&rights) {
                        return Err(StoreError::field(
                            "token",
                            format!(
                                "is no longer valid: {who} sent it, and changing this account \
                                 now needs {missing}, which they do not hold; ask an admin who \
                                 holds it for a new link"
                            ),
                        ));
                    }
                    tx.execute(
                        "DELETE FROM password_resets WHERE user_id = $1",
                        [user.into()],
                    )
                    .await?;
                    // Whoever holds the link chooses the password; shown to the issuer (mail
                    // off), that may be the issuer, so it counts as theirs.
                    tx.execute(
                        "UPDATE users SET password_hash = $2, password_set_by = $3 WHERE id = $1",
                        [user.into(), password_hash.into(), issuer.into()],
                    )
                    .await?;
                    audit::by_self(
                        tx,
                        company,
                        user,
                        "user.password_reset",
                        None,
                        Some(json!({"password_changed": true})),
                    )
                    .await?;
                    revoke(tx, company, Some(user), user, "", "password_reset").await?;
                    Ok((company, user))
                })
            })
            .await?;
        self.user(company, user).await
    }

    /// Audits a sign-in decision on every account of `email` (none when it is unknown), or only
    /// on `user`, who is then the actor too (a successful sign-in). When the email has accounts
    /// in several companies, an attempt nobody signed in with belongs to none of them for sure:
    /// each company's row leaves out the client's address (the operator's log keeps it), or
    /// an admin could make an account with another company's user's email and watch from where
    /// that person mistypes their password.
    pub async fn audit_sign_in(
        &self, email: &str, user: Option<i64>, action: &str, after: serde_json::Value,
    ) -> Result<(), StoreError> {
        debug_assert_eq!(
            audit::entity_type_of(action),
            Some("user"),
            "list the action in audit::ACTIONS, so the log's filter takes it"
        );
        let mut withheld = after.clone();
        if let Some(o) = withheld
            .as_object_mut()
            .filter(|o| o.contains_key("client"))
        {
            o.insert("client".into(), serde_json::Value::Null);
            o.insert(
                "client_withheld".into(),
                "the email has accounts in other companies".into(),
            );
        }
        self.pool()
            .execute(
                "INSERT INTO audit_events (company_id, at, actor_id, action, \
                 entity_type, entity_id, before, after) SELECT u.company_id, \
                 $2, $3, $4, 'user', u.id, NULL, CASE WHEN $3 IS NULL AND (SELECT \
                 COUNT(DISTINCT o.company_id) FROM users o WHERE lower(o.email) = \
                 lower($1)) > 1 THEN $6 ELSE $5 END FROM users u WHERE \
                 lower(u.email) = lower($1) AND ($3 IS NULL OR u.id = $3)",
                [
                    email.trim().into(),
                    now().into(),
                    user.into(),
                    action.into(),
                    after.to_string().into(),
                    withheld.to_string().into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// The stored password hash of a user, to check their current password.
    pub async fn password_hash(&self, user: i64) -> Result<String, StoreError> {
        self.pool()
            .scalar_optional(
                "SELECT password_hash FROM users WHERE id = $1",
                [user.into()],
            )
            .await?
            .ok_or(StoreError::NotFound)
    }
}
