//! The QuickBooks Web Connector's rows: each company's login and what QBWC last told,
//! sessions (tickets stored hashed), what a session's queries found, and the EditSequence
//! QuickBooks gave each confirmed code. The export itself goes through `jobs.rs`.
use crate::jobs::ClaimedJob;
use crate::{Db, StoreError, now};
use serde_json::json;
use std::collections::HashMap;
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

const LOGIN: &str = "SELECT company_id, user_name, created_at, last_seen_at, qb_version, company_file, last_error, accounts, accounts_at, \
     pull_requested_by, last_pull, last_pull_at FROM qbwc_logins";
const SESSION: &str = "SELECT ticket_hash, company_id, expires_at, accounts_read, pending, total, last_error FROM qbwc_sessions";
/// A company's export jobs that still hold codes to export, oldest first.
const WAITING_JOBS: &str = "FROM export_jobs j WHERE j.company_id = $1 AND j.status IN ('queued', 'running') \
     AND EXISTS (SELECT 1 FROM erp_items i WHERE i.export_job_id = j.id AND i.status = 'exporting')";

impl Db {
    pub async fn qbwc_login(&self, company: i64) -> Result<Option<QbwcLogin>, StoreError> {
        let sql = format!("{LOGIN} WHERE company_id = $1");
        Ok(
            with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(company).fetch_optional(p).await?),
        )
    }

    /// The company and password hash of a Web Connector user name.
    pub async fn qbwc_credentials(&self, user: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(
            with_pool!(self, p => sqlx::query_as("SELECT company_id, password_hash FROM qbwc_logins WHERE user_name = $1")
            .bind(user).fetch_optional(p).await?),
        )
    }

    /// Sets (or replaces) the company's Web Connector password; its open sessions end.
    pub async fn set_qbwc_password(
        &self,
        company: i64,
        actor: i64,
        user: &str,
        hash: &str,
    ) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            let replaced = sqlx::query("UPDATE qbwc_logins SET user_name = $2, password_hash = $3 WHERE company_id = $1")
                .bind(company).bind(user).bind(hash).execute(&mut *tx).await?.rows_affected() > 0;
            if !replaced {
                sqlx::query("INSERT INTO qbwc_logins (company_id, user_name, password_hash, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(company).bind(user).bind(hash).bind(now()).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM qbwc_sessions WHERE company_id = $1").bind(company).execute(&mut *tx).await?;
            audit!(tx, company, Some(actor), "qbwc.password_set", "company", company, None,
                Some(json!({"user_name": user, "replaced": replaced})));
        });
        Ok(())
    }

    /// Opens a session, counting the codes waiting for it. A company has one session at a time:
    /// a new one ends the others (QBWC started again, or a second machine with the same login),
    /// whose later calls are told the session ended; what they had QuickBooks do is found by
    /// the new session's queries.
    pub async fn start_qbwc_session(
        &self,
        company: i64,
        ticket_hash: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let t = now();
        write_tx!(self, tx => {
            sqlx::query("DELETE FROM qbwc_sessions WHERE company_id = $1")
                .bind(company).execute(&mut *tx).await?;
            let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM erp_items i WHERE i.status = 'exporting' AND i.export_job_id IN (SELECT j.id {WAITING_JOBS})")))
                .bind(company).fetch_one(&mut *tx).await?;
            sqlx::query("INSERT INTO qbwc_sessions (ticket_hash, company_id, expires_at, total, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(ticket_hash).bind(company).bind(expires_at).bind(total).bind(t).execute(&mut *tx).await?;
            sqlx::query("UPDATE qbwc_logins SET last_seen_at = $2 WHERE company_id = $1")
                .bind(company).bind(t).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// A session that has not expired.
    pub async fn qbwc_session(&self, ticket_hash: &str) -> Result<Option<QbwcSession>, StoreError> {
        let sql = format!("{SESSION} WHERE ticket_hash = $1 AND expires_at > $2");
        Ok(
            with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(ticket_hash).bind(now()).fetch_optional(p).await?),
        )
    }

    pub async fn end_qbwc_session(&self, ticket_hash: &str) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            sqlx::query("DELETE FROM qbwc_sessions WHERE ticket_hash = $1").bind(ticket_hash).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Records what QBWC says about itself: its QuickBooks and company file (first request of
    /// a session) and when.
    pub async fn qbwc_seen(
        &self,
        company: i64,
        qb_version: Option<&str>,
        company_file: Option<&str>,
    ) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            sqlx::query("UPDATE qbwc_logins SET last_seen_at = $2, qb_version = COALESCE($3, qb_version), \
                 company_file = COALESCE($4, company_file) WHERE company_id = $1")
                .bind(company).bind(now()).bind(qb_version).bind(company_file).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// The last error of a session and of the company's Web Connector (`None` clears the
    /// company's once a session went through).
    pub async fn qbwc_error(
        &self,
        company: i64,
        ticket_hash: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            sqlx::query("UPDATE qbwc_logins SET last_error = $2 WHERE company_id = $1")
                .bind(company).bind(error).execute(&mut *tx).await?;
            sqlx::query("UPDATE qbwc_sessions SET last_error = $2 WHERE ticket_hash = $1")
                .bind(ticket_hash).bind(error).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Keeps the request the session hands out next.
    pub async fn set_qbwc_pending(
        &self,
        ticket_hash: &str,
        pending: Option<&str>,
    ) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            sqlx::query("UPDATE qbwc_sessions SET pending = $2 WHERE ticket_hash = $1")
                .bind(ticket_hash).bind(pending).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Keeps the accounts QuickBooks reported (JSON), as of now; the session has read them.
    pub async fn set_qbwc_accounts(
        &self,
        company: i64,
        ticket_hash: &str,
        accounts: Option<&str>,
    ) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            if let Some(a) = accounts {
                sqlx::query("UPDATE qbwc_logins SET accounts = $2, accounts_at = $3 WHERE company_id = $1")
                    .bind(company).bind(a).bind(now()).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE qbwc_sessions SET accounts_read = TRUE WHERE ticket_hash = $1")
                .bind(ticket_hash).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Asks the next session for QuickBooks' service items (Sync from ERP); `false` when the
    /// company has no Web Connector login yet.
    pub async fn request_qbwc_pull(&self, company: i64, actor: i64) -> Result<bool, StoreError> {
        Ok(write_tx!(self, tx => {
            let asked = sqlx::query("UPDATE qbwc_logins SET pull_requested_by = $2 WHERE company_id = $1")
                .bind(company).bind(actor).execute(&mut *tx).await?.rows_affected() > 0;
            if asked {
                audit!(tx, company, Some(actor), "qbwc.sync_requested", "company", company, None, None);
            }
            asked
        }))
    }

    /// Keeps a Sync from ERP's summary (JSON); the request is done.
    pub async fn set_qbwc_pull_result(
        &self,
        company: i64,
        summary: &str,
    ) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            sqlx::query("UPDATE qbwc_logins SET pull_requested_by = NULL, last_pull = $2, last_pull_at = $3 WHERE company_id = $1")
                .bind(company).bind(summary).bind(now()).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// The company's oldest export job with codes left, taken by the session (running, one
    /// more attempt); the worker never takes a pulled company's jobs. Its lease is already over,
    /// so should the company leave the Web Connector, the worker takes the job up.
    pub async fn qbwc_job(&self, company: i64) -> Result<Option<ClaimedJob>, StoreError> {
        let sql = format!(
            "UPDATE export_jobs SET status = 'running', attempts = attempts + CASE WHEN status = 'queued' THEN 1 ELSE 0 END, \
             locked_until = $2 WHERE id = (SELECT j.id {WAITING_JOBS} ORDER BY j.id LIMIT 1) RETURNING id, company_id, attempts"
        );
        Ok(
            write_tx!(self, tx => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(company).bind(now()).fetch_optional(&mut *tx).await?),
        )
    }

    /// Codes still waiting for QuickBooks in the company's jobs.
    pub async fn qbwc_remaining(&self, company: i64) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM erp_items i WHERE i.status = 'exporting' AND i.export_job_id IN (SELECT j.id {WAITING_JOBS})"
        );
        Ok(
            with_pool!(self, p => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(company).fetch_one(p).await?),
        )
    }

    /// What this session's queries found, by queue item (`None`: QuickBooks has no such item).
    pub async fn qbwc_found(
        &self,
        ticket_hash: &str,
    ) -> Result<HashMap<i64, Option<String>>, StoreError> {
        let rows: Vec<(i64, Option<String>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT item_id, item FROM qbwc_found WHERE ticket_hash = $1").bind(ticket_hash).fetch_all(p).await?);
        Ok(rows.into_iter().collect())
    }

    pub async fn save_qbwc_found(
        &self,
        ticket_hash: &str,
        found: &[(i64, Option<String>)],
    ) -> Result<(), StoreError> {
        if found.is_empty() {
            return Ok(());
        }
        write_tx!(self, tx => {
            for chunk in found.chunks(300) {
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO qbwc_found (ticket_hash, item_id, item) ");
                qb.push_values(chunk, |mut b, (id, item)| {
                    b.push_bind(ticket_hash).push_bind(*id).push_bind(item.clone());
                });
                qb.push(" ON CONFLICT (ticket_hash, item_id) DO UPDATE SET item = excluded.item");
                qb.build().execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// What QuickBooks answered when it last confirmed each code of the company, by cost code:
    /// `(EditSequence, income account, expense account)`.
    pub async fn qbwc_confirmed(
        &self,
        company: i64,
    ) -> Result<HashMap<i64, QbwcConfirmed>, StoreError> {
        let rows: Vec<(i64, String, Option<String>, Option<String>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT cost_code_id, edit_sequence, income_account, expense_account FROM qbwc_items WHERE company_id = $1")
            .bind(company).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|(code, seq, income, expense)| (code, (seq, income, expense)))
            .collect())
    }

    /// Keeps, per cost code, QuickBooks' ListID, EditSequence and accounts as it confirmed them.
    pub async fn save_qbwc_confirmed(
        &self,
        company: i64,
        rows: &[(i64, String, QbwcConfirmed)],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        write_tx!(self, tx => {
            for chunk in rows.chunks(100) {
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO qbwc_items (cost_code_id, company_id, list_id, edit_sequence, income_account, expense_account) ");
                qb.push_values(chunk, |mut b, (code, list, (seq, income, expense))| {
                    b.push_bind(*code).push_bind(company).push_bind(list.clone()).push_bind(seq.clone())
                        .push_bind(income.clone()).push_bind(expense.clone());
                });
                qb.push(" ON CONFLICT (cost_code_id) DO UPDATE SET list_id = excluded.list_id, edit_sequence = excluded.edit_sequence, \
                     income_account = excluded.income_account, expense_account = excluded.expense_account");
                qb.build().execute(&mut *tx).await?;
            }
        });
        Ok(())
    }
}
