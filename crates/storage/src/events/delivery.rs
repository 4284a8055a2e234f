//! The delivery worker's side: claiming a subscription, taking its oldest events, recording
//! how their batch went.
use super::{EVENT_COLS, ID_CHUNK, StoredEvent};
use crate::db::Lease;
use crate::tx::{Arg, Queries, marks};
use crate::{Db, StoreError, now};
use costbridge_domain::events::DeliveryStatus;
use sqlx::AssertSqlSafe;
use time::{Duration, OffsetDateTime};

/// A subscription taken for delivery, its secret still sealed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedSubscription {
    pub id: i64,
    pub company_id: i64,
    pub url: String,
    pub secret: String,
    /// This claim's lease: only the claim that still holds it releases the subscription.
    pub locked_until: OffsetDateTime,
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

impl Db {
    /// Takes a subscription whose next batch is due at `at` for `lease`: no other worker
    /// delivers its events meanwhile, which keeps them in order.
    pub async fn claim_event_subscription(
        &self, at: OffsetDateTime, lease: Duration,
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
                returning: "id, company_id, url, secret, locked_until",
            },
            at,
            lease,
        )
        .await
    }

    /// The subscription's oldest pending events, at most `limit`, each counted as attempted.
    pub async fn event_batch(
        &self, subscription: i64, limit: i64,
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

    /// Records how a batch went and releases the subscription's lease. A worker whose lease
    /// ran out while it waited on the subscriber (another took the subscription over) still
    /// records a delivery, which happened; but not a refusal over events another worker has
    /// delivered since, and it leaves the other's lease alone.
    pub async fn record_delivery(
        &self, sub: &ClaimedSubscription, ids: &[i64], outcome: &Delivery,
    ) -> Result<(), StoreError> {
        let subscription = sub.id;
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
                let still = match state {
                    DeliveryStatus::Delivered => String::new(),
                    _ => format!("status = '{}' AND ", DeliveryStatus::Pending),
                };
                for chunk in ids.chunks(ID_CHUNK) {
                    let sql = format!(
                        "UPDATE event_outbox SET status = $1, last_status = $2, \
                         last_response = $3, last_error = $4, next_attempt_at = $5, \
                         delivered_at = $6 WHERE {still}subscription_id = $7 AND id IN ({})",
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
                     WHERE id = $1 AND locked_until = $4",
                    [
                        subscription.into(),
                        Arg::Time(retry_at),
                        ts.into(),
                        sub.locked_until.into(),
                    ],
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

    /// Events in `status` (waiting to be delivered, or given up on), for the operator's gauges.
    pub async fn events_count(&self, status: DeliveryStatus) -> Result<i64, StoreError> {
        self.pool()
            .scalar(
                "SELECT COUNT(*) FROM event_outbox WHERE status = $1",
                [status.as_str().into()],
            )
            .await
    }
}
