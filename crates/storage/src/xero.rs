//! Xero grants and sign-ins under way (issue #11). Tokens and verifiers arrive encrypted by the
//! server; this module only keeps them. A refresh runs inside [`Db::refresh_xero_grant`], which
//! holds the grant's row lock (PostgreSQL `FOR UPDATE`; SQLite's writer lock) from reading the
//! refresh token until the new pair is committed.
use crate::outbox::{Notice, enqueue};
use crate::tx::{Queries, Tx};
use crate::{Db, StoreError, audit, now};
use costbridge_domain::xero::GrantStatus;
use serde_json::json;
use sqlx::AssertSqlSafe;
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
    #[sqlx(try_from = "String")]
    pub status: GrantStatus,
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

const GRANT: &str = "SELECT g.company_id, g.tenant_id, g.tenant_name, g.tenants, g.access_token, \
    g.refresh_token, g.access_expires_at, g.status, g.problem, g.connected_by, \
    u.name AS connected_by_name, g.connected_at \
    FROM xero_grants g JOIN users u ON u.id = g.connected_by WHERE g.company_id = $1";

/// Stores re-encrypted grant tokens inside `secrets rotate`'s transaction, each only if it still
/// holds `before` (else `Conflict`, nothing changes). Sign-ins under way (their verifiers under
/// the old key) are dropped: they are started again in a click.
pub(crate) async fn rewrite_grants(
    tx: &mut Tx<'_>, grants: &[GrantSecrets],
) -> Result<(), StoreError> {
    for g in grants {
        let done = tx
            .execute(
                "UPDATE xero_grants SET access_token = $1, refresh_token = $2 \
                 WHERE company_id = $3 AND access_token = $4 AND refresh_token = $5",
                [
                    (&g.after.0).into(),
                    (&g.after.1).into(),
                    g.company.into(),
                    (&g.before.0).into(),
                    (&g.before.1).into(),
                ],
            )
            .await?;
        if done != 1 {
            return Err(StoreError::Conflict(format!(
                "company {}'s Xero connection changed meanwhile; nothing was changed, run it again",
                g.company
            )));
        }
    }
    tx.execute("DELETE FROM xero_oauth_states", []).await?;
    Ok(())
}

/// Marks the grant as given up by Xero and, the first time, tells the company's admins.
async fn needs_reconnect(tx: &mut Tx<'_>, company: i64, problem: &str) -> Result<(), StoreError> {
    let changed = tx
        .execute(
            "UPDATE xero_grants SET status = $2, problem = $3 WHERE company_id = $1 AND status <> $2",
            [
                company.into(),
                GrantStatus::NeedsReconnect.as_str().into(),
                problem.into(),
            ],
        )
        .await?;
    if changed == 0 {
        return Ok(());
    }
    let company_name: String = tx
        .scalar("SELECT name FROM companies WHERE id = $1", [company.into()])
        .await?;
    // The company's admins (Admin tool).
    let sql = format!(
        "SELECT u.id, u.email FROM users u WHERE u.company_id = $1 AND u.admin_tool = $2 \
         AND {}",
        crate::clients::PEOPLE
    );
    let admins: Vec<(i64, String)> = tx
        .fetch_all(
            AssertSqlSafe(sql),
            [
                company.into(),
                costbridge_domain::Level::Admin.as_str().into(),
            ],
        )
        .await?;
    audit::record(
        tx,
        company,
        None,
        "xero.needs_reconnect",
        ("company", company),
        None,
        Some(json!({"problem": problem})),
    )
    .await?;
    let notice = Notice::XeroNeedsReconnect {
        company: company_name,
        problem: problem.to_owned(),
    };
    for (user, email) in admins {
        enqueue(tx, company, Some(user), &email, &notice, None).await?;
    }
    Ok(())
}

impl Db {
    /// Every grant's stored (encrypted) tokens, as `(company, access, refresh)`.
    pub async fn xero_grant_secrets(&self) -> Result<Vec<(i64, String, String)>, StoreError> {
        self.pool()
            .fetch_all(
                "SELECT company_id, access_token, refresh_token FROM xero_grants ORDER BY company_id",
                [],
            )
            .await
    }

    pub async fn xero_grant(&self, company: i64) -> Result<Option<XeroGrant>, StoreError> {
        self.pool().fetch_optional(GRANT, [company.into()]).await
    }

    /// Stores a new grant for the company (replacing an older one): connected, with the
    /// organisation when the grant covers only one, else waiting for the admin's pick.
    pub async fn save_xero_grant(
        &self, company: i64, user: i64, tenants_json: &str, tenant: Option<(&str, &str)>,
        tokens: &XeroTokens,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM xero_grants WHERE company_id = $1",
                    [company.into()],
                )
                .await?;
                tx.execute(
                    "INSERT INTO xero_grants (company_id, tenant_id, tenant_name, tenants, \
                     access_token, refresh_token, access_expires_at, status, connected_by, \
                     connected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    [
                        company.into(),
                        tenant.map(|t| t.0).into(),
                        tenant.map(|t| t.1).into(),
                        tenants_json.into(),
                        (&tokens.access_token).into(),
                        (&tokens.refresh_token).into(),
                        tokens.access_expires_at.into(),
                        GrantStatus::Connected.as_str().into(),
                        user.into(),
                        now().into(),
                    ],
                )
                .await?;
                let organisations: serde_json::Value =
                    serde_json::from_str(tenants_json).unwrap_or_default();
                audit::record(
                    tx,
                    company,
                    Some(user),
                    "xero.connected",
                    ("company", company),
                    None,
                    Some(json!({"organisation": tenant.map(|t| t.1), "organisations": organisations})),
                )
                .await
            })
        })
        .await
    }

    /// The admin's pick among the grant's organisations.
    pub async fn pick_xero_tenant(
        &self, company: i64, user: i64, tenant_id: &str, tenant_name: &str,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE xero_grants SET tenant_id = $2, tenant_name = $3 WHERE company_id = $1",
                    [company.into(), tenant_id.into(), tenant_name.into()],
                )
                .await?;
                audit::record(
                    tx,
                    company,
                    Some(user),
                    "xero.organisation_picked",
                    ("company", company),
                    None,
                    Some(json!({"organisation": tenant_name, "tenant_id": tenant_id})),
                )
                .await
            })
        })
        .await
    }

    /// Forgets the grant (after Disconnect revoked it at Xero).
    pub async fn delete_xero_grant(&self, company: i64, user: i64) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let before: Option<Option<String>> = tx
                    .scalar_optional(
                        "SELECT tenant_name FROM xero_grants WHERE company_id = $1",
                        [company.into()],
                    )
                    .await?;
                tx.execute(
                    "DELETE FROM xero_grants WHERE company_id = $1",
                    [company.into()],
                )
                .await?;
                audit::record(
                    tx,
                    company,
                    Some(user),
                    "xero.disconnected",
                    ("company", company),
                    before.map(|name| json!({"organisation": name})),
                    None,
                )
                .await
            })
        })
        .await
    }

    /// Runs `decide` on the grant while holding its row lock, then stores what it decided in
    /// the same transaction; `None` when the company has no grant. `decide` may call Xero:
    /// nobody else refreshes meanwhile.
    pub async fn refresh_xero_grant<T, F, Fut>(
        &self, company: i64, decide: F,
    ) -> Result<Option<T>, StoreError>
    where
        T: Send,
        F: FnOnce(XeroGrant) -> Fut + Send,
        Fut: Future<Output = Result<Refreshed<T>, StoreError>> + Send,
    {
        let lock = match self {
            Db::Sqlite(_) => GRANT.to_owned(),
            Db::Postgres(_) => format!("{GRANT} FOR UPDATE OF g"),
        };
        let lock = &lock;
        // `write` runs its body again only after a deadlock or serialization failure, which one
        // row lock taken first cannot cause; were it to happen, `decide` (which may have used
        // the refresh token) is not run twice: the second run refuses.
        let mut decide = Some(decide);
        // A renewed token is no change of the request's: its key stays free for a retry.
        crate::requests::aside(self.write(|tx| {
            let decide = decide.take();
            Box::pin(async move {
                let decide = decide.ok_or_else(|| {
                    StoreError::Conflict(
                        "the Xero token refresh was interrupted by the database; try again".into(),
                    )
                })?;
                let grant: Option<XeroGrant> = tx
                    .fetch_optional(AssertSqlSafe(lock.clone()), [company.into()])
                    .await?;
                let Some(grant) = grant else {
                    return Ok(None);
                };
                let out = match decide(grant).await? {
                    Refreshed::Kept(out) => out,
                    Refreshed::Rotated(t, out) => {
                        tx.execute(
                            "UPDATE xero_grants SET access_token = $2, refresh_token = $3, \
                             access_expires_at = $4 WHERE company_id = $1",
                            [
                                company.into(),
                                t.access_token.into(),
                                t.refresh_token.into(),
                                t.access_expires_at.into(),
                            ],
                        )
                        .await?;
                        out
                    }
                    Refreshed::Gone(problem, out) => {
                        needs_reconnect(tx, company, &problem).await?;
                        out
                    }
                };
                Ok(Some(out))
            })
        }))
        .await
    }

    /// Remembers a sign-in to Xero started by `user` in session `session_hash`.
    pub async fn put_xero_oauth_state(
        &self, state_hash: &str, company: i64, user: i64, session_hash: &str, verifier: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let t = now();
        self.write(|tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM xero_oauth_states WHERE expires_at < $1",
                    [t.into()],
                )
                .await?;
                tx.execute(
                    "INSERT INTO xero_oauth_states (state_hash, company_id, user_id, \
                     session_hash, verifier, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    [
                        state_hash.into(),
                        company.into(),
                        user.into(),
                        session_hash.into(),
                        verifier.into(),
                        (t + ttl).into(),
                    ],
                )
                .await?;
                Ok::<_, StoreError>(())
            })
        })
        .await
    }

    /// Takes a sign-in under way (it works once), whether or not it expired.
    pub async fn take_xero_oauth_state(
        &self, state_hash: &str,
    ) -> Result<Option<XeroOAuthState>, StoreError> {
        self.pool()
            .fetch_optional(
                "DELETE FROM xero_oauth_states WHERE state_hash = $1 \
                 RETURNING company_id, user_id, session_hash, verifier, expires_at",
                [state_hash.into()],
            )
            .await
    }
}
