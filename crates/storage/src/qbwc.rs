//! The QuickBooks Web Connector's rows: each company's login and what QBWC last told,
//! sessions (tickets stored hashed), what a session's queries found, and what QuickBooks
//! answered when it confirmed each code. The export itself goes through `jobs.rs`.
use crate::jobs::ClaimedJob;
use crate::tx::{Arg, Queries, values};
use crate::{Db, StoreError, audit, now};
use costbridge_domain::permission::Level;
use costbridge_domain::queue::{ItemStatus, JobStatus, sql_in};
use serde_json::json;
use sqlx::AssertSqlSafe;
use std::collections::HashMap;
use std::sync::LazyLock;
use time::OffsetDateTime;

/// A company's Web Connector login, as the connection page shows it (no password).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QbwcLogin {
    pub company_id: i64,
    pub user_name: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: Option<OffsetDateTime>,
    pub qb_version: Option<String>,
    pub company_file: Option<String>,
    pub last_error: Option<String>,
    /// The accounts QuickBooks last reported (JSON list of `{code, name, kind}`).
    pub accounts: Option<String>,
    pub accounts_at: Option<OffsetDateTime>,
    /// Who asked for Sync from ERP, waiting for the next session.
    pub pull_requested_by: Option<i64>,
    /// The last Sync from ERP's summary (JSON) and when it ran.
    pub last_pull: Option<String>,
    pub last_pull_at: Option<OffsetDateTime>,
}

/// `(EditSequence, income account, expense account)` as QuickBooks confirmed a code.
pub type QbwcConfirmed = (String, Option<String>, Option<String>);

/// One live session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QbwcSession {
    pub ticket_hash: String,
    pub company_id: i64,
    pub expires_at: OffsetDateTime,
    pub accounts_read: bool,
    pub pending: Option<String>,
    pub total: i64,
    pub last_error: Option<String>,
}

const LOGIN: &str = "SELECT company_id, user_name, created_at, last_seen_at, qb_version, \
     company_file, last_error, accounts, accounts_at, pull_requested_by, last_pull, last_pull_at \
     FROM qbwc_logins";
const SESSION: &str = "SELECT ticket_hash, company_id, expires_at, accounts_read, pending, total, \
     last_error FROM qbwc_sessions";

/// A company's (`$1`) export jobs that still hold codes to export.
static WAITING_JOBS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "FROM export_jobs j WHERE j.company_id = $1 AND j.status IN {} \
         AND EXISTS (SELECT 1 FROM erp_items i WHERE i.export_job_id = j.id AND i.status = '{}')",
        sql_in([JobStatus::Queued, JobStatus::Running].map(JobStatus::as_str)),
        ItemStatus::Exporting.as_str()
    )
});

/// The codes still waiting for QuickBooks in a company's (`$1`) jobs.
static REMAINING: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT COUNT(*) FROM erp_items i WHERE i.status = '{}' \
         AND i.export_job_id IN (SELECT j.id {})",
        ItemStatus::Exporting.as_str(),
        *WAITING_JOBS
    )
});

impl Db {
    pub async fn qbwc_login(&self, company: i64) -> Result<Option<QbwcLogin>, StoreError> {
        let sql = format!("{LOGIN} WHERE company_id = $1");
        self.pool()
            .fetch_optional(AssertSqlSafe(sql), [company.into()])
            .await
    }

    /// The company and password hash of a Web Connector user name.
    pub async fn qbwc_credentials(&self, user: &str) -> Result<Option<(i64, String)>, StoreError> {
        self.pool()
            .fetch_optional(
                "SELECT company_id, password_hash FROM qbwc_logins WHERE user_name = $1",
                [user.into()],
            )
            .await
    }

    /// Sets (or replaces) the company's Web Connector password; its open sessions end.
    pub async fn set_qbwc_password(
        &self, company: i64, actor: i64, user: &str, hash: &str,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                // Whoever sets it must still manage users when it is kept as theirs: their row
                // is held, so a demotion judges this password (`credentials_held`) either
                // before it or after it, never beside it.
                let lock = if tx.postgres() { " FOR SHARE" } else { "" };
                let sql =
                    format!("SELECT admin_tool FROM users WHERE company_id = $1 AND id = $2{lock}");
                let level: Option<String> = tx
                    .scalar_optional(AssertSqlSafe(sql), [company.into(), actor.into()])
                    .await?;
                if level.as_deref() != Some(Level::Admin.as_str()) {
                    return Err(StoreError::Conflict(
                        "your rights changed meanwhile: setting the Web Connector password needs \
                         admin_tool=admin; nothing was changed"
                            .into(),
                    ));
                }
                let replaced = tx
                    .execute(
                        "UPDATE qbwc_logins SET user_name = $2, password_hash = $3, \
                         password_set_by = $4 WHERE company_id = $1",
                        [company.into(), user.into(), hash.into(), actor.into()],
                    )
                    .await?
                    > 0;
                if !replaced {
                    tx.execute(
                        "INSERT INTO qbwc_logins (company_id, user_name, password_hash, \
                         created_at, password_set_by) VALUES ($1, $2, $3, $4, $5)",
                        [
                            company.into(),
                            user.into(),
                            hash.into(),
                            now().into(),
                            actor.into(),
                        ],
                    )
                    .await?;
                }
                tx.execute(
                    "DELETE FROM qbwc_sessions WHERE company_id = $1",
                    [company.into()],
                )
                .await?;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "qbwc.password_set",
                    ("company", company),
                    None,
                    Some(json!({"user_name": user, "replaced": replaced})),
                )
                .await
            })
        })
        .await
    }

    /// Opens a session, counting the codes waiting for it. A company has one session at a time:
    /// a new one ends the others (QBWC started again, or a second machine with the same login),
    /// whose later calls are told the session ended; what they had QuickBooks do is found by
    /// the new session's queries.
    pub async fn start_qbwc_session(
        &self, company: i64, ticket_hash: &str, expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let t = now();
        self.write(|tx| {
            Box::pin(async move {
                tx.execute(
                    "DELETE FROM qbwc_sessions WHERE company_id = $1",
                    [company.into()],
                )
                .await?;
                let total: i64 = tx
                    .scalar(AssertSqlSafe(REMAINING.as_str()), [company.into()])
                    .await?;
                tx.execute(
                    "INSERT INTO qbwc_sessions (ticket_hash, company_id, expires_at, total, \
                     created_at) VALUES ($1, $2, $3, $4, $5)",
                    [
                        ticket_hash.into(),
                        company.into(),
                        expires_at.into(),
                        total.into(),
                        t.into(),
                    ],
                )
                .await?;
                tx.execute(
                    "UPDATE qbwc_logins SET last_seen_at = $2 WHERE company_id = $1",
                    [company.into(), t.into()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// A session that has not expired.
    pub async fn qbwc_session(&self, ticket_hash: &str) -> Result<Option<QbwcSession>, StoreError> {
        let sql = format!("{SESSION} WHERE ticket_hash = $1 AND expires_at > $2");
        self.pool()
            .fetch_optional(AssertSqlSafe(sql), [ticket_hash.into(), now().into()])
            .await
    }

    pub async fn end_qbwc_session(&self, ticket_hash: &str) -> Result<(), StoreError> {
        self.pool()
            .execute(
                "DELETE FROM qbwc_sessions WHERE ticket_hash = $1",
                [ticket_hash.into()],
            )
            .await?;
        Ok(())
    }

    /// Records what QBWC says about itself: its QuickBooks and company file (first request of
    /// a session) and when.
    pub async fn qbwc_seen(
        &self, company: i64, qb_version: Option<&str>, company_file: Option<&str>,
    ) -> Result<(), StoreError> {
        self.pool()
            .execute(
                "UPDATE qbwc_logins SET last_seen_at = $2, qb_version = COALESCE($3, qb_version), \
                 company_file = COALESCE($4, company_file) WHERE company_id = $1",
                [
                    company.into(),
                    now().into(),
                    qb_version.into(),
                    company_file.into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// The last error of a session and of the company's Web Connector (`None` clears the
    /// company's once a session went through).
    pub async fn qbwc_error(
        &self, company: i64, ticket_hash: Option<&str>, error: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE qbwc_logins SET last_error = $2 WHERE company_id = $1",
                    [company.into(), error.into()],
                )
                .await?;
                tx.execute(
                    "UPDATE qbwc_sessions SET last_error = $2 WHERE ticket_hash = $1",
                    [ticket_hash.into(), error.into()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Keeps the request the session hands out next.
    pub async fn set_qbwc_pending(
        &self, ticket_hash: &str, pending: Option<&str>,
    ) -> Result<(), StoreError> {
        self.pool()
            .execute(
                "UPDATE qbwc_sessions SET pending = $2 WHERE ticket_hash = $1",
                [ticket_hash.into(), pending.into()],
            )
            .await?;
        Ok(())
    }

    /// Keeps the accounts QuickBooks reported (JSON), as of now; the session has read them.
    pub async fn set_qbwc_accounts(
        &self, company: i64, ticket_hash: &str, accounts: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                if let Some(a) = accounts {
                    tx.execute(
                        "UPDATE qbwc_logins SET accounts = $2, accounts_at = $3 \
                         WHERE company_id = $1",
                        [company.into(), a.into(), now().into()],
                    )
                    .await?;
                }
                tx.execute(
                    "UPDATE qbwc_sessions SET accounts_read = TRUE WHERE ticket_hash = $1",
                    [ticket_hash.into()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Asks the next session for QuickBooks' service items (Sync from ERP); `false` when the
    /// company has no Web Connector login yet.
    pub async fn request_qbwc_pull(&self, company: i64, actor: i64) -> Result<bool, StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let asked = tx
                    .execute(
                        "UPDATE qbwc_logins SET pull_requested_by = $2 WHERE company_id = $1",
                        [company.into(), actor.into()],
                    )
                    .await?
                    > 0;
                if asked {
                    audit::record(
                        tx,
                        company,
                        Some(actor),
                        "qbwc.sync_requested",
                        ("company", company),
                        None,
                        None,
                    )
                    .await?;
                }
                Ok(asked)
            })
        })
        .await
    }

    /// Keeps a Sync from ERP's summary (JSON); the request is done.
    pub async fn set_qbwc_pull_result(
        &self, company: i64, summary: &str,
    ) -> Result<(), StoreError> {
        self.pool()
            .execute(
                "UPDATE qbwc_logins SET pull_requested_by = NULL, last_pull = $2, \
                 last_pull_at = $3 WHERE company_id = $1",
                [company.into(), summary.into(), now().into()],
            )
            .await?;
        Ok(())
    }

    /// The company's oldest export job with codes left, taken by the session (running, one
    /// more attempt); the worker never takes a pulled company's jobs. Its lease is already over,
    /// so should the company leave the Web Connector, the worker takes the job up (a new claim,
    /// after which the sessions record nothing of it). The sessions' own requests, one after
    /// another and each taking the job again, keep the claim they found.
    pub async fn qbwc_job(&self, company: i64) -> Result<Option<ClaimedJob>, StoreError> {
        let sql = format!(
            "UPDATE export_jobs SET status = '{running}', \
             attempts = attempts + CASE WHEN status = '{queued}' THEN 1 ELSE 0 END, \
             claims = claims + CASE WHEN status = '{queued}' THEN 1 ELSE 0 END, \
             locked_until = $2 WHERE id = (SELECT j.id {waiting} ORDER BY j.id LIMIT 1) \
             RETURNING id, company_id, attempts, erp_failures, claims",
            running = JobStatus::Running.as_str(),
            queued = JobStatus::Queued.as_str(),
            waiting = *WAITING_JOBS
        );
        let sql = &sql;
        self.write(|tx| {
            Box::pin(async move {
                tx.fetch_optional(AssertSqlSafe(sql.as_str()), [company.into(), now().into()])
                    .await
            })
        })
        .await
    }

    /// Codes still waiting for QuickBooks in the company's jobs.
    pub async fn qbwc_remaining(&self, company: i64) -> Result<i64, StoreError> {
        self.pool()
            .scalar(AssertSqlSafe(REMAINING.as_str()), [company.into()])
            .await
    }

    /// What this session's queries found, by queue item (`None`: QuickBooks has no such item).
    pub async fn qbwc_found(
        &self, ticket_hash: &str,
    ) -> Result<HashMap<i64, Option<String>>, StoreError> {
        let rows: Vec<(i64, Option<String>)> = self
            .pool()
            .fetch_all(
                "SELECT item_id, item FROM qbwc_found WHERE ticket_hash = $1",
                [ticket_hash.into()],
            )
            .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn save_qbwc_found(
        &self, ticket_hash: &str, found: &[(i64, Option<String>)],
    ) -> Result<(), StoreError> {
        if found.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            Box::pin(async move {
                for chunk in found.chunks(300) {
                    let sql = format!(
                        "INSERT INTO qbwc_found (ticket_hash, item_id, item) VALUES {} \
                         ON CONFLICT (ticket_hash, item_id) DO UPDATE SET item = excluded.item",
                        values(chunk.len(), 3)
                    );
                    let args: Vec<Arg> = chunk
                        .iter()
                        .flat_map(|(id, item)| [ticket_hash.into(), (*id).into(), item.into()])
                        .collect();
                    tx.execute(AssertSqlSafe(sql), args).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// What QuickBooks answered when it last confirmed each code of the company, by cost code.
    pub async fn qbwc_confirmed(
        &self, company: i64,
    ) -> Result<HashMap<i64, QbwcConfirmed>, StoreError> {
        let rows: Vec<(i64, String, Option<String>, Option<String>)> = self
            .pool()
            .fetch_all(
                "SELECT cost_code_id, edit_sequence, income_account, expense_account \
                 FROM qbwc_items WHERE company_id = $1",
                [company.into()],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(code, seq, income, expense)| (code, (seq, income, expense)))
            .collect())
    }

    /// Keeps, per cost code, QuickBooks' ListID, EditSequence and accounts as it confirmed them.
    pub async fn save_qbwc_confirmed(
        &self, company: i64, rows: &[(i64, String, QbwcConfirmed)],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            Box::pin(async move {
                for chunk in rows.chunks(100) {
                    let sql = format!(
                        "INSERT INTO qbwc_items (cost_code_id, company_id, list_id, \
                         edit_sequence, income_account, expense_account) VALUES {} \
                         ON CONFLICT (cost_code_id) DO UPDATE SET list_id = excluded.list_id, \
                         edit_sequence = excluded.edit_sequence, \
                         income_account = excluded.income_account, \
                         expense_account = excluded.expense_account",
                        values(chunk.len(), 6)
                    );
                    let args: Vec<Arg> = chunk
                        .iter()
                        .flat_map(|(code, list, (seq, income, expense))| {
                            [
                                (*code).into(),
                                company.into(),
                                list.into(),
                                seq.into(),
                                income.into(),
                                expense.into(),
                            ]
                        })
                        .collect();
                    tx.execute(AssertSqlSafe(sql), args).await?;
                }
                Ok(())
            })
        })
        .await
    }
}
