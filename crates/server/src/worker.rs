//! The export worker: claims due jobs from the durable queue, hands their codes to the
//! company's connector, and records each code's outcome. It runs inside `serve`; tests call
//! [`run_pending_exports`] to drive it one step at a time.
use crate::config::WorkerSettings;
use crate::ops::OpError;
use crate::ops::connection::connection;
use crate::retry::{Stop, backoff, until_due};
use crate::state::AppState;
use costbridge_domain::profile::ErpProfile;
use costbridge_domain::queue::COSTBRIDGE;
use costbridge_domain::sync::parent_problem;
use costbridge_erp::{
    ConnectorError, ExportContext, ExportLine, GlAccount, GlKind, LineResult, Lines, Previous,
};
use costbridge_storage::StoreError;
use costbridge_storage::jobs::{ClaimedJob, Delivery, ExportRow, Outcome};
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use time::Duration;
use tracing::Instrument;

/// An unreachable ERP is retried at most every ten minutes.
const MAX_BACKOFF_SECONDS: i64 = 600;

/// Why an export attempt stopped: the ERP, retried with backoff, or the database, after which
/// the job runs again once its lease has run out.
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Erp(#[from] ConnectorError),
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    /// This claim's lease ran out while it was busy and another claim took the job over.
    #[error("the job was taken over")]
    TakenOver,
    /// The service is stopping: the job goes back to the queue between two batches.
    #[error("the service is stopping")]
    Stopping,
    /// The lease could not be renewed (the database out of reach) and is about to run out:
    /// another worker may claim the job then, so this one stops first.
    #[error("the export lease could not be renewed")]
    LeaseLost,
}

/// What the job's page says while a job put back by a stopping server waits for the next one.
const STOPPED: &str = "Costbridge was stopped (a restart or an upgrade) between two batches; \
     the export goes on where it stopped once Costbridge runs again";

/// Says that this claim stopped because another took the job over: it records nothing more.
fn taken_over() {
    tracing::warn!(
        "another worker or Web Connector session took this export job over after this one's \
         lease ran out (a stalled process, clocks apart); this one records nothing, the other \
         records the outcomes"
    );
}

/// Records outcomes outside an ERP call (and the Web Connector's); a claim that was taken over
/// only says so.
pub(crate) async fn record(
    state: &AppState, job: &ClaimedJob, rows: &[ExportRow], outcomes: &[(i64, Outcome)],
) -> Result<(), StoreError> {
    if !state.db.record_outcomes(job, rows, outcomes, None).await? {
        taken_over();
    }
    Ok(())
}

/// Runs every job that is due now; returns how many were processed.
pub async fn run_pending_exports(state: &AppState, cfg: &WorkerSettings) -> anyhow::Result<usize> {
    run_due(state, cfg, &Stop::never()).await
}

/// [`run_pending_exports`], taking no new job once the service is stopping.
async fn run_due(state: &AppState, cfg: &WorkerSettings, stop: &Stop) -> anyhow::Result<usize> {
    let mut done = 0;
    while !stop.now() {
        let lease = Duration::seconds(cfg.lease_seconds);
        // The lease runs from the claim (no later than this): reading a big job's rows and its
        // connection comes out of it.
        let claimed = tokio::time::Instant::now();
        let Some(job) = state.db.claim_export_job(lease).await? else {
            break;
        };
        process(state, cfg, &job, stop, claimed).await?;
        done += 1;
    }
    Ok(done)
}

#[tracing::instrument(skip(state, cfg, stop), fields(job = job.id, company = job.company_id, attempt = job.attempts))]
async fn process(
    state: &AppState, cfg: &WorkerSettings, job: &ClaimedJob, stop: &Stop,
    claimed: tokio::time::Instant,
) -> anyhow::Result<()> {
    let rows = state.db.job_rows(job.id).await?;
    let conn = match connection(state, job.company_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            let message = "the company has no ERP connection any more";
            return Ok(record(state, job, &rows, &fail_all(&rows, message)).await?);
        }
        Err(OpError::Store(e)) => return Err(e.into()),
        // Settings this instance cannot read (another key, a profile from a newer version)
        // are the installation's state, not the codes' fault: the job waits and is tried
        // again, as with an ERP that does not answer, and fails its rows only in the end.
        Err(OpError::Broken(m)) => {
            let error = format!(
                "Costbridge cannot read the company's ERP connection ({m}); the job runs again \
                 later. Operator: check that every instance has the same [secrets] key and \
                 runs the same version"
            );
            return retry_or_give_up(state, cfg, job, error, job.erp_failures).await;
        }
        Err(e) => {
            return Ok(record(state, job, &rows, &fail_all(&rows, &e.to_string())).await?);
        }
    };
    let delimiter = state.db.company_delimiter(job.company_id).await?;

    let (orphans, to_export) = parents_first(&rows, &conn.profile);
    // The orphans fail at once. With nothing to export, the same call closes the job: one found
    // empty is closed, not left running to be claimed again every time its lease runs out.
    if !orphans.is_empty() || to_export.is_empty() {
        if !state.db.record_outcomes(job, &rows, &orphans, None).await? {
            taken_over();
            return Ok(());
        }
        if to_export.is_empty() {
            return Ok(());
        }
    }
    let ctx = ExportContext {
        job_id: job.id,
        delimiter,
        max_description: conn.profile.truncation_limit(),
    };
    // Each batch's outcomes are committed as soon as the ERP answers, so the page shows
    // progress and a crash loses at most one batch (which the idempotent connectors redo).
    // Whether the ERP answered a batch in this run: its failures in a row then start afresh
    // (the claim's `erp_failures` was read before).
    let answered = AtomicBool::new(false);
    let export_all = async {
        let needs_accounts = to_export
            .iter()
            .any(|r| r.gl_income_account.is_some() || r.gl_expense_account.is_some());
        let accounts = if needs_accounts {
            conn.settings
                .gl_accounts()
                .instrument(tracing::info_span!(
                    "connector",
                    call = "gl_accounts",
                    kind = conn.settings.kind()
                ))
                .await?
        } else {
            Vec::new()
        };
        let (gone, going) = accounts_gone(&to_export, &accounts);
        if !gone.is_empty()
            && !state
                .db
                .record_outcomes(job, to_export.iter().copied(), &gone, None)
                .await?
        {
            return Err(JobError::TakenOver);
        }
        // Where the codes went when no ERP confirms them: the codes page says so.
        let file = conn.settings.delivered_to(job.id);
        let delivered = file.as_deref().map(|file| Delivery {
            file,
            erp: &conn.profile.name,
        });
        for (i, batch) in going.chunks(conn.settings.batch_size()).enumerate() {
            // A stopping service finishes the batch in hand, not the job: a large export
            // outlasted the grace a container or systemd gives, was killed, and waited for its
            // lease to run out before another instance went on.
            if i > 0 && stop.now() {
                return Err(JobError::Stopping);
            }
            // A file export's batch is the whole job: its lines are made as the file is written.
            let lines = RowLines {
                rows: batch,
                accounts: &accounts,
            };
            let results = conn
                .settings
                .export(&ctx, &lines)
                .instrument(tracing::info_span!(
                    "connector",
                    call = "export",
                    kind = conn.settings.kind(),
                    lines = batch.len()
                ))
                .await?;
            let outcomes: Vec<(i64, Outcome)> = results
                .into_iter()
                .map(|(id, r)| match r {
                    LineResult::Synced { origin_id } => (id, Outcome::Synced { origin_id }),
                    LineResult::Failed { message } => {
                        (id, refused(conn.settings.erp_name(), message))
                    }
                })
                .collect();
            if !state
                .db
                .record_outcomes(job, batch.iter().copied(), &outcomes, delivered)
                .await?
            {
                return Err(JobError::TakenOver);
            }
            answered.store(true, Ordering::Relaxed);
        }
        Ok(())
    };
    match with_lease(state, cfg, job, claimed, export_all).await {
        Ok(()) => {}
        Err(JobError::TakenOver) => taken_over(),
        // Nothing can be recorded without the database: the job runs again once its lease
        // has run out, and the connectors look up what this run already exported.
        Err(JobError::LeaseLost) => tracing::error!(
            "export stopped: its lease could not be renewed (is the database reachable?); the \
             job runs again once the lease has run out"
        ),
        // Due at once, and the run given back: not the ERP's failure.
        Err(JobError::Stopping) => {
            tracing::info!("service stopping: export job put back between two batches");
            if !state
                .db
                .retry_job_later(job, STOPPED, Duration::ZERO, 1)
                .await?
            {
                taken_over();
            }
        }
        // Not the ERP's fault: no item is failed for it and the ERP's backoff does not apply.
        Err(JobError::Store(e)) => {
            tracing::error!(
                error = %e,
                "storage failure during the export; the job runs again when its lease runs out"
            );
            return Err(e.into());
        }
        // Xero's rate limit: the job waits as long as the ERP asks and fails nothing.
        Err(JobError::Erp(ConnectorError::RateLimited { message, after })) => {
            tracing::info!(wait_s = after.as_secs(), "{message}");
            let after = Duration::try_from(after)?;
            if !state.db.retry_job_later(job, &message, after, 1).await? {
                taken_over();
            }
        }
        Err(JobError::Erp(e)) => {
            let before = if answered.load(Ordering::Relaxed) {
                0
            } else {
                job.erp_failures
            };
            retry_or_give_up(state, cfg, job, e.to_string(), before).await?
        }
    }
    Ok(())
}

/// Every row refused by Costbridge itself, with one message.
fn fail_all(rows: &[ExportRow], message: &str) -> Vec<(i64, Outcome)> {
    rows.iter()
        .map(|r| {
            let by = COSTBRIDGE.into();
            (
                r.item_id,
                Outcome::Failed {
                    message: message.into(),
                    by,
                },
            )
        })
        .collect()
}

/// What the job needs is out of reach (the ERP, or the stored connection this instance cannot
/// read): the job waits and is tried again with backoff, and only after `max_attempts` such
/// failures in a row are its rows left failed, saying so. Not the codes' fault, so nothing
/// fails before that; and restarts or storage failures on the way are not the ERP's, so they
/// count for nothing.
/// `before`: the ERP's failures in a row before this one.
async fn retry_or_give_up(
    state: &AppState, cfg: &WorkerSettings, job: &ClaimedJob, error: String, before: i64,
) -> anyhow::Result<()> {
    let failures = before + 1;
    if failures < cfg.max_attempts {
        let delay = backoff(cfg.backoff_seconds, failures, MAX_BACKOFF_SECONDS);
        tracing::warn!(
            error,
            retry_in_s = delay.whole_seconds(),
            "export postponed; will retry"
        );
        if !state.db.retry_job_later(job, &error, delay, 0).await? {
            taken_over();
        }
        return Ok(());
    }
    // The rows say what to do next, since the cause was never theirs.
    let message = format!(
        "{error} (Costbridge gave up after {failures} attempts). Once the ERP connection works \
         (Company settings → ERP connection → Test connection), retry these codes from Failed \
         to Export"
    );
    let left = state.db.job_rows(job.id).await?;
    Ok(record(state, job, &left, &fail_all(&left, &message)).await?)
}

/// A row the connector failed: the ERP refused it, unless Costbridge itself declined to
/// overwrite the ERP's changed values (every connector's `conflict:` message).
pub(crate) fn refused(erp: &str, message: String) -> Outcome {
    let by = if message.starts_with("conflict:") {
        COSTBRIDGE
    } else {
        erp
    };
    Outcome::Failed {
        message,
        by: by.into(),
    }
}

/// Rows whose chosen GL account the ERP's chart no longer has (archived in Xero, closed in
/// Tryton, taken off the file connector's list since it was picked) fail, naming it, instead of
/// going out without it; so do their children in the job (`rows` are parents first), whose
/// parent the ERP then does not have. The other rows go on.
fn accounts_gone<'r>(
    rows: &[&'r ExportRow], accounts: &[GlAccount],
) -> (Vec<(i64, Outcome)>, Vec<&'r ExportRow>) {
    let mut failed: HashSet<&str> = HashSet::new();
    let mut outcomes = Vec::new();
    let mut go = Vec::with_capacity(rows.len());
    for &r in rows {
        let missing = [
            (r.gl_income_account.as_deref(), GlKind::Income),
            (r.gl_expense_account.as_deref(), GlKind::Expense),
        ]
        .into_iter()
        .find_map(|(code, kind)| {
            let code = code?;
            (!accounts.iter().any(|a| a.code == code && a.kind == kind)).then_some((code, kind))
        });
        let message = match (missing, r.parent_full_code.as_deref()) {
            (Some((code, kind)), _) => format!(
                "GL {} account {code} is not in the ERP connection's chart of accounts any more \
                 (closed, archived or removed since it was picked); pick another account on \
                 this row and retry it",
                kind.as_str()
            ),
            (None, Some(parent)) if failed.contains(parent) => format!(
                "parent '{parent}' failed in this export (its GL account is gone); pick another \
                 account for the parent, then retry the parent and this code"
            ),
            _ => {
                go.push(r);
                continue;
            }
        };
        failed.insert(&r.full_code);
        let by = COSTBRIDGE.into();
        outcomes.push((r.item_id, Outcome::Failed { message, by }));
    }
    (outcomes, go)
}

/// Parents first: a child whose parent is neither synced nor in this export fails, naming
/// it, and so do that child's own children in the export (`rows` are parents first): the ERP
/// would otherwise get a sub-item whose parent it does not have. A row whose description the
/// ERP cannot store (`profile`'s character set; sent before the rule, or by an older version)
/// fails too, rather than reaching QuickBooks as mangled text. The other rows go to the ERP.
/// Shared with the QuickBooks Web Connector's sessions.
pub(crate) fn parents_first<'r>(
    rows: &'r [ExportRow], profile: &ErpProfile,
) -> (Vec<(i64, Outcome)>, Vec<&'r ExportRow>) {
    let in_job: HashSet<&str> = rows.iter().map(|r| &*r.full_code).collect();
    let mut failed: HashSet<&str> = HashSet::new();
    let mut orphans = Vec::new();
    let mut to_export = Vec::new();
    for r in rows {
        let parent = r.parent_full_code.as_deref();
        let message = match parent {
            Some(p) if failed.contains(p) => Some(format!(
                "parent '{p}' failed in this export (see its message); once the parent is \
                 exported, retry this code"
            )),
            _ if let Some(why) = profile.unstorable(&r.description) => {
                // The code is locked while its item is in the queue: a retry fails the same
                // way, so the way out goes through a reject.
                Some(format!(
                    "{why}. To do so, an approver rejects this code on ERP Integrations (a retry fails \
                     the same way), then an admin corrects its description and sends it to the \
                     ERP again"
                ))
            }
            _ => parent_problem(
                parent,
                r.parent_state,
                parent.is_some_and(|p| in_job.contains(p)),
            ),
        };
        match message {
            Some(message) => {
                failed.insert(&r.full_code);
                orphans.push((
                    r.item_id,
                    Outcome::Failed {
                        message,
                        by: COSTBRIDGE.into(),
                    },
                ))
            }
            None => to_export.push(r),
        }
    }
    (orphans, to_export)
}

/// The row as the connector reads it, borrowing the row and the accounts it names.
pub(crate) fn line<'a>(
    r: &'a ExportRow, income: Option<&'a GlAccount>, expense: Option<&'a GlAccount>,
) -> ExportLine<'a> {
    let previous = (|| {
        Some(Previous {
            code: r.from_code.as_deref()?,
            full_code: r.from_full_code.as_deref()?,
            description: r.from_description.as_deref()?,
            active: r.from_active?,
        })
    })();
    ExportLine {
        item_id: r.item_id,
        code: &r.code,
        full_code: &r.full_code,
        description: &r.description,
        active: r.active,
        parent_full_code: r.parent_full_code.as_deref(),
        origin_id: r.origin_id.as_deref(),
        previous,
        income,
        expense,
    }
}

/// A batch's rows as the connector reads them: each line is made when it is read, borrowing its
/// row and the connection's accounts it names (every one there: [`accounts_gone`] failed the
/// rows naming one the ERP does not have).
struct RowLines<'a> {
    rows: &'a [&'a ExportRow],
    accounts: &'a [GlAccount],
}

impl Lines for RowLines<'_> {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn line(&self, i: usize) -> ExportLine<'_> {
        let r = self.rows[i];
        // An account code may name an income and an expense account alike: each by its kind.
        let account = |code: Option<&str>, kind: GlKind| {
            code.and_then(|c| self.accounts.iter().find(|a| a.code == c && a.kind == kind))
        };
        line(
            r,
            account(r.gl_income_account.as_deref(), GlKind::Income),
            account(r.gl_expense_account.as_deref(), GlKind::Expense),
        )
    }
}

/// Keeps the job's lease alive while a long export runs, so no other worker takes it over,
/// and stops the work once another has (the lease ran out all the same: a stalled process).
/// The renewal runs beside the work, never instead of it: on SQLite a renewal waits for the
/// write lock, which the work may hold in an open transaction (recording a batch), so awaiting
/// the renewal in place of the work would stall both until the busy timeout.
async fn with_lease(
    state: &AppState, cfg: &WorkerSettings, job: &ClaimedJob, claimed: tokio::time::Instant,
    work: impl Future<Output = Result<(), JobError>>,
) -> Result<(), JobError> {
    let lease = Duration::seconds(cfg.lease_seconds);
    let renew = || state.db.renew_lease(job, lease);
    hold_lease(lease.unsigned_abs(), claimed, renew, work).await
}

/// [`with_lease`] with the renewal given: renewed every third of `lease`, which began at
/// `claimed`. Renewals that fail or hang (the database out of reach, the ERP not) stop the work
/// once the lease has less than a renewal left: another worker may claim the job when it runs
/// out, and both would export (twice into an ERP that takes duplicate codes, such as Tryton).
async fn hold_lease<R: Future<Output = Result<bool, StoreError>>>(
    lease: std::time::Duration, claimed: tokio::time::Instant, mut renew: impl FnMut() -> R,
    work: impl Future<Output = Result<(), JobError>>,
) -> Result<(), JobError> {
    let every = lease / 3;
    let renew = async {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut renewed = claimed;
        loop {
            tick.tick().await;
            // A renewal still unanswered when a renewal's time is all that is left counts as
            // failed: waiting on it, the work went on past the lease.
            match tokio::time::timeout_at(renewed + lease - every, renew()).await {
                Ok(Ok(true)) => renewed = tokio::time::Instant::now(),
                Ok(Ok(false)) => return Err(JobError::TakenOver),
                failed => {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "the database did not answer".to_owned(),
                    };
                    tracing::warn!(error, "could not renew the export lease");
                    if renewed.elapsed() + every >= lease {
                        return Err(JobError::LeaseLost);
                    }
                }
            }
        }
    };
    // The work first: once it is done, a renewal that finished beside it says nothing more.
    tokio::select! {
        biased;
        out = work => out,
        lost = renew => lost,
    }
}

/// The worker inside `serve`: runs due jobs, then sleeps until woken, the next job is due, or
/// a few seconds pass (another instance may have queued work).
pub async fn run(state: AppState, cfg: WorkerSettings, mut stop: Stop) {
    loop {
        if let Err(e) = run_due(&state, &cfg, &stop).await {
            tracing::error!(error = %e, "export worker step failed");
        }
        if stop.now() {
            return;
        }
        let wait = until_due(state.db.next_job_due().await, Duration::milliseconds(50));
        tokio::select! {
            _ = stop.wait() => return,
            _ = state.worker_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    /// Renewals that fail stop a long export before its lease runs out (when another worker
    /// may claim it); renewals that succeed let it run past any number of leases.
    #[tokio::test]
    async fn an_unrenewable_lease_stops_the_work_before_it_runs_out() {
        let lease = Std::from_millis(300);
        let now = tokio::time::Instant::now;
        // The work never ends on its own: what a renewal does is what stops it, or not.
        type Renewal = std::pin::Pin<Box<dyn Future<Output = Result<bool, StoreError>>>>;
        let stopped = |renew: fn() -> Renewal| async move {
            tokio::time::timeout(
                lease,
                hold_lease(lease, now(), renew, std::future::pending()),
            )
            .await
        };
        let down: fn() -> Renewal =
            || Box::pin(async { Err(StoreError::Conflict("the database is out of reach".into())) });
        let hung: fn() -> Renewal = || Box::pin(std::future::pending());
        for (how, renew) in [("failing", down), ("unanswered", hung)] {
            let stopped = stopped(renew).await;
            assert!(
                matches!(stopped, Ok(Err(JobError::LeaseLost))),
                "{how}: {stopped:?}"
            );
        }
        let up = || async { Ok(true) };
        let long_work = async {
            tokio::time::sleep(lease * 3).await;
            Ok(())
        };
        assert!(hold_lease(lease, now(), up, long_work).await.is_ok());
    }
}
