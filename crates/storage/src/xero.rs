//! Xero grants and sign-ins under way (issue #11). Tokens and verifiers arrive encrypted by the
//! server; this module only keeps them. A refresh runs inside [`Db::refresh_xero_grant`], which
//! holds the grant's row lock (PostgreSQL `FOR UPDATE`; SQLite's writer lock) from reading the
//! refresh token until the new pair is committed.
use crate::db::sqlite_writer;
use crate::outbox::Notice;
use crate::{Db, StoreError, now};
use serde_json::json;
use std::future::Future;
use time::{Duration, OffsetDateTime};

/// A company's Xero grant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct XeroGrant {
    pub company_id: i64,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    /// JSON array of the organisations the grant covers.
    pub tenants: String,
    /// Encrypted.
    pub access_token: String,
    /// Encrypted.
    pub refresh_token: String,
    pub access_expires_at: OffsetDateTime,
    /// `connected` or `needs_reconnect`.
    pub status: String,
    pub problem: Option<String>,
    pub connected_by: i64,
    pub connected_by_name: String,
    pub connected_at: OffsetDateTime,
}

/// New tokens (encrypted) and when the access token expires.
#[derive(Debug, Clone)]
pub struct XeroTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_at: OffsetDateTime,
}

/// What a refresh decided, inside the lock.
pub enum Refreshed<T> {
    /// Nothing to store (the token was still good): the answer as it is.
    Kept(T),
    /// Store these tokens before anything uses them.
    Rotated(XeroTokens, T),
    /// Xero says the grant is gone: mark the connection and email the company's admins.
    Gone(String, T),
}

/// A sign-in to Xero under way, as the callback finds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct XeroOAuthState {
    pub company_id: i64,
    pub user_id: i64,
    pub session_hash: String,
    /// Encrypted.
    pub verifier: String,
    pub expires_at: OffsetDateTime,
}

/// A grant's tokens as stored (`before`) and re-encrypted under a new key (`after`).
#[derive(Debug, Clone)]
pub struct GrantSecrets {
    pub company: i64,
    pub before: (String, String),
    pub after: (String, String),
}

/// Re-encrypted grant tokens stored inside `secrets rotate`'s transaction, each only if it
/// still holds `before` (else `Conflict`, nothing changes); sign-ins under way (their
/// verifiers under the old key) are dropped: they are started again in a click.
macro_rules! rewrite_xero_grants {
    ($tx:expr, $rows:expr) => {
        for g in $rows {
            let done = sqlx::query(
                "UPDATE xero_grants SET access_token = $1, refresh_token = $2 \
                 WHERE company_id = $3 AND access_token = $4 AND refresh_token = $5",
            )
            .bind(&g.after.0)
            .bind(&g.after.1)
            .bind(g.company)
            .bind(&g.before.0)
            .bind(&g.before.1)
            .execute(&mut *$tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict(format!(
                    "company {}'s Xero connection changed meanwhile; nothing was changed, run it again",
                    g.company
                )));
            }
        }
        sqlx::query("DELETE FROM xero_oauth_states").execute(&mut *$tx).await?;
    };
}

const GRANT: &str = "SELECT g.company_id, g.tenant_id, g.tenant_name, g.tenants, g.access_token, \
    g.refresh_token, g.access_expires_at, g.status, g.problem, g.connected_by, \
    u.name AS connected_by_name, g.connected_at \
    FROM xero_grants g JOIN users u ON u.id = g.connected_by WHERE g.company_id = $1";

/// Who hears that a grant is gone: the company's admins (admin tool), by email.
const ADMINS: &str = "SELECT id, email FROM users WHERE company_id = $1 AND admin_tool = 'admin'";

impl Db {
    /// Every grant's stored (encrypted) tokens, as `(company, access, refresh)`.
    pub async fn xero_grant_secrets(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        Ok(with_pool!(self, p => sqlx::query_as(
            "SELECT company_id, access_token, refresh_token FROM xero_grants ORDER BY company_id")
            .fetch_all(p).await?))
    }

    pub async fn xero_grant(&self, company: i64) -> Result<Option<XeroGrant>, StoreError> {
        Ok(with_pool!(self, p => sqlx::query_as(GRANT).bind(company).fetch_optional(p).await?))
    }

    /// Stores a new grant for the company (replacing an older one): connected, with the
    /// organisation when the grant covers only one, else waiting for the admin's pick.
    pub async fn save_xero_grant(
        &self,
        company: i64,
        user: i64,
        tenants_json: &str,
        tenant: Option<(&str, &str)>,
        tokens: &XeroTokens,
    ) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            sqlx::query("DELETE FROM xero_grants WHERE company_id = $1")
                .bind(company).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO xero_grants (company_id, tenant_id, tenant_name, tenants, \
                access_token, refresh_token, access_expires_at, status, connected_by, connected_at) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'connected', $8, $9)")
                .bind(company).bind(tenant.map(|t| t.0)).bind(tenant.map(|t| t.1))
                .bind(tenants_json).bind(&tokens.access_token).bind(&tokens.refresh_token)
                .bind(tokens.access_expires_at).bind(user).bind(now())
                .execute(&mut *tx).await?;
            audit!(tx, company, Some(user), "xero.connected", "company", company, None,
                Some(json!({"organisation": tenant.map(|t| t.1), "organisations": tenants_json})));
        });
        Ok(())
    }

    /// The admin's pick among the grant's organisations.
    pub async fn pick_xero_tenant(
        &self,
        company: i64,
        user: i64,
        tenant_id: &str,
        tenant_name: &str,
    ) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            sqlx::query("UPDATE xero_grants SET tenant_id = $2, tenant_name = $3 WHERE company_id = $1")
                .bind(company).bind(tenant_id).bind(tenant_name).execute(&mut *tx).await?;
            audit!(tx, company, Some(user), "xero.organisation_picked", "company", company, None,
                Some(json!({"organisation": tenant_name, "tenant_id": tenant_id})));
        });
        Ok(())
    }

    /// Forgets the grant (after Disconnect revoked it at Xero).
    pub async fn delete_xero_grant(&self, company: i64, user: i64) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            let before: Option<Option<String>> = sqlx::query_scalar(
                "SELECT tenant_name FROM xero_grants WHERE company_id = $1")
                .bind(company).fetch_optional(&mut *tx).await?;
            sqlx::query("DELETE FROM xero_grants WHERE company_id = $1")
                .bind(company).execute(&mut *tx).await?;
            audit!(tx, company, Some(user), "xero.disconnected", "company", company,
                before.map(|name| json!({"organisation": name})), None);
        });
        Ok(())
    }

    /// Runs `decide` on the grant while holding its row lock, then stores what it decided in
    /// the same transaction. `decide` may call Xero: nobody else refreshes meanwhile.
    pub async fn refresh_xero_grant<T, E, F, Fut>(
        &self,
        company: i64,
        decide: F,
    ) -> Result<Option<T>, E>
    where
        F: FnOnce(XeroGrant) -> Fut,
        Fut: Future<Output = Result<Refreshed<T>, E>>,
        E: From<StoreError>,
    {
        // No retry loop (unlike `write_tx!`): `decide` may have used the refresh token, and
        // one row lock taken first cannot be part of a deadlock.
        macro_rules! locked {
            ($tx:ident, $select:expr) => {{
                let grant: Option<XeroGrant> = sqlx::query_as(sqlx::AssertSqlSafe($select))
                    .bind(company)
                    .fetch_optional(&mut *$tx)
                    .await
                    .map_err(StoreError::from)?;
                let Some(grant) = grant else {
                    return Ok(None);
                };
                let out = match decide(grant).await? {
                    Refreshed::Kept(out) => out,
                    Refreshed::Rotated(t, out) => {
                        sqlx::query(
                            "UPDATE xero_grants SET access_token = $2, refresh_token = $3, \
                             access_expires_at = $4 WHERE company_id = $1",
                        )
                        .bind(company)
                        .bind(&t.access_token)
                        .bind(&t.refresh_token)
                        .bind(t.access_expires_at)
                        .execute(&mut *$tx)
                        .await
                        .map_err(StoreError::from)?;
                        out
                    }
                    Refreshed::Gone(problem, out) => {
                        let changed = sqlx::query(
                            "UPDATE xero_grants SET status = 'needs_reconnect', problem = $2 \
                             WHERE company_id = $1 AND status <> 'needs_reconnect'",
                        )
                        .bind(company)
                        .bind(&problem)
                        .execute(&mut *$tx)
                        .await
                        .map_err(StoreError::from)?
                        .rows_affected();
                        if changed > 0 {
                            let _: () = (async {
                                audit!($tx, company, None::<i64>, "xero.needs_reconnect", "company",
                                    company, None, Some(json!({"problem": problem})));
                                Ok::<(), StoreError>(())
                            })
                            .await?;
                            let company_name: String =
                                sqlx::query_scalar("SELECT name FROM companies WHERE id = $1")
                                    .bind(company)
                                    .fetch_one(&mut *$tx)
                                    .await
                                    .map_err(StoreError::from)?;
                            let admins: Vec<(i64, String)> = sqlx::query_as(ADMINS)
                                .bind(company)
                                .fetch_all(&mut *$tx)
                                .await
                                .map_err(StoreError::from)?;
                            let notice = Notice::XeroNeedsReconnect {
                                company: company_name,
                                problem: problem.clone(),
                            };
                            for (user, email) in admins {
                                let _: u64 = (async {
                                    Ok::<u64, StoreError>(enqueue_mail!(
                                        $tx, company, user, &email, &notice, None
                                    ))
                                })
                                .await?;
                            }
                        }
                        out
                    }
                };
                $tx.commit().await.map_err(StoreError::from)?;
                Ok(Some(out))
            }};
        }
        match self {
            Db::Sqlite(p) => {
                let _turn = sqlite_writer(p).lock_owned().await;
                let mut tx = p
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(StoreError::from)?;
                locked!(tx, GRANT.to_owned())
            }
            Db::Postgres(p) => {
                let mut tx = p.begin().await.map_err(StoreError::from)?;
                locked!(tx, format!("{GRANT} FOR UPDATE OF g"))
            }
        }
    }

    /// Remembers a sign-in to Xero started by `user` in session `session_hash`.
    pub async fn put_xero_oauth_state(
        &self,
        state_hash: &str,
        company: i64,
        user: i64,
        session_hash: &str,
        verifier: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let t = now();
        with_pool!(self, p => {
            sqlx::query("DELETE FROM xero_oauth_states WHERE expires_at < $1")
                .bind(t).execute(p).await?;
            sqlx::query("INSERT INTO xero_oauth_states (state_hash, company_id, user_id, \
                session_hash, verifier, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(state_hash).bind(company).bind(user).bind(session_hash).bind(verifier)
                .bind(t + ttl).execute(p).await?;
        });
        Ok(())
    }

    /// Takes a sign-in under way (it works once), whether or not it expired.
    pub async fn take_xero_oauth_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<XeroOAuthState>, StoreError> {
        Ok(with_pool!(self, p => sqlx::query_as(
            "DELETE FROM xero_oauth_states WHERE state_hash = $1 \
             RETURNING company_id, user_id, session_hash, verifier, expires_at")
            .bind(state_hash).fetch_optional(p).await?))
    }

    /// The ERP asked to slow down: the job waits `delay` and this attempt does not count
    /// toward `max_attempts` (nothing failed).
    pub async fn postpone_export_job(
        &self,
        job: i64,
        message: &str,
        delay: Duration,
    ) -> Result<(), StoreError> {
        with_pool!(self, p => { sqlx::query(
            "UPDATE export_jobs SET status = 'queued', run_after = $2, locked_until = NULL, \
             last_error = $3, attempts = attempts - 1 WHERE id = $1")
            .bind(job).bind(now() + delay).bind(message).execute(p).await?; });
        Ok(())
    }
}
