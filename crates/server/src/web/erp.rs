//! ERP Integrations → Standard Cost Codes: the approver's queue with its filters and counts,
//! GL account pickers saved on change, export / reject / retry of selected or all rows, and
//! the live status of a running export (polled, no reload). Without the approver's rights the
//! page is read-only and says why.
use super::codes::plain;
use super::error::explain;
use super::format::{codes, grouped};
use super::{Layout, Pager, Viewer, WebResult, fragments};
use crate::ops::connection::Connection;
use crate::ops::queue::{self as ops, FILTERS, filter_entry};
use crate::ops::{OpError, OpResult};
use crate::state::AppState;
use crate::zone::Zone;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use costbridge_domain::queue::{ItemStatus, JobStatus};
use costbridge_erp::{GlAccount, GlKind};
use costbridge_storage::queue::{Item, JobStatus as Job};
use serde::Deserialize;

const PAGE: i64 = 100;

/// The rows of an export job its panel lists; its counts cover the whole job.
const JOB_ROWS: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/erp", get(page))
        .route("/erp/live", get(live))
        .route("/erp/export_jobs/{id}/file", get(job_file))
}

pub struct Tab {
    pub key: &'static str,
    pub label: &'static str,
    pub count: i64,
}

#[derive(Template)]
#[template(path = "_erp_tabs.html")]
struct Tabs {
    tabs: Vec<Tab>,
    filter: String,
    oob: bool,
}

impl Tabs {
    /// The count the tab `key` shows.
    fn count(&self, key: &str) -> i64 {
        self.tabs
            .iter()
            .find(|t| t.key == key)
            .map_or(0, |t| t.count)
    }
}

/// An item as a table row shows it.
pub struct RowView {
    pub i: Item,
    pub sent_at: String,
    /// Who decided (export or reject) and when.
    pub decided: Option<(String, String)>,
    pub diff: Vec<(String, String, String)>,
    /// The change in words that fit where the item stands now: "new" on a synced row would
    /// read as the code's sync state.
    pub change: &'static str,
    /// Why it failed, saying who refused.
    pub refusal: Option<String>,
    /// Why the GL account just picked was not saved.
    pub gl_error: Option<String>,
}

impl RowView {
    pub fn new(i: Item, zone: &Zone) -> RowView {
        let diff = i
            .diff
            .iter()
            .map(|(f, ch)| (f.replace('_', " "), plain(&ch.from), plain(&ch.to)))
            .collect();
        let change = match (i.export_status, i.change) {
            (ItemStatus::Synced, "new") => "added to the ERP",
            (ItemStatus::Synced, _) => "updated in the ERP",
            (_, change) => change,
        };
        RowView {
            change,
            refusal: super::codes::refusal(i.erp_message.clone(), i.refused_by.as_deref()),
            gl_error: None,
            sent_at: zone.show(i.sent_at),
            decided: i.decided_by.as_ref().map(|p| {
                let at = i.decided_at.map(|t| zone.show(t)).unwrap_or_default();
                (p.label(), at)
            }),
            diff,
            i,
        }
    }
}

fn rows(items: Vec<Item>, zone: &Zone) -> Vec<RowView> {
    items.into_iter().map(|i| RowView::new(i, zone)).collect()
}

/// What the viewer may do here and what the rows need to draw their pickers.
pub struct QueueView {
    pub approver: bool,
    pub income: Vec<GlAccount>,
    pub expense: Vec<GlAccount>,
    /// Why there are no GL accounts to pick although the company is connected.
    pub accounts_problem: Option<String>,
}

impl QueueView {
    /// A row's change in words. A synced row that only went into a file says which file: the
    /// ERP has it once a person imports that file, so "added to the ERP" claimed too much.
    pub fn change(&self, row: &RowView) -> String {
        match &row.i.delivered_to {
            Some(f) => format!("written to {f}"),
            None => row.change.to_owned(),
        }
    }

    /// A row's saved account when its picker has no option for it, with why: the ERP did not
    /// answer (the pickers are empty), or its chart no longer has it. Without this the picker
    /// showed "None" for an account that is saved and travels with the export.
    pub fn unlisted<'a>(
        &self, saved: Option<&'a str>, income: bool,
    ) -> Option<(&'a str, &'static str)> {
        let code = saved?;
        let listed = if income { &self.income } else { &self.expense };
        if listed.iter().any(|a| a.code == code) {
            return None;
        }
        let why = if self.accounts_problem.is_some() {
            "saved; the chart of accounts could not be read"
        } else {
            "saved; no longer in the chart of accounts"
        };
        Some((code, why))
    }

    /// Rows whose GL accounts may still change and which can be selected for an action.
    pub fn actionable(&self, row: &RowView) -> bool {
        self.approver && matches!(row.i.export_status.as_str(), "ready" | "failed")
    }
}

#[derive(Template)]
#[template(path = "_erp_rows.html")]
struct Rows {
    items: Vec<RowView>,
    q: QueueView,
    oob: bool,
}

#[derive(Template)]
#[template(path = "_erp_job.html")]
struct JobPanel {
    job: Job,
    items: Vec<RowView>,
    oob: bool,
    /// What an unfinished job waits for when the ERP pulls its work (QuickBooks Web Connector).
    waiting: Option<String>,
    /// The file the job's codes went into, and the ERP that has them once it is imported,
    /// when no ERP confirms them.
    delivered: Option<(String, String)>,
}

/// The element that polls while anything is exporting; drawn without a trigger it stops.
#[derive(Template)]
#[template(path = "_erp_live.html")]
struct Live {
    url: String,
    active: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "erp.html")]
struct ErpPage {
    layout: Layout,
    tabs: Tabs,
    rows: Rows,
    filter: String,
    readonly_why: Option<String>,
    connected: bool,
    income_required: bool,
    /// The connector can read the ERP's own codes (Sync from ERP).
    can_pull: bool,
    notice: Option<String>,
    /// What Ready to Export holds as this page draws it, for "Export all" to compare.
    ready_mark: String,
    job: Option<JobPanel>,
    live: Live,
    reject: RejectForm,
    page: i64,
    pages: i64,
}

impl ErpPage {
    /// How many codes wait in Ready to Export, as the tab says.
    fn ready_count(&self) -> i64 {
        self.tabs.count("ready_to_export")
    }

    /// How many codes wait in Failed to Export, as the tab says.
    fn failed_count(&self) -> i64 {
        self.tabs.count("failed")
    }

    /// The filter as its tab names it ("Ready to Export"), for the table's caption.
    fn filter_label(&self) -> &'static str {
        self.tabs
            .tabs
            .iter()
            .find(|t| t.key == self.filter)
            .map_or("the queue", |t| t.label)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PageQuery {
    filter: Option<String>,
    page: Option<i64>,
    job: Option<i64>,
    rejected: Option<i64>,
}

/// Why someone sees the queue but cannot act on it, in terms of the permissions they lack.
fn readonly_why(v: &Viewer) -> Option<String> {
    let p = v.caller.user.permissions;
    if p.is_approver() {
        return None;
    }
    let mut lacks = Vec::new();
    if p.erp_integrations < costbridge_domain::Level::Standard {
        lacks.push("ERP Integrations at standard or admin");
    }
    if !p.can_push_to_accounting {
        lacks.push("the Push to accounting privilege");
    }
    Some(format!(
        "You can view this queue but not act on it: exporting, rejecting and choosing GL accounts are for accounting approvers, which needs {}.",
        lacks.join(" and ")
    ))
}

/// The Synced tab's label when the connection writes files: its codes are in a file, and the
/// ERP has them only once someone imports it ("synced" means the ERP confirmed it).
const SYNCED_OR_IN_FILE: &str = "Synced or in file";

/// The tabs with their counts. `in_file` labels the Synced tab for a connection that writes
/// files; a poll redraws only the counts, so it passes `false` without reading the connection.
async fn tabs(
    state: &AppState, v: &Viewer, filter: &str, oob: bool, in_file: bool,
) -> WebResult<(Tabs, i64)> {
    let counts = ops::counts(state, &v.caller.user, v.company()).await?;
    let tabs: Vec<Tab> = FILTERS
        .iter()
        .map(|(key, _, label)| Tab {
            key,
            label: if in_file && *key == "synced" {
                SYNCED_OR_IN_FILE
            } else {
                label
            },
            count: counts.get(key).copied().unwrap_or(0),
        })
        .collect();
    let exporting = counts.get("exporting").copied().unwrap_or(0);
    Ok((
        Tabs {
            tabs,
            filter: filter.to_owned(),
            oob,
        },
        exporting,
    ))
}

/// The company's connection, read once for a page or fragment: the GL pickers, the job panel
/// and the rows' words all come from it.
pub async fn connection(v: &Viewer) -> WebResult<Option<Connection>> {
    Ok(crate::ops::connection::connection(v.state(), v.company()).await?)
}

pub async fn queue_view(state: &AppState, v: &Viewer, conn: Option<Connection>) -> QueueView {
    // Without a connection (or with the ERP unreachable) there is nothing to pick from; the
    // page says so rather than failing. An ERP that did not answer is said above the table:
    // pickers offering only "None" told the approver nothing.
    let accounts = match &conn {
        Some(c) => ops::erp_accounts(state, v.company(), c).await,
        None => Ok(Vec::new()),
    };
    let pulled = conn.as_ref().is_some_and(|c| c.settings.pulled());
    let (accounts, accounts_problem) = match accounts {
        Ok(accounts) => (accounts, None),
        // QuickBooks answers only when its Web Connector runs: nothing is wrong with the
        // connection, and its own message says what to do (checking the connection did not).
        Err(OpError::Erp(m)) if pulled => (
            Vec::new(),
            Some(format!("The pickers offer no GL accounts yet. {m}.")),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "GL accounts not read for the queue page");
            let problem = format!(
                "Costbridge could not read the GL accounts from the ERP, so the pickers offer \
                 none. {}. Check the connection (Company settings → ERP connection → Test \
                 connection), then reload this page.",
                explain(&e).trim_end_matches('.')
            );
            (Vec::new(), Some(problem))
        }
    };
    let (income, expense) = accounts.into_iter().partition(|a| a.kind == GlKind::Income);
    QueueView {
        approver: v.caller.user.permissions.is_approver(),
        income,
        expense,
        accounts_problem,
    }
}

pub fn filter_key(f: Option<&str>) -> OpResult<&'static str> {
    Ok(filter_entry(f.unwrap_or("ready_to_export"))?.0)
}

async fn job_panel(state: &AppState, v: &Viewer, job: i64, oob: bool) -> WebResult<JobPanel> {
    let (job, items) =
        ops::job_with_items(state, &v.caller.user, v.company(), job, JOB_ROWS).await?;
    let waiting = match job.status.as_str() {
        "done" => None,
        _ => crate::ops::qbwc::waiting_line(state, v.company()).await?,
    };
    // Kept with the job's outcomes: the company's connection may have changed since.
    let delivered = job.delivered_to.clone().zip(job.delivered_for.clone());
    Ok(JobPanel {
        job,
        items: rows(items, &v.zone),
        oob,
        waiting,
        delivered,
    })
}

impl JobPanel {
    /// Whether the table stops short of the job: it lists at most [`JOB_ROWS`] codes.
    fn cut_short(&self) -> bool {
        self.items.len() as i64 >= JOB_ROWS && self.total() > self.items.len() as i64
    }

    /// How many codes the job took, as its counts say.
    fn total(&self) -> i64 {
        let c = &self.job.counts;
        c.synced + c.failed + c.exporting
    }

    /// "First 200 of 1,500 codes in this job", when the table does not list them all.
    fn rows_note(&self) -> Option<String> {
        self.cut_short().then(|| {
            format!(
                "First {} of {} in this job.",
                grouped(self.items.len()),
                codes(self.total())
            )
        })
    }

    /// Whether codes of the job may still wait in Failed to Export. The job's count of
    /// failures says whether any failed; it is kept after they were retried (in another job)
    /// or rejected, so the listed rows say whether some still are, unless the failed ones may
    /// be past the rows listed.
    fn failed_rows_left(&self) -> bool {
        self.job.counts.failed > 0
            && (self.cut_short()
                || self
                    .items
                    .iter()
                    .any(|r| r.i.export_status == ItemStatus::Failed))
    }

    fn state(&self) -> &'static str {
        match self.job.status {
            JobStatus::Done => "finished",
            _ => self.job.status.as_str(),
        }
    }

    /// What the live region says: the state and the counts, as one sentence.
    fn status_line(&self) -> String {
        let c = &self.job.counts;
        let synced = match &self.delivered {
            Some((file, _)) => format!("{} written to {file}", grouped(c.synced)),
            None => format!("{} synced", grouped(c.synced)),
        };
        let mut line = format!(
            "Export job {} {}: {synced}, {} failed, {} still exporting.",
            self.job.id,
            self.state(),
            grouped(c.failed),
            grouped(c.exporting)
        );
        if let Some((file, erp)) = self.delivered.as_ref().filter(|_| c.synced > 0) {
            line.push_str(&format!(
                " {erp} has them once someone imports {file} into it."
            ));
        }
        // Why an unfinished job waits. Once it is done its rows say how each ended, and a
        // wait it got past (an ERP that came back, a restart) is no longer news.
        if let Some(e) = self.job.last_error.as_ref().filter(|_| c.exporting > 0) {
            line.push_str(&format!(" Last error: {e}"));
        }
        line
    }
}

/// The poll of the page being read: its tab, its page of rows (a poll that redrew page 1 under
/// a pager saying "Page 3 of 7" took page 3 away every two seconds) and its job.
fn live_url(filter: &str, page: i64, job: Option<i64>) -> String {
    let mut url = format!("/erp/live?filter={filter}");
    if page > 1 {
        url.push_str(&format!("&page={page}"));
    }
    if let Some(j) = job {
        url.push_str(&format!("&job={j}"));
    }
    url
}

#[tracing::instrument(skip_all)]
async fn page(v: Viewer, Query(pq): Query<PageQuery>) -> WebResult<Response> {
    let company = ops::reader(&v.caller.user, v.company())?;
    let filter = filter_key(pq.filter.as_deref())?;
    let pager = Pager::new(pq.page, PAGE);
    let (items, total) =
        ops::items(v.state(), &v.caller.user, company, filter, pager.window()).await?;
    let conn = connection(&v).await?;
    let in_file = conn.as_ref().is_some_and(|c| c.settings.writes_files());
    let (tabs, exporting) = tabs(v.state(), &v, filter, false, in_file).await?;
    let ready_mark = match filter {
        "ready_to_export" => ops::ready_mark(v.state(), company, tabs.count(filter)).await?,
        _ => String::new(),
    };
    let job = match pq.job {
        Some(j) => Some(job_panel(v.state(), &v, j, false).await?),
        None => None,
    };
    let connected = conn.is_some();
    let income_required = conn
        .as_ref()
        .is_some_and(|c| c.profile.rules.income_account_required);
    let can_pull = conn.as_ref().is_some_and(|c| c.settings.can_read_codes());
    let job_running = job
        .as_ref()
        .is_some_and(|j| j.job.status != JobStatus::Done);
    let notice = pq.rejected.map(|n| {
        format!(
            "Rejected {}. The admin sees the reason on each code.",
            codes(n)
        )
    });
    Ok(ErpPage {
        layout: Layout::new(v.state(), &v, "erp", "ERP Integrations").await?,
        tabs,
        rows: Rows {
            items: rows(items, &v.zone),
            q: queue_view(v.state(), &v, conn).await,
            oob: false,
        },
        filter: filter.to_owned(),
        readonly_why: readonly_why(&v),
        connected,
        income_required,
        can_pull,
        notice,
        ready_mark,
        job,
        live: Live {
            url: live_url(filter, pager.page, pq.job),
            active: exporting > 0 || job_running,
        },
        reject: RejectForm {
            filter: filter.to_owned(),
            scope: "selected".into(),
            reason: String::new(),
            error: None,
            problem: None,
        },
        page: pager.page,
        pages: pager.pages(total),
    }
    .into_response())
}

#[derive(Deserialize)]
struct LiveQuery {
    filter: Option<String>,
    page: Option<i64>,
    job: Option<i64>,
}

/// The file an export job wrote, to import into the ERP (a page route: an ended session leads
/// to sign-in, not to a JSON error saved as the file).
#[tracing::instrument(skip_all)]
async fn job_file(
    v: Viewer, axum::extract::Path(id): axum::extract::Path<i64>,
) -> WebResult<Response> {
    let (name, file, len) =
        crate::ops::queue::job_file(v.state(), &v.caller.user, v.company(), id).await?;
    Ok(crate::csvio::export_file(&name, file, len))
}

/// One poll while an export runs: the counts, the job's rows, and (on tabs without a
/// selection to lose) the table; it stops itself once nothing is exporting.
#[tracing::instrument(skip_all)]
async fn live(v: Viewer, Query(lq): Query<LiveQuery>) -> WebResult<Response> {
    ops::reader(&v.caller.user, v.company())?;
    let filter = filter_key(lq.filter.as_deref())?;
    let (tabs, exporting) = tabs(v.state(), &v, filter, true, false).await?;
    let mut parts = vec![tabs.render()];
    let mut running = false;
    let rows_too = matches!(filter, "exporting" | "synced");
    if let Some(j) = lq.job {
        let panel = job_panel(v.state(), &v, j, true).await?;
        running = panel.job.status != JobStatus::Done;
        parts.push(panel.render());
    }
    let pager = Pager::new(lq.page, PAGE);
    if rows_too {
        let (items, _) = ops::items(
            v.state(),
            &v.caller.user,
            v.company(),
            filter,
            pager.window(),
        )
        .await?;
        // These tabs' rows are never actionable, so they draw no GL pickers: the poll does not
        // ask the ERP for its accounts every two seconds (Xero counts those calls).
        let rows = Rows {
            items: rows(items, &v.zone),
            q: QueueView {
                approver: v.caller.user.permissions.is_approver(),
                income: Vec::new(),
                expense: Vec::new(),
                accounts_problem: None,
            },
            oob: true,
        };
        parts.push(rows.render());
    }
    let live = Live {
        url: live_url(filter, pager.page, lq.job),
        active: exporting > 0 || running,
    };
    parts.insert(0, live.render());
    fragments(StatusCode::OK, parts)
}

#[derive(Template)]
#[template(path = "_reject_form.html")]
pub struct RejectForm {
    pub filter: String,
    pub scope: String,
    pub reason: String,
    /// What is wrong with the reason, beside its field.
    pub error: Option<String>,
    /// Why the rows were not rejected (another approver took them, none selected), above the
    /// fields: inside the dialog, which is modal.
    pub problem: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use costbridge_domain::permission::UserKind;
    use costbridge_storage::queue::{JobCounts, Person};

    fn row(n: i64, status: ItemStatus) -> RowView {
        let item = Item {
            id: n,
            cost_code_id: n,
            submission_id: 1,
            full_code: format!("{n:03}"),
            description: "Code".into(),
            change: "new",
            diff: Default::default(),
            sent_by: Person {
                id: 1,
                email: "admin@one.example".into(),
                kind: UserKind::User,
                name: "Ada".into(),
            },
            sent_at: time::OffsetDateTime::UNIX_EPOCH,
            gl_income_account: None,
            gl_expense_account: None,
            export_status: status,
            erp_message: None,
            refused_by: None,
            note: None,
            decided_by: None,
            decided_at: None,
            rejection_reason: None,
            export_job_id: Some(1),
            delivered_to: None,
        };
        RowView::new(item, &Zone::server())
    }

    /// A finished job of `synced` + `failed` codes whose panel lists `listed` rows, all synced.
    fn panel(synced: i64, failed: i64, listed: i64) -> String {
        JobPanel {
            job: Job {
                id: 1,
                status: JobStatus::Done,
                counts: JobCounts {
                    synced,
                    failed,
                    exporting: 0,
                },
                attempts: 1,
                last_error: None,
                delivered_to: None,
                delivered_for: None,
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                finished_at: Some(time::OffsetDateTime::UNIX_EPOCH),
            },
            items: (0..listed).map(|n| row(n, ItemStatus::Synced)).collect(),
            oob: false,
            waiting: None,
            delivered: None,
        }
        .render()
        .unwrap()
    }

    #[test]
    fn a_long_job_says_its_table_is_cut_and_where_its_failures_are() {
        // 1,500 codes, the failed ones past the 200 listed: the table says it is the first
        // 200, and the way to the failures is there although no listed row failed.
        let long = panel(1_497, 3, JOB_ROWS);
        assert!(
            long.contains("First 200 of 1,500 codes in this job."),
            "{long}"
        );
        assert!(long.contains("See the failed codes"), "{long}");
        assert!(long.contains("1,497 synced, 3 failed"), "{long}");
        // A job listed whole says nothing of the sort; its failures were retried or
        // rejected since (no listed row is failed), so no link leads to an empty tab.
        let short = panel(2, 1, 2);
        assert!(!short.contains("First "), "{short}");
        assert!(!short.contains("See the failed codes"), "{short}");
        // No failures, no link, even when the table is cut.
        let clean = panel(300, 0, JOB_ROWS);
        assert!(clean.contains("First 200 of 300 codes"), "{clean}");
        assert!(!clean.contains("See the failed codes"), "{clean}");
    }
}
