//! The ERP Integrations queue: the items a send created, the approver's GL choices, and
//! export, reject and retry of the selected rows or all of them.
use crate::clients::client_label;
use crate::codes::unsynced_changed;
use crate::events::{self, About};
use crate::submissions::LATEST_SUBMISSION;
use crate::tx::{Arg, PageQuery, Queries, Tx, marks};
use crate::{Db, StoreError, audit, now, outbox};
use costbridge_domain::events::EventType;
use costbridge_domain::permission::UserKind;
use costbridge_domain::queue::{ItemStatus, JobStatus as JobState, sql_in};
use costbridge_domain::sync::{ConfirmedValues, Event, FieldChange, SyncState};
use serde::Serialize;
use serde_json::json;
use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// SQLite allows 32,766 bound values; chunks of ids stay far below it.
const ID_CHUNK: usize = 500;

/// Who sent or decided: `email` as the API has always had it, plus `kind` and `name`, so a
/// machine client is named as the admin named it, not by its row's internal address.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "email": "admin@demo.example", "kind": "user", "name": "Demo Admin"}))]
pub struct Person {
    pub id: i64,
    pub email: String,
    pub kind: UserKind,
    pub name: String,
}

impl Person {
    /// How a page names them: a person by email, a machine client by its name.
    pub fn label(&self) -> String {
        match self.kind {
            UserKind::User => self.email.clone(),
            UserKind::ApiClient => client_label(&self.name),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 7, "cost_code_id": 43, "submission_id": 1, "full_code": "01-110", "description": "Permits",
    "change": "new", "diff": {}, "sent_by": {"id": 1, "email": "admin@demo.example", "kind": "user", "name": "Demo Admin"}, "sent_at": "2026-11-30T15:01:00Z",
    "gl_income_account": "4000", "gl_expense_account": "5000", "export_status": "ready", "erp_message": null, "refused_by": null, "note": null,
    "decided_by": null, "decided_at": null, "rejection_reason": null, "export_job_id": null}))]
pub struct Item {
    pub id: i64,
    pub cost_code_id: i64,
    pub submission_id: i64,
    pub full_code: String,
    pub description: String,
    #[schema(value_type = costbridge_domain::sync::Change)]
    pub change: &'static str,
    pub diff: BTreeMap<&'static str, FieldChange>,
    pub sent_by: Person,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    #[schema(required = true)]
    pub gl_income_account: Option<String>,
    #[schema(required = true)]
    pub gl_expense_account: Option<String>,
    pub export_status: ItemStatus,
    #[schema(required = true)]
    pub erp_message: Option<String>,
    /// Who refused a failed item: `Costbridge` (a check of its own, or an ERP it could not
    /// reach in the end) or the ERP by name; absent otherwise.
    #[schema(required = true)]
    pub refused_by: Option<String>,
    /// Something the approver should know before exporting (e.g. a description the ERP will cut).
    #[schema(required = true)]
    pub note: Option<String>,
    #[schema(required = true)]
    pub decided_by: Option<Person>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub decided_at: Option<OffsetDateTime>,
    #[schema(required = true)]
    pub rejection_reason: Option<String>,
    #[schema(required = true)]
    pub export_job_id: Option<i64>,
    /// For a synced item that only went into a file (the file connector): that file, which the
    /// ERP has once someone imports it. `null` otherwise.
    #[schema(required = true)]
    pub delivered_to: Option<String>,
}

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(crate) struct ItemRow {
    id: i64,
    cost_code_id: i64,
    submission_id: i64,
    code: String,
    full_code: String,
    description: String,
    #[serde(deserialize_with = "crate::tx::packed::bool")]
    active: bool,
    from_code: Option<String>,
    from_full_code: Option<String>,
    from_description: Option<String>,
    #[serde(deserialize_with = "crate::tx::packed::option_bool")]
    from_active: Option<bool>,
    sent_by: i64,
    sent_by_email: String,
    sent_by_name: String,
    #[sqlx(try_from = "String")]
    #[serde(deserialize_with = "crate::tx::packed::stored")]
    sent_by_kind: UserKind,
    #[serde(with = "time::serde::rfc3339")]
    sent_at: OffsetDateTime,
    gl_income_account: Option<String>,
    gl_expense_account: Option<String>,
    #[sqlx(try_from = "String")]
    #[serde(deserialize_with = "crate::tx::packed::stored")]
    status: ItemStatus,
    erp_message: Option<String>,
    refused_by: Option<String>,
    note: Option<String>,
    decided_by: Option<i64>,
    decided_by_email: Option<String>,
    decided_by_name: Option<String>,
    decided_by_kind: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    decided_at: Option<OffsetDateTime>,
    rejection_reason: Option<String>,
    export_job_id: Option<i64>,
}

/// What [`ITEM_SELECT`] selects, in [`ItemRow`]'s order, on the alias `c` of a packed page
/// ([`Db::packed_page`]).
const ITEM_COLS: &str = "c.id, c.cost_code_id, c.submission_id, c.code, c.full_code, \
                         c.description, c.active, c.from_code, c.from_full_code, \
                         c.from_description, c.from_active, c.sent_by, c.sent_by_email, \
                         c.sent_by_name, c.sent_by_kind, c.sent_at, c.gl_income_account, \
                         c.gl_expense_account, c.status, c.erp_message, c.refused_by, c.note, \
                         c.decided_by, \
                         c.decided_by_email, c.decided_by_name, c.decided_by_kind, \
                         c.decided_at, c.rejection_reason, c.export_job_id";

/// An item with who sent and decided it, and its `sort_key` (the code order a page sorts by).
pub(crate) const ITEM_SELECT: &str = "SELECT i.id, i.cost_code_id, i.submission_id, i.code, \
                                      i.full_code, i.description, i.active, i.from_code, \
                                      i.from_full_code, i.from_description, i.from_active, \
                                      i.sent_by, su.email AS sent_by_email, su.name AS \
                                      sent_by_name, su.kind AS sent_by_kind, i.sent_at, \
                                      i.gl_income_account, i.gl_expense_account, i.status, \
                                      i.erp_message, i.refused_by, i.note, i.decided_by, \
                                      du.email AS \
                                      decided_by_email, du.name AS decided_by_name, du.kind \
                                      AS decided_by_kind, i.decided_at, i.rejection_reason, \
                                      i.export_job_id, i.sort_key FROM erp_items i JOIN users \
                                      su ON su.id = i.sent_by LEFT JOIN users du ON du.id = \
                                      i.decided_by";

impl TryFrom<ItemRow> for Item {
    type Error = StoreError;
    fn try_from(r: ItemRow) -> Result<Self, StoreError> {
        let now = ConfirmedValues {
            code: r.code,
            full_code: r.full_code.clone(),
            description: r.description.clone(),
            active: r.active,
        };
        let before = (|| {
            Some(ConfirmedValues {
                code: r.from_code?,
                full_code: r.from_full_code?,
                description: r.from_description?,
                active: r.from_active?,
            })
        })();
        let decided_by = match (r.decided_by, r.decided_by_email, r.decided_by_name) {
            (Some(id), Some(email), Some(name)) => Some(Person {
                id,
                email,
                name,
                kind: UserKind::try_from(r.decided_by_kind.unwrap_or_default())
                    .map_err(StoreError::decode)?,
            }),
            _ => None,
        };
        Ok(Item {
            id: r.id,
            cost_code_id: r.cost_code_id,
            submission_id: r.submission_id,
            full_code: r.full_code,
            description: r.description,
            change: if before.is_some() { "modified" } else { "new" },
            diff: before.map(|b| b.diff(&now)).unwrap_or_default(),
            sent_by: Person {
                id: r.sent_by,
                email: r.sent_by_email,
                kind: r.sent_by_kind,
                name: r.sent_by_name,
            },
            sent_at: r.sent_at,
            gl_income_account: r.gl_income_account,
            gl_expense_account: r.gl_expense_account,
            export_status: r.status,
            erp_message: r.erp_message,
            refused_by: r.refused_by,
            note: r.note,
            decided_by,
            decided_at: r.decided_at,
            rejection_reason: r.rejection_reason,
            export_job_id: r.export_job_id,
            // From the job, for the synced ones ([`Db::with_delivery`]).
            delivered_to: None,
        })
    }
}

/// One item that cannot take part in an export, reject or retry, and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemProblem {
    pub id: i64,
    #[schema(required = true)]
    pub full_code: Option<String>,
    pub errors: Vec<String>,
}

#[derive(Debug)]
pub enum QueueError {
    Items(Vec<ItemProblem>),
    /// "All" as the page showed it is not what waits now: how many wait now.
    Changed(i64),
    Store(StoreError),
}
impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        QueueError::Store(e)
    }
}
impl crate::db::Transient for QueueError {
    fn is_transient(&self) -> bool {
        matches!(self, QueueError::Store(e) if e.is_transient())
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ExportJob, example = json!({"id": 1, "status": "done", "counts": {"synced": 12, "failed": 0, "exporting": 0},
    "attempts": 1, "last_error": null, "delivered_to": null, "delivered_for": null, "created_at": "2026-11-30T15:02:00Z", "finished_at": "2026-11-30T15:02:03Z"}))]
pub struct JobStatus {
    pub id: i64,
    pub status: JobState,
    pub counts: JobCounts,
    pub attempts: i64,
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// The file the job's synced codes were written to when no ERP confirmed them (the file
    /// connector, e.g. `costbridge-export-7.iif`): the ERP has them once someone imports it.
    /// `null` when the ERP confirmed each code, and for jobs finished before this was kept.
    #[schema(required = true)]
    pub delivered_to: Option<String>,
    /// The ERP that file is for (e.g. `QuickBooks Desktop`); `null` with `delivered_to`.
    #[schema(required = true)]
    pub delivered_for: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub finished_at: Option<OffsetDateTime>,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct JobCounts {
    pub synced: i64,
    pub failed: i64,
    pub exporting: i64,
}

/// GL accounts for the rows of an export that have none chosen.
#[derive(Debug, Default)]
pub struct GlDefaults {
    pub income: Option<String>,
    pub expense: Option<String>,
}

/// Which items an approver acts on: the ones named, or every item in the given state (as a
/// page showed them, when it says so).
pub enum Selection<'a> {
    Ids(&'a [i64]),
    All,
    AllAsSeen(Seen),
}

/// What a page showed of Ready to Export when it offered "Export all": how many codes, and the
/// newest submission then (a count alone misses one code exported and another sent since).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub ready: i64,
    pub latest_submission: i64,
}

/// Why an item cannot be exported without a GL income account.
pub const INCOME_NEEDED: &str = "needs a GL income account (the ERP requires one)";

/// Every item of the company (`$1`) in one state (`$2`). An open item is always its code's
/// latest, never superseded; saying so lets `erp_items_queue` find them (there is no index of
/// every item by state: migration 202611316).
const WAITING: &str = "FROM erp_items WHERE company_id = $1 AND status = $2 AND NOT superseded";

/// How many of the company's items wait in `from`, for an action on all of them; or the
/// problems [`select_items`] would tell. Counted, not read: accepting 100,000 items read
/// 100,000 rows here only to learn that none had a problem.
async fn count_all(
    tx: &mut Tx<'_>, company: i64, from: ItemStatus, income_required: bool,
) -> Result<usize, QueueError> {
    let args = || [company.into(), from.as_str().into()];
    let (n, without_income): (i64, i64) = tx
        .fetch_one(
            AssertSqlSafe(format!(
                "SELECT COUNT(*), COUNT(*) - COUNT(gl_income_account) {WAITING}"
            )),
            args(),
        )
        .await?;
    if n == 0 {
        return Err(QueueError::Items(Vec::new()));
    }
    if income_required && without_income > 0 {
        let rows: Vec<(i64, String)> = tx
            .fetch_all(
                AssertSqlSafe(format!(
                    "SELECT id, full_code {WAITING} AND gl_income_account IS NULL ORDER BY id"
                )),
                args(),
            )
            .await?;
        return Err(QueueError::Items(
            rows.into_iter()
                .map(|(id, full_code)| ItemProblem {
                    id,
                    full_code: Some(full_code),
                    errors: vec![INCOME_NEEDED.into()],
                })
                .collect(),
        ));
    }
    Ok(n as usize)
}

/// Checks the selected items are in a `from` state (and carry an income account when
/// `income_required`: the ERP requires one and the caller gave no default) and returns their
/// ids. Runs inside the transaction that acts on them, after the list lock, so what it checked
/// is what the statements that follow change.
async fn select_items(
    tx: &mut Tx<'_>, company: i64, sel: &Selection<'_>, from: &[ItemStatus], income_required: bool,
) -> Result<Vec<i64>, QueueError> {
    type Selected = (i64, String, String, Option<String>);
    const COLS: &str = "SELECT id, full_code, status, gl_income_account";
    let mut problems = Vec::new();
    let rows: Vec<Selected> = match sel {
        Selection::All | Selection::AllAsSeen(_) => {
            let sql = format!("{COLS} {WAITING} ORDER BY id");
            tx.fetch_all(
                AssertSqlSafe(sql),
                [company.into(), from[0].as_str().into()],
            )
            .await?
        }
        Selection::Ids(ids) => {
            let mut rows = Vec::with_capacity(ids.len());
            for chunk in ids.chunks(ID_CHUNK) {
                let sql = format!(
                    "{COLS} FROM erp_items WHERE company_id = $1 AND id IN ({})",
                    marks(chunk.len(), 2)
                );
                let args = std::iter::once(company.into()).chain(chunk.iter().map(|&id| id.into()));
                rows.extend(tx.fetch_all::<Selected>(AssertSqlSafe(sql), args).await?);
            }
            let found: std::collections::HashSet<i64> = rows.iter().map(|r| r.0).collect();
            problems.extend(
                ids.iter()
                    .filter(|id| !found.contains(id))
                    .map(|&id| ItemProblem {
                        id,
                        full_code: None,
                        errors: vec!["no such item".into()],
                    }),
            );
            rows
        }
    };
    for (id, full_code, status, income) in &rows {
        let mut errors = Vec::new();
        let status = ItemStatus::parse(status).map_err(StoreError::decode)?;
        if !from.contains(&status) {
            let names: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
            errors.push(format!(
                "is {status}; only {} items can take this action",
                names.join(" or ")
            ));
        }
        if income_required && income.is_none() {
            errors.push(INCOME_NEEDED.into());
        }
        if !errors.is_empty() {
            problems.push(ItemProblem {
                id: *id,
                full_code: Some(full_code.clone()),
                errors,
            });
        }
    }
    if !problems.is_empty() || rows.is_empty() {
        return Err(QueueError::Items(problems));
    }
    Ok(rows.into_iter().map(|r| r.0).collect())
}

/// Locks the company's ERP list (the list every queue item comes from: only it can be sent)
/// and bumps its version, first of all, as every write that changes codes does (see
/// [`Db::write`]); returns the list and its new version.
pub(crate) async fn lock_erp_list(
    tx: &mut Tx<'_>, company: i64,
) -> Result<Option<(i64, i64)>, StoreError> {
    tx.fetch_optional(
        "UPDATE cost_code_lists SET version = version + 1 WHERE \
         company_id = $1 AND is_erp_list RETURNING id, version",
        [company.into()],
    )
    .await
}

/// An item that is its code's latest: the queue's filters show each code once, where it
/// stands now, so a code rejected, fixed, re-sent and synced counts as synced only, not also
/// as rejected (docs/rules.md §5). A later item for the same code marks the earlier one
/// superseded (a trigger of migration 202611314), and `erp_item_counts` counts the others.
const CURRENT: &str = "NOT i.superseded";

impl Db {
    pub async fn items(
        &self, company: i64, status: &str, limit: i64, offset: i64,
    ) -> Result<(Vec<Item>, i64), StoreError> {
        self.item_page(
            &format!("i.company_id = $1 AND i.status = $2 AND {CURRENT}"),
            "SELECT COALESCE((SELECT n FROM erp_item_counts WHERE company_id = $1 AND \
             status = $2), 0)",
            vec![company.into(), status.into()],
            limit,
            offset,
        )
        .await
    }

    /// One page of the items `condition` (on `erp_items i`, bound to `args`) selects, in code
    /// order, and how many it selects in all (`count_sql`, bound to the same `args`).
    pub(crate) async fn item_page(
        &self, condition: &str, count_sql: &str, args: Vec<Arg>, limit: i64, offset: i64,
    ) -> Result<(Vec<Item>, i64), StoreError> {
        let (rows, total): (Vec<ItemRow>, i64) = self
            .packed_page(
                PageQuery {
                    list_sql: &format!("{ITEM_SELECT} WHERE {condition} ORDER BY i.sort_key, i.id"),
                    count_sql,
                    args,
                    limit,
                    offset,
                },
                ITEM_COLS,
                "c.sort_key, c.id",
            )
            .await?;
        let items = rows.into_iter().map(Item::try_from);
        let items = self.with_delivery(items.collect::<Result<_, _>>()?).await?;
        Ok((items, total))
    }

    /// The synced items' `delivered_to`, from their jobs: the file a file export wrote them
    /// to. A second statement only for a page that holds synced items of such a job; joining
    /// the jobs into every queue page cost PostgreSQL's ready tab 15-35 % of its requests.
    pub(crate) async fn with_delivery(
        &self, mut items: Vec<Item>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut jobs: Vec<i64> = items
            .iter()
            .filter(|i| i.export_status == ItemStatus::Synced)
            .filter_map(|i| i.export_job_id)
            .collect();
        jobs.sort_unstable();
        jobs.dedup();
        if jobs.is_empty() {
            return Ok(items);
        }
        let sql = format!(
            "SELECT id, delivered_to FROM export_jobs WHERE delivered_to IS NOT NULL AND id \
             IN ({})",
            marks(jobs.len(), 1)
        );
        let files: BTreeMap<i64, String> = self
            .pool()
            .fetch_all::<(i64, String)>(AssertSqlSafe(sql), jobs.into_iter().map(Arg::from))
            .await?
            .into_iter()
            .collect();
        for i in items
            .iter_mut()
            .filter(|i| i.export_status == ItemStatus::Synced)
        {
            // The job's file holds only the rows it wrote: a row it refused never went there.
            i.delivered_to = i.export_job_id.and_then(|j| files.get(&j).cloned());
        }
        Ok(items)
    }

    /// How many items each filter holds, for the filter tabs.
    pub async fn item_counts(&self, company: i64) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = self
            .pool()
            .fetch_all(
                "SELECT status, n FROM erp_item_counts WHERE company_id = $1 AND n <> 0",
                [company.into()],
            )
            .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn item(&self, company: i64, id: i64) -> Result<Item, StoreError> {
        let sql = format!("{ITEM_SELECT} WHERE i.company_id = $1 AND i.id = $2");
        let row: Option<ItemRow> = self
            .pool()
            .fetch_optional(AssertSqlSafe(sql), [company.into(), id.into()])
            .await?;
        let item = row.ok_or(StoreError::NotFound)?.try_into()?;
        let mut one = self.with_delivery(vec![item]).await?;
        Ok(one.remove(0))
    }

    /// Saves the approver's GL choice on a ready or failed item (`Some(None)` clears it).
    pub async fn set_item_gl(
        &self, company: i64, actor: i64, id: i64, income: Option<Option<String>>,
        expense: Option<Option<String>>,
    ) -> Result<Item, StoreError> {
        let (income, expense) = (&income, &expense);
        self.write(|tx| {
            Box::pin(async move {
                // The row as it is now, held: a field the patch leaves out keeps its value even
                // when another approver's patch of the other field committed meanwhile (both
                // were written back from a read made before either).
                let lock = if tx.postgres() { " FOR UPDATE" } else { "" };
                let sql = format!(
                    "SELECT status, gl_income_account, gl_expense_account FROM erp_items \
                     WHERE company_id = $1 AND id = $2{lock}"
                );
                let (status, was_income, was_expense): (String, Option<String>, Option<String>) =
                    tx.fetch_optional(AssertSqlSafe(sql), [company.into(), id.into()])
                        .await?
                        .ok_or(StoreError::NotFound)?;
                if ![ItemStatus::Ready, ItemStatus::Failed]
                    .map(ItemStatus::as_str)
                    .contains(&status.as_str())
                {
                    return Err(StoreError::Conflict(format!(
                        "the item is {status}; GL accounts can change only before export"
                    )));
                }
                let income = income.clone().unwrap_or(was_income.clone());
                let expense = expense.clone().unwrap_or(was_expense.clone());
                tx.execute(
                    "UPDATE erp_items SET gl_income_account = $3, gl_expense_account = $4 \
                     WHERE company_id = $1 AND id = $2",
                    [
                        company.into(),
                        id.into(),
                        (&income).into(),
                        (&expense).into(),
                    ],
                )
                .await?;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "erp_item.gl_accounts_set",
                    ("erp_item", id),
                    Some(json!({"gl_income_account": was_income,
                        "gl_expense_account": was_expense})),
                    Some(json!({"gl_income_account": income, "gl_expense_account": expense})),
                )
                .await
            })
        })
        .await?;
        self.item(company, id).await
    }

    /// Accepts ready items (`from = Ready`) or retries failed ones (`from = Failed`): one
    /// durable export job is queued in the same transaction that moves them to exporting.
    pub async fn start_export(
        &self, company: i64, actor: i64, sel: Selection<'_>, from: ItemStatus,
        income_required: bool, defaults: &GlDefaults,
    ) -> Result<(i64, i64), QueueError> {
        // The code state whose open item is `from`, and the domain's event for taking it.
        let (code_from, event, action) = match from {
            ItemStatus::Failed => (SyncState::Failed, Event::Retried, "cost_code.retried"),
            _ => (SyncState::Pending, Event::Exported, "cost_code.exported"),
        };
        if ItemStatus::open_for(code_from) != Some(from) {
            return Err(StoreError::Conflict(format!("{from} items cannot be exported")).into());
        }
        let code_to = code_from
            .apply(event)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let exporting = ItemStatus::open_for(code_to).unwrap_or(ItemStatus::Exporting);
        let ts = now();
        let sel = &sel;
        let (job, count) = self
            .write(|tx| {
                Box::pin(async move {
                    lock_erp_list(tx, company).await?;
                    let income_required = income_required && defaults.income.is_none();
                    let (ids, count) = match sel {
                        Selection::All | Selection::AllAsSeen(_) => (
                            Vec::new(),
                            count_all(tx, company, from, income_required).await?,
                        ),
                        Selection::Ids(_) => {
                            let ids =
                                select_items(tx, company, sel, &[from], income_required).await?;
                            let n = ids.len();
                            (ids, n)
                        }
                    };
                    // Judged under the list's lock, so nothing is sent or taken between the
                    // judgement and the move: an export cannot be taken back.
                    if let Selection::AllAsSeen(seen) = sel {
                        let now = Seen {
                            ready: count as i64,
                            latest_submission: tx
                                .scalar(LATEST_SUBMISSION, [company.into()])
                                .await?,
                        };
                        if now != *seen {
                            return Err(QueueError::Changed(now.ready));
                        }
                    }
                    tx.hold_triggers(company, count).await?;
                    // "All" is one statement however many rows wait; a selection goes in bounded
                    // chunks.
                    let chunks: Vec<&[i64]> = match sel {
                        Selection::All | Selection::AllAsSeen(_) => vec![&[]],
                        Selection::Ids(_) => ids.chunks(ID_CHUNK).collect(),
                    };
                    let in_chunk = |chunk: &[i64], first: usize| {
                        if chunk.is_empty() {
                            String::new()
                        } else {
                            format!(" AND id IN ({})", marks(chunk.len(), first))
                        }
                    };
                    let ids_of =
                        |chunk: &[i64]| chunk.iter().map(|&id| Arg::from(id)).collect::<Vec<_>>();
                    // Codes before items: the lock order of `Db::write`.
                    for chunk in &chunks {
                        let sql = format!(
                            "UPDATE cost_codes SET sync_status = $1, erp_message = NULL, \
                             refused_by = NULL, updated_at = $2 WHERE id IN (SELECT cost_code_id FROM \
                             erp_items WHERE company_id = $3 AND status = $4 AND NOT superseded{})",
                            in_chunk(chunk, 5)
                        );
                        let args = [
                            code_to.as_str().into(),
                            ts.into(),
                            company.into(),
                            from.as_str().into(),
                        ];
                        tx.execute(AssertSqlSafe(sql), args.into_iter().chain(ids_of(chunk)))
                            .await?;
                    }
                    let job: i64 = tx
                        .scalar(
                            "INSERT INTO export_jobs (company_id, created_by, status, \
                             run_after, created_at) VALUES ($1, $2, $4, $3, $3) \
                             RETURNING id",
                            [
                                company.into(),
                                actor.into(),
                                ts.into(),
                                JobState::Queued.as_str().into(),
                            ],
                        )
                        .await?;
                    let mut moved = 0u64;
                    // Checked again as the rows move: a GL pick takes no list lock, so on
                    // PostgreSQL an approver clearing an income account could commit between
                    // the check above and this statement, which then waits for that row and
                    // skips it (the count below tells).
                    let has_income = if income_required {
                        " AND gl_income_account IS NOT NULL"
                    } else {
                        ""
                    };
                    for chunk in &chunks {
                        // The default GL accounts fill empty choices in the same pass: each row is
                        // written once.
                        let sql = format!(
                            "UPDATE erp_items SET status = '{exporting}', export_job_id \
                             = $1, decided_by = $2, decided_at = $3, erp_message = NULL, \
                             refused_by = NULL, gl_income_account = COALESCE(gl_income_account, $6), \
                             gl_expense_account = COALESCE(gl_expense_account, $7) WHERE \
                             company_id = $4 AND status = $5 AND NOT superseded{has_income}{}",
                            in_chunk(chunk, 8)
                        );
                        let args = [
                            job.into(),
                            actor.into(),
                            ts.into(),
                            company.into(),
                            from.as_str().into(),
                            (&defaults.income).into(),
                            (&defaults.expense).into(),
                        ];
                        moved += tx
                            .execute(AssertSqlSafe(sql), args.into_iter().chain(ids_of(chunk)))
                            .await?;
                    }
                    if moved != count as u64 {
                        // The worker records outcomes without the list lock (its exporting rows are
                        // its own), so a failure it records meanwhile can join "all failed"; roll
                        // back rather than retry rows the approver did not see.
                        return Err(QueueError::Store(StoreError::Conflict(
                            "some items changed meanwhile; reload and try again".into(),
                        )));
                    }
                    tx.execute(
                        "INSERT INTO audit_events (company_id, at, actor_id, action, \
                         entity_type, entity_id, before, after) SELECT $1, $2, $3, \
                         $4, 'cost_code', i.cost_code_id, '{\"sync_status\":\"' || \
                         $5 || '\"}', '{\"sync_status\":\"' || $6 || \
                         '\",\"export_job_id\":' || $7 || '}' FROM erp_items i WHERE \
                         i.export_job_id = $8",
                        [
                            company.into(),
                            ts.into(),
                            actor.into(),
                            action.into(),
                            code_from.as_str().into(),
                            code_to.as_str().into(),
                            job.to_string().into(),
                            job.into(),
                        ],
                    )
                    .await?;
                    audit::record(
                        tx,
                        company,
                        Some(actor),
                        "export_job.queued",
                        ("export_job", job),
                        None,
                        Some(json!({"item_count": count})),
                    )
                    .await?;
                    Ok((job, count))
                })
            })
            .await?;
        self.refresh_stats(count).await;
        Ok((job, count as i64))
    }

    /// Rejects ready (or named failed) items with a reason the admin sees on each code.
    pub async fn reject_items(
        &self, company: i64, actor: i64, sel: Selection<'_>, reason: &str,
    ) -> Result<i64, QueueError> {
        let from: &[ItemStatus] = match sel {
            Selection::All | Selection::AllAsSeen(_) => &[ItemStatus::Ready],
            Selection::Ids(_) => &[ItemStatus::Ready, ItemStatus::Failed],
        };
        let open = sql_in(from.iter().map(|s| s.as_str()));
        let open = open.as_str();
        let rejected = ItemStatus::Rejected;
        // Pending and failed codes both go where the state machine sends a rejection.
        let to = SyncState::Pending
            .apply(Event::Rejected)
            .map_err(|e| StoreError::Conflict(e.to_string()))?
            .as_str();
        let ts = now();
        let sel = &sel;
        self.write(|tx| {
            Box::pin(async move {
                // Rejected codes rejoin the unsynced set: a send must wait for this, and a page
                // drawn before it is stale.
                let version = lock_erp_list(tx, company).await?;
                let ids = select_items(tx, company, sel, from, false).await?;
                let (list, version) = version.ok_or(StoreError::NotFound)?;
                tx.hold_triggers(company, ids.len()).await?;
                let after = json!({"sync_status": to, "rejection_reason": reason}).to_string();
                for chunk in ids.chunks(ID_CHUNK) {
                    let list_marks = marks(chunk.len(), 5);
                    let ids_of = || chunk.iter().map(|&id| Arg::from(id));
                    let sql = format!(
                        "INSERT INTO audit_events (company_id, at, actor_id, action, \
                         entity_type, entity_id, before, after) SELECT $1, $2, $3, \
                         'cost_code.rejected', 'cost_code', c.id, \
                         '{{\"sync_status\":\"' || c.sync_status || '\"}}', $4 FROM \
                         cost_codes c JOIN erp_items i ON i.cost_code_id = c.id \
                         WHERE i.id IN ({list_marks})"
                    );
                    let args = [company.into(), ts.into(), actor.into(), (&after).into()];
                    tx.execute(AssertSqlSafe(sql), args.into_iter().chain(ids_of()))
                        .await?;
                    let sql = format!(
                        "UPDATE cost_codes SET sync_status = '{to}', \
                         rejection_reason = $1, status_before_send = NULL, \
                         updated_at = $2, changed_version = $4 WHERE id IN (SELECT \
                         cost_code_id FROM erp_items WHERE company_id = $3 AND \
                         status IN {open} AND id IN ({list_marks}))"
                    );
                    let args = [reason.into(), ts.into(), company.into(), version.into()];
                    tx.execute(AssertSqlSafe(sql), args.into_iter().chain(ids_of()))
                        .await?;
                    let sql = format!(
                        "UPDATE erp_items SET status = '{rejected}', \
                         rejection_reason = $1, decided_by = $2, decided_at = $3 \
                         WHERE company_id = $4 AND status IN {open} AND id IN \
                         ({list_marks})"
                    );
                    let args = [reason.into(), actor.into(), ts.into(), company.into()];
                    let n = tx
                        .execute(AssertSqlSafe(sql), args.into_iter().chain(ids_of()))
                        .await?;
                    if n != chunk.len() as u64 {
                        return Err(QueueError::Store(StoreError::Conflict(
                            "some items changed meanwhile; reload and try again".into(),
                        )));
                    }
                }
                unsynced_changed(tx, list, version).await?;
                let sql = format!(
                    "c.id IN (SELECT cost_code_id FROM erp_items WHERE company_id = \
                     $8 AND status = '{rejected}' AND decided_by = $9 AND decided_at = $10)"
                );
                events::code_events(
                    tx,
                    company,
                    EventType::CodeRejected,
                    About::default(),
                    &sql,
                    [company.into(), actor.into(), ts.into()],
                )
                .await?;
                // Notifications (docs/rules.md §6): each sender hears of it in this same
                // transaction.
                outbox::notify_codes_rejected(tx, company, actor, ts, reason).await?;
                Ok(ids.len() as i64)
            })
        })
        .await
    }

    /// How many items stand in each status, of the export job or submission whose id is `id`
    /// in `column`.
    pub(crate) async fn counts_by_status(
        &self, column: &'static str, id: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let sql =
            format!("SELECT status, COUNT(*) FROM erp_items WHERE {column} = $1 GROUP BY status");
        self.pool().fetch_all(AssertSqlSafe(sql), [id.into()]).await
    }

    pub async fn job_status(&self, company: i64, id: i64) -> Result<JobStatus, StoreError> {
        #[derive(sqlx::FromRow)]
        struct JobRow {
            status: String,
            attempts: i64,
            last_error: Option<String>,
            delivered_to: Option<String>,
            delivered_for: Option<String>,
            created_at: OffsetDateTime,
            finished_at: Option<OffsetDateTime>,
            done_synced: Option<i64>,
            done_failed: Option<i64>,
        }
        let job: JobRow = self
            .pool()
            .fetch_optional(
                "SELECT status, attempts, last_error, delivered_to, delivered_for, \
                 created_at, finished_at, done_synced, done_failed FROM export_jobs WHERE \
                 company_id = $1 AND id = $2",
                [company.into(), id.into()],
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let status = JobState::try_from(job.status).map_err(StoreError::decode)?;
        let c = match (job.done_synced, job.done_failed) {
            // A finished job says what it finished with, though a retry has moved items on
            // since.
            (Some(synced), Some(failed)) => JobCounts {
                synced,
                failed,
                exporting: 0,
            },
            _ => self.live_job_counts(id).await?,
        };
        Ok(JobStatus {
            id,
            status,
            counts: c,
            attempts: job.attempts,
            last_error: job.last_error,
            delivered_to: job.delivered_to,
            delivered_for: job.delivered_for,
            created_at: job.created_at,
            finished_at: job.finished_at,
        })
    }

    /// A job's counts as its items stand now, kept by triggers (migration 202612031): a poll
    /// reads a few rows, not the job's items.
    async fn live_job_counts(&self, id: i64) -> Result<JobCounts, StoreError> {
        let counts: Vec<(String, i64)> = self
            .pool()
            .fetch_all(
                "SELECT status, n FROM job_item_counts WHERE export_job_id = $1 AND n <> 0",
                [id.into()],
            )
            .await?;
        let mut c = JobCounts::default();
        for (s, n) in counts {
            match ItemStatus::parse(&s).map_err(StoreError::decode)? {
                ItemStatus::Synced => c.synced = n,
                ItemStatus::Failed => c.failed = n,
                ItemStatus::Exporting => c.exporting = n,
                // A job's items are only ever exporting, then synced or failed.
                ItemStatus::Ready | ItemStatus::Rejected | ItemStatus::Retrieved => {}
            }
        }
        Ok(c)
    }
}
