//! Events for a company's subscribers (README, Integrations → Events). The change that causes
//! an event writes it here in its own transaction, one row per subscriber of its type, and
//! nothing at all when no one subscribes, so an import or a send pays one indexed look-up for
//! each kind of event it causes. The server's delivery worker claims a *subscription* with a
//! lease and POSTs its oldest pending events as one batch: a subscription's events go out in
//! the order they were written, so a later event for a code never overtakes an earlier one.
use crate::db::Lease;
use crate::tx::{Arg, Queries, Tx, marks};
use crate::{Db, StoreError, audit, now};
use costbridge_domain::events::{
    DeliveryStatus, EventType, parse_stored_types, stored_types, types_pattern,
};
use costbridge_domain::sync::SyncState;
use serde_json::json;
use sqlx::AssertSqlSafe;
use time::{Duration, OffsetDateTime};

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
    tx: &mut Tx<'_>,
    company: i64,
    event: EventType,
    about: About,
    filter: &str,
    args: impl IntoIterator<Item = Arg>,
) -> Result<(), StoreError> {
    if listened(tx, company, event).await? {
        insert_code_events(tx, company, event, about, filter, args).await?;
    }
    Ok(())
}

/// [`code_events`] for the codes `ids`.
pub(crate) async fn code_events_for(
    tx: &mut Tx<'_>,
    company: i64,
    event: EventType,
    about: About,
    ids: &[i64],
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

async fn insert_code_events(
    tx: &mut Tx<'_>,
    company: i64,
    event: EventType,
    about: About,
    filter: &str,
    args: impl IntoIterator<Item = Arg>,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO event_outbox (subscription_id, company_id, event_type, \
         created_at, next_attempt_at, status, cost_code_id, list_id, code, \
         full_code, description, active, sync_status, message, origin_id, \
         export_job_id, submission_id) SELECT s.id, c.company_id, $1, $2, $2, \
         $3, c.id, c.list_id, c.code, c.full_code, c.description, c.active, \
         c.sync_status, CASE c.sync_status WHEN '{rejected}' THEN \
         c.rejection_reason WHEN '{failed}' THEN c.erp_message END, \
         c.origin_id, $4, $5 FROM cost_codes c JOIN event_subscriptions s ON \
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
    tx: &mut Tx<'_>,
    company: i64,
    job: i64,
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
    let detail: serde_json::Map<String, serde_json::Value> =
        counts.into_iter().map(|(s, n)| (s, json!(n))).collect();
    tx.execute(
        "INSERT INTO event_outbox (subscription_id, company_id, event_type, \
         created_at, next_attempt_at, status, export_job_id, detail) SELECT \
         s.id, s.company_id, $1, $2, $2, $3, $4, $5 FROM event_subscriptions s \
         WHERE s.company_id = $6 AND s.event_types LIKE $7 ORDER BY s.id",
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

/// Replaces subscriptions' sealed secrets `(id, before, after)` (`secrets rotate`); a secret
/// changed meanwhile is a `Conflict`.
pub(crate) async fn rewrite_secrets(
    tx: &mut Tx<'_>,
    rows: &[(i64, String, String)],
) -> Result<(), StoreError> {
    for (id, before, after) in rows {
        let done = tx
            .execute(
                "UPDATE event_subscriptions SET secret = $1 WHERE id = $2 AND secret = $3",
                [after.into(), (*id).into(), before.into()],
            )
            .await?;
        if done != 1 {
            return Err(StoreError::Conflict(format!(
                "event subscription {id} changed meanwhile; nothing was changed, run it again"
            )));
        }
    }
    Ok(())
}

/// A subscription as its company's admins see it: never its secret.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: i64,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub created_at: OffsetDateTime,
    pub pending: i64,
    pub failed: i64,
}

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    id: i64,
    url: String,
    event_types: String,
    created_at: OffsetDateTime,
    pending: i64,
    failed: i64,
}

impl TryFrom<SubscriptionRow> for Subscription {
    type Error = StoreError;
    fn try_from(r: SubscriptionRow) -> Result<Self, StoreError> {
        Ok(Subscription {
            event_types: parse_stored_types(&r.event_types).map_err(StoreError::decode)?,
            id: r.id,
            url: r.url,
            created_at: r.created_at,
            pending: r.pending,
            failed: r.failed,
        })
    }
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
                          origin_id, export_job_id, submission_id, detail, status, \
                          attempts, next_attempt_at, last_status, last_response, \
                          last_error, delivered_at";

/// A subscription taken for delivery, its secret still sealed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedSubscription {
    pub id: i64,
    pub company_id: i64,
    pub url: String,
    pub secret: String,
}

/// How one batch's delivery went.
#[derive(Debug, Clone)]
pub enum Delivery {
    Delivered {
        status: i64,
        response: String,
    },
    /// Not taken: tried again at `retry_at`, or given up on (`retry_at` is `None`).
    NotTaken {
        status: Option<i64>,
        response: Option<String>,
        error: String,
        retry_at: Option<OffsetDateTime>,
    },
}

const SUBSCRIPTION_COLS: &str = "s.id, s.url, s.event_types, s.created_at, (SELECT COUNT(*) \
                                 FROM event_outbox e WHERE e.subscription_id = s.id AND \
                                 e.status = $2) AS pending, (SELECT COUNT(*) FROM \
                                 event_outbox e WHERE e.subscription_id = s.id AND e.status \
                                 = $3) AS failed";

impl Db {
    pub async fn event_subscriptions(&self, company: i64) -> Result<Vec<Subscription>, StoreError> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLS} FROM event_subscriptions s WHERE \
             s.company_id = $1 ORDER BY s.id"
        );
        let rows: Vec<SubscriptionRow> = self
            .pool()
            .fetch_all(
                AssertSqlSafe(sql),
                [
                    company.into(),
                    DeliveryStatus::Pending.as_str().into(),
                    DeliveryStatus::Failed.as_str().into(),
                ],
            )
            .await?;
        rows.into_iter().map(Subscription::try_from).collect()
    }

    /// One of the company's subscriptions; `NotFound` for another company's.
    pub async fn event_subscription(
        &self,
        company: i64,
        id: i64,
    ) -> Result<Subscription, StoreError> {
        let sql = format!(
            "SELECT {SUBSCRIPTION_COLS} FROM event_subscriptions s WHERE \
             s.company_id = $1 AND s.id = $4"
        );
        let row: Option<SubscriptionRow> = self
            .pool()
            .fetch_optional(
                AssertSqlSafe(sql),
                [
                    company.into(),
                    DeliveryStatus::Pending.as_str().into(),
                    DeliveryStatus::Failed.as_str().into(),
                    id.into(),
                ],
            )
            .await?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// Saves a subscription; `sealed_secret` is already encrypted. Audited without the secret.
    pub async fn create_event_subscription(
        &self,
        company: i64,
        actor: i64,
        url: &str,
        sealed_secret: &str,
        types: &[EventType],
    ) -> Result<i64, StoreError> {
        let stored = stored_types(types);
        let stored = &stored;
        self.write(|tx| {
            Box::pin(async move {
                let ts = now();
                let id: i64 = tx
                    .scalar(
                        "INSERT INTO event_subscriptions (company_id, url, secret, \
                         event_types, created_by, created_at, retry_at) VALUES ($1, \
                         $2, $3, $4, $5, $6, $6) RETURNING id",
                        [
                            company.into(),
                            url.into(),
                            sealed_secret.into(),
                            stored.into(),
                            actor.into(),
                            ts.into(),
                        ],
                    )
                    .await?;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "event_subscription.created",
                    ("event_subscription", id),
                    None,
                    Some(json!({"url": url, "event_types": types})),
                )
                .await?;
                Ok(id)
            })
        })
        .await
    }

    /// Deletes a subscription with its events (delivered or not).
    pub async fn delete_event_subscription(
        &self,
        company: i64,
        actor: i64,
        id: i64,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let url: Option<String> = tx
                    .scalar_optional(
                        "SELECT url FROM event_subscriptions WHERE company_id = $1 \
                         AND id = $2",
                        [company.into(), id.into()],
                    )
                    .await?;
                let url = url.ok_or(StoreError::NotFound)?;
                tx.execute(
                    "DELETE FROM event_outbox WHERE subscription_id = $1",
                    [id.into()],
                )
                .await?;
                tx.execute("DELETE FROM event_subscriptions WHERE id = $1", [id.into()])
                    .await?;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "event_subscription.deleted",
                    ("event_subscription", id),
                    Some(json!({ "url": url })),
                    None,
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// The subscription's delivery log, newest first, and how many events it holds.
    pub async fn event_deliveries(
        &self,
        company: i64,
        subscription: i64,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<StoredEvent>, i64), StoreError> {
        const MINE: &str = "FROM event_outbox WHERE company_id = $1 AND subscription_id = $2";
        self.page(
            &format!("SELECT {EVENT_COLS} {MINE} ORDER BY id DESC"),
            &format!("SELECT COUNT(*) {MINE}"),
            vec![company.into(), subscription.into()],
            limit,
            offset,
        )
        .await
    }

    /// Sends an event again (its id unchanged, so a receiver that has it drops the copy): it is
    /// pending with no attempts, and its subscription's next batch may go at once.
    pub async fn redeliver_event(
        &self,
        company: i64,
        actor: i64,
        subscription: i64,
        event: i64,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let ts = now();
                let n = tx
                    .execute(
                        "UPDATE event_outbox SET status = $4, attempts = 0, \
                         next_attempt_at = $5, delivered_at = NULL WHERE company_id \
                         = $1 AND subscription_id = $2 AND id = $3",
                        [
                            company.into(),
                            subscription.into(),
                            event.into(),
                            DeliveryStatus::Pending.as_str().into(),
                            ts.into(),
                        ],
                    )
                    .await?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                tx.execute(
                    "UPDATE event_subscriptions SET retry_at = $2 WHERE id = $1",
                    [subscription.into(), ts.into()],
                )
                .await?;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "event.redelivered",
                    ("event", event),
                    None,
                    Some(json!({ "subscription_id": subscription })),
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Takes a subscription whose next batch is due at `at` for `lease`: no other worker
    /// delivers its events meanwhile, which keeps them in order.
    pub async fn claim_event_subscription(
        &self,
        at: OffsetDateTime,
        lease: Duration,
    ) -> Result<Option<ClaimedSubscription>, StoreError> {
        let due = format!(
            "(locked_until IS NULL OR locked_until < $2) AND retry_at <= $2 AND \
             EXISTS (SELECT 1 FROM event_outbox e WHERE e.subscription_id = \
             event_subscriptions.id AND e.status = '{}')",
            DeliveryStatus::Pending
        );
        self.claim(
            &Lease {
                table: "event_subscriptions",
                set: "locked_until = $1",
                due: &due,
                order: "retry_at, id",
                returning: "id, company_id, url, secret",
            },
            at,
            lease,
        )
        .await
    }

    /// The subscription's oldest pending events, at most `limit`, each counted as attempted.
    pub async fn event_batch(
        &self,
        subscription: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "UPDATE event_outbox SET attempts = attempts + 1 WHERE id IN \
             (SELECT id FROM event_outbox WHERE subscription_id = $1 AND status \
             = $2 ORDER BY id LIMIT $3) RETURNING {EVENT_COLS}"
        );
        let mut events: Vec<StoredEvent> = self
            .pool()
            .fetch_all(
                AssertSqlSafe(sql),
                [
                    subscription.into(),
                    DeliveryStatus::Pending.as_str().into(),
                    limit.into(),
                ],
            )
            .await?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    /// Records how a batch went and releases the subscription's lease.
    pub async fn record_delivery(
        &self,
        subscription: i64,
        ids: &[i64],
        outcome: &Delivery,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let ts = now();
                // The subscription's next batch waits only after one was not taken; otherwise it
                // is due now (or stays due, so one round delivers every batch there is).
                let (status, response, error, next, state, retry_at) = match outcome {
                    Delivery::Delivered { status, response } => (
                        Some(*status),
                        Some(response.as_str()),
                        None,
                        ts,
                        DeliveryStatus::Delivered,
                        None,
                    ),
                    Delivery::NotTaken {
                        status,
                        response,
                        error,
                        retry_at,
                    } => (
                        *status,
                        response.as_deref(),
                        Some(error.as_str()),
                        retry_at.unwrap_or(ts),
                        match retry_at {
                            Some(_) => DeliveryStatus::Pending,
                            None => DeliveryStatus::Failed,
                        },
                        *retry_at,
                    ),
                };
                let delivered_at = (state == DeliveryStatus::Delivered).then_some(ts);
                for chunk in ids.chunks(ID_CHUNK) {
                    let sql = format!(
                        "UPDATE event_outbox SET status = $1, last_status = $2, \
                         last_response = $3, last_error = $4, next_attempt_at = $5, \
                         delivered_at = $6 WHERE subscription_id = $7 AND id IN ({})",
                        marks(chunk.len(), 8)
                    );
                    let args = [
                        state.as_str().into(),
                        status.into(),
                        response.into(),
                        error.into(),
                        next.into(),
                        Arg::Time(delivered_at),
                        subscription.into(),
                    ];
                    let mut all = args.to_vec();
                    all.extend(chunk.iter().map(|&id| Arg::from(id)));
                    tx.execute(AssertSqlSafe(sql), all).await?;
                }
                tx.execute(
                    "UPDATE event_subscriptions SET locked_until = NULL, retry_at = \
                     COALESCE($2, CASE WHEN retry_at > $3 THEN $3 ELSE retry_at END) \
                     WHERE id = $1",
                    [subscription.into(), Arg::Time(retry_at), ts.into()],
                )
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// When the next subscription's batch is due, so an idle worker knows how long it may
    /// sleep.
    pub async fn next_event_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let sql = format!(
            "SELECT MIN(COALESCE(locked_until, retry_at)) FROM \
             event_subscriptions s WHERE EXISTS (SELECT 1 FROM event_outbox e \
             WHERE e.subscription_id = s.id AND e.status = '{}')",
            DeliveryStatus::Pending
        );
        self.pool().scalar(AssertSqlSafe(sql), []).await
    }

    /// Every subscription's sealed secret `(id, company, secret)`, for `secrets rotate`.
    pub async fn event_subscription_secrets(&self) -> Result<Vec<(i64, i64, String)>, StoreError> {
        self.pool()
            .fetch_all(
                "SELECT id, company_id, secret FROM event_subscriptions ORDER BY id",
                [],
            )
            .await
    }
}
