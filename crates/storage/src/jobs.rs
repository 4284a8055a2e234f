//! The durable export queue: jobs are claimed with a lease (so a crashed worker's job is picked
//! up again), their items handed to a connector, and results recorded per code.
use crate::db::Lease;
use crate::events::{self, About};
use crate::tx::{Arg, Array, Queries, Tx, rows_per_statement, rows_table};
use crate::{Db, StoreError, now, outbox};
use costbridge_domain::events::EventType;
use costbridge_domain::queue::{ItemStatus, JobStatus, UnknownState, sql_in};
use costbridge_domain::sync::{Event, SyncState};
use serde_json::json;
use sqlx::AssertSqlSafe;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: i64,
    pub company_id: i64,
    pub attempts: i64,
    /// How many times in a row the job's ERP could not be reached (`export_jobs.erp_failures`):
    /// what the give-up after `max_attempts` counts. A batch recorded sets it back to 0.
    pub erp_failures: i64,
    /// This claim's number (`export_jobs.claims`). The claim's later writes name it, so once
    /// another claim has taken the job over (this one's lease ran out while it was still
    /// busy) they write nothing.
    pub claims: i64,
}

/// The job is still this claim's: running, and claimed by no one since.
fn held(job: &str, claims: &str) -> String {
    format!(
        "{job}.status = '{}' AND {job}.claims = {claims}",
        JobStatus::Running
    )
}

/// One code to export, as it was sent, with what the export needs to know about its parent.
/// Texts are boxed (16 bytes each instead of a `String`'s 24): a 100,000-code job holds all of
/// its rows at once. Read by name on PostgreSQL and, on SQLite, from packed arrays in the
/// order of [`JOB_COLUMNS`] (its fields' order).
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ExportRow {
    pub item_id: i64,
    pub cost_code_id: i64,
    pub code: Box<str>,
    pub full_code: Box<str>,
    pub description: Box<str>,
    #[serde(deserialize_with = "crate::tx::packed::bool")]
    pub active: bool,
    pub parent_full_code: Option<Box<str>>,
    pub origin_id: Option<Box<str>>,
    pub gl_income_account: Option<Box<str>>,
    pub gl_expense_account: Option<Box<str>>,
    /// The parent code's state now (absent for a top-tier code), decoded as the row is read.
    #[sqlx(flatten, try_from = "ParentStatus")]
    #[serde(deserialize_with = "crate::tx::packed::option_stored")]
    pub parent_state: Option<SyncState>,
    /// What the ERP confirmed last (absent for a code it never had).
    pub from_code: Option<Box<str>>,
    pub from_full_code: Option<Box<str>>,
    pub from_description: Option<Box<str>>,
    #[serde(deserialize_with = "crate::tx::packed::option_bool")]
    pub from_active: Option<bool>,
}

/// Where a job's synced codes went when no ERP confirmed them: the file a person imports into
/// `erp` later (the file connector).
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub file: &'a str,
    pub erp: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Synced {
        origin_id: String,
    },
    /// `by` is who refused, as people read it:
    /// [`COSTBRIDGE`](costbridge_domain::queue::COSTBRIDGE) or the ERP's name.
    Failed {
        message: String,
        by: String,
    },
}

/// The placeholders the codes' statement (`codes_follow`, the widest of the outcomes') has of
/// its own before its rows' values: the state, two times and the file.
const CODES_OWN: usize = 4;

/// Outcomes per statement: as many as the widest of their statements (the codes', 6 values a
/// row and [`CODES_OWN`] of its own) can read on SQLite, and on PostgreSQL, where each column is one array,
/// at most 25,000: the arrays are copies of the rows' texts, and one statement for a
/// 100,000-code export took the server's peak from 119 to 155 MB (the target is 150), while
/// four statements scan the codes four times instead of once (~50 ms each). Fewer, larger
/// statements cost SQLite less per row too (the same export's outcomes: 2.25 s in statements
/// of 500 rows, 2.13 s in statements of 4,000).
fn outcome_chunk(postgres: bool) -> usize {
    rows_per_statement(postgres, CODES_OWN, 6).min(25_000)
}

/// One outcome as recorded: item id, origin id or error text, who refused, and its row.
type Part<'r> = (i64, &'r str, Option<&'r str>, &'r ExportRow);

/// The codes of the items a chunk moved follow them into `state`, by id, with the values their
/// rows carry: confirmed values are exactly what was sent (`synced`: the text is the ERP's
/// key); a refused code keeps the refusal's message and who refused. Joining the codes to their items instead read
/// every item of the job in that state again on each chunk (the planner took the job's index,
/// its statistics taken before any item had moved): a 100,000-code export to PostgreSQL spent
/// ~1 s a chunk there.
async fn codes_follow(
    tx: &mut Tx<'_>, state: SyncState, synced: bool, ts: OffsetDateTime, moved: &[&Part<'_>],
    delivered: Option<Delivery<'_>>,
) -> Result<(), StoreError> {
    if moved.is_empty() {
        return Ok(());
    }
    let set = if synced {
        "last_synced_at = $3, delivered_to = $4, confirmed_code = v.column2, confirmed_full_code = v.column3, \
         confirmed_description = v.column4, confirmed_active = v.column5, origin_id = \
         v.column6, erp_message = NULL, refused_by = NULL, rejection_reason = NULL, \
         status_before_send = NULL"
    } else {
        "erp_message = v.column2, refused_by = v.column3"
    };
    let shared: Vec<Arg> = [state.as_str().into(), ts.into()]
        .into_iter()
        .chain(
            synced
                .then(|| [Arg::from(ts), delivered.map(|d| d.file).into()])
                .into_iter()
                .flatten(),
        )
        .collect();
    // `outcome_chunk` sized the rows for this many of the statement's own.
    debug_assert!(shared.len() <= CODES_OWN);
    let text =
        |f: &dyn Fn(&Part) -> Option<String>| Array::Text(moved.iter().map(|p| f(p)).collect());
    let mut columns = vec![Array::Int(
        moved.iter().map(|p| Some(p.3.cost_code_id)).collect(),
    )];
    if synced {
        columns.extend([
            text(&|p| Some(p.3.code.to_string())),
            text(&|p| Some(p.3.full_code.to_string())),
            text(&|p| Some(p.3.description.to_string())),
            Array::Bool(moved.iter().map(|p| p.3.active).collect()),
            text(&|p| Some(p.1.to_owned())),
        ]);
    } else {
        columns.extend([
            text(&|p| Some(p.1.to_owned())),
            text(&|p| p.2.map(str::to_owned)),
        ]);
    }
    let (table, rows) = rows_table(tx.postgres(), shared.len(), columns);
    let sql = format!(
        "UPDATE cost_codes SET sync_status = $1, updated_at = $2, {set} FROM {table} \
         WHERE cost_codes.id = v.column1 AND cost_codes.sync_status = '{}'",
        SyncState::Exporting
    );
    tx.execute(AssertSqlSafe(sql), shared.into_iter().chain(rows))
        .await?;
    Ok(())
}

/// The parent's state as stored, converted into [`ExportRow::parent_state`] as the row is read
/// (so `job_rows` builds its rows once). A row type of its own because the conversion must name
/// a type of this crate: one from `Option<String>` to `Option<SyncState>` would be between two
/// foreign types.
#[derive(sqlx::FromRow)]
struct ParentStatus {
    parent_status: Option<String>,
}

impl TryFrom<ParentStatus> for Option<SyncState> {
    type Error = UnknownState;
    fn try_from(p: ParentStatus) -> Result<Self, UnknownState> {
        p.parent_status.map(SyncState::try_from).transpose()
    }
}

/// A job's rows to export, in [`ExportRow`]'s order and named as its fields, parents first.
const JOB_COLUMNS: &str = "i.id AS item_id, i.cost_code_id, i.code, i.full_code, i.description, \
                           i.active, i.parent_full_code, i.origin_id, i.gl_income_account, \
                           i.gl_expense_account, pc.sync_status AS parent_status, i.from_code, \
                           i.from_full_code, i.from_description, i.from_active";
const JOB_ROWS: &str = "FROM erp_items i JOIN cost_codes c ON c.id = i.cost_code_id LEFT JOIN \
                        cost_codes pc ON pc.id = c.parent_id WHERE i.export_job_id = $1 AND \
                        i.status = $2 ORDER BY i.tier, i.sort_key";

/// The names [`JOB_COLUMNS`] gives its columns, in its order: what SQLite packs.
fn job_column_names() -> String {
    JOB_COLUMNS
        .split(',')
        .filter_map(|c| c.rsplit([' ', '.']).next())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Leaves out the jobs of a company whose ERP pulls its work (the QuickBooks Web Connector):
/// they wait for its session, not for the worker.
pub(crate) const NOT_PULLED: &str =
    "company_id NOT IN (SELECT company_id FROM erp_connections WHERE pulled)";

impl Db {
    /// Takes the oldest due job (or one whose worker's lease ran out) for `lease`; the jobs of a
    /// pulled connection (the QuickBooks Web Connector) are left to the ERP's session.
    pub async fn claim_export_job(
        &self, lease: Duration,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let (queued, running) = (JobStatus::Queued, JobStatus::Running);
        self.claim(
            &Lease {
                table: "export_jobs",
                set: &format!(
                    "status = '{running}', locked_until = $1, attempts = \
                     attempts + 1, claims = claims + 1"
                ),
                due: &format!(
                    "((status = '{queued}' AND run_after <= $2) OR (status = \
                     '{running}' AND locked_until < $2)) AND {NOT_PULLED}"
                ),
                order: "id",
                returning: "id, company_id, attempts, erp_failures, claims",
            },
            now(),
            lease,
        )
        .await
    }

    /// Extends the lease while a long export runs; `false` when another claim has taken the
    /// job over (this one's lease ran out). A job this claim has just finished is still its own:
    /// the renewal then extends nothing and says `true`.
    pub async fn renew_lease(&self, job: &ClaimedJob, lease: Duration) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE export_jobs SET locked_until = CASE WHEN status = '{}' THEN $2 ELSE \
             locked_until END WHERE id = $1 AND claims = $3",
            JobStatus::Running
        );
        let renewed = self
            .pool()
            .execute(
                AssertSqlSafe(sql),
                [job.id.into(), (now() + lease).into(), job.claims.into()],
            )
            .await?;
        Ok(renewed > 0)
    }

    /// The job's codes still to export, parents first. A 100,000-code job's rows come packed
    /// on SQLite, a thousand to an array ([`Db::fetch_packs`]): one at a time, they took ~1 s
    /// to cross from SQLite's thread against ~0.2 s for the statement itself (BENCHMARKS.md).
    pub async fn job_rows(&self, job: i64) -> Result<Vec<ExportRow>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS}, i.tier, i.sort_key {JOB_ROWS}");
        self.fetch_packs(
            &sql,
            &job_column_names(),
            "tier, sort_key",
            [job.into(), ItemStatus::Exporting.as_str().into()],
        )
        .await
    }

    /// Records what the ERP said for each row, and closes the job once nothing is left to export.
    /// Set-based (three statements per [`outcome_chunk`] rows), so a 100,000-code export commits
    /// quickly.
    /// `rows` need only hold the rows the outcomes are about (a batch's, not the whole job's):
    /// they are indexed on every call. `delivered` names the file the synced ones were
    /// written to when no ERP confirmed them (the file connector); the job keeps it too, so its
    /// rows say where they went after the company's connection has changed.
    /// `false`, with nothing recorded, when the job is no longer this claim's: the claim that
    /// took it over exports the rows and records them.
    pub async fn record_outcomes<'r>(
        &self, job: &ClaimedJob, rows: impl IntoIterator<Item = &'r ExportRow>,
        outcomes: &[(i64, Outcome)], delivered: Option<Delivery<'_>>,
    ) -> Result<bool, StoreError> {
        let by_item: std::collections::HashMap<i64, &ExportRow> =
            rows.into_iter().map(|r| (r.item_id, r)).collect();
        let by_item = &by_item;
        let ts = now();
        // The state machine decides where confirmed and refused codes go.
        let synced = SyncState::Exporting
            .apply(Event::Confirmed)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let failed = SyncState::Exporting
            .apply(Event::Refused)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let exporting = ItemStatus::Exporting.as_str();
        let before = json!({"sync_status": SyncState::Exporting}).to_string();
        let before = before.as_str();
        self.write(|tx| {
            Box::pin(async move {
                // The outcomes change the ERP list's codes, so its `version` moves (the API's
                // contract: "version changes whenever any code in the list changes"); the list
                // is locked first, as every write that changes codes does.
                crate::queue::lock_erp_list(tx, job.company_id).await?;
                // The job's row, held to the commit: a claim cannot take the job over while
                // this one records, and a claim already replaced records nothing. (The list's
                // version has moved for nothing then; the transaction commits, harmlessly.)
                // A batch recorded is the ERP answering: its failures in a row end.
                let sql = format!(
                    "UPDATE export_jobs SET erp_failures = 0 WHERE id = $1 AND {}",
                    held("export_jobs", "$2")
                );
                if tx
                    .execute(AssertSqlSafe(sql), [job.id.into(), job.claims.into()])
                    .await?
                    == 0
                {
                    return Ok(false);
                }
                tx.hold_triggers(job.company_id, outcomes.len()).await?;
                // The codes each outcome reached, for their events.
                let (mut synced_codes, mut failed_codes) = (Vec::new(), Vec::new());
                for chunk in outcomes.chunks(outcome_chunk(tx.postgres())) {
                    // Each action spelled out, as `audit::ACTIONS` lists it.
                    for (state, action, keep) in [
                        (synced, "cost_code.synced", true),
                        (failed, "cost_code.failed", false),
                    ] {
                        let part: Vec<Part> = chunk
                            .iter()
                            .filter_map(|(id, o)| {
                                let row = by_item.get(id)?;
                                match (o, keep) {
                                    (Outcome::Synced { origin_id }, true) => {
                                        Some((*id, origin_id.as_str(), None, *row))
                                    }
                                    (Outcome::Failed { message, by }, false) => {
                                        Some((*id, message.as_str(), Some(by.as_str()), *row))
                                    }
                                    _ => None,
                                }
                            })
                            .collect();
                        if part.is_empty() {
                            continue;
                        }
                        let column = if keep { "origin_id" } else { "erp_message" };
                        // The items are found by id. `+` keeps the job's index out of the
                        // plan: with statistics that take the job for a small one (SQLite 3.51
                        // after an `ANALYZE` taken before the accept), the planner walked the
                        // job's items for each row of the chunk, and 100,000 outcomes took 98 s
                        // instead of 0.5 (`python3` on the schema, linked to the same SQLite).
                        let (table, mut args) = rows_table(
                            tx.postgres(),
                            0,
                            vec![
                                Array::Int(part.iter().map(|p| Some(p.0)).collect()),
                                Array::Text(part.iter().map(|p| Some(p.1.to_owned())).collect()),
                                Array::Text(part.iter().map(|p| p.2.map(str::to_owned)).collect()),
                            ],
                        );
                        // The job's placeholder after the rows': SQLite binds by position only
                        // when the placeholders come in order (`tx::for_sqlite`), and by name
                        // 10 times slower (0.34 s for 5,000 rows).
                        args.push(job.id.into());
                        let sql = format!(
                            "UPDATE erp_items SET status = '{state}', {column} = \
                             v.column2, refused_by = v.column3 FROM {table} \
                             WHERE erp_items.id = v.column1 AND erp_items.status = \
                             '{exporting}' AND +erp_items.export_job_id = ${} RETURNING \
                             erp_items.id",
                            args.len()
                        );
                        let moved: Vec<(i64,)> = tx.fetch_all(AssertSqlSafe(sql), args).await?;
                        let moved: std::collections::HashSet<i64> =
                            moved.into_iter().map(|(id,)| id).collect();
                        // Only the items this statement moved go on: an outcome for an item
                        // already recorded (a batch redone after a crash) is no change, and
                        // gets no audit row or event.
                        let moved: Vec<&Part> =
                            part.iter().filter(|(id, ..)| moved.contains(id)).collect();
                        if moved.is_empty() {
                            continue;
                        }
                        let codes = moved.iter().map(|(_, _, _, row)| row.cost_code_id);
                        if keep {
                            synced_codes.extend(codes);
                        } else {
                            failed_codes.extend(codes);
                        }
                        codes_follow(tx, state, keep, ts, &moved, delivered).await?;
                        let (table, args) = rows_table(
                            tx.postgres(),
                            4,
                            vec![
                                Array::Int(moved.iter().map(|p| Some(p.3.cost_code_id)).collect()),
                                Array::Text(
                                    moved
                                        .iter()
                                        .map(|(_, text, ..)| {
                                            let after = if keep {
                                                json!({"sync_status": state, "origin_id": text,
                                                    "export_job_id": job.id})
                                            } else {
                                                json!({"sync_status": state, "erp_message": text,
                                                    "export_job_id": job.id})
                                            };
                                            Some(after.to_string())
                                        })
                                        .collect(),
                                ),
                            ],
                        );
                        let sql = format!(
                            "INSERT INTO audit_events (company_id, at, actor_id, action, \
                             entity_type, entity_id, before, after) SELECT $1, $2, NULL, $3, \
                             'cost_code', v.column1, $4, v.column2 FROM {table}"
                        );
                        let shared: [Arg; 4] = [
                            job.company_id.into(),
                            ts.into(),
                            action.into(),
                            before.into(),
                        ];
                        tx.execute(AssertSqlSafe(sql), shared.into_iter().chain(args))
                            .await?;
                    }
                }
                if let Some(d) = delivered {
                    tx.execute(
                        "UPDATE export_jobs SET delivered_to = $2, delivered_for = $3 WHERE id = $1",
                        [job.id.into(), d.file.into(), d.erp.into()],
                    )
                    .await?;
                }
                let about = About {
                    export_job: Some(job.id),
                    ..About::default()
                };
                for (state, codes) in [(synced, &synced_codes), (failed, &failed_codes)] {
                    if let Some(event) = EventType::of_outcome(state) {
                        events::code_events_for(tx, job.company_id, event, about, codes).await?;
                    }
                }
                // Its counts are kept as it finishes: a retry later moves its failed items on.
                let count = |state: ItemStatus| {
                    format!(
                        "(SELECT COALESCE(SUM(n), 0) FROM job_item_counts WHERE export_job_id = \
                         $1 AND status = '{state}')"
                    )
                };
                let sql = format!(
                    "UPDATE export_jobs SET status = '{}', finished_at = $2, \
                     locked_until = NULL, done_synced = {}, done_failed = {} WHERE id = $1 \
                     AND {} AND NOT EXISTS (SELECT 1 FROM erp_items WHERE export_job_id = $1 \
                     AND status = '{exporting}')",
                    JobStatus::Done,
                    count(ItemStatus::Synced),
                    count(ItemStatus::Failed),
                    held("export_jobs", "$3")
                );
                let closed = tx
                    .execute(
                        AssertSqlSafe(sql),
                        [job.id.into(), ts.into(), job.claims.into()],
                    )
                    .await?
                    > 0;
                // Notifications (docs/rules.md §6): once the job is finished, its failures go to
                // their senders.
                if closed {
                    outbox::notify_export_failed(tx, job.company_id, job.id).await?;
                    events::job_done_event(tx, job.company_id, job.id).await?;
                }
                Ok(true)
            })
        })
        .await
    }

    /// The ERP could not be reached: try again after `delay`, keeping the error for the page.
    /// `attempt` is what this attempt gives back: nothing (0: one more ERP failure in a row),
    /// or the attempt itself (1) when nothing failed and the ERP only asked to wait. Only the
    /// job's claim puts it back (`false`: another claim has it).
    pub async fn retry_job_later(
        &self, job: &ClaimedJob, error: &str, delay: Duration, attempt: i64,
    ) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE export_jobs SET status = $4, run_after = $2, locked_until = NULL, \
             last_error = $3, attempts = attempts - $6, erp_failures = erp_failures + 1 - $6 \
             WHERE id = $1 AND {}",
            held("export_jobs", "$5")
        );
        let queued = self
            .pool()
            .execute(
                AssertSqlSafe(sql),
                [
                    job.id.into(),
                    (now() + delay).into(),
                    error.into(),
                    JobStatus::Queued.as_str().into(),
                    job.claims.into(),
                    attempt.into(),
                ],
            )
            .await?;
        Ok(queued > 0)
    }

    /// When the next queued job is due, so an idle worker knows how long it may sleep (the
    /// jobs of a pulled connection wait for the ERP, not for the worker).
    pub async fn next_job_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let sql = format!(
            "SELECT MIN(CASE WHEN status = '{}' THEN run_after ELSE \
             locked_until END) FROM export_jobs WHERE status IN {} AND {NOT_PULLED}",
            JobStatus::Queued,
            *WAITING
        );
        self.pool().scalar(AssertSqlSafe(sql), []).await
    }

    /// For the operator's alerts, over the jobs the worker has to do (not those waiting for a
    /// Web Connector, which wait for QuickBooks all night): when the oldest was queued, how
    /// many wait to retry after the ERP failed, and how many codes are failed now.
    pub async fn export_alarms(&self) -> Result<ExportAlarms, StoreError> {
        let sql = format!(
            "SELECT MIN(created_at) FROM export_jobs WHERE status IN {} AND {NOT_PULLED}",
            *WAITING
        );
        let oldest: Option<OffsetDateTime> = self.pool().scalar(AssertSqlSafe(sql), []).await?;
        let sql = format!(
            "SELECT COUNT(*) FROM export_jobs WHERE status = '{}' AND erp_failures > 0 AND \
             {NOT_PULLED}",
            JobStatus::Queued
        );
        let retrying = self.pool().scalar(AssertSqlSafe(sql), []).await?;
        let codes_failed = self
            .pool()
            .scalar(
                "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM list_state_counts WHERE \
                 sync_status = $1",
                [SyncState::Failed.as_str().into()],
            )
            .await?;
        Ok(ExportAlarms {
            oldest_seconds: oldest.map_or(0, |t| (now() - t).whole_seconds().max(0)),
            retrying,
            codes_failed,
        })
    }

    /// Export jobs waiting or running, for the operator's queue-depth gauge.
    pub async fn export_queue_depth(&self) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM export_jobs WHERE status IN {}",
            *WAITING
        );
        self.pool().scalar(AssertSqlSafe(sql), []).await
    }
}

/// What an operator alerts on: see [`Db::export_alarms`].
pub struct ExportAlarms {
    /// How long the oldest unfinished job the worker has to do has waited; 0 when none.
    pub oldest_seconds: i64,
    /// Jobs waiting to try again after their ERP failed.
    pub retrying: i64,
    /// Codes whose export failed and that no one has retried, rejected or edited yet.
    pub codes_failed: i64,
}

/// The states of a job not yet done, as an SQL list.
static WAITING: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    sql_in([JobStatus::Queued, JobStatus::Running].map(JobStatus::as_str))
});
