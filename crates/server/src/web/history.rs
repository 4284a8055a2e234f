//! A code's history panel, read from the audit log.
use super::format::changes;
use super::{Viewer, WebResult, fragments};
use crate::ops::audit;
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

pub fn router() -> Router<AppState> {
    Router::new().route("/codes/{lid}/{id}/history", get(history))
}

/// One audit event of a code, as the history panel lists it.
pub struct HistoryEntry {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub changes: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "_history.html")]
struct History {
    id: i64,
    entries: Vec<HistoryEntry>,
    total: i64,
}

#[tracing::instrument(skip_all)]
async fn history(v: Viewer, Path((lid, id)): Path<(i64, i64)>) -> WebResult<Response> {
    let (events, total) =
        audit::code_history(v.state(), &v.caller.user, v.company(), lid, id, 50).await?;
    let entries = events
        .into_iter()
        .map(|e| HistoryEntry {
            at: v.zone.show(e.at),
            actor: e.actor_label(),
            action: e.action.replace("cost_code.", "").replace('_', " "),
            changes: changes(e.before.as_ref(), e.after.as_ref()),
        })
        .collect();
    fragments(
        StatusCode::OK,
        vec![History { id, entries, total }.render()],
    )
}
