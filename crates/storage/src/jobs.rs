//! The durable export queue: jobs are claimed with a lease (so a crashed worker's job is picked
//! up again), their items handed to a connector, and results recorded per code.
use crate::{Db, StoreError, now};
use costbridge_domain::sync::{Event, SyncState};
use serde_json::json;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: i64,
    pub company_id: i64,
    pub attempts: i64,
}

/// One code to export, as it was sent, with what the export needs to know about its parent.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportRow {
    pub item_id: i64,
    pub cost_code_id: i64,
    pub code: String,
    pub full_code: String,
    pub description: String,
    pub active: bool,
    pub tier: i64,
    pub parent_full_code: Option<String>,
    pub origin_id: Option<String>,
    pub gl_income_account: Option<String>,
    pub gl_expense_account: Option<String>,
    pub parent_state: Option<String>,
    pub parent_in_job: bool,
    /// What the ERP confirmed last (absent for a code it never had).
    pub from_code: Option<String>,
    pub from_full_code: Option<String>,
    pub from_description: Option<String>,
    pub from_active: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Synced { origin_id: String },
    Failed { message: String },
}

const CLAIM_WHERE: &str =
    "(status = 'queued' AND run_after <= $2) OR (status = 'running' AND locked_until < $2)";

impl Db {
    /// Takes the oldest due job (or one whose worker's lease ran out) for `lease`.
    pub async fn claim_export_job(
        &self,
        lease: Duration,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let t = now();
        let job = match self {
            // SKIP LOCKED lets several instances claim different jobs without waiting on each other.
            Db::Postgres(p) => {
                let sql = format!(
                    "UPDATE export_jobs SET status = 'running', locked_until = $1, attempts = attempts + 1 WHERE id = \
                     (SELECT id FROM export_jobs WHERE {CLAIM_WHERE} ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING id, company_id, attempts"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(t + lease)
                    .bind(t)
                    .fetch_optional(p)
                    .await?
            }
            // One statement under SQLite's single writer is already atomic.
            Db::Sqlite(p) => {
                let sql = format!(
                    "UPDATE export_jobs SET status = 'running', locked_until = $1, attempts = attempts + 1 WHERE id = \
                     (SELECT id FROM export_jobs WHERE {CLAIM_WHERE} ORDER BY id LIMIT 1) RETURNING id, company_id, attempts"
                );
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(t + lease)
                    .bind(t)
                    .fetch_optional(p)
                    .await?
            }
        };
        Ok(job)
    }

    /// Extends the lease while a long export runs.
    pub async fn renew_lease(&self, job: i64, lease: Duration) -> Result<(), StoreError> {
        with_pool!(self, p => { sqlx::query("UPDATE export_jobs SET locked_until = $2 WHERE id = $1 AND status = 'running'")
            .bind(job).bind(now() + lease).execute(p).await?; });
        Ok(())
    }

    /// The job's codes still to export, parents first.
    pub async fn job_rows(&self, job: i64) -> Result<Vec<ExportRow>, StoreError> {
        Ok(with_pool!(self, p => sqlx::query_as(
            "SELECT i.id AS item_id, i.cost_code_id, i.code, i.full_code, i.description, i.active, i.tier, i.parent_full_code, \
             i.origin_id, i.gl_income_account, i.gl_expense_account, pc.sync_status AS parent_state, \
             i.from_code, i.from_full_code, i.from_description, i.from_active, \
             EXISTS (SELECT 1 FROM erp_items pi WHERE pi.export_job_id = i.export_job_id AND pi.cost_code_id = c.parent_id \
                     AND pi.status IN ('exporting', 'synced')) AS parent_in_job \
             FROM erp_items i JOIN cost_codes c ON c.id = i.cost_code_id LEFT JOIN cost_codes pc ON pc.id = c.parent_id \
             WHERE i.export_job_id = $1 AND i.status = 'exporting' ORDER BY i.tier, i.sort_key")
            .bind(job).fetch_all(p).await?))
    }

    /// Records what the ERP said for each row, and closes the job once nothing is left to export.
    pub async fn record_outcomes(
        &self,
        job: &ClaimedJob,
        rows: &[ExportRow],
        outcomes: &[(i64, Outcome)],
    ) -> Result<(), StoreError> {
        let by_item: std::collections::HashMap<i64, &ExportRow> =
            rows.iter().map(|r| (r.item_id, r)).collect();
        let ts = now();
        write_tx!(self, tx => {
            for (item_id, outcome) in outcomes {
                let Some(row) = by_item.get(item_id) else { continue };
                let (event, status, message, origin) = match outcome {
                    Outcome::Synced { origin_id } => (Event::Confirmed, "synced", None, Some(origin_id.as_str())),
                    Outcome::Failed { message } => (Event::Refused, "failed", Some(message.as_str()), None),
                };
                let next = SyncState::Exporting.apply(event).map_err(|e| StoreError::Conflict(e.to_string()))?;
                let n = sqlx::query("UPDATE erp_items SET status = $2, erp_message = $3, origin_id = COALESCE($4, origin_id) \
                     WHERE id = $1 AND export_job_id = $5 AND status = 'exporting'")
                    .bind(item_id).bind(status).bind(message).bind(origin).bind(job.id)
                    .execute(&mut *tx).await?.rows_affected();
                if n == 0 {
                    continue;
                }
                if next == SyncState::Synced {
                    sqlx::query("UPDATE cost_codes SET sync_status = 'synced', confirmed_code = $2, confirmed_full_code = $3, \
                         confirmed_description = $4, confirmed_active = $5, origin_id = $6, last_synced_at = $7, erp_message = NULL, \
                         rejection_reason = NULL, status_before_send = NULL, updated_at = $7 WHERE id = $1 AND sync_status = 'exporting'")
                        .bind(row.cost_code_id).bind(&row.code).bind(&row.full_code).bind(&row.description).bind(row.active)
                        .bind(origin).bind(ts).execute(&mut *tx).await?;
                } else {
                    sqlx::query("UPDATE cost_codes SET sync_status = 'failed', erp_message = $2, updated_at = $3 \
                         WHERE id = $1 AND sync_status = 'exporting'")
                        .bind(row.cost_code_id).bind(message).bind(ts).execute(&mut *tx).await?;
                }
                audit!(tx, job.company_id, Option::<i64>::None, format!("cost_code.{status}"), "cost_code", row.cost_code_id,
                    Some(json!({"sync_status": "exporting"})),
                    Some(json!({"sync_status": next.as_str(), "origin_id": origin, "erp_message": message, "export_job_id": job.id})));
            }
            sqlx::query("UPDATE export_jobs SET status = 'done', finished_at = $2, locked_until = NULL WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM erp_items WHERE export_job_id = $1 AND status = 'exporting')")
                .bind(job.id).bind(ts).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// The ERP could not be reached: try again after `delay`, keeping the error for the page.
    pub async fn retry_job_later(
        &self,
        job: i64,
        error: &str,
        delay: Duration,
    ) -> Result<(), StoreError> {
        let t: OffsetDateTime = now();
        with_pool!(self, p => { sqlx::query(
            "UPDATE export_jobs SET status = 'queued', run_after = $2, locked_until = NULL, last_error = $3 WHERE id = $1")
            .bind(job).bind(t + delay).bind(error).execute(p).await?; });
        Ok(())
    }

    /// When the next queued job is due, so an idle worker knows how long it may sleep.
    pub async fn next_job_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(with_pool!(self, p => sqlx::query_scalar(
            "SELECT MIN(CASE WHEN status = 'queued' THEN run_after ELSE locked_until END) FROM export_jobs WHERE status IN ('queued', 'running')")
            .fetch_one(p).await?))
    }
}

impl Db {
    /// Export jobs waiting or running, for the operator's queue-depth gauge.
    pub async fn export_queue_depth(&self) -> Result<i64, StoreError> {
        Ok(
            with_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM export_jobs WHERE status IN ('queued', 'running')")
            .fetch_one(p).await?),
        )
    }
}
