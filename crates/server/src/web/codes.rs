//! Admin → Work Breakdown Structure → Cost Code: the list picker, the code tree (one tier at a
//! time), search and the sync-state filter. The Send to ERP panel is in `send`, each code's
//! history in `history`.
use super::format::grouped;
use super::send::SendPanel;
use super::{Layout, Pager, Viewer, WebResult, fragments};
use crate::ops::{codes, send};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use costbridge_domain::queue::refused;
use costbridge_domain::sync::{self, ALL_STATES, SyncState};
use costbridge_storage::codes::{CodeFilter, CodeList, CostCode};
use serde::Deserialize;
use serde_json::Value;

/// Codes per page of one tier (or of search results); "Show more" fetches the next.
pub const PAGE: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/codes", get(page))
        .route("/codes/{lid}/nodes", get(nodes))
        .route("/codes/{lid}/export.csv", get(export))
}

/// Export CSV from the codes page. A page route, not the API's, so that a session that has
/// ended leads to the sign-in page instead of downloading the API's error as the file; and
/// the file starts with a BOM, as every download of the pages does, for Excel.
async fn export(v: Viewer, Path(lid): Path<i64>) -> WebResult<Response> {
    let csv = crate::ops::codes::export_csv(v.state(), &v.caller.user, v.company(), lid).await?;
    let file = format!("{}{csv}", costbridge_domain::csv_cell::UTF8_BOM);
    Ok(crate::csvio::attachment(
        &format!("cost-codes-{lid}.csv"),
        file,
    ))
}

/// One code as a row of the tree.
pub struct NodeView {
    pub id: i64,
    pub full_code: String,
    pub description: String,
    pub active: bool,
    pub status: String,
    /// Children count; `None` in search results, which are flat.
    pub children: Option<i64>,
    /// Pending, exporting and failed codes wait on the approver (the domain's rule).
    pub locked: bool,
    /// Only a code the ERP never had may be deleted (the domain's rule); others deactivate.
    pub deletable: bool,
    pub pending: bool,
    pub rejection_reason: Option<String>,
    /// Why it failed, saying who refused (Costbridge or the ERP by name).
    pub refusal: Option<String>,
    /// Field, old value, new value: what differs from what the ERP confirmed.
    pub diff: Vec<(String, String, String)>,
    /// The file a synced code was written to when no ERP confirmed it: the badge says
    /// "in file", not "synced", since the ERP has it only once someone imports that file.
    pub delivered_to: Option<String>,
    /// Children already drawn inside (after adding a child, the parent opens).
    pub kids_html: Option<String>,
}

impl NodeView {
    pub fn new(c: CostCode, children: Option<i64>) -> NodeView {
        let state = c.sync_status;
        NodeView {
            id: c.id,
            locked: state.is_locked(),
            deletable: sync::may_delete(state, c.confirmed.is_some() || c.origin_id.is_some()),
            pending: state == SyncState::Pending,
            diff: c
                .diff
                .iter()
                .map(|(f, ch)| (f.replace('_', " "), plain(&ch.from), plain(&ch.to)))
                .collect(),
            full_code: c.full_code,
            description: c.description,
            active: c.active,
            status: state.as_str().to_owned(),
            children,
            rejection_reason: c.rejection_reason,
            refusal: refusal(c.erp_message, c.refused_by.as_deref()),
            delivered_to: c.delivered_to.filter(|_| state == SyncState::Synced),
            kids_html: None,
        }
    }

    pub fn has_children(&self) -> bool {
        self.child_count() > 0
    }

    pub fn child_count(&self) -> i64 {
        self.children.unwrap_or(0)
    }

    /// The words after the badge's colour: what "changed" means for this code.
    pub fn change_summary(&self) -> String {
        if self.diff.is_empty() {
            return "Not in the ERP yet".to_owned();
        }
        self.diff
            .iter()
            .map(|(f, a, b)| format!("{f}: {a} → {b}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `created,updated,unchanged` as an import's redirect gives them; anything else is no notice.
fn counts(text: &str) -> Option<[u64; 3]> {
    let n: Vec<u64> = text
        .split(',')
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    n.try_into().ok()
}

/// A failure's message after who refused it: "Tryton refused it: …", "Costbridge did not
/// export it: …".
pub(super) fn refusal(message: Option<String>, by: Option<&str>) -> Option<String> {
    message.map(|m| format!("{}: {m}", refused(by, "it")))
}

/// A recorded value in words: the active flag as "active" / "inactive", not `true`.
pub(super) fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "active".to_owned(),
        Value::Bool(false) => "inactive".to_owned(),
        other => other.to_string(),
    }
}

/// What a person may do with codes, from their permissions (the same checks as the API).
#[derive(Clone, Copy)]
pub struct CodeRights {
    pub can_write: bool,
    pub can_toggle: bool,
    /// May choose which list is the ERP list (as for the ERP connection).
    pub can_choose_erp_list: bool,
}

impl CodeRights {
    pub fn of(v: &Viewer) -> CodeRights {
        let p = v.caller.user.permissions;
        CodeRights {
            can_write: p.can_write_codes(),
            can_toggle: p.can_toggle_active(),
            can_choose_erp_list: p.can_manage_users(),
        }
    }
}

#[derive(Template)]
#[template(path = "_nodes.html")]
pub struct Nodes {
    pub lid: i64,
    pub nodes: Vec<NodeView>,
    pub rights: CodeRights,
    /// The URL of the next page, when there is one, and how many are shown of how many.
    pub more: Option<String>,
    pub shown: i64,
    pub total: i64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PageQuery {
    list: Option<i64>,
    q: Option<String>,
    status: Option<String>,
    sent: Option<i64>,
    imported: Option<String>,
    erp_list: Option<String>,
    moved: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "codes.html")]
struct CodesPage {
    layout: Layout,
    lists: Vec<CodeList>,
    list: Option<CodeList>,
    q: String,
    status: String,
    states: Vec<&'static str>,
    notice: Option<String>,
    panel: Option<SendPanel>,
    tree: Option<Nodes>,
    rights: CodeRights,
    /// The company has an ERP connection (so one of its lists is the ERP list).
    connected: bool,
}

#[tracing::instrument(skip_all)]
async fn page(v: Viewer, Query(pq): Query<PageQuery>) -> WebResult<Response> {
    let company = v.company();
    let lists = codes::lists(v.state(), &v.caller.user, company).await?;
    // The ERP list first when none is asked for: that is the one that syncs.
    let chosen = pq
        .list
        .or_else(|| lists.iter().find(|l| l.is_erp_list).map(|l| l.id))
        .or_else(|| lists.first().map(|l| l.id));
    let list = chosen.and_then(|id| lists.iter().find(|l| l.id == id).cloned());
    let q = pq.q.unwrap_or_default();
    let status = pq
        .status
        .filter(|s| SyncState::parse(s).is_some())
        .unwrap_or_default();
    let rights = CodeRights::of(&v);
    let (panel, tree) = match &list {
        Some(l) => {
            let s = send::status_of(v.state(), &v.caller.user, company, l).await?;
            let panel = SendPanel {
                lid: l.id,
                version: s.list_version,
                s,
                oob: false,
                error: None,
            };
            let tree = load_nodes(v.state(), &v, l.id, None, 1, &q, &status).await?;
            (Some(panel), Some(tree))
        }
        None => (None, None),
    };
    let notice = if let Some(n) = pq.sent {
        Some(format!(
            "Sent {} to the ERP Integrations queue. They are pending until an accounting approver exports or rejects them.",
            super::format::codes(n)
        ))
    } else if let Some([created, updated, unchanged]) = pq.imported.as_deref().and_then(counts) {
        Some(format!(
            "Import applied: {} created, {} updated, {} unchanged.",
            grouped(created),
            grouped(updated),
            grouped(unchanged)
        ))
    } else if pq.erp_list.is_some() {
        Some("This list is now the ERP list: Send to ERP sends its new and changed codes.".into())
    } else if pq.moved.is_some() {
        Some(format!(
            "Moved: the code is now {q}, with the codes under it."
        ))
    } else {
        None
    };
    let title = list
        .as_ref()
        .map(|l| l.name.clone())
        .unwrap_or_else(|| "Cost codes".into());
    let connected = lists.iter().any(|l| l.is_erp_list);
    Ok(CodesPage {
        layout: Layout::new(v.state(), &v, "codes", title).await?,
        lists,
        list,
        q,
        status,
        states: ALL_STATES.iter().map(|s| s.as_str()).collect(),
        notice,
        panel,
        tree,
        rights,
        connected,
    }
    .into_response())
}

/// A page of the tree under `parent` (or of the search results when a query or state is set).
pub async fn load_nodes(
    state: &AppState, v: &Viewer, lid: i64, parent: Option<i64>, page: i64, q: &str, status: &str,
) -> WebResult<Nodes> {
    let (user, company) = (&v.caller.user, v.company());
    let window = Pager::new(Some(page), PAGE).window();
    let flat = !q.is_empty() || !status.is_empty();
    let (nodes, total) = if flat {
        let filter = CodeFilter {
            sync_status: (!status.is_empty()).then(|| status.to_owned()),
            q: (!q.is_empty()).then(|| q.to_owned()),
            ..CodeFilter::default()
        };
        let (found, total) = codes::codes(state, user, company, lid, &filter, window).await?;
        (
            found
                .into_iter()
                .map(|c| NodeView::new(c, None))
                .collect::<Vec<_>>(),
            total,
        )
    } else {
        let (nodes, total) = codes::children(state, user, company, lid, parent, window).await?;
        let nodes = nodes
            .into_iter()
            .map(|n| NodeView::new(n.code, Some(n.children)))
            .collect();
        (nodes, total)
    };
    let shown = window.offset + nodes.len() as i64;
    let more = (shown < total).then(|| {
        let mut url = format!("/codes/{lid}/nodes?page={}", page.max(1) + 1);
        if let Some(p) = parent {
            url.push_str(&format!("&parent={p}"));
        }
        for (k, val) in [("q", q), ("status", status)] {
            if !val.is_empty() {
                url.push_str(&format!(
                    "&{k}={}",
                    form_urlencoded::byte_serialize(val.as_bytes()).collect::<String>()
                ));
            }
        }
        url
    });
    Ok(Nodes {
        lid,
        nodes,
        rights: CodeRights::of(v),
        more,
        shown,
        total,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NodesQuery {
    parent: Option<i64>,
    page: Option<i64>,
    q: String,
    status: String,
}

#[tracing::instrument(skip_all)]
async fn nodes(
    v: Viewer, Path(lid): Path<i64>, Query(nq): Query<NodesQuery>,
) -> WebResult<Response> {
    let nodes = load_nodes(
        v.state(),
        &v,
        lid,
        nq.parent,
        nq.page.unwrap_or(1),
        &nq.q,
        &nq.status,
    )
    .await?;
    fragments(StatusCode::OK, vec![nodes.render()])
}
