//! The ERP side of a company: its connection, Send to ERP, and the ERP Integrations queue
//! (items the approver exports, rejects or retries).
use crate::codes::CodeList;
use crate::{Db, StoreError, now};
use costbridge_domain::profile::InvalidCode;
use costbridge_domain::send::{self, SendBlock, SendContext};
use costbridge_domain::sync::{ConfirmedValues, Event, FieldChange, SyncState};
use costbridge_domain::{ErpProfile, Permissions};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub const ERP_LIST_NAME: &str = "ERP Standard Cost Codes";
/// SQLite allows 32,766 bound values; chunks of ids stay far below it.
const ID_CHUNK: usize = 500;

#[derive(Debug, Clone)]
pub struct StoredConnection {
    pub profile: String,
    pub connector: serde_json::Value,
    pub erp_list_id: i64,
}

/// Why a send did not happen: the domain's reason, and for `invalid_codes` the codes.
#[derive(Debug)]
pub enum SendError {
    Blocked(SendBlock, Vec<InvalidCode>),
    Store(StoreError),
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        SendError::Store(e)
    }
}
impl From<sqlx::Error> for SendError {
    fn from(e: sqlx::Error) -> Self {
        SendError::Store(e.into())
    }
}

/// What the Send to ERP button shows.
#[derive(Debug, Serialize)]
pub struct SendStatus {
    pub enabled: bool,
    pub label: &'static str,
    pub reason_code: Option<&'static str>,
    pub reason: Option<String>,
    pub unsynced_count: i64,
    pub list_version: i64,
    /// The codes behind `invalid_codes`, so a client can show them without another call.
    pub invalid_codes: Vec<InvalidCode>,
}

/// Who asks to send, and under which ERP rules.
pub struct Sender<'a> {
    pub user_id: i64,
    pub permissions: &'a Permissions,
    pub profile: Option<&'a ErpProfile>,
    pub delimiter: char,
}

#[derive(Debug, Serialize)]
pub struct Person {
    pub id: i64,
    pub email: String,
}

#[derive(Debug, Serialize)]
pub struct Item {
    pub id: i64,
    pub cost_code_id: i64,
    pub submission_id: i64,
    pub full_code: String,
    pub description: String,
    pub change: &'static str,
    pub diff: BTreeMap<&'static str, FieldChange>,
    pub sent_by: Person,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    pub gl_income_account: Option<String>,
    pub gl_expense_account: Option<String>,
    pub export_status: String,
    pub erp_message: Option<String>,
    /// Something the approver should know before exporting (e.g. a description the ERP will cut).
    pub note: Option<String>,
    pub decided_by: Option<Person>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub decided_at: Option<OffsetDateTime>,
    pub rejection_reason: Option<String>,
    pub export_job_id: Option<i64>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ItemRow {
    id: i64,
    cost_code_id: i64,
    submission_id: i64,
    code: String,
    full_code: String,
    description: String,
    active: bool,
    from_code: Option<String>,
    from_full_code: Option<String>,
    from_description: Option<String>,
    from_active: Option<bool>,
    sent_by: i64,
    sent_by_email: String,
    sent_at: OffsetDateTime,
    gl_income_account: Option<String>,
    gl_expense_account: Option<String>,
    status: String,
    erp_message: Option<String>,
    note: Option<String>,
    decided_by: Option<i64>,
    decided_by_email: Option<String>,
    decided_at: Option<OffsetDateTime>,
    rejection_reason: Option<String>,
    export_job_id: Option<i64>,
}

pub(crate) const ITEM_SELECT: &str = "SELECT i.id, i.cost_code_id, i.submission_id, i.code, i.full_code, i.description, i.active, \
    i.from_code, i.from_full_code, i.from_description, i.from_active, i.sent_by, su.email AS sent_by_email, i.sent_at, \
    i.gl_income_account, i.gl_expense_account, i.status, i.erp_message, i.note, i.decided_by, \
    du.email AS decided_by_email, i.decided_at, i.rejection_reason, i.export_job_id \
    FROM erp_items i JOIN users su ON su.id = i.sent_by LEFT JOIN users du ON du.id = i.decided_by";

impl From<ItemRow> for Item {
    fn from(r: ItemRow) -> Self {
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
        Item {
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
            },
            sent_at: r.sent_at,
            gl_income_account: r.gl_income_account,
            gl_expense_account: r.gl_expense_account,
            export_status: r.status,
            erp_message: r.erp_message,
            note: r.note,
            decided_by: r
                .decided_by
                .zip(r.decided_by_email)
                .map(|(id, email)| Person { id, email }),
            decided_at: r.decided_at,
            rejection_reason: r.rejection_reason,
            export_job_id: r.export_job_id,
        }
    }
}

/// One item that cannot take part in an export, reject or retry, and why.
#[derive(Debug, Serialize)]
pub struct ItemProblem {
    pub id: i64,
    pub full_code: Option<String>,
    pub errors: Vec<String>,
}

#[derive(Debug)]
pub enum QueueError {
    Items(Vec<ItemProblem>),
    Store(StoreError),
}
impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        QueueError::Store(e)
    }
}
impl From<sqlx::Error> for QueueError {
    fn from(e: sqlx::Error) -> Self {
        QueueError::Store(e.into())
    }
}

#[derive(Debug, Serialize)]
pub struct JobStatus {
    pub id: i64,
    pub status: String,
    pub counts: JobCounts,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

#[derive(Debug, Default, Serialize)]
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

/// Which items an approver acts on: the ones named, or every item in the given state.
pub enum Selection<'a> {
    Ids(&'a [i64]),
    All,
}

const UNSYNCED: &str = "('new', 'modified', 'rejected')";

impl Db {
    pub async fn erp_connection(
        &self,
        company: i64,
    ) -> Result<Option<StoredConnection>, StoreError> {
        let row: Option<(String, String, Option<i64>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT e.profile, e.connector, (SELECT id FROM cost_code_lists WHERE company_id = e.company_id AND is_erp_list) \
             FROM erp_connections e WHERE e.company_id = $1")
            .bind(company).fetch_optional(p).await?);
        Ok(row.map(|(profile, connector, list)| StoredConnection {
            profile,
            connector: serde_json::from_str(&connector).unwrap_or_default(),
            erp_list_id: list.unwrap_or_default(),
        }))
    }

    /// Saves the connection and makes sure the company has its one ERP list. `masked` is what
    /// the audit log records (secrets already replaced).
    pub async fn put_erp_connection(
        &self,
        company: i64,
        actor: i64,
        profile: &str,
        connector: &serde_json::Value,
        masked: &serde_json::Value,
    ) -> Result<StoredConnection, StoreError> {
        write_tx!(self, tx => {
            let before: Option<String> = sqlx::query_scalar("SELECT profile FROM erp_connections WHERE company_id = $1")
                .bind(company).fetch_optional(&mut *tx).await?;
            sqlx::query("INSERT INTO erp_connections (company_id, profile, connector, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (company_id) DO UPDATE SET profile = excluded.profile, connector = excluded.connector, updated_at = excluded.updated_at")
                .bind(company).bind(profile).bind(connector.to_string()).bind(now()).execute(&mut *tx).await?;
            let list: Option<i64> = sqlx::query_scalar("SELECT id FROM cost_code_lists WHERE company_id = $1 AND is_erp_list")
                .bind(company).fetch_optional(&mut *tx).await?;
            if list.is_none() {
                let id: Result<i64, sqlx::Error> = sqlx::query_scalar(
                    "INSERT INTO cost_code_lists (company_id, name, is_erp_list, created_at) VALUES ($1, $2, TRUE, $3) RETURNING id")
                    .bind(company).bind(ERP_LIST_NAME).bind(now()).fetch_one(&mut *tx).await;
                let id = match id.map_err(StoreError::from) {
                    Err(e) if e.is_unique_violation() => return Err(StoreError::Conflict(format!(
                        "a list named '{ERP_LIST_NAME}' exists but is not the ERP list; rename it first"))),
                    other => other?,
                };
                audit!(tx, company, Some(actor), "cost_code_list.created", "cost_code_list", id, None,
                    Some(json!({"name": ERP_LIST_NAME, "is_erp_list": true})));
            }
            audit!(tx, company, Some(actor), "erp_connection.saved", "company", company,
                before.map(|p| json!({"profile": p})), Some(json!({"profile": profile, "connector": masked})));
        });
        self.erp_connection(company)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn unsynced(&self, list: i64) -> Result<Vec<(i64, String, String)>, StoreError> {
        let sql = format!(
            "SELECT id, full_code, description FROM cost_codes WHERE list_id = $1 AND sync_status IN {UNSYNCED}"
        );
        Ok(
            with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(list).fetch_all(p).await?),
        )
    }

    /// The Send to ERP button for one list, as the domain rule decides it. `seen_version` is
    /// the list version the client's page shows, if it has one: a different current version
    /// makes the answer `stale_page`.
    pub async fn send_status(
        &self,
        company: i64,
        list: i64,
        who: &Sender<'_>,
        seen_version: Option<i64>,
    ) -> Result<SendStatus, StoreError> {
        let l: CodeList = self.list(company, list).await?;
        let unsynced = self.unsynced(list).await?;
        let invalid = match who.profile {
            Some(p) if l.is_erp_list => p.invalid_codes(
                unsynced
                    .iter()
                    .map(|(i, f, d)| (*i, f.as_str(), d.as_str())),
                who.delimiter,
            ),
            _ => Vec::new(),
        };
        let verdict = send::check(&SendContext {
            permissions: who.permissions,
            profile: who.profile,
            is_erp_list: l.is_erp_list,
            unsynced_count: unsynced.len() as u64,
            invalid_count: invalid.len(),
            version_matches: seen_version.map(|v| v == l.version),
        });
        let (reason_code, reason) = match &verdict {
            Ok(()) => (None, None),
            Err(b) => (Some(b.reason.code()), Some(b.message.clone())),
        };
        Ok(SendStatus {
            enabled: verdict.is_ok(),
            label: send::label(l.sent_once),
            reason_code,
            reason,
            unsynced_count: unsynced.len() as i64,
            list_version: l.version,
            invalid_codes: invalid,
        })
    }

    /// Sends every unsynced code of the list as one submission, or nothing at all.
    pub async fn send_to_erp(
        &self,
        company: i64,
        list: i64,
        who: &Sender<'_>,
        version: i64,
    ) -> Result<(i64, i64), SendError> {
        let out = write_tx!(self, tx => {
            // Taking the list's row first serialises concurrent senders: the second one sees a
            // new version and is told its page is stale instead of sending twice.
            let locked: Option<(i64, bool)> = sqlx::query_as(
                "UPDATE cost_code_lists SET version = version + 1, sent_once = TRUE WHERE id = $1 AND company_id = $2 \
                 RETURNING version - 1, is_erp_list")
                .bind(list).bind(company).fetch_optional(&mut *tx).await?;
            let (current, is_erp_list) = locked.ok_or(StoreError::NotFound)?;
            let sql = format!("SELECT id, full_code, description FROM cost_codes WHERE list_id = $1 AND sync_status IN {UNSYNCED}");
            let unsynced: Vec<(i64, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(list).fetch_all(&mut *tx).await?;
            let invalid = match who.profile {
                Some(p) if is_erp_list => p.invalid_codes(unsynced.iter().map(|(i, f, d)| (*i, f.as_str(), d.as_str())), who.delimiter),
                _ => Vec::new(),
            };
            if let Err(block) = send::check(&SendContext {
                permissions: who.permissions,
                profile: who.profile,
                is_erp_list,
                unsynced_count: unsynced.len() as u64,
                invalid_count: invalid.len(),
                version_matches: Some(current == version),
            }) {
                return Err(SendError::Blocked(block, invalid));
            }
            let ts = now();
            let count = unsynced.len() as i64;
            let sub: i64 = sqlx::query_scalar(
                "INSERT INTO submissions (company_id, list_id, sent_by, sent_at, code_count) VALUES ($1, $2, $3, $4, $5) RETURNING id")
                .bind(company).bind(list).bind(who.user_id).bind(ts).bind(count).fetch_one(&mut *tx).await?;
            let (limit, note) = match who.profile.and_then(|p| p.truncation_limit().map(|n| (p, n))) {
                Some((p, n)) => (n as i64, Some(format!("{} keeps {n} characters of the description; the rest is cut", p.name))),
                None => (i64::MAX, None),
            };
            // A snapshot of exactly what is sent, and the last confirmed values for the diff.
            let sql = format!(
                "INSERT INTO erp_items (company_id, submission_id, cost_code_id, change, code, full_code, description, active, tier, \
                 sort_key, parent_full_code, from_code, from_full_code, from_description, from_active, origin_id, status, note, \
                 sent_by, sent_at) \
                 SELECT c.company_id, $1, c.id, CASE WHEN c.confirmed_full_code IS NULL THEN 'new' ELSE 'modified' END, c.code, \
                 c.full_code, c.description, c.active, c.tier, c.sort_key, p.full_code, c.confirmed_code, c.confirmed_full_code, \
                 c.confirmed_description, c.confirmed_active, c.origin_id, 'ready', \
                 CASE WHEN length(c.description) > $3 THEN $4 END, $5, $6 \
                 FROM cost_codes c LEFT JOIN cost_codes p ON p.id = c.parent_id WHERE c.list_id = $2 AND c.sync_status IN {UNSYNCED}");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(sub).bind(list).bind(limit).bind(note).bind(who.user_id).bind(ts)
                .execute(&mut *tx).await?;
            let sql = format!(
                "INSERT INTO audit_events (company_id, at, actor_id, action, entity_type, entity_id, before, after) \
                 SELECT $1, $2, $3, 'cost_code.sent', 'cost_code', c.id, '{{\"sync_status\":\"' || c.sync_status || '\"}}', \
                 '{{\"sync_status\":\"pending\",\"submission_id\":' || $4 || '}}' \
                 FROM cost_codes c WHERE c.list_id = $5 AND c.sync_status IN {UNSYNCED}");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(company).bind(ts).bind(who.user_id).bind(sub.to_string()).bind(list)
                .execute(&mut *tx).await?;
            let sql = format!(
                "UPDATE cost_codes SET status_before_send = sync_status, sync_status = 'pending', updated_at = $2 \
                 WHERE list_id = $1 AND sync_status IN {UNSYNCED}");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(list).bind(ts).execute(&mut *tx).await?;
            // Notifications (issue #5): the approvers hear of it in this same transaction.
            notify_codes_sent!(tx, company, sub, who.user_id);
            audit!(tx, company, Some(who.user_id), "submission.created", "submission", sub, None,
                Some(json!({"list_id": list, "code_count": count})));
            (sub, count)
        });
        self.refresh_stats(out.1 as usize).await?;
        Ok(out)
    }

    /// The admin takes a pending code back before the approver decides.
    pub async fn retrieve_code(
        &self,
        company: i64,
        list: i64,
        actor: i64,
        id: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, tx => {
            let code = lock_code!(tx, company, list, id);
            let before: Option<String> = sqlx::query_scalar("SELECT status_before_send FROM cost_codes WHERE id = $1")
                .bind(id).fetch_one(&mut *tx).await?;
            let before = before.as_deref().and_then(SyncState::parse).unwrap_or(SyncState::New);
            let next = code.state().apply(Event::Retrieved { before })
                .map_err(|_| StoreError::Conflict(format!("'{}' is {}; only pending codes can be retrieved", code.full_code, code.sync_status)))?;
            sqlx::query("UPDATE cost_codes SET sync_status = $2, status_before_send = NULL, updated_at = $3 WHERE id = $1")
                .bind(id).bind(next.as_str()).bind(now()).execute(&mut *tx).await?;
            sqlx::query("UPDATE erp_items SET status = 'retrieved', decided_by = $2, decided_at = $3 WHERE cost_code_id = $1 AND status = 'ready'")
                .bind(id).bind(actor).bind(now()).execute(&mut *tx).await?;
            audit!(tx, company, Some(actor), "cost_code.retrieved", "cost_code", id,
                Some(json!({"sync_status": "pending"})), Some(json!({"sync_status": next.as_str()})));
        });
        Ok(())
    }

    pub async fn items(
        &self,
        company: i64,
        status: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Item>, i64), StoreError> {
        let sql = format!(
            "{ITEM_SELECT} WHERE i.company_id = $1 AND i.status = $2 ORDER BY i.sort_key, i.id LIMIT $3 OFFSET $4"
        );
        let (rows, total): (Vec<ItemRow>, i64) = with_pool!(self, p => {
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(company).bind(status).bind(limit).bind(offset).fetch_all(p).await?;
            let total = sqlx::query_scalar("SELECT COUNT(*) FROM erp_items WHERE company_id = $1 AND status = $2")
                .bind(company).bind(status).fetch_one(p).await?;
            (rows, total)
        });
        Ok((rows.into_iter().map(Item::from).collect(), total))
    }

    /// How many items each filter holds, for the filter tabs.
    pub async fn item_counts(&self, company: i64) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows: Vec<(String, i64)> = with_pool!(self, p => sqlx::query_as(
            "SELECT status, COUNT(*) FROM erp_items WHERE company_id = $1 GROUP BY status")
            .bind(company).fetch_all(p).await?);
        Ok(rows.into_iter().collect())
    }

    pub async fn item(&self, company: i64, id: i64) -> Result<Item, StoreError> {
        let sql = format!("{ITEM_SELECT} WHERE i.company_id = $1 AND i.id = $2");
        let row: Option<ItemRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(company).bind(id).fetch_optional(p).await?);
        row.map(Item::from).ok_or(StoreError::NotFound)
    }

    /// Saves the approver's GL choice on a ready or failed item (`Some(None)` clears it).
    pub async fn set_item_gl(
        &self,
        company: i64,
        actor: i64,
        id: i64,
        income: Option<Option<String>>,
        expense: Option<Option<String>>,
    ) -> Result<Item, StoreError> {
        let before = self.item(company, id).await?;
        if !matches!(before.export_status.as_str(), "ready" | "failed") {
            return Err(StoreError::Conflict(format!(
                "the item is {}; GL accounts can change only before export",
                before.export_status
            )));
        }
        let income = income.unwrap_or(before.gl_income_account.clone());
        let expense = expense.unwrap_or(before.gl_expense_account.clone());
        write_tx!(self, tx => {
            let n = sqlx::query("UPDATE erp_items SET gl_income_account = $3, gl_expense_account = $4 \
                 WHERE company_id = $1 AND id = $2 AND status IN ('ready', 'failed')")
                .bind(company).bind(id).bind(&income).bind(&expense).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict("the item changed meanwhile; reload it".into()));
            }
            audit!(tx, company, Some(actor), "erp_item.gl_accounts_set", "erp_item", id,
                Some(json!({"gl_income_account": before.gl_income_account, "gl_expense_account": before.gl_expense_account})),
                Some(json!({"gl_income_account": income, "gl_expense_account": expense})));
        });
        self.item(company, id).await
    }

    /// Checks the selected items are in `from` state (and carry an income account when the ERP
    /// requires one); returns their ids.
    async fn select_items(
        &self,
        company: i64,
        sel: &Selection<'_>,
        from: &[&str],
        income_required: bool,
    ) -> Result<Vec<i64>, QueueError> {
        // `income_required` is false when the caller supplies a default income account.
        let rows: Vec<(i64, String, String, Option<String>)> = match sel {
            Selection::All => {
                let sql = format!(
                    "SELECT id, full_code, status, gl_income_account FROM erp_items WHERE company_id = $1 AND status = '{}' ORDER BY id",
                    from[0]
                );
                with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(company).fetch_all(p).await?)
            }
            Selection::Ids(ids) => {
                let mut rows = Vec::with_capacity(ids.len());
                for chunk in ids.chunks(ID_CHUNK) {
                    let marks: Vec<String> =
                        (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
                    let sql = format!(
                        "SELECT id, full_code, status, gl_income_account FROM erp_items WHERE company_id = $1 AND id IN ({})",
                        marks.join(", ")
                    );
                    let part: Vec<(i64, String, String, Option<String>)> = with_pool!(self, p => {
                        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(company);
                        for id in chunk { q = q.bind(*id); }
                        q.fetch_all(p).await?
                    });
                    rows.extend(part);
                }
                rows
            }
        };
        let mut problems = Vec::new();
        if let Selection::Ids(ids) = sel {
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
        }
        for (id, full_code, status, income) in &rows {
            let mut errors = Vec::new();
            if !from.contains(&status.as_str()) {
                errors.push(format!(
                    "is {status}; only {} items can take this action",
                    from.join(" or ")
                ));
            }
            if income_required && income.is_none() {
                errors.push("needs a GL income account (the ERP requires one)".into());
            }
            if !errors.is_empty() {
                problems.push(ItemProblem {
                    id: *id,
                    full_code: Some(full_code.clone()),
                    errors,
                });
            }
        }
        if !problems.is_empty() {
            return Err(QueueError::Items(problems));
        }
        if rows.is_empty() {
            return Err(QueueError::Items(vec![]));
        }
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Accepts ready items (`from = "ready"`) or retries failed ones (`from = "failed"`): one
    /// durable export job is queued in the same transaction that moves them to exporting.
    pub async fn start_export(
        &self,
        company: i64,
        actor: i64,
        sel: Selection<'_>,
        from: &'static str,
        income_required: bool,
        defaults: &GlDefaults,
    ) -> Result<(i64, i64), QueueError> {
        let ids = self
            .select_items(
                company,
                &sel,
                &[from],
                income_required && defaults.income.is_none(),
            )
            .await?;
        let event = if from == "failed" {
            Event::Retried
        } else {
            Event::Exported
        };
        let code_from = if from == "failed" {
            SyncState::Failed
        } else {
            SyncState::Pending
        };
        let code_to = code_from
            .apply(event)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let ts = now();
        let job = write_tx!(self, tx => {
            let job: i64 = sqlx::query_scalar(
                "INSERT INTO export_jobs (company_id, created_by, status, run_after, created_at) VALUES ($1, $2, 'queued', $3, $3) RETURNING id")
                .bind(company).bind(actor).bind(ts).fetch_one(&mut *tx).await?;
            let mut moved = 0u64;
            const MOVE: &str = "UPDATE erp_items SET status = 'exporting', export_job_id = $1, decided_by = $2, decided_at = $3, \
                erp_message = NULL WHERE company_id = $4 AND status = $5";
            // "All" is one statement however many rows wait; a selection goes in bounded chunks.
            let chunks: Vec<&[i64]> = match sel { Selection::All => vec![&[]], Selection::Ids(_) => ids.chunks(ID_CHUNK).collect() };
            for chunk in chunks {
                let sql = if chunk.is_empty() {
                    MOVE.to_owned()
                } else {
                    let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 6)).collect();
                    format!("{MOVE} AND id IN ({})", marks.join(", "))
                };
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(job).bind(actor).bind(ts).bind(company).bind(from);
                for id in chunk { q = q.bind(*id); }
                moved += q.execute(&mut *tx).await?.rows_affected();
            }
            if moved != ids.len() as u64 {
                // Another approver acted on some of these rows at the same moment.
                return Err(QueueError::Store(StoreError::Conflict("some items changed meanwhile; reload and try again".into())));
            }
            let sql = "INSERT INTO audit_events (company_id, at, actor_id, action, entity_type, entity_id, before, after) \
                 SELECT $1, $2, $3, $4, 'cost_code', i.cost_code_id, '{\"sync_status\":\"' || $5 || '\"}', \
                 '{\"sync_status\":\"' || $6 || '\",\"export_job_id\":' || $7 || '}' FROM erp_items i WHERE i.export_job_id = $8";
            sqlx::query(sql).bind(company).bind(ts).bind(actor).bind(if from == "failed" { "cost_code.retried" } else { "cost_code.exported" })
                .bind(code_from.as_str()).bind(code_to.as_str()).bind(job.to_string()).bind(job).execute(&mut *tx).await?;
            if defaults.income.is_some() || defaults.expense.is_some() {
                sqlx::query("UPDATE erp_items SET gl_income_account = COALESCE(gl_income_account, $2), \
                     gl_expense_account = COALESCE(gl_expense_account, $3) WHERE export_job_id = $1")
                    .bind(job).bind(&defaults.income).bind(&defaults.expense).execute(&mut *tx).await?;
            }
            sqlx::query("UPDATE cost_codes SET sync_status = $2, erp_message = NULL, updated_at = $3 \
                 WHERE id IN (SELECT cost_code_id FROM erp_items WHERE export_job_id = $1)")
                .bind(job).bind(code_to.as_str()).bind(ts).execute(&mut *tx).await?;
            audit!(tx, company, Some(actor), "export_job.queued", "export_job", job, None, Some(json!({"item_count": ids.len()})));
            job
        });
        self.refresh_stats(ids.len()).await?;
        Ok((job, ids.len() as i64))
    }

    /// Rejects ready (or named failed) items with a reason the admin sees on each code.
    pub async fn reject_items(
        &self,
        company: i64,
        actor: i64,
        sel: Selection<'_>,
        reason: &str,
    ) -> Result<i64, QueueError> {
        let from: &[&str] = match sel {
            Selection::All => &["ready"],
            Selection::Ids(_) => &["ready", "failed"],
        };
        let ids = self.select_items(company, &sel, from, false).await?;
        let ts = now();
        write_tx!(self, tx => {
            for chunk in ids.chunks(ID_CHUNK) {
                let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 5)).collect();
                let list = marks.join(", ");
                let sql = format!(
                    "INSERT INTO audit_events (company_id, at, actor_id, action, entity_type, entity_id, before, after) \
                     SELECT $1, $2, $3, 'cost_code.rejected', 'cost_code', c.id, '{{\"sync_status\":\"' || c.sync_status || '\"}}', \
                     $4 FROM cost_codes c JOIN erp_items i ON i.cost_code_id = c.id WHERE i.id IN ({list})");
                let after = json!({"sync_status": "rejected", "rejection_reason": reason}).to_string();
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(company).bind(ts).bind(actor).bind(after);
                for id in chunk { q = q.bind(*id); }
                q.execute(&mut *tx).await?;
                let sql = format!(
                    "UPDATE cost_codes SET sync_status = 'rejected', rejection_reason = $1, status_before_send = NULL, updated_at = $2 \
                     WHERE id IN (SELECT cost_code_id FROM erp_items WHERE company_id = $3 AND status IN ('ready', 'failed') AND id IN ({}))",
                    (0..chunk.len()).map(|i| format!("${}", i + 4)).collect::<Vec<_>>().join(", "));
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(reason).bind(ts).bind(company);
                for id in chunk { q = q.bind(*id); }
                q.execute(&mut *tx).await?;
                let sql = format!(
                    "UPDATE erp_items SET status = 'rejected', rejection_reason = $1, decided_by = $2, decided_at = $3 \
                     WHERE company_id = $4 AND status IN ('ready', 'failed') AND id IN ({list})");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(reason).bind(actor).bind(ts).bind(company);
                for id in chunk { q = q.bind(*id); }
                let n = q.execute(&mut *tx).await?.rows_affected();
                if n != chunk.len() as u64 {
                    return Err(QueueError::Store(StoreError::Conflict("some items changed meanwhile; reload and try again".into())));
                }
            }
            // Notifications (issue #5): each sender hears of it in this same transaction.
            notify_codes_rejected!(tx, company, actor, ts, reason);
        });
        Ok(ids.len() as i64)
    }

    pub async fn job_status(&self, company: i64, id: i64) -> Result<JobStatus, StoreError> {
        type JobRow = (
            String,
            i64,
            Option<String>,
            OffsetDateTime,
            Option<OffsetDateTime>,
        );
        let (job, counts): (Option<JobRow>, Vec<(String, i64)>) = with_pool!(self, p => {
            let job = sqlx::query_as("SELECT status, attempts, last_error, created_at, finished_at FROM export_jobs WHERE company_id = $1 AND id = $2")
                .bind(company).bind(id).fetch_optional(p).await?;
            let counts = sqlx::query_as("SELECT status, COUNT(*) FROM erp_items WHERE export_job_id = $1 GROUP BY status")
                .bind(id).fetch_all(p).await?;
            (job, counts)
        });
        let (status, attempts, last_error, created_at, finished_at) =
            job.ok_or(StoreError::NotFound)?;
        let mut c = JobCounts::default();
        for (s, n) in counts {
            match s.as_str() {
                "synced" => c.synced = n,
                "failed" => c.failed = n,
                "exporting" => c.exporting = n,
                _ => {}
            }
        }
        Ok(JobStatus {
            id,
            status,
            counts: c,
            attempts,
            last_error,
            created_at,
            finished_at,
        })
    }
}
