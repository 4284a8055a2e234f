//! Delivers the event outbox to subscribers (README, Integrations → Events). Each round claims
//! a subscription whose next batch is due (a lease, so two instances never send its events at
//! once or out of order), POSTs its oldest pending events as one signed JSON batch, and
//! records the answer: delivered on a 2xx; otherwise the same batch is tried again with
//! backoff, and after `max_attempts` its events are marked failed so the ones behind them can
//! go (a person may redeliver them). `serve` runs [`run`]; tests call [`deliver_pending`] with
//! an explicit clock.
use crate::config::WorkerSettings;
use crate::retry::{Stop, backoff, until_due};
use crate::state::AppState;
use costbridge_domain::events::EventType;
use costbridge_erp::shown_url;
use costbridge_erp::webhook::Webhook;
use costbridge_storage::events::{ClaimedSubscription, Delivery, StoredEvent};
use serde::Serialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Events per POST: a 100,000-code send is 1,000 requests to each subscriber, not 100,000.
pub const BATCH: i64 = 100;
/// A subscriber that keeps refusing is tried at most every hour.
const MAX_BACKOFF_SECONDS: i64 = 3600;
/// How much of a subscriber's answer the delivery log keeps.
const RESPONSE_BYTES: usize = 200;

/// What one delivery round did, in batches.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct EventReport {
    pub delivered: u64,
    /// Not taken; tried again later.
    pub retried: u64,
    /// Given up on after `max_attempts`.
    pub failed: u64,
}

/// Delivers every batch due at `now`, each subscription's in turn.
pub async fn deliver_pending(
    state: &AppState, cfg: &WorkerSettings, now: OffsetDateTime,
) -> anyhow::Result<EventReport> {
    deliver_due(state, cfg, now, &Stop::never()).await
}

/// [`deliver_pending`], taking no new batch once the service is stopping.
async fn deliver_due(
    state: &AppState, cfg: &WorkerSettings, now: OffsetDateTime, stop: &Stop,
) -> anyhow::Result<EventReport> {
    let mut report = EventReport::default();
    // Longer than one POST may take (30 s), so no other instance takes a batch being sent.
    let lease = Duration::seconds(cfg.lease_seconds.max(60));
    // Each claim, and the retry it may set, is stamped with the time that has passed since the
    // round began: with `now` alone, a round longer than the lease (the thousand batches of a
    // 100,000-code send) handed out leases already run out, and another instance sent the same
    // batch again; with the claim stamped but not the retry, a retry fell due within the round
    // and a refusing subscriber's attempts were spent back to back.
    let started = std::time::Instant::now();
    while !stop.now() {
        let at = now + started.elapsed();
        let Some(sub) = state.db.claim_event_subscription(at, lease).await? else {
            break;
        };
        match deliver(state, cfg, &sub, at).await? {
            Some(Delivery::Delivered { .. }) => report.delivered += 1,
            Some(Delivery::NotTaken { retry_at: None, .. }) => report.failed += 1,
            Some(Delivery::NotTaken { .. }) => report.retried += 1,
            None => {}
        }
    }
    Ok(report)
}

#[tracing::instrument(skip_all, fields(subscription = sub.id, company = sub.company_id, url = %shown_url(&sub.url)))]
async fn deliver(
    state: &AppState, cfg: &WorkerSettings, sub: &ClaimedSubscription, now: OffsetDateTime,
) -> anyhow::Result<Option<Delivery>> {
    let events = state.db.event_batch(sub.id, BATCH).await?;
    let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        // Another instance delivered them between the claim and the batch: only the lease
        // is left to release.
        let nothing = Delivery::Delivered {
            status: 0,
            response: String::new(),
        };
        state.db.record_delivery(sub, &[], &nothing).await?;
        return Ok(None);
    };
    let attempts = events.iter().map(|e| e.attempts).max().unwrap_or(1);
    let not_taken = |status: Option<u16>, body: Option<&[u8]>, error: String| {
        let (retry_at, error) = if attempts >= cfg.max_attempts {
            (
                None,
                format!(
                    "{error} (gave up after {attempts} attempts; Redeliver sends an event again)"
                ),
            )
        } else {
            let delay = backoff(cfg.backoff_seconds, attempts, MAX_BACKOFF_SECONDS);
            (Some(now + delay), error)
        };
        tracing::warn!(error = %error, events = ids.len(), "event batch not delivered");
        Delivery::NotTaken {
            status: status.map(i64::from),
            response: body.map(first_bytes),
            error,
            retry_at,
        }
    };
    let outcome = match state.cipher.open(&sub.secret) {
        Err(e) => not_taken(
            None,
            None,
            format!("Costbridge cannot read this subscription's secret: {e}"),
        ),
        Ok(secret) => {
            let body = serde_json::to_vec(&json!({
                "events": events.iter().map(payload).collect::<Vec<_>>()
            }))?;
            let key = format!("costbridge-events-{}-{first}-{last}", sub.id);
            let hook = Webhook::endpoint(&sub.url, secret.into(), &state.connectors.outbound);
            match hook.post_signed(body, &key).await {
                Ok((status, answer)) if (200..300).contains(&status) => {
                    tracing::info!(events = ids.len(), status, "event batch delivered");
                    Delivery::Delivered {
                        status: status.into(),
                        response: first_bytes(&answer),
                    }
                }
                Ok((status, answer)) => not_taken(
                    Some(status),
                    Some(&answer),
                    format!(
                        "the subscriber at {} answered HTTP {status}; only a 2xx answer counts as delivered",
                        shown_url(&sub.url)
                    ),
                ),
                Err(why) => not_taken(None, None, why),
            }
        }
    };
    state.db.record_delivery(sub, &ids, &outcome).await?;
    Ok(Some(outcome))
}

fn first_bytes(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(RESPONSE_BYTES)]).into_owned()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// One event as subscribers receive it (README, Integrations → Events).
pub fn payload(e: &StoredEvent) -> Value {
    let data = match e.event_type {
        EventType::ExportJobDone => json!({
            "export_job": {
                "id": e.export_job_id,
                "counts": e.detail.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
                "delivered_to": e.delivered_to,
            }
        }),
        _ => json!({
            "cost_code": {
                "id": e.cost_code_id,
                "list_id": e.list_id,
                "code": e.code,
                "full_code": e.full_code,
                "description": e.description,
                "active": e.active,
                "sync_status": e.sync_status,
                "message": e.message,
                "origin_id": e.origin_id,
                "delivered_to": e.delivered_to,
            },
            "export_job_id": e.export_job_id,
            "submission_id": e.submission_id,
        }),
    };
    json!({
        "id": e.id,
        "type": e.event_type,
        "created_at": rfc3339(e.created_at),
        "company_id": e.company_id,
        "data": data,
    })
}

/// The delivery worker inside `serve`: delivers what is due, then sleeps until the next batch
/// is due or a few seconds pass (another instance may have written events).
pub async fn run(state: AppState, cfg: WorkerSettings, mut stop: Stop) {
    loop {
        if let Err(e) = deliver_due(&state, &cfg, costbridge_storage::now(), &stop).await {
            tracing::error!(error = %e, "event delivery step failed");
        }
        if stop.now() {
            return;
        }
        let wait = until_due(state.db.next_event_due().await, Duration::milliseconds(200));
        tokio::select! {
            _ = stop.wait() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
