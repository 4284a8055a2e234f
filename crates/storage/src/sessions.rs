//! Browser sessions. The cookie carries a random id; only its SHA-256 is stored (like API
//! tokens), with the user, the session's CSRF token and when it expires.
use crate::users::{USER_COLS, User, UserRow};
use crate::{Db, StoreError, now};
use time::Duration;

/// A live session: who it signs in, and the token unsafe requests must echo.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
}

impl Db {
    /// Stores a new session; expired ones are swept here so the table never grows unbounded.
    pub async fn create_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf_token: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let t = now();
        with_pool!(self, p => {
            sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(t).execute(p).await?;
            sqlx::query("INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id_hash).bind(user_id).bind(csrf_token).bind(t + ttl).bind(t).execute(p).await?;
        });
        Ok(())
    }

    /// The session for this id hash, if it exists and has not expired.
    pub async fn session(&self, id_hash: &str) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS}, s.csrf_token FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2"
        );
        let row = with_pool!(self, p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id_hash).bind(now()).fetch_optional(p).await?;
            match row {
                Some(r) => {
                    use sqlx::{FromRow, Row};
                    let csrf_token: String = r.try_get("csrf_token")?;
                    Some(Session { user: User::from(UserRow::from_row(&r)?), csrf_token })
                }
                None => None,
            }
        });
        Ok(row)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        with_pool!(self, p => { sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(id_hash).execute(p).await?; });
        Ok(())
    }
}
