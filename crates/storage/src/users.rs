//! Companies, users and API tokens.
use crate::clients::PEOPLE;
use crate::tx::{Arg, Queries, Tx, marks};
use crate::{Db, StoreError, audit, credentials, now};
use costbridge_domain::{Level, Permissions};
use serde::Serialize;
use serde_json::json;
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 2, "email": "approver@demo.example", "name": "Parker Approver",
    "permissions": {"admin_tool": "read_only", "erp_integrations": "standard", "can_push_to_accounting": true},
    "digest_emails": true, "created_at": "2026-11-30T15:00:00Z"}))]
pub struct User {
    pub id: i64,
    #[serde(skip)]
    pub company_id: i64,
    pub email: String,
    pub name: String,
    pub permissions: Permissions,
    pub digest_emails: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: i64,
    company_id: i64,
    email: String,
    name: String,
    admin_tool: String,
    erp_integrations: String,
    can_push_to_accounting: bool,
    digest_emails: bool,
    created_at: OffsetDateTime,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            company_id: r.company_id,
            email: r.email,
            name: r.name,
            permissions: Permissions {
                admin_tool: Level::parse(&r.admin_tool).unwrap_or(Level::None),
                erp_integrations: Level::parse(&r.erp_integrations).unwrap_or(Level::None),
                can_push_to_accounting: r.can_push_to_accounting,
            },
            digest_emails: r.digest_emails,
            created_at: r.created_at,
        }
    }
}

pub(crate) const USER_COLS: &str = "u.id, u.company_id, u.email, u.name, u.admin_tool, \
                                    u.erp_integrations, u.can_push_to_accounting, \
                                    u.digest_emails, u.created_at";

/// Refuses to leave the company without a person who is an Admin-tool admin holding Push to
/// accounting: nobody could grant that privilege again, or make an admin, and no command
/// recovers it.
async fn last_full_admin(
    tx: &mut Tx<'_>, company: i64, id: i64, name: &str,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT u.id FROM users u WHERE u.company_id = $1 AND u.id <> $2 AND {PEOPLE} AND \
         u.admin_tool = 'admin' AND u.can_push_to_accounting LIMIT 1"
    );
    let other: Option<(i64,)> = tx
        .fetch_optional(AssertSqlSafe(sql), [company.into(), id.into()])
        .await?;
    match other {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict(format!(
            "{name} is the company's last admin who holds Push to accounting: without one, \
             nobody could grant that privilege or make an admin again. Give another user \
             admin_tool=admin and Push to accounting first, then change {name}."
        ))),
    }
}

/// Refuses to lower a user's rights below those of an account they can still sign in as: an
/// API client whose secret they were shown last (they created or rotated it), a person who
/// still signs in with a password they chose (created the person with, set, or sent the reset
/// link of), or the QuickBooks Web Connector whose password they set last (it acts as the
/// company's QuickBooks: it confirms exports and sends codes into the ERP list; setting it
/// takes admin_tool=admin). The client is to be rotated (by someone who holds its rights) or
/// revoked first; the person is to change their own password first; the Web Connector gets a
/// new password first.
async fn credentials_held(
    tx: &mut Tx<'_>, company: i64, id: i64, name: &str, perms: &Permissions,
) -> Result<(), StoreError> {
    if !perms.can_manage_users() {
        let qbwc: Option<i64> = tx
            .scalar_optional(
                "SELECT company_id FROM qbwc_logins WHERE company_id = $1 AND password_set_by = $2",
                [company.into(), id.into()],
            )
            .await?;
        if qbwc.is_some() {
            return Err(StoreError::Conflict(format!(
                "{name} set the QuickBooks Web Connector password and was shown it: with it \
                 {name} could still act as the company's QuickBooks (confirm exports, send \
                 codes into the ERP list), which needs admin_tool=admin. Another admin sets a \
                 new password first (Company settings → ERP connection → New password, then \
                 enter it in the Web Connector), then change {name}."
            )));
        }
    }
    #[derive(sqlx::FromRow)]
    struct Held {
        #[sqlx(flatten)]
        user: UserRow,
        client: bool,
    }
    let sql = format!(
        "SELECT {USER_COLS}, TRUE AS client FROM api_clients k JOIN users u ON u.id = \
         k.user_id WHERE k.company_id = $1 AND k.secret_shown_to = $2 AND k.revoked_at IS NULL \
         UNION ALL SELECT {USER_COLS}, FALSE AS client FROM users u WHERE u.company_id = $1 \
         AND u.password_set_by = $2 AND u.id <> $2 AND {PEOPLE}"
    );
    let held: Vec<Held> = tx
        .fetch_all(AssertSqlSafe(sql), [company.into(), id.into()])
        .await?;
    for h in held {
        let (client, account) = (h.client, User::from(h.user));
        let Some(missing) = perms.lacks(&account.permissions) else {
            continue;
        };
        return Err(StoreError::Conflict(if client {
            format!(
                "{name} was shown the secret of the API client '{0}' (creating or rotating \
                 it), and '{0}' holds {missing}: with its secret {name} could still act with \
                 it. Rotate '{0}' (New secret, by someone who holds its rights) or revoke it \
                 first (Company settings → API clients), then change {name}.",
                account.name
            )
        } else {
            format!(
                "{0} still signs in with a password {name} chose, and {0} holds {missing}: \
                 {name} could still sign in as {0}. Ask {0} to change their own password \
                 first (their account page, with the current one), then change {name}.",
                account.name
            )
        }));
    }
    Ok(())
}

/// A user's row held for a change of their password or rights (`FOR UPDATE` on PostgreSQL;
/// SQLite's one writer is alone anyway): their rights now, and who chose their password when
/// it was not them (migration 202612041).
pub(crate) async fn lock_user(
    tx: &mut Tx<'_>, company: i64, id: i64,
) -> Result<(Permissions, Option<i64>), StoreError> {
    #[derive(sqlx::FromRow)]
    struct Held {
        #[sqlx(flatten)]
        user: UserRow,
        password_set_by: Option<i64>,
    }
    let lock = if tx.postgres() { " FOR UPDATE" } else { "" };
    let sql = format!(
        "SELECT {USER_COLS}, u.password_set_by FROM users u WHERE u.company_id = $1 AND \
         u.id = $2{lock}"
    );
    let held: Held = tx
        .fetch_optional(AssertSqlSafe(sql), [company.into(), id.into()])
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((User::from(held.user).permissions, held.password_set_by))
}

/// The person who chose (or is about to choose) a user's password: their name and rights, read
/// inside the write and held (`FOR SHARE` on PostgreSQL) so that a change of their rights
/// cannot slip between a check and the write. Both ways a password is set for someone (an
/// admin's change, a reset link used) judge them.
pub(crate) async fn chooser(tx: &mut Tx<'_>, id: i64) -> Result<(String, Permissions), StoreError> {
    let lock = if tx.postgres() { " FOR SHARE" } else { "" };
    let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1{lock}");
    let by = User::from(
        tx.fetch_one::<UserRow>(AssertSqlSafe(sql), [id.into()])
            .await?,
    );
    Ok((by.name, by.permissions))
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub permissions: Permissions,
}

#[derive(Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub permissions: Option<Permissions>,
    pub digest_emails: Option<bool>,
    /// With a new password: the hash of the caller's own session or API token, which keeps
    /// working when they change their own password; every other one is revoked.
    pub keep_credential: Option<String>,
    /// With a new password: who chose it, when not the user themselves.
    pub password_set_by: Option<i64>,
}

/// Inserts a user inside a transaction and returns its id; a taken email is a field error.
/// `set_by` is who chose the password when not the user (see [`Db::password_setter`]).
async fn insert_user(
    tx: &mut Tx<'_>, company: i64, u: &NewUser<'_>, set_by: Option<i64>,
) -> Result<i64, StoreError> {
    tx.scalar(
        "INSERT INTO users (company_id, email, name, password_hash, \
         admin_tool, erp_integrations, can_push_to_accounting, \
         digest_emails, created_at, password_set_by) VALUES ($1, $2, $3, $4, $5, $6, \
         $7, TRUE, $8, $9) RETURNING id",
        [
            company.into(),
            u.email.into(),
            u.name.into(),
            u.password_hash.into(),
            u.permissions.admin_tool.as_str().into(),
            u.permissions.erp_integrations.as_str().into(),
            u.permissions.can_push_to_accounting.into(),
            now().into(),
            set_by.into(),
        ],
    )
    .await
    .map_err(|e| {
        e.unique_as(|| {
            StoreError::field("email", "is already used by another user of this company")
        })
    })
}

/// A user row with the password hash, for signing in.
#[derive(sqlx::FromRow)]
struct LoginRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

impl Db {
    /// Creates a company with its first user; returns `(company_id, user_id)`.
    pub async fn create_company(
        &self, name: &str, admin: &NewUser<'_>,
    ) -> Result<(i64, i64), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let company: i64 = tx
                    .scalar(
                        "INSERT INTO companies (name, created_at) VALUES ($1, $2) \
                         RETURNING id",
                        [name.into(), now().into()],
                    )
                    .await
                    .map_err(|e| {
                        e.unique_as(|| {
                            StoreError::field(
                                "company",
                                format!("a company named '{name}' already exists"),
                            )
                        })
                    })?;
                let user = insert_user(tx, company, admin, None).await?;
                audit::record(
                    tx,
                    company,
                    None,
                    "company.created",
                    ("company", company),
                    Some(json!({"name": name})),
                    None,
                )
                .await?;
                Ok((company, user))
            })
        })
        .await
    }

    pub async fn companies_count(&self) -> Result<i64, StoreError> {
        self.pool()
            .scalar("SELECT COUNT(*) FROM companies", [])
            .await
    }

    pub async fn company_delimiter(&self, company: i64) -> Result<char, StoreError> {
        let d: Option<String> = self
            .pool()
            .scalar_optional(
                "SELECT delimiter FROM companies WHERE id = $1",
                [company.into()],
            )
            .await?;
        d.and_then(|d| d.chars().next()).ok_or(StoreError::NotFound)
    }

    /// What a send is judged by, in one statement: the company's delimiter and its ERP
    /// connection's profile id (`None` without a connection). The codes page asks on every
    /// view, and needs neither the connector's settings nor their decryption.
    pub async fn send_rules(&self, company: i64) -> Result<(char, Option<String>), StoreError> {
        let row: Option<(String, Option<String>)> = self
            .pool()
            .fetch_optional(
                "SELECT c.delimiter, e.profile FROM companies c LEFT JOIN erp_connections e \
                 ON e.company_id = c.id WHERE c.id = $1",
                [company.into()],
            )
            .await?;
        let (d, profile) = row.ok_or(StoreError::NotFound)?;
        Ok((d.chars().next().ok_or(StoreError::NotFound)?, profile))
    }

    pub async fn create_user(
        &self, company: i64, actor: i64, u: &NewUser<'_>,
    ) -> Result<User, StoreError> {
        let id = self
            .write(|tx| {
                Box::pin(async move {
                    let id = insert_user(tx, company, u, Some(actor)).await?;
                    audit::record(
                        tx,
                        company,
                        Some(actor),
                        "user.created",
                        ("user", id),
                        None,
                        Some(
                            json!({"email": u.email, "name": u.name, "permissions": u.permissions}),
                        ),
                    )
                    .await?;
                    Ok::<_, StoreError>(id)
                })
            })
            .await?;
        self.user(company, id).await
    }

    pub async fn user(&self, company: i64, id: i64) -> Result<User, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS} FROM users u WHERE u.company_id = $1 AND \
             u.id = $2 AND {PEOPLE}"
        );
        let row: Option<UserRow> = self
            .pool()
            .fetch_optional(AssertSqlSafe(sql), [company.into(), id.into()])
            .await?;
        row.map(User::from).ok_or(StoreError::NotFound)
    }

    pub async fn users(&self, company: i64) -> Result<Vec<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS} FROM users u WHERE u.company_id = $1 \
             AND {PEOPLE} ORDER BY u.id"
        );
        let rows: Vec<UserRow> = self
            .pool()
            .fetch_all(AssertSqlSafe(sql), [company.into()])
            .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// The users and password hashes for a login email, oldest first: an email is unique per
    /// company, so the same person may have an account in several.
    pub async fn users_for_login(&self, email: &str) -> Result<Vec<(User, String)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS}, u.password_hash FROM users u WHERE \
             lower(u.email) = lower($1) AND {PEOPLE} ORDER BY u.id"
        );
        let rows: Vec<LoginRow> = self
            .pool()
            .fetch_all(AssertSqlSafe(sql), [email.into()])
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| (User::from(r.user), r.password_hash))
            .collect())
    }

    pub async fn update_user(
        &self, company: i64, actor: i64, id: i64, patch: UserPatch,
    ) -> Result<User, StoreError> {
        let before = self.user(company, id).await?;
        let (patch, before) = (&patch, &before);
        self.write(|tx| {
            Box::pin(async move {
                // The company's row first: a change that may leave the company without a full
                // admin is judged one after another (two admins demoting each other at once).
                // Changes of users are rare; SQLite's one writer is alone anyway.
                if tx.postgres() {
                    tx.execute(
                        "SELECT id FROM companies WHERE id = $1 FOR NO KEY UPDATE",
                        [company.into()],
                    )
                    .await?;
                }
                let (now_rights, chosen_by) = lock_user(tx, company, id).await?;
                // A patch without rights keeps the ones held now, not those read before.
                let perms = patch.permissions.unwrap_or(now_rights);
                if now_rights.may_grant_push() && !perms.may_grant_push() {
                    last_full_admin(tx, company, id, &before.name).await?;
                }
                if perms.lacks(&now_rights).is_some() {
                    credentials_held(tx, company, id, &before.name, &perms).await?;
                }
                // Whoever chose the password after this change, when not the user, must hold
                // every permission the user is to have. Lowering rights never waits on it.
                let chosen = match &patch.password_hash {
                    Some(_) => patch.password_set_by,
                    None => chosen_by,
                };
                let raising = now_rights.lacks(&perms).is_some();
                // Whoever chose it can sign in as the user, so the user may hold nothing they
                // lack (a plain admin who created a user, once a full admin granted Push).
                let judged =
                    chosen.filter(|c| *c != id && (raising || patch.password_hash.is_some()));
                if let Some(c) = judged {
                    let (who, theirs) = chooser(tx, c).await?;
                    if let Some(missing) = theirs.lacks(&perms) {
                        return Err(StoreError::Conflict(format!(
                            "{0} still signs in with a password {who} chose, and {who} does not \
                             hold {missing}: whoever chose it could sign in as them. Ask {0} to \
                             change their own password first (their account page, with the \
                             current one), then grant it.",
                            before.name
                        )));
                    }
                }
                tx.execute(
                    "UPDATE users SET name = COALESCE($3, name), password_hash = \
                     COALESCE($4, password_hash), admin_tool = $5, \
                     erp_integrations = $6, can_push_to_accounting = $7, \
                     digest_emails = COALESCE($8, digest_emails), password_set_by = \
                     CASE WHEN $4 IS NULL THEN password_set_by ELSE $9 END WHERE \
                     company_id = $1 AND id = $2",
                    [
                        company.into(),
                        id.into(),
                        (&patch.name).into(),
                        (&patch.password_hash).into(),
                        perms.admin_tool.as_str().into(),
                        perms.erp_integrations.as_str().into(),
                        perms.can_push_to_accounting.into(),
                        patch.digest_emails.into(),
                        patch.password_set_by.into(),
                    ],
                )
                .await?;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "user.updated",
                    ("user", id),
                    Some(json!({"name": before.name, "permissions": now_rights,
                        "digest_emails": before.digest_emails})),
                    Some(json!({"name": patch.name.as_ref().unwrap_or(&before.name),
                        "permissions": perms,
                        "digest_emails": patch.digest_emails.unwrap_or(before.digest_emails),
                        "password_changed": patch.password_hash.is_some()})),
                )
                .await?;
                // A reset link sent before the user's rights or password changed was sent for
                // another account than this one: it goes (a new one is issued under the rule
                // as it is now).
                if perms != now_rights || patch.password_hash.is_some() {
                    tx.execute(
                        "DELETE FROM password_resets WHERE user_id = $1",
                        [id.into()],
                    )
                    .await?;
                }
                if patch.password_hash.is_some() {
                    let keep = patch.keep_credential.as_deref().unwrap_or("");
                    credentials::revoke(tx, company, Some(actor), id, keep, "password_changed")
                        .await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .await?;
        self.user(company, id).await
    }

    /// Stores a new API token of `user`. `password_hash` is the one a sign-in verified (`None`
    /// for the operator's command, which needs no password): see [`Db::insert_credential`].
    pub async fn insert_token(
        &self, user: i64, token_hash: &str, password_hash: Option<&str>,
    ) -> Result<bool, StoreError> {
        let args = vec![user.into(), token_hash.into(), now().into()];
        self.insert_credential(
            "api_tokens (user_id, token_hash, created_at)",
            args,
            password_hash,
        )
        .await
    }

    /// Inserts a credential (a token or a session) into `into` (the table and its columns)
    /// from `args`, the user's id first. With `password_hash`, the one a sign-in verified, the
    /// row is stored only while the user still has it (`false` otherwise): a sign-in racing a
    /// change or reset of the password, which ends every credential, kept one the change was
    /// to end. A change that commits first leaves nothing to insert; one that commits after
    /// also ends this one: on PostgreSQL its `FOR UPDATE` of the user's row ([`lock_user`])
    /// waits for this `FOR SHARE`, and SQLite has one writer.
    pub(crate) async fn insert_credential(
        &self, into: &str, args: Vec<Arg>, password_hash: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut pool = self.pool();
        let only = match password_hash {
            None => String::new(),
            Some(_) => format!(
                " FROM users WHERE id = $1 AND password_hash = ${}{}",
                args.len() + 1,
                if pool.postgres() { " FOR SHARE" } else { "" }
            ),
        };
        let sql = format!("INSERT INTO {into} SELECT {}{only}", marks(args.len(), 1));
        let args = args.into_iter().chain(password_hash.map(Arg::from));
        Ok(pool.execute(AssertSqlSafe(sql), args).await? == 1)
    }

    pub async fn user_by_token(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS} FROM api_tokens t JOIN users u ON u.id = \
             t.user_id WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR \
             t.expires_at > $2)"
        );
        let row: Option<UserRow> = self
            .pool()
            .fetch_optional(AssertSqlSafe(sql), [token_hash.into(), now().into()])
            .await?;
        Ok(row.map(User::from))
    }

    pub async fn delete_token(&self, token_hash: &str) -> Result<(), StoreError> {
        self.pool()
            .execute(
                "DELETE FROM api_tokens WHERE token_hash = $1",
                [token_hash.into()],
            )
            .await?;
        Ok(())
    }
}
