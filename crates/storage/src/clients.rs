//! Machine clients (README, Integrations): a system's id and hashed secret, the users row it
//! acts through (kind `api_client`, holding its permissions), and the short-lived tokens it buys.
use crate::tx::{Queries, Tx};
use crate::{Db, StoreError, audit, now};
use costbridge_domain::permission::UserKind;
use costbridge_domain::queue::UnknownState;
use costbridge_domain::{Level, Permissions};
use serde::Serialize;
use serde_json::json;
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

/// People, not the rows machine clients act through: only people are listed, changed, signed
/// in or emailed (a condition on `users u`: its `kind` is [`UserKind::User`]'s stored name).
pub(crate) const PEOPLE: &str = "u.kind = 'person'";

/// How a page or a CSV file names a machine client: by the name its admin gave it, never by
/// the internal address of the row it acts through.
pub fn client_label(name: &str) -> String {
    format!("API client \u{201c}{name}\u{201d}")
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 7, "client_id": "cbc_3f9a1c2e4b5d6a7f", "name": "Nightly ERP sync",
    "permissions": {"admin_tool": "read_only", "erp_integrations": "standard", "can_push_to_accounting": false},
    "created_by": "admin@demo.example", "created_at": "2026-11-30T15:00:00Z", "rotated_at": null, "revoked_at": null}))]
pub struct ApiClient {
    pub id: i64,
    pub client_id: String,
    pub name: String,
    pub permissions: Permissions,
    /// The email of the admin who created it.
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub rotated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    client_id: String,
    name: String,
    admin_tool: String,
    erp_integrations: String,
    can_push_to_accounting: bool,
    created_by: String,
    created_at: OffsetDateTime,
    rotated_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl TryFrom<Row> for ApiClient {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        let level = |s: &str| {
            Level::parse(s).ok_or_else(|| {
                StoreError::decode(UnknownState {
                    kind: "permission level",
                    value: s.to_owned(),
                })
            })
        };
        Ok(ApiClient {
            id: r.id,
            client_id: r.client_id,
            name: r.name,
            permissions: Permissions {
                admin_tool: level(&r.admin_tool)?,
                erp_integrations: level(&r.erp_integrations)?,
                can_push_to_accounting: r.can_push_to_accounting,
            },
            created_by: r.created_by,
            created_at: r.created_at,
            rotated_at: r.rotated_at,
            revoked_at: r.revoked_at,
        })
    }
}

const SELECT: &str = "SELECT k.id, k.client_id, k.name, u.admin_tool, u.erp_integrations, \
                      u.can_push_to_accounting, c.email AS created_by, k.created_at, \
                      k.rotated_at, k.revoked_at FROM api_clients k JOIN users u ON u.id = \
                      k.user_id JOIN users c ON c.id = k.created_by WHERE k.company_id = $1";

/// What the token endpoint needs to check a client's secret.
#[derive(Debug, sqlx::FromRow)]
pub struct ClientSecret {
    pub user_id: i64,
    pub company_id: i64,
    pub secret_hash: String,
}

/// A new client: its name, the id and secret hash made for it, and its permissions.
pub struct NewClient<'a> {
    pub name: &'a str,
    pub client_id: &'a str,
    pub secret_hash: &'a str,
    pub permissions: Permissions,
}

/// Ends every token the client's users row holds, and audits `action` (the client's secret
/// changing or going) with how many ended.
async fn end_tokens(
    tx: &mut Tx<'_>, company: i64, actor: i64, id: i64, action: &str,
) -> Result<(), StoreError> {
    let tokens = tx
        .execute(
            "DELETE FROM api_tokens WHERE user_id = (SELECT user_id FROM api_clients WHERE \
             company_id = $1 AND id = $2)",
            [company.into(), id.into()],
        )
        .await?;
    audit::record(
        tx,
        company,
        Some(actor),
        action,
        ("api_client", id),
        None,
        Some(json!({"tokens_ended": tokens})),
    )
    .await
}

/// The secret about to be shown puts the client's rights in `actor`'s hands, so their rights,
/// read and held in this transaction (`FOR SHARE` on PostgreSQL, against a demotion's
/// `FOR UPDATE`), must cover the client's. A request checked under rights that a demotion
/// lowered while it ran is refused; one that commits first holds the demotion back
/// (`users::credentials_held`).
async fn shown_to(tx: &mut Tx<'_>, actor: i64, client: &Permissions) -> Result<(), StoreError> {
    let (who, theirs) = crate::users::chooser(tx, actor).await?;
    match theirs.lacks(client) {
        Some(missing) => Err(StoreError::Conflict(format!(
            "{who} no longer holds {missing}, which this client holds: their rights were lowered \
             while this request ran. Nothing was changed; someone who holds them can do it."
        ))),
        None => Ok(()),
    }
}

impl Db {
    pub async fn create_client(
        &self, company: i64, actor: i64, c: &NewClient<'_>,
    ) -> Result<ApiClient, StoreError> {
        let id = self
            .write(|tx| {
                Box::pin(async move {
                    shown_to(tx, actor, &c.permissions).await?;
                    let t = now();
                    // The users row is never signed in to: no password verifies against "!",
                    // and the `.invalid` address (RFC 2606) can receive nothing.
                    let user: i64 = tx
                        .scalar(
                            "INSERT INTO users (company_id, email, name, password_hash, \
                             admin_tool, erp_integrations, can_push_to_accounting, \
                             digest_emails, created_at, kind) VALUES ($1, $2, $3, '!', $4, \
                             $5, $6, FALSE, $7, $8) RETURNING id",
                            [
                                company.into(),
                                format!("{}@api-clients.invalid", c.client_id).into(),
                                c.name.into(),
                                c.permissions.admin_tool.as_str().into(),
                                c.permissions.erp_integrations.as_str().into(),
                                c.permissions.can_push_to_accounting.into(),
                                t.into(),
                                UserKind::ApiClient.as_str().into(),
                            ],
                        )
                        .await?;
                    let id: i64 = tx
                        .scalar(
                            "INSERT INTO api_clients (company_id, user_id, client_id, \
                             secret_hash, name, created_by, secret_shown_to, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id",
                            [
                                company.into(),
                                user.into(),
                                c.client_id.into(),
                                c.secret_hash.into(),
                                c.name.into(),
                                actor.into(),
                                t.into(),
                            ],
                        )
                        .await
                        .map_err(|e| {
                            e.unique_as(|| {
                                StoreError::field(
                                    "name",
                                    "is already the name of another client of this company",
                                )
                            })
                        })?;
                    audit::record(
                        tx,
                        company,
                        Some(actor),
                        "api_client.created",
                        ("api_client", id),
                        None,
                        Some(json!({"name": c.name, "client_id": c.client_id,
                            "permissions": c.permissions})),
                    )
                    .await?;
                    Ok::<_, StoreError>(id)
                })
            })
            .await?;
        self.client(company, id).await
    }

    /// The company's clients, live ones first, newest first.
    pub async fn clients(&self, company: i64) -> Result<Vec<ApiClient>, StoreError> {
        let sql = format!("{SELECT} ORDER BY k.revoked_at IS NOT NULL, k.id DESC");
        let rows: Vec<Row> = self
            .pool()
            .fetch_all(AssertSqlSafe(sql), [company.into()])
            .await?;
        rows.into_iter().map(ApiClient::try_from).collect()
    }

    pub async fn client(&self, company: i64, id: i64) -> Result<ApiClient, StoreError> {
        let sql = format!("{SELECT} AND k.id = $2");
        let row: Option<Row> = self
            .pool()
            .fetch_optional(AssertSqlSafe(sql), [company.into(), id.into()])
            .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Gives a live client a new secret: the old one and every token it bought stop working.
    pub async fn rotate_client(
        &self, company: i64, actor: i64, id: i64, secret_hash: &str,
    ) -> Result<ApiClient, StoreError> {
        let client = self.client(company, id).await?;
        if client.revoked_at.is_some() {
            return Err(StoreError::Conflict(
                "this client is revoked and cannot get a new secret; create a new client".into(),
            ));
        }
        let rights = &client.permissions;
        self.write(|tx| {
            Box::pin(async move {
                shown_to(tx, actor, rights).await?;
                let changed = tx
                    .execute(
                        "UPDATE api_clients SET secret_hash = $3, rotated_at = $4, \
                         secret_shown_to = $5 WHERE company_id = $1 AND id = $2 AND \
                         revoked_at IS NULL",
                        [
                            company.into(),
                            id.into(),
                            secret_hash.into(),
                            now().into(),
                            actor.into(),
                        ],
                    )
                    .await?;
                if changed == 0 {
                    return Err(StoreError::Conflict(
                        "this client was revoked meanwhile; create a new client".into(),
                    ));
                }
                end_tokens(tx, company, actor, id, "api_client.rotated").await
            })
        })
        .await?;
        self.client(company, id).await
    }

    /// Revokes a client for good: its secret and tokens stop working; its name stays in the
    /// audit log. Revoking a revoked client changes nothing.
    pub async fn revoke_client(
        &self, company: i64, actor: i64, id: i64,
    ) -> Result<ApiClient, StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let changed = tx
                    .execute(
                        "UPDATE api_clients SET revoked_at = $3 WHERE company_id = $1 AND \
                         id = $2 AND revoked_at IS NULL",
                        [company.into(), id.into(), now().into()],
                    )
                    .await?;
                if changed == 0 {
                    return Ok(());
                }
                end_tokens(tx, company, actor, id, "api_client.revoked").await
            })
        })
        .await?;
        self.client(company, id).await
    }

    /// The secret hash of a live client, by its public id.
    pub async fn client_secret(&self, client_id: &str) -> Result<Option<ClientSecret>, StoreError> {
        self.pool()
            .fetch_optional(
                "SELECT user_id, company_id, secret_hash FROM api_clients WHERE client_id = $1 \
                 AND revoked_at IS NULL",
                [client_id.into()],
            )
            .await
    }

    /// Stores a token a client bought (its hash), valid until `expires_at`, and clears the
    /// client's expired ones. The token is stored only while the client is not revoked and its
    /// secret is still `secret_hash`, the one the request was checked against (`false`
    /// otherwise): a rotation or revocation ends every token, and one committed while the
    /// secret was checked let this one live on. A rotation or revocation that commits after
    /// this also ends it (on PostgreSQL its update of the client's row waits for this
    /// `FOR SHARE`; SQLite has one writer).
    pub async fn insert_client_token(
        &self, user: i64, token_hash: &str, expires_at: OffsetDateTime, secret_hash: &str,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                // The client's row before its tokens, as a rotation or a revocation takes them.
                let lock = if tx.postgres() { " FOR SHARE" } else { "" };
                let sql = format!(
                    "SELECT id FROM api_clients WHERE user_id = $1 AND secret_hash = $2 AND \
                     revoked_at IS NULL{lock}"
                );
                let held: Option<i64> = tx
                    .scalar_optional(AssertSqlSafe(sql), [user.into(), secret_hash.into()])
                    .await?;
                if held.is_none() {
                    return Ok(false);
                }
                let t = now();
                tx.execute(
                    "DELETE FROM api_tokens WHERE user_id = $1 AND expires_at <= $2",
                    [user.into(), t.into()],
                )
                .await?;
                tx.execute(
                    "INSERT INTO api_tokens (user_id, token_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                    [user.into(), token_hash.into(), t.into(), expires_at.into()],
                )
                .await?;
                Ok::<_, StoreError>(true)
            })
        })
        .await
    }
}
