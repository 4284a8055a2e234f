//! A code's history panel, read from the audit log.
use super::{Viewer, WebResult, fragments};
use crate::api::codes::read;
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use costbridge_storage::audit::AuditFilter;
use serde_json::Value;

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

async fn history(
    State(state): State<AppState>,
    v: Viewer,
    Path((lid, id)): Path<(i64, i64)>,
) -> WebResult<Response> {
    let company = read(&v.caller, v.company())?;
    // The code must be in this list of this company (404 otherwise, like the API).
    state.db.code(company, lid, id).await?;
    let filter = AuditFilter {
        entity_type: Some("cost_code".into()),
        entity_id: Some(id),
        action: None,
    };
    let (events, total) = state.db.audit_events(company, &filter, 50, 0).await?;
    let entries = events
        .into_iter()
        .map(|e| HistoryEntry {
            at: super::audit::when(e.at),
            actor: e.actor.map(|a| a.email).unwrap_or_else(|| "system".into()),
            action: e.action.replace("cost_code.", "").replace('_', " "),
            changes: changes(e.before.as_ref(), e.after.as_ref()),
        })
        .collect();
    fragments(
        StatusCode::OK,
        vec![History { id, entries, total }.render()],
    )
}

/// The keys whose values differ between `before` and `after`, as text.
pub fn changes(before: Option<&Value>, after: Option<&Value>) -> Vec<(String, String, String)> {
    let empty = serde_json::Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| b.get(*k) != a.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| match v {
                None | Some(Value::Null) => "—".to_owned(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (k.replace('_', " "), show(b.get(k)), show(a.get(k)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_shows_what_changed() {
        let c = changes(
            Some(&json!({"description": "A", "active": true})),
            Some(&json!({"description": "B", "active": true, "via": "import"})),
        );
        assert_eq!(
            c,
            vec![
                ("description".into(), "A".into(), "B".into()),
                ("via".into(), "—".into(), "import".into())
            ]
        );
    }
}
