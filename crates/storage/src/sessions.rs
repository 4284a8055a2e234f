//! Browser sessions. The cookie carries a random id; only its SHA-256 is stored (like API
//! tokens), with the user, the session's CSRF token and when it expires.
use crate::tx::Queries;
use crate::users::{USER_COLS, User, UserRow};
use crate::{Db, StoreError, now};
use sqlx::AssertSqlSafe;
use time::Duration;

/// A live session: who it signs in, and the token unsafe requests must echo.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub csrf_token: String,
}

/// A session row: the user it signs in and its CSRF token.
#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    csrf_token: String,
}

impl Db {
    /// Stores a new session; expired ones are swept here so the table never grows unbounded.
    /// `password_hash` is the one the sign-in verified (`None` for the founder just created):
    /// the session is stored only while the user still has it, `false` otherwise (see
    /// [`Db::insert_token`]).
    pub async fn create_session(
        &self, id_hash: &str, user_id: i64, csrf_token: &str, ttl: Duration,
        password_hash: Option<&str>,
    ) -> Result<bool, StoreError> {
        let t = now();
        self.pool()
            .execute("DELETE FROM sessions WHERE expires_at < $1", [t.into()])
            .await?;
        let args = vec![
            user_id.into(),
            id_hash.into(),
            csrf_token.into(),
            (t + ttl).into(),
            t.into(),
        ];
        self.insert_credential(
            "sessions (user_id, id_hash, csrf_token, expires_at, created_at)",
            args,
            password_hash,
        )
        .await
    }

    /// The session for this id hash, if it exists and has not expired.
    pub async fn session(&self, id_hash: &str) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLS}, s.csrf_token FROM sessions s JOIN users \
             u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at \
             > $2"
        );
        let row: Option<SessionRow> = self
            .pool()
            .fetch_optional(AssertSqlSafe(sql), [id_hash.into(), now().into()])
            .await?;
        Ok(row.map(|r| Session {
            user: User::from(r.user),
            csrf_token: r.csrf_token,
        }))
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.pool()
            .execute("DELETE FROM sessions WHERE id_hash = $1", [id_hash.into()])
            .await?;
        Ok(())
    }
}
