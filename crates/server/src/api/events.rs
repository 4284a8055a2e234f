//! Event subscriptions and their delivery log (README, Integrations → Events).
use crate::error::ApiResult;
use crate::extract::{Body, Caller, Paging, Q};
use crate::ops::events::{self as ops, NewSubscription};
use crate::state::AppState;
use axum::Json;
use axum::extract::Path;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use costbridge_domain::events::{DeliveryStatus, EventType};
use costbridge_erp::MASK;
use costbridge_storage::events::{StoredEvent, Subscription};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(one, delete))
        .routes(routes!(deliveries))
        .routes(routes!(redeliver))
}

/// A subscription as the API shows it: its secret only ever as the mask.
#[derive(Serialize, ToSchema)]
#[schema(as = EventSubscription, example = json!({"id": 3, "url": "https://hooks.example.com/costbridge",
    "secret": "********", "event_types": ["cost_code.synced", "cost_code.failed"],
    "created_at": "2026-11-30T15:00:00Z", "pending": 0, "failed": 1}))]
struct SubscriptionView<'a> {
    id: i64,
    url: &'a str,
    /// Always the mask: the signing secret never comes back out.
    secret: &'static str,
    event_types: &'a [EventType],
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Events waiting to be delivered.
    pending: i64,
    /// Events whose delivery gave up (redeliver them one by one).
    failed: i64,
}

fn subscription(s: &Subscription) -> SubscriptionView<'_> {
    SubscriptionView {
        id: s.id,
        url: &s.url,
        secret: MASK,
        event_types: &s.event_types,
        created_at: s.created_at,
        pending: s.pending,
        failed: s.failed,
    }
}

/// One line of the delivery log.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": 41, "type": "cost_code.synced", "created_at": "2026-11-30T15:00:00Z",
    "cost_code_id": 43, "full_code": "01-100", "export_job_id": 5, "status": "failed", "attempts": 8,
    "next_attempt_at": null, "last_status": 500, "last_response": "Internal Server Error",
    "last_error": "the subscriber answered HTTP 500", "delivered_at": null,
    "payload": {"id": 41, "type": "cost_code.synced", "created_at": "2026-11-30T15:00:00Z", "company_id": 1,
        "data": {"cost_code": {"id": 43, "full_code": "01-100"}, "export_job_id": 5, "submission_id": null}}}))]
struct Delivery<'a> {
    id: i64,
    #[serde(rename = "type")]
    event_type: EventType,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[schema(required = true)]
    cost_code_id: Option<i64>,
    #[schema(required = true)]
    full_code: Option<&'a str>,
    #[schema(required = true)]
    export_job_id: Option<i64>,
    status: DeliveryStatus,
    attempts: i64,
    /// When the next attempt is due; only while the event waits (`pending`).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    next_attempt_at: Option<OffsetDateTime>,
    /// The subscriber's HTTP status at the last attempt.
    #[schema(required = true)]
    last_status: Option<i64>,
    /// The start of the subscriber's answer at the last attempt.
    #[schema(required = true)]
    last_response: Option<&'a str>,
    #[schema(required = true)]
    last_error: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    delivered_at: Option<OffsetDateTime>,
    /// The body delivered (or to be delivered) to the subscriber.
    payload: Value,
}

fn delivery(e: &StoredEvent) -> Delivery<'_> {
    Delivery {
        id: e.id,
        event_type: e.event_type,
        created_at: e.created_at,
        cost_code_id: e.cost_code_id,
        full_code: e.full_code.as_deref(),
        export_job_id: e.export_job_id,
        status: e.status,
        attempts: e.attempts,
        next_attempt_at: (e.status == DeliveryStatus::Pending).then_some(e.next_attempt_at),
        last_status: e.last_status,
        last_response: e.last_response.as_deref(),
        last_error: e.last_error.as_deref(),
        delivered_at: e.delivered_at,
        payload: crate::events::payload(e),
    }
}

/// A redelivery, queued.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "pending"}))]
struct Redelivery {
    /// Always `pending`: the worker delivers it with the subscription's next batch.
    status: DeliveryStatus,
}

/// The company's event subscriptions
#[utoipa::path(get, path = "/api/v1/companies/{cid}/event_subscriptions", tag = "events",
    operation_id = "list_event_subscriptions",
    responses((status = 200, description = "Every subscription of the company", body = [SubscriptionView]),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn list(caller: Caller, Path(cid): Path<i64>) -> ApiResult<Response> {
    let subs = ops::list(&caller.state, &caller.user, cid).await?;
    let views: Vec<SubscriptionView> = subs.iter().map(subscription).collect();
    Ok(Json(views).into_response())
}

/// Subscribe a URL to the company's events
///
/// Costbridge refuses a URL it may not reach (private or local addresses) with 422 naming `url`.
#[utoipa::path(post, path = "/api/v1/companies/{cid}/event_subscriptions", tag = "events",
    operation_id = "create_event_subscription", request_body = NewSubscription,
    responses((status = 201, description = "The new subscription (its secret masked)", body = SubscriptionView),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin"),
        (status = 422, description = "`validation_failed`, naming each bad field: `url` (not an http(s) address Costbridge may reach), `secret` (too short or too long), `event_types` (empty or an unknown type)")))]
#[tracing::instrument(skip_all)]
async fn create(
    caller: Caller, Path(cid): Path<i64>, Body(new): Body<NewSubscription>,
) -> ApiResult<Response> {
    let s = ops::create(&caller.state, &caller.user, cid, &new).await?;
    Ok((StatusCode::CREATED, Json(subscription(&s))).into_response())
}

/// One event subscription
#[utoipa::path(get, path = "/api/v1/companies/{cid}/event_subscriptions/{id}", tag = "events",
    operation_id = "get_event_subscription",
    responses((status = 200, description = "The subscription (its secret masked)", body = SubscriptionView),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn one(caller: Caller, Path((cid, id)): Path<(i64, i64)>) -> ApiResult<Response> {
    let s = ops::get(&caller.state, &caller.user, cid, id).await?;
    Ok(Json(subscription(&s)).into_response())
}

/// Delete an event subscription and its delivery log
#[utoipa::path(delete, path = "/api/v1/companies/{cid}/event_subscriptions/{id}", tag = "events",
    operation_id = "delete_event_subscription",
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn delete(caller: Caller, Path((cid, id)): Path<(i64, i64)>) -> ApiResult<StatusCode> {
    ops::delete(&caller.state, &caller.user, cid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription's delivery log, newest first
#[utoipa::path(get, path = "/api/v1/companies/{cid}/event_subscriptions/{id}/deliveries", tag = "events",
    operation_id = "list_event_deliveries", params(Paging),
    responses((status = 200, description = "One page of the log", body = [Delivery]),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin"),
        (status = 404, description = "`not_found`: the company has no such subscription")))]
#[tracing::instrument(skip_all)]
async fn deliveries(
    caller: Caller, uri: Uri, Path((cid, id)): Path<(i64, i64)>, Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    let paging = paging.check()?;
    let (events, total) =
        ops::deliveries(&caller.state, &caller.user, cid, id, paging.window()).await?;
    let items: Vec<Delivery> = events.iter().map(delivery).collect();
    Ok(paging.respond(&uri, total, items))
}

/// Send one event to the subscriber again (a failed one, or one delivered already)
#[utoipa::path(post, path = "/api/v1/companies/{cid}/event_subscriptions/{id}/deliveries/{event_id}/redeliver", tag = "events",
    operation_id = "redeliver_event",
    responses((status = 202, description = "Queued for delivery with the next batch", body = Redelivery),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn redeliver(
    caller: Caller, Path((cid, id, event_id)): Path<(i64, i64, i64)>,
) -> ApiResult<Response> {
    ops::redeliver(&caller.state, &caller.user, cid, id, event_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Redelivery {
            status: DeliveryStatus::Pending,
        }),
    )
        .into_response())
}
