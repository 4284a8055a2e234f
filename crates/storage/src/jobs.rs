//! The durable export queue: jobs are claimed with a lease (so a crashed worker's job is picked
//! up again), their items handed to a connector, and results recorded per code.
use crate::db::Lease;
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

/// Outcomes per statement: 500 rows × 8 bound values stays under SQLite's limit.
const OUTCOME_CHUNK: usize = 500;

const CLAIM_WHERE: &str = "((status = 'queued' AND run_after <= $2) OR (status = 'running' AND locked_until < $2)) \
     AND company_id NOT IN (SELECT company_id FROM erp_connections WHERE pulled)";

impl Db {
    /// Takes the oldest due job (or one whose worker's lease ran out) for `lease`; the jobs of a
    /// pulled connection (the QuickBooks Web Connector) are left to the ERP's session.
    pub async fn claim_export_job(
        &self,
        lease: Duration,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        self.claim(
            &Lease {
                table: "export_jobs",
                set: "status = 'running', locked_until = $1, attempts = attempts + 1",
                due: CLAIM_WHERE,
                order: "id",
                returning: "id, company_id, attempts",
            },
            now(),
            lease,
        )
        .await
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
             i.from_code, i.from_full_code, i.from_description, i.from_active \
             FROM erp_items i JOIN cost_codes c ON c.id = i.cost_code_id LEFT JOIN cost_codes pc ON pc.id = c.parent_id \
             WHERE i.export_job_id = $1 AND i.status = 'exporting' ORDER BY i.tier, i.sort_key")
            .bind(job).fetch_all(p).await?))
    }

    /// Records what the ERP said for each row, and closes the job once nothing is left to export.
    /// Set-based (a few statements per 500 rows), so a 100,000-code export commits quickly.
    pub async fn record_outcomes(
        &self,
        job: &ClaimedJob,
        rows: &[ExportRow],
        outcomes: &[(i64, Outcome)],
    ) -> Result<(), StoreError> {
        let by_item: std::collections::HashMap<i64, &ExportRow> =
            rows.iter().map(|r| (r.item_id, r)).collect();
        let ts = now();
        // The state machine decides where confirmed and refused codes go.
        let synced = SyncState::Exporting
            .apply(Event::Confirmed)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let failed = SyncState::Exporting
            .apply(Event::Refused)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        write_tx!(self, tx => {
            for chunk in outcomes.chunks(OUTCOME_CHUNK) {
                for (state, keep) in [(synced, true), (failed, false)] {
                    // (item id, origin id or error text) for this kind of outcome.
                    let part: Vec<(i64, &str, &ExportRow)> = chunk
                        .iter()
                        .filter_map(|(id, o)| {
                            let row = by_item.get(id)?;
                            match (o, keep) {
                                (Outcome::Synced { origin_id }, true) => Some((*id, origin_id.as_str(), *row)),
                                (Outcome::Failed { message }, false) => Some((*id, message.as_str(), *row)),
                                _ => None,
                            }
                        })
                        .collect();
                    if part.is_empty() {
                        continue;
                    }
                    let column = if keep { "origin_id" } else { "erp_message" };
                    let mut qb = sqlx::QueryBuilder::new(format!(
                        "UPDATE erp_items SET status = '{}', {column} = v.column2 FROM (", state.as_str()));
                    qb.push_values(&part, |mut b, (id, text, _)| {
                        b.push_bind(*id).push_bind(*text);
                    });
                    qb.push(") AS v WHERE erp_items.id = v.column1 AND erp_items.status = 'exporting' AND erp_items.export_job_id = ");
                    qb.push_bind(job.id);
                    qb.build().execute(&mut *tx).await?;
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO audit_events (company_id, at, actor_id, action, entity_type, entity_id, before, after) ");
                    qb.push_values(&part, |mut b, (_, text, row)| {
                        let after = if keep {
                            json!({"sync_status": state.as_str(), "origin_id": text, "export_job_id": job.id})
                        } else {
                            json!({"sync_status": state.as_str(), "erp_message": text, "export_job_id": job.id})
                        };
                        b.push_bind(job.company_id).push_bind(ts).push_bind(Option::<i64>::None)
                            .push_bind(format!("cost_code.{}", state.as_str())).push_bind("cost_code").push_bind(row.cost_code_id)
                            .push_bind(r#"{"sync_status":"exporting"}"#).push_bind(after.to_string());
                    });
                    qb.build().execute(&mut *tx).await?;
                }
            }
            // Codes follow their items: confirmed values are exactly what was sent.
            sqlx::query("UPDATE cost_codes SET sync_status = $3, confirmed_code = i.code, confirmed_full_code = i.full_code, \
                 confirmed_description = i.description, confirmed_active = i.active, origin_id = i.origin_id, last_synced_at = $2, \
                 erp_message = NULL, rejection_reason = NULL, status_before_send = NULL, updated_at = $2 \
                 FROM erp_items i WHERE i.cost_code_id = cost_codes.id AND i.export_job_id = $1 AND i.status = 'synced' \
                 AND cost_codes.sync_status = 'exporting'")
                .bind(job.id).bind(ts).bind(synced.as_str()).execute(&mut *tx).await?;
            sqlx::query("UPDATE cost_codes SET sync_status = $3, erp_message = i.erp_message, updated_at = $2 \
                 FROM erp_items i WHERE i.cost_code_id = cost_codes.id AND i.export_job_id = $1 AND i.status = 'failed' \
                 AND cost_codes.sync_status = 'exporting'")
                .bind(job.id).bind(ts).bind(failed.as_str()).execute(&mut *tx).await?;
            let closed = sqlx::query("UPDATE export_jobs SET status = 'done', finished_at = $2, locked_until = NULL WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM erp_items WHERE export_job_id = $1 AND status = 'exporting')")
                .bind(job.id).bind(ts).execute(&mut *tx).await?.rows_affected() > 0;
            // Notifications (docs/rules.md §6): once the job is finished, its failures go to their senders.
            if closed {
                notify_export_failed!(tx, job.company_id, job.id);
            }
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

    /// When the next queued job is due, so an idle worker knows how long it may sleep (the
    /// jobs of a pulled connection wait for the ERP, not for the worker).
    pub async fn next_job_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(with_pool!(self, p => sqlx::query_scalar(
            "SELECT MIN(CASE WHEN status = 'queued' THEN run_after ELSE locked_until END) FROM export_jobs WHERE status IN ('queued', 'running') \
             AND company_id NOT IN (SELECT company_id FROM erp_connections WHERE pulled)")
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
