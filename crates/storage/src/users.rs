//! Companies, users and API tokens.
use crate::{Db, StoreError, now};
use costbridge_domain::{Level, Permissions};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize)]
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

pub(crate) const USER_COLS: &str = "u.id, u.company_id, u.email, u.name, u.admin_tool, u.erp_integrations, \
                         u.can_push_to_accounting, u.digest_emails, u.created_at";

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
}

/// Inserts a user inside a transaction and returns its id; a taken email is a field error.
macro_rules! insert_user {
    ($tx:expr, $company:expr, $u:expr) => {{
        let res: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO users (company_id, email, name, password_hash, admin_tool, erp_integrations, \
             can_push_to_accounting, digest_emails, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8) RETURNING id",
        )
        .bind($company)
        .bind($u.email)
        .bind($u.name)
        .bind($u.password_hash)
        .bind($u.permissions.admin_tool.as_str())
        .bind($u.permissions.erp_integrations.as_str())
        .bind($u.permissions.can_push_to_accounting)
        .bind(now())
        .fetch_one(&mut *$tx)
        .await;
        match res.map_err(StoreError::from) {
            Err(e) if e.is_unique_violation() => {
                return Err(StoreError::field("email", "is already used by another user of this company"))
            }
            other => other?,
        }
    }};
}

impl Db {
    /// Creates a company with its first user; returns `(company_id, user_id)`.
    pub async fn create_company(
        &self,
        name: &str,
        admin: &NewUser<'_>,
    ) -> Result<(i64, i64), StoreError> {
        let ids = write_tx!(self, tx => {
            let company: Result<i64, sqlx::Error> =
                sqlx::query_scalar("INSERT INTO companies (name, created_at) VALUES ($1, $2) RETURNING id")
                    .bind(name)
                    .bind(now())
                    .fetch_one(&mut *tx)
                    .await;
            let company = match company.map_err(StoreError::from) {
                Err(e) if e.is_unique_violation() => {
                    return Err(StoreError::field("company", format!("a company named '{name}' already exists")))
                }
                other => other?,
            };
            let user = insert_user!(tx, company, admin);
            audit!(tx, company, Option::<i64>::None, "company.created", "company", company, Some(json!({"name": name})), None);
            (company, user)
        });
        Ok(ids)
    }

    pub async fn companies_count(&self) -> Result<i64, StoreError> {
        Ok(
            with_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM companies").fetch_one(p).await?),
        )
    }

    pub async fn company_delimiter(&self, company: i64) -> Result<char, StoreError> {
        let d: Option<String> = with_pool!(self, p => sqlx::query_scalar("SELECT delimiter FROM companies WHERE id = $1")
            .bind(company).fetch_optional(p).await?);
        d.and_then(|d| d.chars().next()).ok_or(StoreError::NotFound)
    }

    pub async fn create_user(
        &self,
        company: i64,
        actor: i64,
        u: &NewUser<'_>,
    ) -> Result<User, StoreError> {
        let id = write_tx!(self, tx => {
            let id = insert_user!(tx, company, u);
            audit!(tx, company, Some(actor), "user.created", "user", id, None,
                Some(json!({"email": u.email, "name": u.name, "permissions": u.permissions})));
            id
        });
        self.user(company, id).await
    }

    pub async fn user(&self, company: i64, id: i64) -> Result<User, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.company_id = $1 AND u.id = $2");
        let row: Option<UserRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(company).bind(id).fetch_optional(p).await?);
        row.map(User::from).ok_or(StoreError::NotFound)
    }

    pub async fn users(&self, company: i64) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.company_id = $1 ORDER BY u.id");
        let rows: Vec<UserRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(company).fetch_all(p).await?);
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// The users and password hashes for a login email, oldest first: an email is unique per
    /// company, so the same person may have an account in several.
    pub async fn users_for_login(&self, email: &str) -> Result<Vec<(User, String)>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS}, u.password_hash FROM users u WHERE lower(u.email) = lower($1) ORDER BY u.id"
        );
        let rows = with_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(email).fetch_all(p).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                use sqlx::{FromRow, Row};
                let hash: String = r.try_get("password_hash")?;
                out.push((User::from(UserRow::from_row(&r)?), hash));
            }
            out
        });
        Ok(rows)
    }

    pub async fn update_user(
        &self,
        company: i64,
        actor: i64,
        id: i64,
        patch: UserPatch,
    ) -> Result<User, StoreError> {
        let before = self.user(company, id).await?;
        let perms = patch.permissions.unwrap_or(before.permissions);
        write_tx!(self, tx => {
            sqlx::query(
                "UPDATE users SET name = COALESCE($3, name), password_hash = COALESCE($4, password_hash), \
                 admin_tool = $5, erp_integrations = $6, can_push_to_accounting = $7, \
                 digest_emails = COALESCE($8, digest_emails) WHERE company_id = $1 AND id = $2",
            )
            .bind(company).bind(id).bind(&patch.name).bind(&patch.password_hash)
            .bind(perms.admin_tool.as_str()).bind(perms.erp_integrations.as_str())
            .bind(perms.can_push_to_accounting).bind(patch.digest_emails)
            .execute(&mut *tx).await?;
            audit!(tx, company, Some(actor), "user.updated", "user", id,
                Some(json!({"name": before.name, "permissions": before.permissions, "digest_emails": before.digest_emails})),
                Some(json!({"name": patch.name.as_ref().unwrap_or(&before.name), "permissions": perms,
                    "digest_emails": patch.digest_emails.unwrap_or(before.digest_emails),
                    "password_changed": patch.password_hash.is_some()})));
            if patch.password_hash.is_some() {
                let keep = patch.keep_credential.as_deref().unwrap_or("");
                revoke_credentials!(tx, company, Some(actor), id, keep, "password_changed");
            }
        });
        self.user(company, id).await
    }

    pub async fn insert_token(&self, user: i64, token_hash: &str) -> Result<(), StoreError> {
        with_pool!(self, p => { sqlx::query("INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user).bind(token_hash).bind(now()).execute(p).await?; });
        Ok(())
    }

    pub async fn user_by_token(&self, token_hash: &str) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
        );
        let row: Option<UserRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(token_hash).fetch_optional(p).await?);
        Ok(row.map(User::from))
    }

    pub async fn delete_token(&self, token_hash: &str) -> Result<(), StoreError> {
        with_pool!(self, p => { sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1").bind(token_hash).execute(p).await?; });
        Ok(())
    }
}
