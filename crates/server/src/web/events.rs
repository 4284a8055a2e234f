//! Company settings → Events: the company's event subscriptions (the secret only ever shown
//! as `********`), a form to add one, and each subscription's delivery log with *Redeliver*.
//! Plain forms: each post answers with a redirect, or the page again with what to fix.
use super::format::count;
use super::{Errors, Layout, Pager, Viewer, WebResult, form_pairs};
use crate::ops::events::{self as ops, NewSubscription};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use costbridge_domain::events::{DeliveryStatus, EventType};
use costbridge_storage::events::Subscription;
use serde::Deserialize;

const PAGE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/events", get(page).post(create))
        .route("/settings/events/{id}", get(log))
        .route("/settings/events/{id}/delete", post(delete))
        .route(
            "/settings/events/{id}/deliveries/{event}/redeliver",
            post(redeliver),
        )
}

struct SubRow {
    s: Subscription,
    types: String,
}

impl SubRow {
    /// What Delete asks first: the events it throws away with the subscription are gone for
    /// good, and a receiver waiting for them is never told.
    fn confirm(&self) -> String {
        let (pending, failed) = (self.s.pending, self.s.failed);
        let mut lost = Vec::new();
        if pending > 0 {
            lost.push(count(pending, "waiting event", "waiting events"));
        }
        if failed > 0 {
            lost.push(count(failed, "failed event", "failed events"));
        }
        let url = &self.s.url;
        if lost.is_empty() {
            return format!(
                "Delete the subscription of {url}? No events wait to be delivered to it; its \
                 delivery log goes with it. This cannot be undone."
            );
        }
        let verb = if pending + failed == 1 { "is" } else { "are" };
        format!(
            "Delete the subscription of {url}? Its {} {verb} discarded, never to be delivered, \
             and its delivery log goes with it. This cannot be undone.",
            lost.join(" and ")
        )
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "events.html")]
struct Page {
    layout: Layout,
    sub: &'static str,
    notice: Option<String>,
    subs: Vec<SubRow>,
    url: String,
    /// Each event type, and whether the form has it ticked.
    types: Vec<(&'static str, bool)>,
    errors: Errors,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Notice {
    added: Option<String>,
    deleted: Option<String>,
}

async fn render(
    state: &AppState, v: &Viewer, notice: Option<String>, form: &NewSubscription, errors: Errors,
) -> WebResult<Page> {
    let subs = ops::list(state, &v.caller.user, v.company()).await?;
    Ok(Page {
        layout: Layout::new(state, v, "settings", "Event subscriptions").await?,
        sub: "events",
        notice,
        subs: subs
            .into_iter()
            .map(|s| SubRow {
                types: s
                    .event_types
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                s,
            })
            .collect(),
        url: form.url.clone(),
        types: EventType::ALL
            .iter()
            .map(|t| (t.as_str(), form.event_types.iter().any(|n| n == t.as_str())))
            .collect(),
        errors,
    })
}

#[tracing::instrument(skip_all)]
async fn page(v: Viewer, Query(n): Query<Notice>) -> WebResult<Response> {
    let notice = match (n.added, n.deleted) {
        (Some(url), _) => Some(format!(
            "Subscribed {url}: its events are delivered from now on."
        )),
        (_, Some(url)) => Some(format!(
            "Deleted the subscription of {url}; its undelivered events are gone with it."
        )),
        _ => None,
    };
    let empty = NewSubscription::default();
    Ok(render(v.state(), &v, notice, &empty, Errors::default())
        .await?
        .into_response())
}

#[tracing::instrument(skip_all)]
async fn create(v: Viewer, body: Bytes) -> WebResult<Response> {
    let mut form = NewSubscription::default();
    for (k, value) in form_pairs(&body) {
        match k.as_str() {
            "url" => form.url = value,
            "secret" => form.secret = value,
            "event_types" => form.event_types.push(value),
            _ => {}
        }
    }
    match ops::create(v.state(), &v.caller.user, v.company(), &form).await {
        Ok(s) => Ok(Redirect::to(&format!(
            "/settings/events?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("added", &s.url)
                .finish()
        ))
        .into_response()),
        Err(e) => {
            let errors = Errors::from_op(e)?;
            // The secret is never sent back, not even to the one who typed it.
            form.secret.clear();
            let page = render(v.state(), &v, None, &form, errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

#[tracing::instrument(skip_all)]
async fn delete(v: Viewer, Path(id): Path<i64>) -> WebResult<Response> {
    let s = ops::get(v.state(), &v.caller.user, v.company(), id).await?;
    ops::delete(v.state(), &v.caller.user, v.company(), id).await?;
    Ok(Redirect::to(&format!(
        "/settings/events?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("deleted", &s.url)
            .finish()
    ))
    .into_response())
}

struct LogRow {
    id: i64,
    event: &'static str,
    code: String,
    at: String,
    status: DeliveryStatus,
    attempts: i64,
    answer: String,
    next: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "event_log.html")]
struct LogPage {
    layout: Layout,
    sub: &'static str,
    s: Subscription,
    notice: Option<String>,
    rows: Vec<LogRow>,
    total: i64,
    page: i64,
    pages: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LogQuery {
    page: Option<i64>,
    redelivered: Option<i64>,
}

#[tracing::instrument(skip_all)]
async fn log(v: Viewer, Path(id): Path<i64>, Query(q): Query<LogQuery>) -> WebResult<Response> {
    let pager = Pager::new(q.page, PAGE);
    let s = ops::get(v.state(), &v.caller.user, v.company(), id).await?;
    let (events, total) =
        ops::deliveries(v.state(), &v.caller.user, v.company(), id, pager.window()).await?;
    let rows = events
        .into_iter()
        .map(|e| LogRow {
            id: e.id,
            event: e.event_type.as_str(),
            code: e
                .full_code
                .clone()
                .or(e.export_job_id.map(|j| format!("export job {j}")))
                .unwrap_or_default(),
            at: v.zone.show(e.created_at),
            status: e.status,
            attempts: e.attempts,
            answer: match (e.last_status, &e.last_response, &e.last_error) {
                (Some(code), Some(body), _) if !body.is_empty() => format!("HTTP {code}: {body}"),
                (Some(code), _, _) => format!("HTTP {code}"),
                (None, _, Some(error)) => error.clone(),
                _ => "—".into(),
            },
            next: match e.status {
                DeliveryStatus::Pending => v.zone.show(e.next_attempt_at),
                _ => "—".into(),
            },
        })
        .collect();
    Ok(LogPage {
        layout: Layout::new(v.state(), &v, "settings", "Event deliveries").await?,
        sub: "events",
        notice: q
            .redelivered
            .map(|e| format!("Event {e} is queued to be delivered again.")),
        s,
        rows,
        total,
        page: pager.page,
        pages: pager.pages(total),
    }
    .into_response())
}

#[tracing::instrument(skip_all)]
async fn redeliver(v: Viewer, Path((id, event)): Path<(i64, i64)>) -> WebResult<Response> {
    ops::redeliver(v.state(), &v.caller.user, v.company(), id, event).await?;
    Ok(Redirect::to(&format!("/settings/events/{id}?redelivered={event}")).into_response())
}
