//! Events for a company's subscribers (README, Integrations → Events). An event is written by
//! the change that causes it, inside that change's transaction, one row per subscriber of its
//! type, and nothing at all when no one subscribes, so an import or a send pays one indexed
//! look-up for each kind of event it causes. The server's delivery worker claims a
//! *subscription* with a lease and POSTs its oldest pending events as one batch: a
//! subscription's events go out in the order they were written, so a later event for a code
//! never overtakes an earlier one.
use crate::tx::{Arg, Queries, Tx, marks};
use crate::{StoreError, now};
use costbridge_domain::events::{DeliveryStatus, EventType, types_pattern};
use costbridge_domain::sync::SyncState;
use serde_json::json;
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

mod delivery;
mod subscriptions;

pub use delivery::{ClaimedSubscription, Delivery};
pub use subscriptions::Subscription;
pub(crate) use subscriptions::rewrite_secrets;

/// Whether anyone in `company` subscribes to `event`.
async fn listened(tx: &mut Tx<'_>, company: i64, event: EventType) -> Result<bool, StoreError> {
    let n: i64 = tx
        .scalar(
            "SELECT COUNT(*) FROM event_subscriptions WHERE company_id = $1 \
             AND event_types LIKE $2",
            [company.into(), types_pattern(event).into()],
        )
        .await?;
    Ok(n > 0)
}

/// What a code's event is about besides the code.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct About {
    pub export_job: Option<i64>,
    pub submission: Option<i64>,
}

/// Writes `event` for each code of `company` that `filter` selects (a condition on
/// `cost_codes c` whose placeholders start at `$8`, bound to `args`), once per subscriber, with
/// the code as it is now in this transaction. Nothing runs when no one subscribes.
pub(crate) async fn code_events(
    tx: &mut Tx<'_>, company: i64, event: EventType, about: About, filter: &str,
    args: impl IntoIterator<Item = Arg>,
) -> Result<(), StoreError> {
    if listened(tx, company, event).await? {
        let args = args.into_iter().collect();
        insert_code_events(tx, company, event, about, filter, args).await?;
    }
    Ok(())
}

/// [`code_events`] for the codes `ids`.
pub(crate) async fn code_events_for(
    tx: &mut Tx<'_>, company: i64, event: EventType, about: About, ids: &[i64],
) -> Result<(), StoreError> {
    if ids.is_empty() || !listened(tx, company, event).await? {
        return Ok(());
    }
    for chunk in ids.chunks(ID_CHUNK) {
        let filter = format!("c.id IN ({})", marks(chunk.len(), 8));
        let args: Vec<Arg> = chunk.iter().map(|&id| Arg::from(id)).collect();
        insert_code_events(tx, company, event, about, &filter, args).await?;
    }
    Ok(())
}

/// Codes per statement when they are named by id.
const ID_CHUNK: usize = 500;

/// Takes the filter's arguments as a `Vec`, not generic like its callers, so that this long
/// future is compiled once rather than once per kind of argument list.
async fn insert_code_events(
    tx: &mut Tx<'_>, company: i64, event: EventType, about: About, filter: &str, args: Vec<Arg>,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO event_outbox (subscription_id, company_id, event_type, \
         created_at, next_attempt_at, status, cost_code_id, list_id, code, \
         full_code, description, active, sync_status, message, origin_id, \
         delivered_to, export_job_id, submission_id) SELECT s.id, c.company_id, $1, \
         $2, $2, $3, c.id, c.list_id, c.code, c.full_code, c.description, c.active, \
         c.sync_status, CASE c.sync_status WHEN '{rejected}' THEN \
         c.rejection_reason WHEN '{failed}' THEN c.erp_message END, \
         c.origin_id, c.delivered_to, $4, $5 FROM cost_codes c JOIN event_subscriptions s ON \
         s.company_id = c.company_id AND s.event_types LIKE $6 WHERE \
         c.company_id = $7 AND ({filter}) ORDER BY s.id, c.sort_key, c.id",
        rejected = SyncState::Rejected,
        failed = SyncState::Failed,
    );
    let mut all: Vec<Arg> = vec![
        event.as_str().into(),
        now().into(),
        DeliveryStatus::Pending.as_str().into(),
        about.export_job.into(),
        about.submission.into(),
        types_pattern(event).into(),
        company.into(),
    ];
    all.extend(args);
    tx.execute(AssertSqlSafe(sql), all).await?;
    Ok(())
}

/// Writes `export_job.done` for a job that just finished, with its counts.
pub(crate) async fn job_done_event(
    tx: &mut Tx<'_>, company: i64, job: i64,
) -> Result<(), StoreError> {
    let event = EventType::ExportJobDone;
    if !listened(tx, company, event).await? {
        return Ok(());
    }
    let counts: Vec<(String, i64)> = tx
        .fetch_all(
            "SELECT status, COUNT(*) FROM erp_items WHERE export_job_id = $1 \
             GROUP BY status ORDER BY status",
            [job.into()],
        )
        .await?;
    // Both counts always, 0 when none: a receiver reading `counts.failed` of a job where every
    // code synced found nothing there.
    let mut detail: serde_json::Map<String, serde_json::Value> = ["synced", "failed"]
        .into_iter()
        .map(|s| (s.to_owned(), json!(0)))
        .collect();
    detail.extend(counts.into_iter().map(|(s, n)| (s, json!(n))));
    tx.execute(
        "INSERT INTO event_outbox (subscription_id, company_id, event_type, \
         created_at, next_attempt_at, status, export_job_id, detail, delivered_to) \
         SELECT s.id, s.company_id, $1, $2, $2, $3, $4, $5, (SELECT delivered_to FROM \
         export_jobs WHERE id = $4) FROM event_subscriptions s WHERE s.company_id = $6 \
         AND s.event_types LIKE $7 ORDER BY s.id",
        [
            event.as_str().into(),
            now().into(),
            DeliveryStatus::Pending.as_str().into(),
            job.into(),
            serde_json::Value::Object(detail).to_string().into(),
            company.into(),
            types_pattern(event).into(),
        ],
    )
    .await?;
    Ok(())
}

/// One event for one subscriber: what happened (the code as it was then) and how its delivery
/// stands.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: i64,
    pub company_id: i64,
    #[sqlx(try_from = "String")]
    pub event_type: EventType,
    pub created_at: OffsetDateTime,
    pub cost_code_id: Option<i64>,
    pub list_id: Option<i64>,
    pub code: Option<String>,
    pub full_code: Option<String>,
    pub description: Option<String>,
    pub active: Option<bool>,
    pub sync_status: Option<String>,
    pub message: Option<String>,
    pub origin_id: Option<String>,
    /// The file the code or the job's codes went into when no ERP confirmed them.
    pub delivered_to: Option<String>,
    pub export_job_id: Option<i64>,
    pub submission_id: Option<i64>,
    pub detail: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<i64>,
    pub last_response: Option<String>,
    pub last_error: Option<String>,
    pub delivered_at: Option<OffsetDateTime>,
}

const EVENT_COLS: &str = "id, company_id, event_type, created_at, cost_code_id, list_id, \
                          code, full_code, description, active, sync_status, message, \
                          origin_id, delivered_to, export_job_id, submission_id, \
                          detail, status, \
                          attempts, next_attempt_at, last_status, last_response, \
                          last_error, delivered_at";
