//! ERP Integrations: the approver's queue of sent codes, GL accounts, export, reject, retry,
//! and pulling the ERP's own codes.
use super::connection::{Connection, connection};
use super::{OpError, OpResult, Window, company, nullable, require, text};
use crate::state::AppState;
use costbridge_domain::queue::ItemStatus;
use costbridge_erp::{GlAccount, GlKind};
use costbridge_storage::pull::{PullSummary, RemoteCode};
use costbridge_storage::queue::{GlDefaults, Item, JobStatus, Seen, Selection};
use costbridge_storage::users::User;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The caller's company, if they may see its queue.
pub fn reader(caller: &User, cid: i64) -> OpResult<i64> {
    let company = company(caller, cid)?;
    require(
        caller.permissions.can_read_erp_queue(),
        "erp_integrations=read_only",
    )?;
    Ok(company)
}

/// The caller's company, if they may act on its queue (an accounting approver).
pub fn approver(caller: &User, cid: i64) -> OpResult<i64> {
    let company = company(caller, cid)?;
    require(
        caller.permissions.is_approver(),
        "erp_integrations=standard and can_push_to_accounting",
    )?;
    Ok(company)
}

async fn require_connection(state: &AppState, company: i64) -> OpResult<Connection> {
    connection(state, company)
        .await?
        .ok_or(OpError::NoConnection)
}

/// The queue's filters, one per item state of the domain (in its order): the name the API
/// takes, the stored state it shows, and its tab label (docs/rules.md §5).
pub const FILTERS: [(&str, &str, &str); ItemStatus::ALL.len()] = {
    let mut out = [("", "", ""); ItemStatus::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        let state = ItemStatus::ALL[i];
        let (name, label) = state.filter();
        out[i] = (name, state.as_str(), label);
        i += 1;
    }
    out
};

/// The entry of [`FILTERS`] for a filter name, or an error naming the ones there are.
pub fn filter_entry(name: &str) -> OpResult<(&'static str, &'static str, &'static str)> {
    FILTERS
        .iter()
        .find(|(key, _, _)| *key == name)
        .copied()
        .ok_or_else(|| {
            let names: Vec<&str> = FILTERS.iter().map(|(key, _, _)| *key).collect();
            OpError::field("filter", format!("must be one of {}", names.join(", ")))
        })
}

/// A page of the items a filter shows, with their total.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn items(
    state: &AppState, caller: &User, cid: i64, filter: &str, page: Window,
) -> OpResult<(Vec<Item>, i64)> {
    let company = reader(caller, cid)?;
    let status = filter_entry(filter)?.1;
    Ok(state
        .db
        .items(company, status, page.limit, page.offset)
        .await?)
}

/// One item of the queue, as stored.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn item(state: &AppState, caller: &User, cid: i64, id: i64) -> OpResult<Item> {
    let company = reader(caller, cid)?;
    Ok(state.db.item(company, id).await?)
}

/// How many items each filter holds, by filter name (for the filter tabs).
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn counts(
    state: &AppState, caller: &User, cid: i64,
) -> OpResult<BTreeMap<&'static str, i64>> {
    let company = reader(caller, cid)?;
    let c = state.db.item_counts(company).await?;
    Ok(FILTERS
        .iter()
        .map(|(key, status, _)| (*key, c.get(*status).copied().unwrap_or(0)))
        .collect())
}

/// An export job's progress.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn job(state: &AppState, caller: &User, cid: i64, id: i64) -> OpResult<JobStatus> {
    let company = reader(caller, cid)?;
    Ok(state.db.job_status(company, id).await?)
}

/// What Ready to Export holds, as a mark a page keeps and "Export all" compares: the count of
/// its codes and the latest submission. A send, an export or a reject moves one of them (a
/// count alone missed one code exported and another sent meanwhile).
pub async fn ready_mark(state: &AppState, company: i64, ready: i64) -> OpResult<String> {
    let latest = state.db.latest_submission(company).await?;
    Ok(format!("{ready}.{latest}"))
}

/// A [`ready_mark`] read back from the page, for [`start`] to compare under the list's lock.
pub fn seen_of(mark: &str) -> OpResult<Seen> {
    let parsed = mark.split_once('.').and_then(|(ready, latest)| {
        Some(Seen {
            ready: ready.parse().ok()?,
            latest_submission: latest.parse().ok()?,
        })
    });
    parsed.ok_or_else(|| OpError::field("seen", "is not what this page wrote; reload the page"))
}

/// The file an export job wrote (the file connector), for whoever may read the queue, so an
/// accountant can import it without asking the operator for it: its name and the file, open.
/// Read from the folder the connection writes to now.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn job_file(
    state: &AppState, caller: &User, cid: i64, id: i64,
) -> OpResult<(String, tokio::fs::File, u64)> {
    let company = reader(caller, cid)?;
    let job = state.db.job_status(company, id).await?;
    let Some(name) = job.delivered_to else {
        return Err(OpError::NotSupported(format!(
            "export job {id} has no file: it has written none (yet, or every code failed), or \
             its ERP took the codes itself; its panel says which"
        )));
    };
    let folder = connection(state, company)
        .await?
        .and_then(|c| c.settings.delivery_folder());
    // Only a name Costbridge made is read: `costbridge-export-<id>.<format>`, no path.
    let ours = name.starts_with("costbridge-export-") && !name.contains(['/', '\\']);
    let file = match folder.as_ref().filter(|_| ours) {
        Some(folder) => tokio::fs::File::open(folder.join(&name)).await.ok(),
        None => None,
    };
    // A file, whose length the answer states (a folder of that name is no file to send).
    let file = match file {
        Some(f) => f
            .metadata()
            .await
            .ok()
            .filter(|m| m.is_file())
            .map(|m| (f, m.len())),
        None => None,
    };
    file.map(|(f, len)| (name.clone(), f, len)).ok_or_else(|| {
        OpError::Conflict(format!(
            "Costbridge cannot find {name} in the folder the ERP connection writes to now: the \
             connection changed since, or the file was moved or removed after it was imported. \
             Ask your operator, who can find it under the export root (company-{company})."
        ))
    })
}

/// An export job's progress and up to `limit` of its items.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn job_with_items(
    state: &AppState, caller: &User, cid: i64, id: i64, limit: i64,
) -> OpResult<(JobStatus, Vec<Item>)> {
    let company = reader(caller, cid)?;
    Ok((
        state.db.job_status(company, id).await?,
        state.db.job_items(company, id, limit).await?,
    ))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"gl_income_account": "4000", "gl_expense_account": "5000"}))]
pub struct GlChoice {
    #[serde(default, deserialize_with = "nullable")]
    pub gl_income_account: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub gl_expense_account: Option<Option<String>>,
}

fn check_account(
    accounts: &[GlAccount], field: &str, kind: GlKind, code: &Option<Option<String>>,
) -> OpResult<()> {
    if let Some(Some(code)) = code
        && !accounts.iter().any(|a| &a.code == code && a.kind == kind)
    {
        let known: Vec<&str> = accounts
            .iter()
            .filter(|a| a.kind == kind)
            .map(|a| a.code.as_str())
            .collect();
        let kind = kind.as_str();
        // A chart with none of the kind said so as "()"; it is the ERP connection to fix.
        let offered = if known.is_empty() {
            format!(
                "the ERP offers no {kind} account: add one in the ERP (or the connection's GL \
                 accounts), then pick it"
            )
        } else {
            format!("it offers {}", known.join(", "))
        };
        return Err(OpError::field(
            field,
            format!("'{code}' is not one of the ERP's {kind} accounts; {offered}"),
        ));
    }
    Ok(())
}

/// Saves an approver's GL account choice on an item, checked against the ERP's accounts.
#[tracing::instrument(skip(state, caller, body), fields(user = caller.id))]
pub async fn set_gl(
    state: &AppState, caller: &User, cid: i64, item_id: i64, body: GlChoice,
) -> OpResult<Item> {
    let company = approver(caller, cid)?;
    // An item that does not exist is a 404 before anything is asked of the ERP (it was a 422
    // without a connection, or a 502 with the ERP down).
    state.db.item(company, item_id).await?;
    let conn = require_connection(state, company).await?;
    let accounts = erp_accounts(state, company, &conn).await?;
    check_account(
        &accounts,
        "gl_income_account",
        GlKind::Income,
        &body.gl_income_account,
    )?;
    check_account(
        &accounts,
        "gl_expense_account",
        GlKind::Expense,
        &body.gl_expense_account,
    )?;
    Ok(state
        .db
        .set_item_gl(
            company,
            caller.id,
            item_id,
            body.gl_income_account,
            body.gl_expense_account,
        )
        .await?)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"item_ids": [1, 2], "gl_income_account": "4000", "gl_expense_account": "5000"}))]
pub struct Pick {
    /// The items to take; absent takes every one the action applies to.
    pub item_ids: Option<Vec<i64>>,
    /// Applied to the selected rows that have no account chosen.
    pub gl_income_account: Option<String>,
    pub gl_expense_account: Option<String>,
}

fn selection(ids: &Option<Vec<i64>>, seen: Option<Seen>) -> OpResult<Selection<'_>> {
    match ids {
        None => Ok(seen.map_or(Selection::All, Selection::AllAsSeen)),
        Some(ids) if ids.is_empty() => Err(OpError::field(
            "item_ids",
            "is empty; leave it out to take every item",
        )),
        Some(ids) => Ok(Selection::Ids(ids)),
    }
}

/// Which rows an export starts from: accepting ready ones, or retrying failed ones.
#[derive(Clone, Copy, Debug)]
pub enum Start {
    Export,
    Retry,
}

/// Queues an export job for the picked rows; returns the job id and how many rows it holds.
/// `seen`: what the page showed of Ready to Export when it offered "all" (no other rows go).
#[tracing::instrument(skip(state, caller, pick), fields(user = caller.id, job))]
pub async fn start(
    state: &AppState, caller: &User, cid: i64, pick: &Pick, what: Start, seen: Option<Seen>,
) -> OpResult<(i64, i64)> {
    let from = match what {
        Start::Export => ItemStatus::Ready,
        Start::Retry => ItemStatus::Failed,
    };
    let company = approver(caller, cid)?;
    let conn = require_connection(state, company).await?;
    // Stored before a save refused it (`connection::put`).
    if conn.settings.needs_other_profile(&conn.profile.id) {
        return Err(OpError::Conflict(format!(
            "Costbridge refused the export: the ERP connection writes IIF files, QuickBooks \
             Desktop's, under the {} profile, whose rules they do not keep. An Admin-tool admin \
             chooses csv or the QuickBooks Desktop profile (Company settings → ERP \
             connection), then export again.",
            conn.profile.name
        )));
    }
    if pick.gl_income_account.is_some() || pick.gl_expense_account.is_some() {
        let accounts = erp_accounts(state, company, &conn).await?;
        check_account(
            &accounts,
            "gl_income_account",
            GlKind::Income,
            &Some(pick.gl_income_account.clone()),
        )?;
        check_account(
            &accounts,
            "gl_expense_account",
            GlKind::Expense,
            &Some(pick.gl_expense_account.clone()),
        )?;
    }
    let required = conn.profile.rules.income_account_required;
    let defaults = GlDefaults {
        income: pick.gl_income_account.clone(),
        expense: pick.gl_expense_account.clone(),
    };
    let (job, count) = state
        .db
        .start_export(
            company,
            caller.id,
            selection(&pick.item_ids, seen)?,
            from,
            required,
            &defaults,
        )
        .await?;
    tracing::Span::current().record("job", job);
    state.worker_wake.notify_one();
    Ok((job, count))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"item_ids": [3], "reason": "Use 01-200 for permits."}))]
pub struct Reject {
    /// The items to reject; absent rejects every ready one.
    pub item_ids: Option<Vec<i64>>,
    /// Why, shown to the admin on each code (at most 500 characters).
    pub reason: String,
}

/// Rejects the picked rows with a reason the admin sees on each code; returns how many.
#[tracing::instrument(skip(state, caller, body), fields(user = caller.id))]
pub async fn reject(state: &AppState, caller: &User, cid: i64, body: &Reject) -> OpResult<i64> {
    let company = approver(caller, cid)?;
    let reason = text("reason", &body.reason, 500)?;
    Ok(state
        .db
        .reject_items(
            company,
            caller.id,
            selection(&body.item_ids, None)?,
            &reason,
        )
        .await?)
}

/// The GL accounts an approver may pick, from the ERP through the connector.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn gl_accounts(state: &AppState, caller: &User, cid: i64) -> OpResult<Vec<GlAccount>> {
    let company = reader(caller, cid)?;
    let conn = require_connection(state, company).await?;
    erp_accounts(state, company, &conn).await
}

/// The ERP's GL accounts: from the connector, or for an ERP that pulls its work (the
/// QuickBooks Web Connector) those it reported last. No access check: for a connection its
/// caller already loaded for a reader (the queue's page reads it once for everything).
pub async fn erp_accounts(
    state: &AppState, company: i64, conn: &Connection,
) -> OpResult<Vec<GlAccount>> {
    if conn.settings.pulled() {
        return Ok(super::qbwc::accounts(state, company).await?.0);
    }
    // Xero's settings are empty: the organisation the chart comes from is the grant's, so it
    // is part of the version (on every instance, not only the one that saw the switch).
    let version = match conn.settings.kind() {
        "xero" => {
            let tenant = state
                .db
                .xero_grant(company)
                .await?
                .and_then(|g| g.tenant_id);
            conn.version ^ crate::ops::connection::hash_of(&tenant)
        }
        _ => conn.version,
    };
    if let Some(known) = state.gl_accounts.get(company, version) {
        return Ok(known);
    }
    let accounts = conn.settings.gl_accounts().await?;
    state.gl_accounts.put(company, version, accounts.clone());
    Ok(accounts)
}

/// Each company's GL accounts as the ERP last gave them, for [`GL_FRESH`]. The queue page,
/// each GL picker change and the export's defaults all need them, and each was a round trip to
/// the ERP: Xero allows an organisation 60 calls a minute, and a refused call postpones the
/// exports too. Kept per version of the connection's settings, so a saved change is read anew
/// at once on every instance; *Test connection* reads them anew as well.
#[derive(Debug, Default)]
pub struct GlCache(Mutex<HashMap<i64, Chart>>);

/// One company's chart as read, when, and under which version of its connection's settings.
#[derive(Debug)]
struct Chart {
    read_at: Instant,
    version: u64,
    accounts: Vec<GlAccount>,
}

/// How long the ERP's answer stands: an account added in the ERP shows within a minute.
const GL_FRESH: Duration = Duration::from_secs(60);

impl GlCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Chart>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, company: i64, version: u64) -> Option<Vec<GlAccount>> {
        self.lock()
            .get(&company)
            .filter(|c| c.version == version && c.read_at.elapsed() < GL_FRESH)
            .map(|c| c.accounts.clone())
    }

    fn put(&self, company: i64, version: u64, accounts: Vec<GlAccount>) {
        let chart = Chart {
            read_at: Instant::now(),
            version,
            accounts,
        };
        self.lock().insert(company, chart);
    }

    pub fn forget(&self, company: i64) {
        self.lock().remove(&company);
    }
}

/// What Sync from ERP did: pulled now, or (an ERP that pulls its own work) asked for at its
/// next connection, with a sentence saying so.
pub enum Pull {
    Done(PullSummary),
    Requested(String),
}

/// Pulls the ERP's code tree into the ERP list.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn sync_from_erp(state: &AppState, caller: &User, cid: i64) -> OpResult<Pull> {
    let company = approver(caller, cid)?;
    let conn = require_connection(state, company).await?;
    if conn.settings.pulled() {
        return Ok(Pull::Requested(
            super::qbwc::request_pull(state, company, caller.id).await?,
        ));
    }
    let read_at = costbridge_storage::now();
    let remote: Vec<RemoteCode> = conn
        .settings
        .read_codes()
        .await?
        .into_iter()
        .map(|c| RemoteCode {
            origin_id: c.origin_id,
            full_code: c.full_code,
            description: c.description,
            active: c.active,
        })
        .collect();
    Ok(Pull::Done(
        state
            .db
            .pull_from_erp(company, conn.erp_list_id, caller.id, &remote, read_at)
            .await?,
    ))
}
