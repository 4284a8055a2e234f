//! Company settings → Audit log: every recorded action, filtered, a page at a time, and the
//! same selection as a CSV download.
use super::format::changes;
use super::{Layout, Pager, Viewer, WebResult};
use crate::ops::{OpError, Window, audit};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use costbridge_domain::csv_cell::{UTF8_BOM, neutralise};
use costbridge_storage::audit::{AuditEvent, AuditFilter};
use serde::Deserialize;

const PAGE: i64 = 50;
/// The most rows one CSV download holds.
const CSV_MAX: i64 = 100_000;

/// The events a download reads at a time.
const CSV_PAGE: i64 = 1000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings/audit", get(page))
        .route("/settings/audit.csv", get(csv))
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct FilterQuery {
    entity_type: String,
    entity_id: String,
    action: String,
    page: Option<i64>,
}

impl FilterQuery {
    /// The filter asked for. An id that is not a number is refused: ignored, it listed every
    /// event as if that were what was asked.
    fn filter(&self) -> Result<AuditFilter, OpError> {
        let some = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let entity_id = match self.entity_id.trim() {
            "" => None,
            id => Some(id.parse().map_err(|_| {
                OpError::field(
                    "entity_id",
                    format!("'{id}' is not an id: an id is a whole number, the one the Entity column shows"),
                )
            })?),
        };
        Ok(AuditFilter {
            entity_type: some(&self.entity_type),
            entity_id,
            action: some(&self.action),
            ..AuditFilter::default()
        })
    }

    /// The filter as a query string, for the CSV link and the pager.
    fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("entity_type", &self.entity_type)
            .append_pair("entity_id", &self.entity_id)
            .append_pair("action", &self.action)
            .finish()
    }
}

pub struct EventRow {
    pub at: String,
    pub actor: String,
    pub e: AuditEvent,
    pub changes: Vec<(String, String, String)>,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct Page {
    layout: Layout,
    sub: &'static str,
    f: FilterQuery,
    /// The entity types the viewer may filter by: what the API's filter takes from them.
    types: Vec<&'static str>,
    events: Vec<EventRow>,
    total: i64,
    page: i64,
    pages: i64,
    query: String,
}

#[tracing::instrument(skip_all)]
async fn page(v: Viewer, Query(f): Query<FilterQuery>) -> WebResult<Response> {
    let pager = Pager::new(f.page, PAGE);
    let (events, total) = audit::events(
        v.state(),
        &v.caller.user,
        v.company(),
        &f.filter()?,
        pager.window(),
    )
    .await?;
    let events = events
        .into_iter()
        .map(|e| EventRow {
            at: v.zone.show(e.at),
            actor: e.actor_label(),
            changes: changes(e.before.as_ref(), e.after.as_ref()),
            e,
        })
        .collect();
    Ok(Page {
        layout: Layout::new(v.state(), &v, "settings", "Audit log").await?,
        sub: "audit",
        query: f.query(),
        f,
        types: audit::visible_types(&v.caller.user),
        events,
        total,
        page: pager.page,
        pages: pager.pages(total),
    }
    .into_response())
}

#[tracing::instrument(skip_all)]
async fn csv(v: Viewer, Query(f): Query<FilterQuery>) -> WebResult<Response> {
    // Access is refused before anything is written.
    audit::reader(&v.caller.user, v.company())?;
    let mut filter = f.filter()?;
    let mut out = csv::Writer::from_writer(UTF8_BOM.as_bytes().to_vec());
    let write_err = |e: csv::Error| crate::error::ApiError::bad_request(e.to_string());
    out.write_record([
        "id",
        "at",
        "actor",
        "action",
        "entity_type",
        "entity_id",
        "before",
        "after",
    ])
    .map_err(write_err)?;
    // Page after page by key from the newest event when the download began: by offset, each
    // event recorded meanwhile pushed a row into the next page, written twice.
    // Counted once, with the first page.
    let first = Window {
        limit: CSV_PAGE,
        offset: 0,
    };
    let (mut events, total) =
        audit::events(v.state(), &v.caller.user, v.company(), &filter, first).await?;
    let mut written = 0;
    loop {
        let n = events.len() as i64;
        filter.before_id = events.last().map(|e| e.id);
        for e in events {
            let json = |v: Option<serde_json::Value>| v.map(|v| v.to_string()).unwrap_or_default();
            out.write_record(
                [
                    e.id.to_string(),
                    // The offset says the zone in every value, wherever the file is opened.
                    v.zone.iso(e.at),
                    e.actor.map(|a| a.label()).unwrap_or_default(),
                    e.action,
                    e.entity_type,
                    e.entity_id.to_string(),
                    json(e.before),
                    json(e.after),
                ]
                .iter()
                .map(|c| neutralise(c)),
            )
            .map_err(write_err)?;
        }
        written += n;
        if n < CSV_PAGE || written >= CSV_MAX {
            break;
        }
        let limit = CSV_PAGE.min(CSV_MAX - written);
        events =
            audit::events_before(v.state(), &v.caller.user, v.company(), &filter, limit).await?;
    }
    // The accountant reconciling the file against the page's count must not take a cut file
    // for the whole log.
    if written < total {
        let cut = format!(
            "Costbridge cut this file at {} of the {} events the filter selects: narrow the \
             filter (type, id or action) to download the rest",
            crate::web::format::grouped(written),
            crate::web::format::grouped(total)
        );
        out.write_record(["", "", "", &cut, "", "", "", ""])
            .map_err(write_err)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| crate::error::ApiError::bad_request(e.to_string()))?;
    Ok(crate::csvio::attachment("audit-log.csv", bytes))
}
