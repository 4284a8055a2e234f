//! The ERP side of a company: its connection, and Send to ERP (with retrieve). The queue the
//! sent codes land in is `queue.rs`.
use crate::codes::{CodeList, CostCode, insert_list, lock_code, unsynced_changed};
use crate::events::{self, About};
use crate::tx::{Body, Queries, Tx};
use crate::{Db, StoreError, audit, now, outbox};
use costbridge_domain::events::EventType;
use costbridge_domain::profile::InvalidCode;
use costbridge_domain::queue::{ItemStatus, sql_in};
use costbridge_domain::send::{self, CHANGED_NAMED, Changed, SendBlock, SendContext, SendReason};
use costbridge_domain::sync::{Event, SyncState};
use costbridge_domain::{ErpProfile, Permissions};
use serde::Serialize;
use serde_json::json;
use sqlx::AssertSqlSafe;
use std::collections::HashMap;
use std::sync::Arc;

pub const ERP_LIST_NAME: &str = "ERP Standard Cost Codes";

#[derive(Debug, Clone)]
pub struct StoredConnection {
    pub profile: String,
    pub connector: serde_json::Value,
    pub erp_list_id: i64,
}

/// A connection as [`Db::put_erp_connection_pulled`] saves it. `masked` is what the audit log
/// records of `connector` (secrets already replaced).
#[derive(Debug, Clone, Copy)]
pub struct PutConnection<'a> {
    pub profile: &'a str,
    pub connector: &'a serde_json::Value,
    pub masked: &'a serde_json::Value,
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
impl crate::db::Transient for SendError {
    fn is_transient(&self) -> bool {
        matches!(self, SendError::Store(e) if e.is_transient())
    }
}

/// What the Send to ERP button shows.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"enabled": true, "label": "Send to ERP", "reason_code": null, "reason": null,
    "unsynced_count": 12, "list_version": 3, "invalid_codes": []}))]
pub struct SendStatus {
    pub enabled: bool,
    pub label: &'static str,
    #[schema(required = true)]
    pub reason_code: Option<&'static str>,
    #[schema(required = true)]
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

/// A list's unsynced codes as `(id, full_code, description)`, the rows a send would take.
type Unsynced = Vec<(i64, String, String)>;

impl Sender<'_> {
    /// The unsynced codes that break the ERP's rules (none when the list is not the ERP's).
    fn invalid(&self, is_erp_list: bool, unsynced: &Unsynced) -> Vec<InvalidCode> {
        match self.profile {
            Some(p) if is_erp_list => p.invalid_codes(
                unsynced
                    .iter()
                    .map(|(i, f, d)| (*i, f.as_str(), d.as_str())),
                self.delimiter,
            ),
            _ => Vec::new(),
        }
    }

    /// The domain's verdict on sending `count` codes of which `invalid` break the ERP's rules.
    fn judge(
        &self, is_erp_list: bool, count: usize, invalid: &[InvalidCode],
        changed_since_seen: Option<Changed>,
    ) -> Result<(), SendBlock> {
        send::check(&SendContext {
            permissions: self.permissions,
            profile: self.profile,
            is_erp_list,
            unsynced_count: count as u64,
            invalid_count: invalid.len(),
            changed_since_seen,
        })
    }

    /// What the rule check of the unsynced codes depends on besides the codes themselves.
    fn rules_key(&self, is_erp_list: bool) -> (Option<String>, char, bool) {
        (
            self.profile.map(|p| p.id.clone()),
            self.delimiter,
            is_erp_list,
        )
    }
}

/// The part of the Send to ERP button that reads every unsynced code of a list: how many there
/// are and which break the ERP's rules. Both change only when the list's `unsynced_version`
/// does (every write that moves the unsynced set or its values sets it, which the stale-page
/// check already relies on) or when the rules do, so the result is kept per list and computed
/// again only then. Without it, every page view of a 100,000-code list read and checked every
/// unsynced code. One entry per list; kept by the server beside its pool.
#[derive(Debug, Default)]
pub struct UnsyncedChecks(std::sync::Mutex<HashMap<i64, Arc<UnsyncedCheck>>>);

#[derive(Debug)]
struct UnsyncedCheck {
    unsynced_version: i64,
    rules: (Option<String>, char, bool),
    count: usize,
    invalid: Vec<InvalidCode>,
}

impl UnsyncedChecks {
    fn get(&self, list: &CodeList, who: &Sender<'_>) -> Option<Arc<UnsyncedCheck>> {
        let checks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        checks.get(&list.id).cloned().filter(|c| {
            c.unsynced_version == list.unsynced_version
                && c.rules == who.rules_key(list.is_erp_list)
        })
    }

    fn put(&self, list: i64, check: Arc<UnsyncedCheck>) {
        let mut checks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        checks.insert(list, check);
    }

    /// The check of `list` as `l` (just read) stands: the kept one if its `unsynced_version`
    /// and rules are the same, or one made now from the unsynced codes `q` reads and kept.
    /// A kept check is right whenever its version is the current one: the version was read
    /// before the codes it judged, it never goes back, and every write that moves the unsynced
    /// set or its values moves it, in the same transaction.
    async fn check(
        &self, q: &mut impl Queries, l: &CodeList, who: &Sender<'_>,
    ) -> Result<Arc<UnsyncedCheck>, StoreError> {
        if let Some(check) = self.get(l, who) {
            return Ok(check);
        }
        let unsynced: Unsynced = q
            .fetch_all(AssertSqlSafe(UNSYNCED_CODES.as_str()), [l.id.into()])
            .await?;
        let check = Arc::new(UnsyncedCheck {
            unsynced_version: l.unsynced_version,
            rules: who.rules_key(l.is_erp_list),
            count: unsynced.len(),
            invalid: who.invalid(l.is_erp_list, &unsynced),
        });
        self.put(l.id, check.clone());
        Ok(check)
    }
}

/// The states the domain calls unsynced (what Send to ERP sends), as an SQL list.
static UNSYNCED: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| sql_in(SyncState::unsynced_names()));

/// The codes of a list changed (by a write that moved what a send takes) after version `$2`.
const CHANGED_SINCE: &str = "SELECT full_code FROM cost_codes WHERE list_id = $1 AND \
                             changed_version > $2 ORDER BY sort_key, full_code";

/// What changed for Send to ERP since a page drawn at `seen`, if anything did. Runs only when
/// the list's numbers say the page is stale, so its scan is paid on a refusal, not on a send.
async fn changed_since(
    q: &mut impl Queries, l: &CodeList, seen: Option<i64>,
) -> Result<Option<Changed>, StoreError> {
    let Some(seen) = seen.filter(|&seen| !l.send_unchanged_since(seen)) else {
        return Ok(None);
    };
    // Asserted, not `&'static`: a helper generic over `Queries` must not make its future depend
    // on a lifetime, or callers in `Db::write` bodies cannot prove it `Send`.
    let codes: Vec<(String,)> = q
        .fetch_all(AssertSqlSafe(CHANGED_SINCE), [l.id.into(), seen.into()])
        .await?;
    let total = codes.len();
    Ok(Some(Changed {
        codes: codes
            .into_iter()
            .take(CHANGED_NAMED)
            .map(|(c,)| c)
            .collect(),
        total,
    }))
}

static UNSYNCED_CODES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT id, full_code, description FROM cost_codes WHERE \
         list_id = $1 AND sync_status IN {}",
        *UNSYNCED
    )
});

impl Db {
    /// Runs `body`, a write that saves (or keeps) the company's connection, and answers the
    /// connection as it then is: it exists.
    async fn write_connection<'c>(
        &self, company: i64, body: impl for<'t> FnMut(&'t mut Tx<'c>) -> Body<'t, (), StoreError>,
    ) -> Result<StoredConnection, StoreError> {
        self.write(body).await?;
        self.erp_connection(company)
            .await?
            .ok_or(StoreError::NotFound)
    }

    pub async fn erp_connection(
        &self, company: i64,
    ) -> Result<Option<StoredConnection>, StoreError> {
        let row: Option<(String, String, Option<i64>)> = self
            .pool()
            .fetch_optional(
                "SELECT e.profile, e.connector, (SELECT id FROM \
                 cost_code_lists WHERE company_id = e.company_id AND \
                 is_erp_list) FROM erp_connections e WHERE e.company_id = $1",
                [company.into()],
            )
            .await?;
        Ok(row.map(|(profile, connector, list)| StoredConnection {
            profile,
            connector: serde_json::from_str(&connector).unwrap_or_default(),
            erp_list_id: list.unwrap_or_default(),
        }))
    }

    /// Every company's stored connector settings, as `(company, JSON text)`: for checking and
    /// re-encrypting the secrets they hold.
    pub async fn erp_connectors(&self) -> Result<Vec<(i64, String)>, StoreError> {
        self.pool()
            .fetch_all(
                "SELECT company_id, connector FROM erp_connections ORDER BY \
                 company_id",
                [],
            )
            .await
    }

    /// Replaces stored connector settings, Xero grant tokens and event subscriptions' secrets,
    /// all or nothing: each `(company, before, after)` changes only if the row still holds the
    /// text `before` (else nothing changes, `Conflict`); subscriptions are `(id, before, after)`.
    pub async fn rewrite_erp_connectors(
        &self, rows: &[(i64, String, serde_json::Value)], grants: &[crate::xero::GrantSecrets],
        subscriptions: &[(i64, String, String)], answers: &[crate::requests::KeptAnswer],
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                for (company, before, after) in rows {
                    let done = tx
                        .execute(
                            "UPDATE erp_connections SET connector = $1 WHERE company_id \
                             = $2 AND connector = $3",
                            [after.to_string().into(), (*company).into(), before.into()],
                        )
                        .await?;
                    if done != 1 {
                        return Err(StoreError::Conflict(format!(
                            "company {company}'s ERP connection changed meanwhile; \
                             nothing was changed, run it again"
                        )));
                    }
                }
                crate::xero::rewrite_grants(tx, grants).await?;
                crate::events::rewrite_secrets(tx, subscriptions).await?;
                crate::requests::rewrite_answers(tx, answers).await
            })
        })
        .await
    }

    /// Saves the connection and makes sure the company has its one ERP list. `masked` is what
    /// the audit log records (secrets already replaced).
    pub async fn put_erp_connection(
        &self, company: i64, actor: i64, profile: &str, connector: &serde_json::Value,
        masked: &serde_json::Value,
    ) -> Result<StoredConnection, StoreError> {
        let connection = PutConnection {
            profile,
            connector,
            masked,
        };
        self.put_erp_connection_pulled(company, actor, connection, false, None)
            .await
    }

    /// [`Self::put_erp_connection`] for a connector that may pull its work (the QuickBooks Web
    /// Connector): the worker leaves a `pulled` company's export jobs to the ERP. `erp_list`
    /// names the list to make the ERP list (see [`designate_erp_list`]); without it the
    /// company keeps its ERP list, or gets a new empty one.
    pub async fn put_erp_connection_pulled(
        &self, company: i64, actor: i64, connection: PutConnection<'_>, pulled: bool,
        erp_list: Option<i64>,
    ) -> Result<StoredConnection, StoreError> {
        let PutConnection {
            profile,
            connector,
            masked,
        } = connection;
        self.write_connection(company, |tx| {
            Box::pin(async move {
                let before: Option<String> = tx
                    .scalar_optional(
                        "SELECT profile FROM erp_connections WHERE company_id = $1",
                        [company.into()],
                    )
                    .await?;
                tx.execute(
                    "INSERT INTO erp_connections (company_id, profile, \
                     connector, updated_at, pulled) VALUES ($1, $2, $3, $4, $5) ON CONFLICT \
                     (company_id) DO UPDATE SET profile = excluded.profile, \
                     connector = excluded.connector, updated_at = \
                     excluded.updated_at, pulled = excluded.pulled",
                    [
                        company.into(),
                        profile.into(),
                        connector.to_string().into(),
                        now().into(),
                        pulled.into(),
                    ],
                )
                .await?;
                let list: Option<i64> = tx
                    .scalar_optional(
                        "SELECT id FROM cost_code_lists WHERE company_id = $1 AND \
                         is_erp_list",
                        [company.into()],
                    )
                    .await?;
                if let Some(chosen) = erp_list.filter(|l| list != Some(*l)) {
                    designate_erp_list(tx, company, actor, list, chosen).await?;
                } else if list.is_none() {
                    insert_list(tx, company, actor, ERP_LIST_NAME, true)
                        .await
                        .map_err(|e| {
                            e.unique_as(|| {
                                StoreError::Conflict(format!(
                                    "a list named '{ERP_LIST_NAME}' exists but is not the ERP \
                                     list; rename it first"
                                ))
                            })
                        })?;
                }
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "erp_connection.saved",
                    ("company", company),
                    before.map(|p| json!({"profile": p})),
                    Some(json!({"profile": profile, "connector": masked})),
                )
                .await
            })
        })
        .await
    }

    /// Makes `list` the company's ERP list, in place of the current one (docs/rules.md §2);
    /// needs a connection. Answers the connection as it now is.
    pub async fn make_erp_list(
        &self, company: i64, actor: i64, list: i64,
    ) -> Result<StoredConnection, StoreError> {
        self.write_connection(company, |tx| {
            Box::pin(async move {
                let current: Option<Option<i64>> = tx
                    .scalar_optional(
                        "SELECT (SELECT id FROM cost_code_lists WHERE company_id = \
                         e.company_id AND is_erp_list) FROM erp_connections e WHERE \
                         e.company_id = $1",
                        [company.into()],
                    )
                    .await?;
                let Some(current) = current else {
                    return Err(StoreError::Conflict(
                        "the company has no ERP connection; connect an ERP first (Company \
                         settings → ERP connection) and choose this list there"
                            .into(),
                    ));
                };
                if current != Some(list) {
                    designate_erp_list(tx, company, actor, current, list).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The Send to ERP button for one list, as the domain rule decides it. `seen_version` is
    /// the list version the client's page shows, if it has one: a different current version
    /// makes the answer `stale_page`.
    /// The list is one the caller read ([`Db::list`], or the codes page's picker, which reads
    /// every list of the company: one statement less on each page view).
    pub async fn send_status(
        &self, l: &CodeList, who: &Sender<'_>, seen_version: Option<i64>, checks: &UnsyncedChecks,
    ) -> Result<SendStatus, StoreError> {
        let check = checks.check(&mut self.pool(), l, who).await?;
        let changed = changed_since(&mut self.pool(), l, seen_version).await?;
        let verdict = who.judge(l.is_erp_list, check.count, &check.invalid, changed);
        let (reason_code, reason) = match &verdict {
            Ok(()) => (None, None),
            Err(b) => (Some(b.reason.code()), Some(b.message.clone())),
        };
        Ok(SendStatus {
            enabled: verdict.is_ok(),
            label: send::label(l.sent_once),
            reason_code,
            reason,
            unsynced_count: check.count as i64,
            list_version: l.version,
            invalid_codes: check.invalid.clone(),
        })
    }

    /// Sends every unsynced code of the list as one submission, or nothing at all.
    /// The rule check is the one the Send button showed when the list's unsynced codes are the
    /// same (`checks`): a send of 100,000 codes then reads none of them back to judge them.
    pub async fn send_to_erp(
        &self, company: i64, list: i64, who: &Sender<'_>, seen: i64, checks: &UnsyncedChecks,
    ) -> Result<(i64, i64), SendError> {
        let unsynced_states = &*UNSYNCED;
        // Where the domain sends a code on Send to ERP (the same state from every unsynced one,
        // which its tests hold), and the queue item that waits for the approver meanwhile.
        let sent = SyncState::New
            .apply(Event::Sent)
            .map_err(|e| StoreError::Conflict(e.to_string()))?;
        let open_item = ItemStatus::open_for(sent).ok_or_else(|| {
            StoreError::Conflict(format!("a {sent} code has no queue item to wait in"))
        })?;
        let out = self
            .write(|tx| {
                Box::pin(async move {
                    // Taking the list's row first serialises this send with every other write that
                    // can move codes into or out of the unsynced set (edits, imports, pulls,
                    // retrieves, rejects all lock it first), so the statements below see one
                    // unchanging set.
                    let l: Option<CodeList> = tx
                        .fetch_optional(
                            "UPDATE cost_code_lists SET version = version + 1, sent_once \
                             = TRUE WHERE id = $1 AND company_id = $2 RETURNING id, \
                             name, is_erp_list, version - 1 AS version, sent_once, \
                             unsynced_version, CAST(0 AS BIGINT) AS codes_count",
                            [list.into(), company.into()],
                        )
                        .await?;
                    let l = l.ok_or(StoreError::NotFound)?;
                    let version = l.version + 1;
                    let check = checks.check(tx, &l, who).await?;
                    let changed = changed_since(tx, &l, Some(seen)).await?;
                    if let Err(block) =
                        who.judge(l.is_erp_list, check.count, &check.invalid, changed)
                    {
                        // The codes are named only when they are the reason: they are no
                        // business of a caller refused for anything else.
                        let invalid = match block.reason {
                            SendReason::InvalidCodes => check.invalid.clone(),
                            _ => Vec::new(),
                        };
                        return Err(SendError::Blocked(block, invalid));
                    }
                    let ts = now();
                    let count = check.count as i64;
                    let sub: i64 = tx
                        .scalar(
                            "INSERT INTO submissions (company_id, list_id, sent_by, \
                             sent_at, code_count) VALUES ($1, $2, $3, $4, $5) RETURNING \
                             id",
                            [
                                company.into(),
                                list.into(),
                                who.user_id.into(),
                                ts.into(),
                                count.into(),
                            ],
                        )
                        .await?;
                    let (limit, note) = match who
                        .profile
                        .and_then(|p| p.truncation_limit().map(|n| (p, n)))
                    {
                        Some((p, n)) => (
                            n as i64,
                            Some(format!(
                                "{} keeps {n} characters of the description; the rest is cut",
                                p.name
                            )),
                        ),
                        None => (i64::MAX, None),
                    };
                    if tx.hold_triggers(company, check.count).await? {
                        // The codes' earlier items, superseded by the ones inserted next (the
                        // held row trigger's work, in one statement).
                        let sql = format!(
                            "UPDATE erp_items SET superseded = TRUE WHERE company_id = $1 \
                             AND NOT superseded AND cost_code_id IN (SELECT id FROM \
                             cost_codes WHERE list_id = $2 AND sync_status IN \
                             {unsynced_states})"
                        );
                        tx.execute(AssertSqlSafe(sql), [company.into(), list.into()])
                            .await?;
                    }
                    // A snapshot of exactly what is sent, and the last confirmed values for the
                    // diff.
                    let sql = format!(
                        "INSERT INTO erp_items (company_id, submission_id, \
                         cost_code_id, change, code, full_code, description, active, \
                         tier, sort_key, parent_full_code, from_code, \
                         from_full_code, from_description, from_active, origin_id, \
                         status, note, sent_by, sent_at) SELECT c.company_id, $1, \
                         c.id, CASE WHEN c.confirmed_full_code IS NULL THEN 'new' \
                         ELSE 'modified' END, c.code, c.full_code, c.description, \
                         c.active, c.tier, c.sort_key, p.full_code, \
                         c.confirmed_code, c.confirmed_full_code, \
                         c.confirmed_description, c.confirmed_active, c.origin_id, \
                         $7, CASE WHEN length(c.description) > $3 THEN $4 END, $5, \
                         $6 FROM cost_codes c LEFT JOIN cost_codes p ON p.id = \
                         c.parent_id WHERE c.list_id = $2 AND c.sync_status IN \
                         {unsynced_states}"
                    );
                    let items = tx
                        .execute(
                            AssertSqlSafe(sql),
                            [
                                sub.into(),
                                list.into(),
                                limit.into(),
                                note.into(),
                                who.user_id.into(),
                                ts.into(),
                                open_item.as_str().into(),
                            ],
                        )
                        .await?;
                    let sql = format!(
                        "INSERT INTO audit_events (company_id, at, actor_id, action, \
                         entity_type, entity_id, before, after) SELECT $1, $2, $3, \
                         'cost_code.sent', 'cost_code', c.id, '{{\"sync_status\":\"' \
                         || c.sync_status || '\"}}', '{{\"sync_status\":\"' || $6 || \
                         '\",\"submission_id\":' || $4 || '}}' FROM cost_codes c \
                         WHERE c.list_id = $5 AND c.sync_status IN {unsynced_states}"
                    );
                    tx.execute(
                        AssertSqlSafe(sql),
                        [
                            company.into(),
                            ts.into(),
                            who.user_id.into(),
                            sub.to_string().into(),
                            list.into(),
                            sent.as_str().into(),
                        ],
                    )
                    .await?;
                    let sql = format!(
                        "UPDATE cost_codes SET status_before_send = sync_status, \
                         sync_status = $4, updated_at = $2, changed_version = $3 \
                         WHERE list_id = $1 AND sync_status IN {unsynced_states}"
                    );
                    let moved = tx
                        .execute(
                            AssertSqlSafe(sql),
                            [list.into(), ts.into(), version.into(), sent.as_str().into()],
                        )
                        .await?;
                    // The list lock makes these equal; should a write ever bypass it, roll back
                    // rather than leave a pending code without its item.
                    if items != count as u64 || moved != count as u64 {
                        return Err(SendError::Store(StoreError::Conflict(format!(
                            "the list changed while it was being sent ({count} codes, \
                             {items} items, {moved} moved); nothing was sent, try again"
                        ))));
                    }
                    unsynced_changed(tx, list, version).await?;
                    events::code_events(
                        tx,
                        company,
                        EventType::CodeSent,
                        About {
                            submission: Some(sub),
                            ..About::default()
                        },
                        "c.id IN (SELECT cost_code_id FROM erp_items WHERE \
                         submission_id = $8)",
                        [sub.into()],
                    )
                    .await?;
                    // Notifications (docs/rules.md §6): the approvers hear of it in this same
                    // transaction.
                    outbox::notify_codes_sent(tx, company, sub, who.user_id).await?;
                    audit::record(
                        tx,
                        company,
                        Some(who.user_id),
                        "submission.created",
                        ("submission", sub),
                        None,
                        Some(json!({"list_id": list, "code_count": count})),
                    )
                    .await?;
                    Ok((sub, count))
                })
            })
            .await?;
        self.refresh_stats(out.1 as usize).await;
        Ok(out)
    }

    /// The admin takes a pending code back before the approver decides; answers the code as it
    /// now is.
    pub async fn retrieve_code(
        &self, company: i64, list: i64, actor: i64, id: i64,
    ) -> Result<CostCode, StoreError> {
        self.write_code(company, list, |tx| {
            Box::pin(async move {
                let (version, code) = lock_code(tx, company, list, id).await?;
                let before: Option<String> = tx
                    .scalar(
                        "SELECT status_before_send FROM cost_codes WHERE id = $1",
                        [id.into()],
                    )
                    .await?;
                // Codes sent before the state was kept count as new; an unknown state is an error.
                let before = match before {
                    Some(b) => SyncState::try_from(b).map_err(StoreError::decode)?,
                    None => SyncState::New,
                };
                let next = code
                    .state()
                    .apply(Event::Retrieved { before })
                    .map_err(|_| {
                        StoreError::Conflict(format!(
                            "'{}' is {}; only pending codes can be retrieved",
                            code.full_code, code.sync_status
                        ))
                    })?;
                tx.execute(
                    "UPDATE cost_codes SET sync_status = $2, status_before_send \
                     = NULL, updated_at = $3, changed_version = $4 WHERE id = $1",
                    [
                        id.into(),
                        next.as_str().into(),
                        now().into(),
                        version.into(),
                    ],
                )
                .await?;
                unsynced_changed(tx, list, version).await?;
                tx.execute(
                    "UPDATE erp_items SET status = $4, decided_by = $2, \
                     decided_at = $3 WHERE cost_code_id = $1 AND status = $5",
                    [
                        id.into(),
                        actor.into(),
                        now().into(),
                        ItemStatus::Retrieved.as_str().into(),
                        ItemStatus::Ready.as_str().into(),
                    ],
                )
                .await?;
                audit::record(
                    tx,
                    company,
                    Some(actor),
                    "cost_code.retrieved",
                    ("cost_code", id),
                    Some(json!({"sync_status": code.sync_status})),
                    Some(json!({"sync_status": next})),
                )
                .await?;
                Ok(id)
            })
        })
        .await
    }
}

/// Moves the ERP list designation from `from` to `to` (a list of the same company). Allowed
/// only while the ERP has nothing from the current ERP list: it was never sent and every code
/// in it is `new` (docs/rules.md §2); otherwise the ERP's keys would belong to a list that no
/// longer syncs. Both lists' versions move, so pages drawn before redraw their Send panel.
async fn designate_erp_list(
    tx: &mut Tx<'_>, company: i64, actor: i64, from: Option<i64>, to: i64,
) -> Result<(), StoreError> {
    let target: Option<String> = tx
        .scalar_optional(
            "SELECT name FROM cost_code_lists WHERE id = $1 AND company_id = $2",
            [to.into(), company.into()],
        )
        .await?;
    if target.is_none() {
        return Err(StoreError::field(
            "erp_list_id",
            format!("there is no cost code list {to} in this company"),
        ));
    }
    if let Some(from) = from {
        // The current list's row first, as a send or a pull into it takes it first: read
        // before, a send committing meanwhile went unseen (PostgreSQL) and the list stopped
        // being the ERP list with codes waiting in the queue.
        let (name, sent_once): (String, bool) = tx
            .fetch_one(
                "UPDATE cost_code_lists SET version = version + 1 WHERE id = $1 RETURNING \
                 name, sent_once",
                [from.into()],
            )
            .await?;
        let had: i64 = tx
            .scalar(
                "SELECT COUNT(*) FROM cost_codes WHERE list_id = $1 AND sync_status <> $2",
                [from.into(), SyncState::New.as_str().into()],
            )
            .await?;
        if sent_once || had > 0 {
            return Err(StoreError::field(
                "erp_list_id",
                format!(
                    "'{name}' stays the ERP list: it has been sent to the ERP, or holds codes \
                     the ERP has had. Add these codes to '{name}' instead (export this list as \
                     CSV and import the file there)"
                ),
            ));
        }
        tx.execute(
            "UPDATE cost_code_lists SET is_erp_list = FALSE, unsynced_version = version WHERE \
             id = $1",
            [from.into()],
        )
        .await?;
    }
    tx.execute(
        "UPDATE cost_code_lists SET is_erp_list = TRUE, version = version + 1, \
         unsynced_version = version + 1 WHERE id = $1",
        [to.into()],
    )
    .await
    // Two admins choosing at once: the one-ERP-list index refuses the second.
    .map_err(|e| {
        e.unique_as(|| {
            StoreError::Conflict(
                "another admin changed the ERP list meanwhile; reload the page and choose again"
                    .into(),
            )
        })
    })?;
    audit::record(
        tx,
        company,
        Some(actor),
        "cost_code_list.made_erp_list",
        ("cost_code_list", to),
        from.map(|f| json!({ "erp_list_id": f })),
        Some(json!({ "erp_list_id": to })),
    )
    .await
}
