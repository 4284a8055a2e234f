//! Cost code lists and codes: create, edit (with the sync state machine), move, delete.
use crate::audit;
use crate::events::{self, About};
use crate::marks;
use crate::tx::{Arg, Body, Queries, Tx};
use crate::{Db, StoreError, now};
use costbridge_domain::events::EventType;
use costbridge_domain::send;
use costbridge_domain::sync::{self, ConfirmedValues, Event, FieldChange, SyncState};
use costbridge_domain::wbs::{self, CodeSegment, Description, MAX_TIERS};
use serde::Serialize;
use serde_json::json;
use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(example = json!({"id": 1, "name": "ERP Standard Cost Codes", "is_erp_list": true, "codes_count": 42, "version": 3, "sent_once": false}))]
pub struct CodeList {
    pub id: i64,
    pub name: String,
    pub is_erp_list: bool,
    pub codes_count: i64,
    pub version: i64,
    /// True once this list has been sent: the button then reads "Re-send to ERP".
    pub sent_once: bool,
    /// The list version of the last write that changed what Send to ERP would send.
    #[serde(skip)]
    pub unsynced_version: i64,
}

impl CodeList {
    /// Whether a page drawn at list version `seen` still shows what Send to ERP would send.
    pub fn send_unchanged_since(&self, seen: i64) -> bool {
        self.unsynced_version <= seen && seen <= self.version
    }
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub(crate) struct CodeRow {
    pub id: i64,
    pub list_id: i64,
    pub parent_id: Option<i64>,
    pub code: String,
    pub full_code: String,
    pub description: String,
    pub tier: i64,
    #[serde(deserialize_with = "crate::tx::packed::bool")]
    pub active: bool,
    #[sqlx(try_from = "String")]
    #[serde(deserialize_with = "crate::tx::packed::stored")]
    pub sync_status: SyncState,
    pub confirmed_code: Option<String>,
    pub confirmed_full_code: Option<String>,
    pub confirmed_description: Option<String>,
    #[serde(deserialize_with = "crate::tx::packed::option_bool")]
    pub confirmed_active: Option<bool>,
    pub origin_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_synced_at: Option<OffsetDateTime>,
    pub rejection_reason: Option<String>,
    pub erp_message: Option<String>,
    pub refused_by: Option<String>,
    pub delivered_to: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A list's natural order: how every page of codes is sorted.
pub(crate) const PAGE_ORDER: &str = "c.sort_key, c.full_code";

pub(crate) const CODE_COLS: &str = "c.id, c.list_id, c.parent_id, c.code, c.full_code, \
                                    c.description, c.tier, c.active, c.sync_status, \
                                    c.confirmed_code, c.confirmed_full_code, \
                                    c.confirmed_description, c.confirmed_active, c.origin_id, \
                                    c.last_synced_at, c.rejection_reason, c.erp_message, \
                                    c.refused_by, c.delivered_to, c.created_at, \
                                    c.updated_at";

impl CodeRow {
    pub fn state(&self) -> SyncState {
        self.sync_status
    }

    pub fn values(&self) -> ConfirmedValues {
        ConfirmedValues {
            code: self.code.clone(),
            full_code: self.full_code.clone(),
            description: self.description.clone(),
            active: self.active,
        }
    }

    pub fn confirmed(&self) -> Option<ConfirmedValues> {
        Some(ConfirmedValues {
            code: self.confirmed_code.clone()?,
            full_code: self.confirmed_full_code.clone()?,
            description: self.confirmed_description.clone()?,
            active: self.confirmed_active?,
        })
    }

    /// The state after an edit that leaves the code with `values`.
    pub fn state_after_edit(&self, values: &ConfirmedValues) -> Result<SyncState, StoreError> {
        let differs = sync::differs(self.confirmed().as_ref(), values);
        self.state()
            .apply(Event::Edited { differs })
            .map_err(|e| StoreError::Locked(e.to_string()))
    }

    /// Whether an edit leaving this code with `values` in `state` changes what Send to ERP would
    /// send (the domain's rule).
    pub fn changes_send(&self, values: &ConfirmedValues, state: SyncState) -> bool {
        send::changes_send((self.state(), &self.values()), (state, values))
    }

    fn snapshot(&self) -> serde_json::Value {
        json!({"code": self.code, "full_code": self.full_code, "description": self.description,
               "parent_id": self.parent_id, "active": self.active, "sync_status": self.sync_status})
    }
}

/// A cost code as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 43, "list_id": 1, "code": "110", "full_code": "01-110", "description": "Permits",
    "parent_id": 2, "tier": 2, "active": true, "sync_status": "new", "origin_id": null, "last_synced_at": null,
    "rejection_reason": null, "erp_message": null, "refused_by": null, "delivered_to": null, "diff": {}, "confirmed": null,
    "created_at": "2026-11-30T15:00:00Z", "updated_at": "2026-11-30T15:00:00Z"}))]
pub struct CostCode {
    pub id: i64,
    pub list_id: i64,
    pub code: String,
    pub full_code: String,
    pub description: String,
    #[schema(required = true)]
    pub parent_id: Option<i64>,
    pub tier: i64,
    pub active: bool,
    pub sync_status: SyncState,
    #[schema(required = true)]
    pub origin_id: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub last_synced_at: Option<OffsetDateTime>,
    #[schema(required = true)]
    pub rejection_reason: Option<String>,
    #[schema(required = true)]
    pub erp_message: Option<String>,
    /// Who refused a failed code: `Costbridge` (a check of its own, or an ERP it could not
    /// reach in the end) or the ERP by name; absent otherwise.
    #[schema(required = true)]
    pub refused_by: Option<String>,
    /// The file its confirmed values were written to, when no ERP confirmed them (the file
    /// connector's exports): the ERP has the code once someone imports that file. `null` when
    /// an ERP confirmed them, or the code never went out. It stays through later edits and
    /// failed exports, until an ERP confirms the code.
    #[schema(required = true)]
    pub delivered_to: Option<String>,
    /// For a modified code: what differs from the values the ERP confirmed.
    pub diff: BTreeMap<&'static str, FieldChange>,
    /// The values the ERP last confirmed (`null` for a code it never had).
    #[schema(required = true)]
    pub confirmed: Option<ConfirmedValues>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<CodeRow> for CostCode {
    fn from(r: CodeRow) -> Self {
        let confirmed = r.confirmed();
        let diff = confirmed
            .as_ref()
            .map(|c| c.diff(&r.values()))
            .unwrap_or_default();
        CostCode {
            id: r.id,
            list_id: r.list_id,
            code: r.code,
            full_code: r.full_code,
            description: r.description,
            parent_id: r.parent_id,
            tier: r.tier,
            active: r.active,
            sync_status: r.sync_status,
            origin_id: r.origin_id,
            last_synced_at: r.last_synced_at,
            rejection_reason: r.rejection_reason,
            erp_message: r.erp_message,
            refused_by: r.refused_by,
            delivered_to: r.delivered_to,
            diff,
            confirmed,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

pub struct NewCode {
    pub code: CodeSegment,
    pub description: Description,
    pub parent_id: Option<i64>,
}

#[derive(Default)]
pub struct CodePatch {
    pub code: Option<CodeSegment>,
    pub description: Option<Description>,
    pub active: Option<bool>,
    /// `Some(None)` moves the code to the top tier.
    pub parent_id: Option<Option<i64>>,
}

impl CodePatch {
    /// Whether the patch leaves `old` as it is: each field it gives holds the value `old` has.
    fn leaves(&self, old: &CodeRow) -> bool {
        self.code.as_ref().is_none_or(|c| c.as_str() == old.code)
            && self
                .description
                .as_ref()
                .is_none_or(|d| d.as_str() == old.description)
            && self.active.is_none_or(|a| a == old.active)
            && self.parent_id.is_none_or(|p| p == old.parent_id)
    }
}

#[derive(Debug, Default, Clone)]
pub struct CodeFilter {
    pub sync_status: Option<String>,
    pub q: Option<String>,
    /// Keyset paging: only codes after this one in list order. A deep page then costs what the
    /// first does, where an offset walks every row before it.
    pub after: Option<i64>,
    /// Keyset paging by position: only codes after this full code in list order, whether or
    /// not a code has it now. A cursor by id moved with its code: after the code was renamed
    /// the next page started from its new place (skipping or repeating codes), and after it
    /// was deleted there was no next page.
    pub after_code: Option<String>,
}

/// Locks the list for this write (every write bumps `version`, so clients can tell a stale
/// page) and returns its new version; a list of another company is not found. Taking the list
/// row first is the start of the lock order every transaction keeps (see [`Db::write`]).
pub(crate) async fn lock_list(tx: &mut Tx<'_>, company: i64, list: i64) -> Result<i64, StoreError> {
    tx.scalar_optional(
        "UPDATE cost_code_lists SET version = version + 1 WHERE id = \
         $1 AND company_id = $2 RETURNING version",
        [list.into(), company.into()],
    )
    .await?
    .ok_or(StoreError::NotFound)
}

/// Records that this write (at list version `version`) changed what Send to ERP would send:
/// a send quoting an older version is then stale. Writes that leave the unsynced codes as they
/// were (an export finishing) do not, so they never block a send; an edit that changes nothing
/// writes nothing at all.
pub(crate) async fn unsynced_changed(
    tx: &mut Tx<'_>, list: i64, version: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE cost_code_lists SET unsynced_version = $2 WHERE id = \
         $1",
        [list.into(), version.into()],
    )
    .await?;
    Ok(())
}

/// One code of the company, in whichever list.
async fn fetch_code(
    q: &mut impl Queries, company: i64, id: i64,
) -> Result<Option<CodeRow>, StoreError> {
    let sql = format!(
        "SELECT {CODE_COLS} FROM cost_codes c WHERE c.company_id = \
         $1 AND c.id = $2"
    );
    q.fetch_optional(AssertSqlSafe(sql), [company.into(), id.into()])
        .await
}

/// A code of `list` that would be the parent of an edited or new code.
async fn fetch_parent(
    tx: &mut Tx<'_>, company: i64, list: i64, pid: i64,
) -> Result<CodeRow, StoreError> {
    // Said for a person too: the pages send the id of a parent they drew, which someone may
    // have deleted since ("code 4123 does not exist" named nothing they know).
    let p = fetch_code(tx, company, pid).await?.ok_or_else(|| {
        StoreError::field(
            "parent_id",
            format!(
                "names no code (id {pid}): it may have been deleted since the page was \
                 drawn; reload the list and choose an existing parent"
            ),
        )
    })?;
    if p.list_id != list {
        return Err(StoreError::field(
            "parent_id",
            format!(
                "names {} (id {pid}) of another list; a parent must be in the same list",
                p.full_code
            ),
        ));
    }
    Ok(p)
}

/// Locks the list for a write and loads one of its codes, with the list's new version; a code
/// of another list or company is not found.
pub(crate) async fn lock_code(
    tx: &mut Tx<'_>, company: i64, list: i64, id: i64,
) -> Result<(i64, CodeRow), StoreError> {
    let version = lock_list(tx, company, list).await?;
    let code = fetch_code(tx, company, id)
        .await?
        .filter(|r| r.list_id == list)
        .ok_or(StoreError::NotFound)?;
    Ok((version, code))
}

/// Every code of a list, for a write that plans against all of them (an import, a pull).
pub(crate) async fn list_codes(
    q: &mut impl Queries, list: i64,
) -> Result<Vec<CodeRow>, StoreError> {
    let sql = format!("SELECT {CODE_COLS} FROM cost_codes c WHERE c.list_id = $1");
    q.fetch_all(AssertSqlSafe(sql), [list.into()]).await
}

/// Creates a list and audits it; a name the company already uses is a unique violation, which
/// the caller words.
pub(crate) async fn insert_list(
    tx: &mut Tx<'_>, company: i64, actor: i64, name: &str, is_erp_list: bool,
) -> Result<i64, StoreError> {
    let id = tx
        .scalar(
            "INSERT INTO cost_code_lists (company_id, name, is_erp_list, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
            [
                company.into(),
                name.into(),
                is_erp_list.into(),
                now().into(),
            ],
        )
        .await?;
    let after = if is_erp_list {
        json!({"name": name, "is_erp_list": true})
    } else {
        json!({ "name": name })
    };
    audit::record(
        tx,
        company,
        Some(actor),
        "cost_code_list.created",
        ("cost_code_list", id),
        None,
        Some(after),
    )
    .await?;
    Ok(id)
}

/// Maps a unique violation on `(list_id, full_code)` to the field error a user can act on.
fn unique_to_duplicate(e: StoreError, full_code: &str) -> StoreError {
    e.unique_as(|| StoreError::field("code", format!("'{full_code}' already exists in this list")))
}

const LIST_SELECT: &str = "SELECT l.id, l.name, l.is_erp_list, l.version, l.sent_once, l.unsynced_version, \
     (SELECT CAST(COALESCE(SUM(s.n), 0) AS BIGINT) FROM list_state_counts s WHERE s.list_id = l.id) AS codes_count \
     FROM cost_code_lists l";

impl Db {
    pub async fn lists(&self, company: i64) -> Result<Vec<CodeList>, StoreError> {
        let sql = format!("{LIST_SELECT} WHERE l.company_id = $1 ORDER BY l.id");
        self.pool()
            .fetch_all(AssertSqlSafe(sql), [company.into()])
            .await
    }

    pub async fn list(&self, company: i64, list: i64) -> Result<CodeList, StoreError> {
        let sql = format!("{LIST_SELECT} WHERE l.company_id = $1 AND l.id = $2");
        self.pool()
            .fetch_optional(AssertSqlSafe(sql), [company.into(), list.into()])
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn create_list(
        &self, company: i64, actor: i64, name: &str,
    ) -> Result<CodeList, StoreError> {
        let id = self
            .write(|tx| {
                Box::pin(async move {
                    insert_list(tx, company, actor, name, false)
                        .await
                        .map_err(|e| {
                            e.unique_as(|| {
                                StoreError::field(
                                    "name",
                                    format!("a list named '{name}' already exists"),
                                )
                            })
                        })
                })
            })
            .await?;
        self.list(company, id).await
    }

    /// One page of a list's codes in natural `full_code` order, and the total matching.
    pub async fn codes(
        &self, company: i64, list: i64, f: &CodeFilter, limit: i64, offset: i64,
    ) -> Result<(Vec<CostCode>, i64), StoreError> {
        let lowered = f.q.as_deref().map(str::to_lowercase);
        // A search is answered from memory (`found.rs`) when it can be; the statement below
        // stays for the searches it cannot answer, and for every page without one.
        if let Some(q) = &lowered
            && let Some((rows, total)) =
                self.search_page(company, list, q, f, limit, offset).await?
        {
            return Ok((rows.into_iter().map(CostCode::from).collect(), total));
        }
        let q = lowered.map(|q| {
            format!(
                "%{}%",
                q.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        // Each condition is written only when asked for, so the planner can use the index
        // that serves it: `$2 IS NULL OR …` would make it plan for both cases at once.
        // The list must be the caller's company's: checked once per statement by a subquery
        // that does not depend on the row (so a deep page still skips its rows in the index
        // alone); the list's own row is read only when the page comes back empty, to tell an
        // empty page from a list that is not theirs. A list page is two queries, not three.
        let mut filter = String::from(
            "FROM cost_codes c WHERE c.list_id = $1 AND EXISTS (SELECT 1 FROM cost_code_lists l \
             WHERE l.id = $1 AND l.company_id = $2)",
        );
        let mut args: Vec<Arg> = vec![list.into(), company.into()];
        let mut list_args: Vec<Arg> = Vec::new();
        if let Some(state) = &f.sync_status {
            args.push(state.as_str().into());
            filter.push_str(&format!(" AND c.sync_status = ${}", args.len()));
        }
        if let Some(q) = q {
            args.push(q.into());
            let n = args.len();
            // SQLite's LIKE already ignores case, for ASCII letters only, as its lower() does:
            // lower() there only cost every compared row a copy (half of a search's time).
            let (code, description) = match self.pool().postgres() {
                true => ("lower(c.full_code)", "lower(c.description)"),
                false => ("c.full_code", "c.description"),
            };
            filter.push_str(&format!(
                " AND ({code} LIKE ${n} ESCAPE '\\' OR {description} LIKE ${n} ESCAPE '\\')"
            ));
        }
        let mut list_sql = format!("SELECT {CODE_COLS}, c.sort_key {filter}");
        // The page starts after a code's key: the one `after` names, or (for a deep page by
        // number, without a search) the nearest mark before it, with `offset` what is left.
        let mut offset = offset;
        let mut anchor = None;
        if let Some(after) = f.after {
            let key: Option<(String, String)> = self
                .pool()
                .fetch_optional(
                    "SELECT sort_key, full_code FROM cost_codes WHERE id = $1 AND list_id = $2 \
                     AND company_id = $3",
                    [after.into(), list.into(), company.into()],
                )
                .await?;
            let Some(key) = key else {
                // A list that is not the caller's is not found, before any word on `after`.
                self.list(company, list).await?;
                return Err(StoreError::field(
                    "after",
                    format!(
                        "code {after} is not in this list (deleted since?): start again from the first page"
                    ),
                ));
            };
            anchor = Some(key);
        } else if let Some(full_code) = &f.after_code {
            anchor = Some(self.position(company, full_code).await?);
        } else if f.q.is_none()
            && offset >= marks::STRIDE
            && let Some(start) = self
                .page_start(company, list, f.sync_status.as_deref(), offset)
                .await?
        {
            anchor = Some(start.anchor);
            offset = start.skip;
        }
        if let Some((sort_key, full_code)) = anchor {
            // Appended after the filter's arguments, so the count below (which takes only the
            // filter's) never sees them. A row comparison, which both databases read as a range
            // of the index: PostgreSQL took the `a > x OR (a = x AND b > y)` form as a filter
            // and walked every row before the anchor (`EXPLAIN ANALYZE`: 90,000 rows removed by
            // the filter, 104 ms, against 0.2 ms).
            let n = args.len();
            list_sql.push_str(&format!(
                " AND (c.sort_key, c.full_code) > (${}, ${})",
                n + 1,
                n + 2
            ));
            list_args = vec![sort_key.into(), full_code.into()];
        }
        list_sql.push_str(&format!(" ORDER BY {PAGE_ORDER}"));
        // Without a search, the total is the list's maintained count (of one state, or all);
        // a search has to look at the rows it matches.
        let (count_sql, count_args) = match (&f.q, &f.sync_status) {
            (Some(_), _) => (format!("SELECT COUNT(*) {filter}"), args.clone()),
            (None, Some(state)) => (
                "SELECT COALESCE((SELECT n FROM list_state_counts WHERE list_id = $1 AND sync_status = $2), 0)".to_owned(),
                vec![list.into(), state.as_str().into()],
            ),
            (None, None) => (
                "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM list_state_counts WHERE list_id = $1"
                    .to_owned(),
                vec![list.into()],
            ),
        };
        let n = args.len() + list_args.len();
        list_sql.push_str(&format!(" LIMIT ${} OFFSET ${}", n + 1, n + 2));
        let page_args = args
            .iter()
            .cloned()
            .chain(list_args)
            .chain([limit.into(), offset.into()]);
        let rows: Vec<CodeRow> = self
            .fetch_packed(&list_sql, CODE_COLS, PAGE_ORDER, page_args)
            .await?;
        if rows.is_empty() {
            self.list(company, list).await?;
        }
        let total = self
            .pool()
            .scalar(AssertSqlSafe(count_sql), count_args)
            .await?;
        Ok((rows.into_iter().map(CostCode::from).collect(), total))
    }

    /// Where `full_code` stands in the company's list order, whether or not a code has it: the
    /// key it has, or would have (the delimiter never changes once the company exists).
    pub(crate) async fn position(
        &self, company: i64, full_code: &str,
    ) -> Result<(String, String), StoreError> {
        let delimiter = self.company_delimiter(company).await?;
        Ok((wbs::sort_key(full_code, delimiter), full_code.to_owned()))
    }

    pub async fn code(&self, company: i64, list: i64, id: i64) -> Result<CostCode, StoreError> {
        fetch_code(&mut self.pool(), company, id)
            .await?
            .filter(|r| r.list_id == list)
            .map(CostCode::from)
            .ok_or(StoreError::NotFound)
    }

    /// Runs `body`, a write that creates or changes one code of `list` and answers its id, and
    /// answers that code as it then is.
    pub(crate) async fn write_code<'c>(
        &self, company: i64, list: i64,
        body: impl for<'t> FnMut(&'t mut Tx<'c>) -> Body<'t, i64, StoreError>,
    ) -> Result<CostCode, StoreError> {
        let id = self.write(body).await?;
        self.code(company, list, id).await
    }

    /// The code of `list` with this full code, if there is one.
    pub async fn code_by_full_code(
        &self, company: i64, list: i64, full_code: &str,
    ) -> Result<Option<CostCode>, StoreError> {
        let sql = format!(
            "SELECT {CODE_COLS} FROM cost_codes c WHERE c.company_id = $1 AND \
             c.list_id = $2 AND c.full_code = $3"
        );
        let row: Option<CodeRow> = self
            .pool()
            .fetch_optional(
                AssertSqlSafe(sql),
                [company.into(), list.into(), full_code.into()],
            )
            .await?;
        Ok(row.map(CostCode::from))
    }

    /// `delimiter` is the company's, which the caller already read to parse the code.
    pub async fn create_code(
        &self, company: i64, list: i64, actor: i64, new: NewCode, delimiter: char,
    ) -> Result<CostCode, StoreError> {
        let new = &new;
        self.write_code(company, list, |tx| {
            Box::pin(async move {
                let version = lock_list(tx, company, list).await?;
                let parent = match new.parent_id {
                    None => None,
                    Some(pid) => Some(fetch_parent(tx, company, list, pid).await?),
                };
                let (full, tier) = wbs::full_code(
                    parent
                        .as_ref()
                        .map(|p| (p.full_code.as_str(), p.tier as usize)),
                    &new.code,
                    delimiter,
                )
                .map_err(|e| StoreError::field("parent_id", e.to_string()))?;
                let ts = now();
                let id: i64 = tx
                    .scalar(
                        "INSERT INTO cost_codes (company_id, list_id, parent_id, \
                         code, full_code, sort_key, description, tier, active, \
                         sync_status, changed_version, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $11, $10, $9, \
                         $9) RETURNING id",
                        [
                            company.into(),
                            list.into(),
                            new.parent_id.into(),
                            new.code.as_str().into(),
                            (&full).into(),
                            wbs::sort_key(&full, delimiter).into(),
                            new.description.as_str().into(),
                            (tier as i64).into(),
                            ts.into(),
                            version.into(),
                            SyncState::New.as_str().into(),
                        ],
                    )
                    .await
                    .map_err(|e| unique_to_duplicate(e, &full))?;
                unsynced_changed(tx, list, version).await?;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "cost_code.created",
                    ("cost_code", id),
                    None,
                    Some(json!({
                        "code": new.code.as_str(), "full_code": full,
                        "description": new.description.as_str(), "parent_id": new.parent_id,
                        "active": true, "sync_status": SyncState::New
                    })),
                )
                .await?;
                events::code_events_for(
                    tx,
                    company,
                    EventType::CodeCreated,
                    About::default(),
                    &[id],
                )
                .await?;
                Ok(id)
            })
        })
        .await
    }

    /// `delimiter` is the company's, which the caller already read to parse the patch.
    pub async fn update_code(
        &self, company: i64, list: i64, actor: i64, id: i64, patch: CodePatch, delimiter: char,
    ) -> Result<CostCode, StoreError> {
        let patch = &patch;
        self.write_code(company, list, |tx| {
            Box::pin(async move {
                // A patch that changes nothing (a retried PATCH, which takes no Idempotency-Key)
                // writes nothing: no audit row, no `cost_code.updated` event sent again under a
                // new id, and no new list version, which would tell clients the list changed.
                // So it is judged before the list is locked. A locked code (pending, exporting,
                // failed) still answers 409 `locked`, as the API promises for any edit of one.
                if let Some(current) = fetch_code(tx, company, id).await?
                    && current.list_id == list
                    && !current.state().is_locked()
                    && patch.leaves(&current)
                {
                    return Ok(id);
                }
                let (version, old) = lock_code(tx, company, list, id).await?;
                if old.state().is_locked() {
                    return Err(StoreError::Locked(format!(
                        "'{}' is {} and cannot be edited until the approver decides",
                        old.full_code, old.sync_status
                    )));
                }
                let parent_id = patch.parent_id.unwrap_or(old.parent_id);
                let code = patch
                    .code
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_else(|| old.code.clone());
                // Where the code now hangs, checked against cycles and the tier limit of its
                // subtree.
                let (parent_full, parent_tier) = match parent_id {
                    None => (None, 0usize),
                    Some(pid) if pid == id => {
                        return Err(StoreError::field(
                            "parent_id",
                            "a code cannot be its own parent",
                        ));
                    }
                    Some(pid) => {
                        let p = fetch_parent(tx, company, list, pid).await?;
                        let own_prefix = format!("{}{delimiter}", old.full_code);
                        if p.full_code.starts_with(&own_prefix) {
                            return Err(StoreError::field(
                                "parent_id",
                                format!(
                                    "'{}' is a descendant of this code; that would make a cycle",
                                    p.full_code
                                ),
                            ));
                        }
                        (Some(p.full_code), p.tier as usize)
                    }
                };
                let segment = CodeSegment::parse(&code, delimiter)
                    .map_err(|e| StoreError::field("code", e.to_string()))?;
                let (full, tier) = wbs::full_code(
                    parent_full.as_deref().map(|f| (f, parent_tier)),
                    &segment,
                    delimiter,
                )
                .map_err(|e| StoreError::field("parent_id", e.to_string()))?;
                let description = patch
                    .description
                    .as_ref()
                    .map(|d| d.as_str().to_owned())
                    .unwrap_or_else(|| old.description.clone());
                let active = patch.active.unwrap_or(old.active);
                let values = ConfirmedValues {
                    code: code.clone(),
                    full_code: full.clone(),
                    description: description.clone(),
                    active,
                };
                let state = old.state_after_edit(&values)?;
                let ts = now();
                let mut send_changed = old.changes_send(&values, state);
                tx.execute(
                    "UPDATE cost_codes SET parent_id = $2, code = $3, full_code \
                     = $4, sort_key = $5, description = $6, tier = $7, active = \
                     $8, sync_status = $9, rejection_reason = CASE WHEN $9 = $13 \
                     THEN rejection_reason END, updated_at = $10, \
                     changed_version = CASE WHEN $11 THEN $12 ELSE \
                     changed_version END WHERE id = $1",
                    [
                        id.into(),
                        parent_id.into(),
                        (&code).into(),
                        (&full).into(),
                        wbs::sort_key(&full, delimiter).into(),
                        (&description).into(),
                        (tier as i64).into(),
                        active.into(),
                        state.as_str().into(),
                        ts.into(),
                        send_changed.into(),
                        version.into(),
                        SyncState::Rejected.as_str().into(),
                    ],
                )
                .await
                .map_err(|e| unique_to_duplicate(e, &full))?;
                let mut after = old.clone();
                (
                    after.parent_id,
                    after.code,
                    after.full_code,
                    after.description,
                    after.tier,
                    after.active,
                ) = (
                    parent_id,
                    code.clone(),
                    full.clone(),
                    description.clone(),
                    tier as i64,
                    active,
                );
                after.sync_status = state;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "cost_code.updated",
                    ("cost_code", id),
                    Some(old.snapshot()),
                    Some(after.snapshot()),
                )
                .await?;

                let mut changed = vec![id];
                if full != old.full_code {
                    // Descendants follow: their full codes (and tiers) change, and each synced one
                    // becomes modified.
                    let sql = format!(
                        "WITH RECURSIVE d(id) AS (SELECT id FROM cost_codes WHERE \
                         parent_id = $1 UNION ALL SELECT c.id FROM cost_codes c JOIN \
                         d ON c.parent_id = d.id) SELECT {CODE_COLS} FROM cost_codes \
                         c WHERE c.id IN (SELECT id FROM d)"
                    );
                    let descendants: Vec<CodeRow> =
                        tx.fetch_all(AssertSqlSafe(sql), [id.into()]).await?;
                    let shift = tier as i64 - old.tier;
                    for d in descendants {
                        let new_tier = d.tier + shift;
                        if new_tier as usize > MAX_TIERS {
                            return Err(StoreError::field(
                                "parent_id",
                                format!(
                                    "'{}' would become tier {new_tier}; at most {MAX_TIERS} \
                                     tiers are allowed",
                                    d.full_code
                                ),
                            ));
                        }
                        if d.state().is_locked() {
                            return Err(StoreError::Locked(format!(
                                "descendant '{}' is {} and cannot change until the approver \
                                 decides",
                                d.full_code, d.sync_status
                            )));
                        }
                        let d_full = format!("{full}{}", &d.full_code[old.full_code.len()..]);
                        let mut d_after = d.clone();
                        (d_after.full_code, d_after.tier) = (d_full.clone(), new_tier);
                        let d_state = d.state_after_edit(&d_after.values())?;
                        d_after.sync_status = d_state;
                        let d_changed = d.changes_send(&d_after.values(), d_state);
                        send_changed |= d_changed;
                        tx.execute(
                            "UPDATE cost_codes SET full_code = $2, sort_key = $3, tier = \
                             $4, sync_status = $5, updated_at = $6, changed_version = \
                             CASE WHEN $7 THEN $8 ELSE changed_version END WHERE id = $1",
                            [
                                d.id.into(),
                                (&d_full).into(),
                                wbs::sort_key(&d_full, delimiter).into(),
                                new_tier.into(),
                                d_state.as_str().into(),
                                ts.into(),
                                d_changed.into(),
                                version.into(),
                            ],
                        )
                        .await
                        .map_err(|e| unique_to_duplicate(e, &d_full))?;
                        audit::record(
                            tx,
                            company,
                            Some(actor),
                            "cost_code.updated",
                            ("cost_code", d.id),
                            Some(d.snapshot()),
                            Some(d_after.snapshot()),
                        )
                        .await?;
                        changed.push(d.id);
                    }
                }
                events::code_events_for(
                    tx,
                    company,
                    EventType::CodeUpdated,
                    About::default(),
                    &changed,
                )
                .await?;
                if send_changed {
                    unsynced_changed(tx, list, version).await?;
                }
                Ok(id)
            })
        })
        .await
    }

    /// Deletes a code the ERP never had; anything else must be deactivated instead.
    pub async fn delete_code(
        &self, company: i64, list: i64, actor: i64, id: i64,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let (version, old) = lock_code(tx, company, list, id).await?;
                let ever_synced = old.confirmed().is_some() || old.origin_id.is_some();
                if !sync::may_delete(old.state(), ever_synced) {
                    // What to do next, by what the code's state allows: a locked code can be
                    // neither deleted nor deactivated until the queue lets it go.
                    let then = if ever_synced { "deactivate" } else { "delete" };
                    let what = match old.state() {
                        SyncState::Pending => format!(
                            "it is pending in the ERP Integrations queue; Retrieve it first, then \
                             {then} it"
                        ),
                        SyncState::Exporting => {
                            format!("it is being exported now; once the export ends, {then} it")
                        }
                        SyncState::Failed => format!(
                            "its export failed and it waits in the queue; an accounting approver \
                             must retry or reject it first, then {then} it"
                        ),
                        _ => "the ERP has it; deactivate it instead".to_owned(),
                    };
                    return Err(StoreError::Conflict(format!(
                        "'{}' cannot be deleted: {what}",
                        old.full_code
                    )));
                }
                let children: i64 = tx
                    .scalar(
                        "SELECT COUNT(*) FROM cost_codes WHERE parent_id = $1",
                        [id.into()],
                    )
                    .await?;
                if children > 0 {
                    return Err(StoreError::Conflict(format!(
                        "'{}' has {children} child code(s); delete or move them first",
                        old.full_code
                    )));
                }
                // Closed items of earlier sends (rejected or retrieved) go with the code; the
                // audit log keeps the history.
                tx.execute("DELETE FROM erp_items WHERE cost_code_id = $1", [id.into()])
                    .await?;
                tx.execute("DELETE FROM cost_codes WHERE id = $1", [id.into()])
                    .await?;
                if old.state().is_unsynced() {
                    unsynced_changed(tx, list, version).await?;
                }
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "cost_code.deleted",
                    ("cost_code", id),
                    Some(old.snapshot()),
                    None,
                )
                .await
            })
        })
        .await
    }

    /// Every code of a list in natural order, for CSV export: `(full_code, description, active)`.
    pub async fn export_codes(
        &self, company: i64, list: i64,
    ) -> Result<Vec<(String, String, bool)>, StoreError> {
        self.list(company, list).await?;
        self.pool()
            .fetch_all(
                "SELECT full_code, description, active FROM cost_codes WHERE \
                 list_id = $1 ORDER BY sort_key, full_code",
                [list.into()],
            )
            .await
    }
}
