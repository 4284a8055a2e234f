//! Subscriptions as their company's admins manage them, and each one's delivery log.
use super::{EVENT_COLS, StoredEvent};
use crate::tx::{PageQuery, Queries, Tx};
use crate::{Db, StoreError, audit, now};
use costbridge_domain::events::{DeliveryStatus, EventType, parse_stored_types, stored_types};
use costbridge_domain::url::host_only;
use serde_json::json;
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

/// Replaces subscriptions' sealed secrets `(id, before, after)` (`secrets rotate`); a secret
/// changed meanwhile is a `Conflict`.
pub(crate) async fn rewrite_secrets(
    tx: &mut Tx<'_>, rows: &[(i64, String, String)],
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
        &self, company: i64, id: i64,
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
        &self, company: i64, actor: i64, url: &str, sealed_secret: &str, types: &[EventType],
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
                    // The audit log is open to read-only users, the subscriptions to admins only.
                    Some(json!({"url": host_only(url), "event_types": types})),
                )
                .await?;
                Ok(id)
            })
        })
        .await
    }

    /// Deletes a subscription with its events (delivered or not).
    pub async fn delete_event_subscription(
        &self, company: i64, actor: i64, id: i64,
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
                    Some(json!({ "url": host_only(&url) })),
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
        &self, company: i64, subscription: i64, limit: i64, offset: i64,
    ) -> Result<(Vec<StoredEvent>, i64), StoreError> {
        const MINE: &str = "FROM event_outbox WHERE company_id = $1 AND subscription_id = $2";
        self.page(PageQuery {
            list_sql: &format!("SELECT {EVENT_COLS} {MINE} ORDER BY id DESC"),
            count_sql: &format!("SELECT COUNT(*) {MINE}"),
            args: vec![company.into(), subscription.into()],
            limit,
            offset,
        })
        .await
    }

    /// Sends an event again (its id unchanged, so a receiver that has it drops the copy): it is
    /// pending with no attempts, and its subscription's next batch may go at once.
    pub async fn redeliver_event(
        &self, company: i64, actor: i64, subscription: i64, event: i64,
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
