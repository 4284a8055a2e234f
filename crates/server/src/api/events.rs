//! Event subscriptions and their delivery log (README, Integrations → Events).
use crate::error::ApiResult;
use crate::extract::{Body, Caller, Paging, Q};
use crate::ops::events::{self as ops, NewSubscription};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use costbridge_domain::events::DeliveryStatus;
use costbridge_erp::MASK;
use costbridge_storage::events::{StoredEvent, Subscription};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/companies/{cid}/event_subscriptions",
            get(list).post(create),
        )
        .route(
            "/api/v1/companies/{cid}/event_subscriptions/{id}",
            get(one).delete(delete),
        )
        .route(
            "/api/v1/companies/{cid}/event_subscriptions/{id}/deliveries",
            get(deliveries),
        )
        .route(
            "/api/v1/companies/{cid}/event_subscriptions/{id}/deliveries/{event_id}/redeliver",
            post(redeliver),
        )
}

fn time(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A subscription as the API shows it: its secret only ever as the mask.
fn subscription(s: &Subscription) -> Value {
    json!({
        "id": s.id,
        "url": s.url,
        "secret": MASK,
        "event_types": s.event_types,
        "created_at": time(s.created_at),
        "pending": s.pending,
        "failed": s.failed,
    })
}

/// One line of the delivery log; `next_attempt_at` only while the event waits.
fn delivery(e: &StoredEvent) -> Value {
    json!({
        "id": e.id,
        "type": e.event_type,
        "created_at": time(e.created_at),
        "cost_code_id": e.cost_code_id,
        "full_code": e.full_code,
        "export_job_id": e.export_job_id,
        "status": e.status,
        "attempts": e.attempts,
        "next_attempt_at": (e.status == DeliveryStatus::Pending).then(|| time(e.next_attempt_at)),
        "last_status": e.last_status,
        "last_response": e.last_response,
        "last_error": e.last_error,
        "delivered_at": e.delivered_at.map(time),
        "payload": crate::events::payload(e),
    })
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Vec<Value>>> {
    let subs = ops::list(&state, &caller.user, cid).await?;
    Ok(Json(subs.iter().map(subscription).collect()))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(new): Body<NewSubscription>,
) -> ApiResult<Response> {
    let s = ops::create(&state, &caller.user, cid, &new).await?;
    Ok((StatusCode::CREATED, Json(subscription(&s))).into_response())
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, id)): Path<(i64, i64)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(subscription(
        &ops::get(&state, &caller.user, cid, id).await?,
    )))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    ops::delete(&state, &caller.user, cid, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path((cid, id)): Path<(i64, i64)>,
    Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    let paging = paging.check()?;
    let (events, total) = ops::deliveries(
        &state,
        &caller.user,
        cid,
        id,
        paging.per_page,
        paging.offset(),
    )
    .await?;
    let items: Vec<Value> = events.iter().map(delivery).collect();
    Ok(paging.respond(&uri, total, items))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, id, event_id)): Path<(i64, i64, i64)>,
) -> ApiResult<Response> {
    ops::redeliver(&state, &caller.user, cid, id, event_id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "pending"}))).into_response())
}
