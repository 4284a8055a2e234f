//! CSV import of a cost code list: every row is checked against the file and the list, and
//! either the whole file applies in one transaction or nothing does.
use crate::codes::{CodeRow, list_codes, lock_list, unsynced_changed};
use crate::events::{self, About};
use crate::tx::{Arg, Array, Queries, Tx, rows_per_statement, rows_table};
use crate::{Db, StoreError, audit, now};
use costbridge_domain::events::EventType;
use costbridge_domain::sync::{ConfirmedValues, SyncState};
use costbridge_domain::wbs::{self, Description};
use serde::Serialize;
use serde_json::json;
use sqlx::AssertSqlSafe;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// One data row of the file as read (line numbers count the header as line 1).
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: usize,
    pub full_code: String,
    pub description: String,
    pub active: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RowError {
    pub row: usize,
    pub full_code: String,
    pub errors: Vec<String>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(example = json!({"created": 2, "updated": 1, "unchanged": 40}))]
pub struct ImportSummary {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
}

#[derive(Debug)]
pub enum ImportError {
    Rows(Vec<RowError>),
    Store(StoreError),
}
impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        ImportError::Store(e)
    }
}
impl crate::db::Transient for ImportError {
    fn is_transient(&self) -> bool {
        matches!(self, ImportError::Store(e) if e.is_transient())
    }
}

/// The `active` cell; `None` when it is empty or the file has no such column, which leaves an
/// existing code's flag as it is: a file without the column must not switch deactivated codes
/// back on.
pub fn parse_active(s: &str) -> Result<Option<bool>, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "true" | "yes" | "1" => Ok(Some(true)),
        "false" | "no" | "0" => Ok(Some(false)),
        other => Err(format!("active must be true or false, not '{other}'")),
    }
}

/// What a file does to a list: the codes it creates, the ones it changes, and how many it leaves.
struct Plan<'a> {
    creates: Vec<Planned>,
    updates: Vec<(&'a CodeRow, String, bool, SyncState)>,
    unchanged: i64,
}

struct Planned {
    full_code: String,
    code: String,
    parent: Option<String>,
    tier: usize,
    sort_key: String,
    description: String,
    active: bool,
}

/// Checks every row against the file and the list's `existing` codes (by full code); the
/// import and its preview both go through here, so the preview shows exactly what applies.
fn plan<'a>(
    rows: &[ImportRow], existing: &'a HashMap<String, CodeRow>, delimiter: char,
) -> Result<Plan<'a>, ImportError> {
    let mut errors = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut creates: Vec<Planned> = Vec::new();
    let mut updates = Vec::new();
    let mut unchanged = 0i64;
    let in_file: std::collections::HashSet<&str> =
        rows.iter().map(|r| r.full_code.as_str()).collect();
    let mut look_alikes = LookAlikes::default();
    for r in rows {
        let mut errs = Vec::new();
        let segments = wbs::split_full_code(&r.full_code, delimiter);
        if let Err(e) = &segments {
            errs.push(format!("full_code {e}"));
        }
        let description = Description::parse(&r.description);
        if let Err(e) = &description {
            errs.push(format!("description {e}"));
        }
        let active = parse_active(&r.active);
        if let Err(e) = &active {
            errs.push(e.clone());
        }
        if let Some(first) = seen.insert(r.full_code.as_str(), r.line) {
            errs.push(format!("duplicate of row {first}"));
        }
        // A new code in the shape a spreadsheet gives a code it took for a date or a number
        // is valid by every rule and would be created: said instead (its parent, if any, is a
        // piece of the date, so no word on that).
        let made = (!existing.contains_key(&r.full_code))
            .then(|| wbs::spreadsheet_made(&r.full_code, delimiter))
            .flatten();
        if let Some(what) = made {
            errs.push(format!(
                "full_code '{}' looks like {what} a spreadsheet made of a code (Excel turns 3-4 \
                 into 4-Mar and 03-30-00 into 3/30/2000): write the code as it was, with the \
                 column formatted as Text before the file is opened, or remove the row; a code \
                 that really reads so is added on the codes page",
                r.full_code
            ));
        }
        let parent = r
            .full_code
            .rsplit_once(delimiter)
            .map(|(p, _)| p.to_owned());
        if let Some(p) = &parent
            && made.is_none()
            && !in_file.contains(p.as_str())
            && !existing.contains_key(p)
        {
            errs.push(format!(
                "parent '{p}' is neither in the file nor in the list"
            ));
        }
        if let (true, Ok(segments), Ok(description), Ok(active)) =
            (errs.is_empty(), segments, description, active)
        {
            let current = existing.get(&r.full_code);
            // A new code is active unless the file says otherwise.
            let active = active.unwrap_or(current.is_none_or(|old| old.active));
            match current {
                Some(old) if old.description == description.as_str() && old.active == active => {
                    unchanged += 1
                }
                Some(old) => {
                    let values = ConfirmedValues {
                        description: description.as_str().to_owned(),
                        active,
                        ..old.values()
                    };
                    match old.state_after_edit(&values) {
                        Ok(state) => {
                            updates.push((old, description.as_str().to_owned(), active, state))
                        }
                        Err(e) => errs.push(e.to_string()),
                    }
                }
                None => match look_alikes.of(&r.full_code, existing, delimiter) {
                    Some(other) => errs.push(format!(
                        "full_code '{}' is the list's '{other}' with other leading zeros, \
                             as a spreadsheet leaves a code it took for a number: write it \
                             '{other}' (in Excel, import the column as Text), or remove the row",
                        r.full_code
                    )),
                    None => creates.push(Planned {
                        full_code: r.full_code.clone(),
                        code: segments
                            .last()
                            .map(|s| s.as_str().to_owned())
                            .unwrap_or_default(),
                        parent,
                        tier: segments.len(),
                        sort_key: wbs::sort_key(&r.full_code, delimiter),
                        description: description.as_str().to_owned(),
                        active,
                    }),
                },
            }
        }
        if !errs.is_empty() {
            errors.push(RowError {
                row: r.line,
                full_code: r.full_code.clone(),
                errors: errs,
            });
        }
    }
    if !errors.is_empty() {
        return Err(ImportError::Rows(errors));
    }
    Ok(Plan {
        creates,
        updates,
        unchanged,
    })
}

/// The list's codes by [`wbs::numbers_key`]: a code that differs from one of them only by the
/// leading zeros of a segment that is all digits (`1` or `1-100` beside `01`, `01-100`) is what
/// a spreadsheet leaves of a code it took for a number. Made when a file first creates a code,
/// so an import that only updates pays nothing for it; an empty list is answered at once.
#[derive(Default)]
struct LookAlikes<'a>(Option<HashMap<String, &'a str>>);

impl<'a> LookAlikes<'a> {
    /// The list's code that the new code `full` would be mistaken for (of two, the smaller,
    /// so the message is the same on every run).
    fn of(
        &mut self, full: &str, existing: &'a HashMap<String, CodeRow>, delimiter: char,
    ) -> Option<&'a str> {
        let list = self.0.get_or_insert_with(|| {
            let mut keys: HashMap<String, &str> = HashMap::new();
            for k in existing.keys() {
                let slot = keys.entry(wbs::numbers_key(k, delimiter)).or_insert(k);
                *slot = (*slot).min(k.as_str());
            }
            keys
        });
        if list.is_empty() {
            return None;
        }
        list.get(&wbs::numbers_key(full, delimiter)).copied()
    }
}

/// One code an import would create or change; `before` is set for a change.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PreviewRow {
    pub full_code: String,
    pub description: String,
    pub active: bool,
    pub before: Option<PreviewBefore>,
    /// The sync state the code would have afterwards.
    pub sync_status: SyncState,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PreviewBefore {
    pub description: String,
    pub active: bool,
    pub sync_status: SyncState,
}

/// What an import would do, shown before it is applied.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct ImportPreview {
    pub create: Vec<PreviewRow>,
    pub update: Vec<PreviewRow>,
    pub unchanged: i64,
}

impl Db {
    /// The result of importing `rows` now, without changing anything.
    pub async fn preview_import(
        &self, company: i64, list: i64, rows: &[ImportRow],
    ) -> Result<ImportPreview, ImportError> {
        let delimiter = self.company_delimiter(company).await?;
        self.list(company, list).await?;
        let existing = list_codes(&mut self.pool(), list).await?;
        let existing: HashMap<String, CodeRow> = existing
            .into_iter()
            .map(|r| (r.full_code.clone(), r))
            .collect();
        let plan = plan(rows, &existing, delimiter)?;
        Ok(ImportPreview {
            create: plan
                .creates
                .into_iter()
                .map(|p| PreviewRow {
                    full_code: p.full_code,
                    description: p.description,
                    active: p.active,
                    before: None,
                    sync_status: SyncState::New,
                })
                .collect(),
            update: plan
                .updates
                .into_iter()
                .map(|(old, description, active, state)| PreviewRow {
                    full_code: old.full_code.clone(),
                    description,
                    active,
                    before: Some(PreviewBefore {
                        description: old.description.clone(),
                        active: old.active,
                        sync_status: old.sync_status,
                    }),
                    sync_status: state,
                })
                .collect(),
            unchanged: plan.unchanged,
        })
    }

    pub async fn import_codes(
        &self, company: i64, list: i64, actor: i64, rows: &[ImportRow],
    ) -> Result<ImportSummary, ImportError> {
        let delimiter = self.company_delimiter(company).await?;
        let summary = self
            .write(|tx| {
                Box::pin(async move {
                    let version = lock_list(tx, company, list).await?;
                    let existing = list_codes(tx, list).await?;
                    let existing: HashMap<String, CodeRow> = existing
                        .into_iter()
                        .map(|r| (r.full_code.clone(), r))
                        .collect();

                    let Plan {
                        creates,
                        updates,
                        unchanged,
                    } = plan(rows, &existing, delimiter)?;
                    tx.hold_triggers(company, creates.len() + updates.len())
                        .await?;

                    let ts = now();
                    for (old, description, active, state) in &updates {
                        tx.execute(
                            "UPDATE cost_codes SET description = $2, active = $3, \
                             sync_status = $4, updated_at = $5, changed_version = $6 \
                             WHERE id = $1",
                            [
                                old.id.into(),
                                description.into(),
                                (*active).into(),
                                state.as_str().into(),
                                ts.into(),
                                version.into(),
                            ],
                        )
                        .await?;
                        audit::record(
                            tx,
                            company,
                            Some(actor),
                            "cost_code.updated",
                            ("cost_code", old.id),
                            Some(json!({"description": old.description, "active": old.active,
                        "sync_status": old.sync_status})),
                            Some(json!({"description": description, "active": active,
                        "sync_status": state.as_str(), "via": "import"})),
                        )
                        .await?;
                    }
                    // Parents first: one tier at a time, so each tier can look up its parents' new
                    // ids.
                    let mut ids: HashMap<String, i64> =
                        existing.iter().map(|(k, v)| (k.clone(), v.id)).collect();
                    let mut by_tier: BTreeMap<usize, Vec<&Planned>> = BTreeMap::new();
                    for p in &creates {
                        by_tier.entry(p.tier).or_default().push(p);
                    }
                    let deepest = by_tier.keys().next_back().copied();
                    for (tier, tier_rows) in &by_tier {
                        let new = NewCodes {
                            company,
                            list,
                            ids: &ids,
                            version,
                            ts,
                            tier: *tier,
                            // The deepest tier (most of a list's codes) is nobody's parent
                            // here: its new ids are not read back.
                            returning: Some(*tier) != deepest,
                        };
                        // A tier is one statement on PostgreSQL (one array a column).
                        let chunk = rows_per_statement(tx.postgres(), SHARED, ROW_VALUES);
                        let mut created = Vec::new();
                        for rows in tier_rows.chunks(chunk) {
                            created.extend(new.insert(tx, rows).await?);
                        }
                        ids.extend(created.into_iter().map(|(id, f)| (f, id)));
                    }
                    let created_event =
                        json!({"sync_status": SyncState::New, "via": "import"}).to_string();
                    tx.execute(
                        "INSERT INTO audit_events (company_id, at, actor_id, action, \
                         entity_type, entity_id, before, after) SELECT $1, $2, $3, \
                         'cost_code.created', 'cost_code', id, NULL, $5 FROM \
                         cost_codes WHERE list_id = $4 AND created_at = $2",
                        [
                            company.into(),
                            ts.into(),
                            actor.into(),
                            list.into(),
                            created_event.into(),
                        ],
                    )
                    .await?;
                    events::code_events(
                        tx,
                        company,
                        EventType::CodeCreated,
                        About::default(),
                        "c.list_id = $8 AND c.created_at = $9",
                        [list.into(), ts.into()],
                    )
                    .await?;
                    let mut updated = Vec::with_capacity(updates.len());
                    for u in &updates {
                        updated.push(u.0.id);
                    }
                    events::code_events_for(
                        tx,
                        company,
                        EventType::CodeUpdated,
                        About::default(),
                        &updated,
                    )
                    .await?;
                    let summary = ImportSummary {
                        created: creates.len() as i64,
                        updated: updates.len() as i64,
                        unchanged,
                    };
                    // Every created or changed row changes what Send to ERP would send; a file that
                    // changes nothing leaves pages drawn before it current.
                    if summary.created + summary.updated > 0 {
                        unsynced_changed(tx, list, version).await?;
                    }
                    audit::record(
                        tx,
                        company,
                        Some(actor),
                        "cost_code_list.imported",
                        ("cost_code_list", list),
                        None,
                        Some(json!(summary)),
                    )
                    .await?;
                    Ok::<_, ImportError>(summary)
                })
            })
            .await?;
        self.refresh_stats((summary.created + summary.updated) as usize)
            .await;
        Ok(summary)
    }
}

/// The columns of a created code, in the order the insert below gives them: first what every
/// code of a tier shares (bound once per statement), then what each row has of its own.
const NEW_CODE_COLUMNS: &str = "company_id, list_id, tier, sync_status, changed_version, \
     created_at, updated_at, parent_id, code, full_code, sort_key, description, active";

/// Of [`NEW_CODE_COLUMNS`], the values a tier's codes share (bound once a statement) and the
/// values each row has of its own.
const SHARED: usize = 7;
const ROW_VALUES: usize = 6;

/// What every code of one tier an import creates shares, and the ids of the codes already there
/// (the parents of this tier).
struct NewCodes<'a> {
    company: i64,
    list: i64,
    ids: &'a HashMap<String, i64>,
    version: i64,
    ts: OffsetDateTime,
    tier: usize,
    /// Whether the new codes' ids are needed (as the parents of a later tier).
    returning: bool,
}

impl NewCodes<'_> {
    fn parent_id(&self, p: &Planned) -> Option<i64> {
        p.parent.as_ref().and_then(|f| self.ids.get(f).copied())
    }

    /// `$1`…`$7`: the values the tier's codes share, in [`NEW_CODE_COLUMNS`] order.
    fn shared(&self) -> [Arg; SHARED] {
        [
            self.company.into(),
            self.list.into(),
            (self.tier as i64).into(),
            SyncState::New.as_str().into(),
            self.version.into(),
            self.ts.into(),
            self.ts.into(),
        ]
    }

    /// Runs the insert, reading the new codes' ids by full code back only when they are needed.
    async fn run(
        &self, tx: &mut Tx<'_>, sql: String, args: Vec<Arg>,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        if self.returning {
            tx.fetch_all(
                AssertSqlSafe(format!("{sql} RETURNING id, full_code")),
                args,
            )
            .await
        } else {
            tx.execute(AssertSqlSafe(sql), args).await?;
            Ok(Vec::new())
        }
    }

    /// Creates codes of one tier in one statement, the rows through [`rows_table`] (on
    /// PostgreSQL one array a column: 100,000 codes are one statement and six parameters per
    /// tier instead of 250 statements of 5,200, BENCHMARKS.md); the shared values are bound once.
    async fn insert(
        &self, tx: &mut Tx<'_>, rows: &[&Planned],
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let column =
            |f: &dyn Fn(&Planned) -> String| Array::Text(rows.iter().map(|p| Some(f(p))).collect());
        let (table, args) = rows_table(
            tx.postgres(),
            SHARED,
            vec![
                Array::Int(rows.iter().map(|p| self.parent_id(p)).collect()),
                column(&|p| p.code.clone()),
                column(&|p| p.full_code.clone()),
                column(&|p| p.sort_key.clone()),
                column(&|p| p.description.clone()),
                Array::Bool(rows.iter().map(|p| p.active).collect()),
            ],
        );
        let sql = format!(
            "INSERT INTO cost_codes ({NEW_CODE_COLUMNS}) SELECT $1, $2, $3, $4, $5, $6, $7, \
             v.* FROM {table}"
        );
        self.run(tx, sql, self.shared().into_iter().chain(args).collect())
            .await
    }
}
