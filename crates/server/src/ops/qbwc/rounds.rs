//! The rounds of a Web Connector session. Each round first asks QuickBooks for the codes it is
//! about to write (by ListID once the Web Connector confirmed them, else by full name), then
//! adds or modifies them, parents before children, at most `BATCH` codes a round. Every answer
//! is applied in its own transactions before the next request is made, and what a session's
//! queries found belongs to that session: a session cut off at any point (QBWC closed,
//! Costbridge killed) leaves codes *exporting*, and the next session asks QuickBooks again, so
//! an add whose answer was lost is found and taken, never made twice. Outcomes go through the
//! same recording as the worker's (audit, emails, states).
use super::accounts;
use crate::ops::OpError;
use crate::ops::connection::Connection;
use crate::state::AppState;
use crate::worker::{line, parents_first};
use costbridge_erp::qbwc::plan::{self, Confirmed, Decision, Found};
use costbridge_erp::qbwc::qbxml::{self, QbItem, Request};
use costbridge_erp::{Connector, ExportContext, GlAccount, GlKind, LineResult};
use costbridge_storage::jobs::Outcome;
use costbridge_storage::now;
use costbridge_storage::pull::RemoteCode;
use costbridge_storage::qbwc::{QbwcConfirmed, QbwcSession};
use std::collections::HashMap;
use time::Duration;

/// The accounts are read again by a session with nothing else to do once this old.
const ACCOUNTS_FRESH: Duration = Duration::hours(1);
const ACCOUNTS_ID: &str = "accounts";
/// Sync from ERP: every service item.
const PULL_ID: &str = "pull";
/// Who refused a code QuickBooks answered with an error, as the emails name it.
const QUICKBOOKS: &str = "QuickBooks Desktop";

/// Which request an answer is for: `accounts`, or `q`/`a`/`m` and the queue item's id.
fn answered(id: &str) -> Option<(char, i64)> {
    let mut chars = id.chars();
    let kind = chars.next()?;
    Some((kind, chars.as_str().parse().ok()?))
}

/// Applies QuickBooks' answers to one round: the accounts, what the queries found, and each
/// add's or modification's outcome (its `EditSequence` kept first).
pub(super) async fn apply(
    state: &AppState, s: &QbwcSession, conn: &Connection, answers: Vec<qbxml::Answer>,
) -> Result<(), OpError> {
    let company = s.company_id;
    let job = state.db.qbwc_job(company).await?;
    let rows = match &job {
        Some(j) => state.db.job_rows(j.id).await?,
        None => Vec::new(),
    };
    let by_item: HashMap<i64, _> = rows.iter().map(|r| (r.item_id, r)).collect();
    let mut found = Vec::new();
    let mut sequences = Vec::new();
    let mut outcomes = Vec::new();
    for a in answers {
        if a.request_id == ACCOUNTS_ID {
            let text = (a.status == 0)
                .then(|| serde_json::to_string(&a.accounts))
                .transpose()
                .map_err(|e| OpError::Broken(e.to_string()))?;
            if text.is_none() {
                tracing::warn!(status = a.status, message = %a.message, "QuickBooks refused the account query");
            }
            state
                .db
                .set_qbwc_accounts(company, &s.ticket_hash, text.as_deref())
                .await?;
            continue;
        }
        if a.request_id == PULL_ID {
            pull(state, company, conn, &a).await?;
            continue;
        }
        let Some((kind, item)) = answered(&a.request_id) else {
            continue;
        };
        let Some(row) = by_item.get(&item) else {
            // Answered after the code left the export (an answer QBWC sent twice): ignored.
            continue;
        };
        let first = a.items.first();
        match (kind, a.status, first) {
            ('q', 0, Some(qb)) => found.push((item, Some(json(qb)?))),
            ('q', 0 | 500, _) => found.push((item, None)),
            ('a' | 'm', 0, Some(qb)) => {
                sequences.push(confirmed_row(row.cost_code_id, qb));
                outcomes.push((
                    item,
                    Outcome::Synced {
                        origin_id: qb.list_id.clone(),
                    },
                ));
            }
            _ => outcomes.push((
                item,
                crate::worker::refused(
                    QUICKBOOKS,
                    plan::refusal(&row.full_code, a.status, &a.message),
                ),
            )),
        }
    }
    state.db.save_qbwc_found(&s.ticket_hash, &found).await?;
    // The EditSequence goes first: a crash before the outcome leaves the code exporting, and
    // the next session finds the item holding what was sent, with this EditSequence.
    state.db.save_qbwc_confirmed(company, &sequences).await?;
    if let Some(job) = &job
        && !outcomes.is_empty()
    {
        crate::worker::record(state, job, &rows, &outcomes).await?;
    }
    Ok(())
}

/// Sync from ERP with QuickBooks' service items: each item's own name is its full code (as
/// Costbridge names them), its ListID the code's ERP key.
async fn pull(
    state: &AppState, company: i64, conn: &Connection, a: &qbxml::Answer,
) -> Result<(), OpError> {
    let asked = state.db.qbwc_login(company).await?;
    let Some(actor) = asked.and_then(|l| l.pull_requested_by) else {
        // Already applied (an answer QBWC sent twice).
        return Ok(());
    };
    let summary = if a.status == 0 || a.status == 500 {
        let remote: Vec<RemoteCode> = a
            .items
            .iter()
            .map(|i| RemoteCode {
                origin_id: i.list_id.clone(),
                full_code: i.name.clone(),
                description: i.description.clone(),
                active: i.active,
            })
            .collect();
        let summary = state
            .db
            // QuickBooks read its items as it answered, after this session's exports.
            .pull_from_erp(
                company,
                conn.erp_list_id,
                actor,
                &remote,
                costbridge_storage::now(),
            )
            .await?;
        serde_json::to_value(&summary).map_err(|e| OpError::Broken(e.to_string()))?
    } else {
        serde_json::json!({"error": plan::refusal("the service item list", a.status, &a.message)})
    };
    state
        .db
        .set_qbwc_pull_result(company, &summary.to_string())
        .await?;
    Ok(())
}

/// What QuickBooks confirmed for a code, as kept for the next conflict check.
fn confirmed_row(code: i64, qb: &QbItem) -> (i64, String, QbwcConfirmed) {
    (
        code,
        qb.list_id.clone(),
        (
            qb.edit_sequence.clone(),
            qb.income.clone(),
            qb.expense.clone(),
        ),
    )
}

fn json(item: &QbItem) -> Result<String, OpError> {
    serde_json::to_string(item).map_err(|e| OpError::Broken(e.to_string()))
}

/// Decides what the session asks next, recording the outcomes known without asking (codes
/// QuickBooks already holds, conflicts, orphans); `None` when nothing is left.
pub(super) async fn advance(
    state: &AppState, s: &QbwcSession, conn: &Connection,
) -> Result<Option<String>, OpError> {
    let company = s.company_id;
    let login = state.db.qbwc_login(company).await?;
    let pull_asked = login
        .as_ref()
        .is_some_and(|l| l.pull_requested_by.is_some());
    let stale = login
        .and_then(|l| l.accounts_at)
        .is_none_or(|at| now() - at > ACCOUNTS_FRESH);
    let ctx = ExportContext {
        job_id: 0,
        delimiter: state.db.company_delimiter(company).await?,
        max_description: conn.profile.truncation_limit(),
    };
    loop {
        let job = state.db.qbwc_job(company).await?;
        if !s.accounts_read && (job.is_some() || stale) {
            return Ok(Some(qbxml::render(&[Request::Accounts {
                id: ACCOUNTS_ID.into(),
            }])));
        }
        if pull_asked {
            return Ok(Some(qbxml::render(&[Request::QueryAll {
                id: PULL_ID.into(),
            }])));
        }
        let Some(job) = job else {
            return Ok(None);
        };
        let rows = state.db.job_rows(job.id).await?;
        let (orphans, rows_ok) = parents_first(&rows, &conn.profile);
        if !orphans.is_empty() || rows_ok.is_empty() {
            // Closes the job too once nothing is left in it; the next round takes the job
            // again either way.
            crate::worker::record(state, &job, &rows, &orphans).await?;
            continue;
        }
        let chunk = &rows_ok[..rows_ok.len().min(costbridge_erp::qbwc::Qbwc::BATCH)];
        let found = state.db.qbwc_found(&s.ticket_hash).await?;
        let ctx = ExportContext {
            job_id: job.id,
            ..ctx
        };
        let accounts = known_accounts(state, company).await;
        // An account QuickBooks no longer has still goes (QuickBooks says 3140), named by its
        // code; made here so the lines can borrow it like the others.
        let gone: Vec<GlAccount> = chunk
            .iter()
            .flat_map(|r| {
                [
                    (r.gl_income_account.as_deref(), GlKind::Income),
                    (r.gl_expense_account.as_deref(), GlKind::Expense),
                ]
            })
            .filter_map(|(code, kind)| {
                let c = code?;
                (!accounts.iter().any(|a| a.code == c && a.kind == kind)).then(|| GlAccount {
                    code: c.into(),
                    name: c.into(),
                    kind,
                })
            })
            .collect();
        let account = |code: Option<&str>, kind: GlKind| {
            code.and_then(|c| {
                // By kind too: QuickBooks may number an income and an expense account alike.
                accounts
                    .iter()
                    .chain(&gone)
                    .find(|a| a.code == c && a.kind == kind)
            })
        };
        let lines: Vec<_> = chunk
            .iter()
            .map(|r| {
                (
                    *r,
                    line(
                        r,
                        account(r.gl_income_account.as_deref(), GlKind::Income),
                        account(r.gl_expense_account.as_deref(), GlKind::Expense),
                    ),
                )
            })
            .collect();
        let known: HashMap<i64, Confirmed> = state
            .db
            .qbwc_confirmed(company)
            .await?
            .into_iter()
            .map(|(code, (edit_sequence, income, expense))| {
                (
                    code,
                    Confirmed {
                        edit_sequence,
                        income,
                        expense,
                    },
                )
            })
            .collect();
        let ask: Vec<Request> = lines
            .iter()
            .filter(|(r, _)| !found.contains_key(&r.item_id))
            .map(|(r, l)| Request::Query {
                id: format!("q{}", r.item_id),
                key: plan::key(l, &ctx, known.contains_key(&r.cost_code_id)),
            })
            .collect();
        if !ask.is_empty() {
            return Ok(Some(qbxml::render(&ask)));
        }
        let mut writes = Vec::new();
        let mut outcomes = Vec::new();
        let mut sequences = Vec::new();
        for (r, l) in &lines {
            let qb: Option<QbItem> = match found.get(&r.item_id).cloned().flatten() {
                Some(text) => {
                    Some(serde_json::from_str(&text).map_err(|e| OpError::Broken(e.to_string()))?)
                }
                None => None,
            };
            let seen = qb.clone().map_or(Found::Missing, Found::Item);
            match plan::decide(l, &ctx, &seen, known.get(&r.cost_code_id)) {
                Decision::Add(item) => writes.push(Request::Add {
                    id: format!("a{}", r.item_id),
                    item,
                }),
                Decision::Mod {
                    list_id,
                    edit_sequence,
                    item,
                } => writes.push(Request::Mod {
                    id: format!("m{}", r.item_id),
                    list_id,
                    edit_sequence,
                    item,
                }),
                Decision::Done(LineResult::Synced { origin_id }) => {
                    if let Some(qb) = &qb {
                        sequences.push(confirmed_row(r.cost_code_id, qb));
                    }
                    outcomes.push((r.item_id, Outcome::Synced { origin_id }));
                }
                Decision::Done(LineResult::Failed { message }) => {
                    outcomes.push((r.item_id, crate::worker::refused(QUICKBOOKS, message)))
                }
            }
        }
        state.db.save_qbwc_confirmed(company, &sequences).await?;
        if !outcomes.is_empty() {
            crate::worker::record(state, &job, &rows, &outcomes).await?;
        }
        if !writes.is_empty() {
            return Ok(Some(qbxml::render(&writes)));
        }
    }
}

/// The accounts QuickBooks last reported (none yet: an empty list).
async fn known_accounts(state: &AppState, company: i64) -> Vec<GlAccount> {
    accounts(state, company)
        .await
        .map(|(a, _)| a)
        .unwrap_or_default()
}
