//! Sync from ERP: the ERP's code tree pulled into the ERP list. New ERP codes arrive synced,
//! ERP-side changes to synced codes are applied, and local unsynced edits are never silently
//! overwritten: they come back as conflicts showing both sides.
use crate::codes::{CodeRow, list_codes, lock_list, unsynced_changed};
use crate::events::{self, About};
use crate::tx::{Array, Queries, Tx, rows_per_statement, rows_table};
use crate::{Db, StoreError, audit, now};
use costbridge_domain::events::EventType;
use costbridge_domain::sync::{Event, SyncState};
use costbridge_domain::wbs;
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use std::collections::HashMap;
use time::OffsetDateTime;

/// A code as the ERP holds it.
#[derive(Debug, Clone)]
pub struct RemoteCode {
    pub origin_id: String,
    pub full_code: String,
    pub description: String,
    pub active: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SyncConflict)]
pub struct Conflict {
    pub full_code: String,
    pub local: serde_json::Value,
    pub erp: serde_json::Value,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[schema(as = SyncSummary, example = json!({"created": 3, "updated": 1, "unchanged": 40, "conflicts": [
    {"full_code": "01-100", "local": {"description": "Permits"}, "erp": {"description": "Permits & fees"}}]}))]
pub struct PullSummary {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub conflicts: Vec<Conflict>,
}

impl Db {
    /// Applies the ERP's codes, read from it starting at `read_at`, to the ERP list. A code
    /// that changed here since (an export recorded while the ERP was read, an edit) is shown
    /// as a conflict, not overwritten: the read may predate the very values just exported.
    pub async fn pull_from_erp(
        &self, company: i64, list: i64, actor: i64, remote: &[RemoteCode], read_at: OffsetDateTime,
    ) -> Result<PullSummary, StoreError> {
        let delimiter = self.company_delimiter(company).await?;
        let mut remote: Vec<&RemoteCode> = remote.iter().collect();
        // Parents before children, so each new code finds its parent.
        remote.sort_by_key(|r| {
            (
                r.full_code.matches(delimiter).count(),
                wbs::sort_key(&r.full_code, delimiter),
            )
        });
        let remote = &remote;
        self.write(|tx| { Box::pin(async move {
            let version = lock_list(tx, company, list).await?;
            let mut send_changed = false;
            let rows = list_codes(tx, list).await?;
            let by_origin: HashMap<&str, &CodeRow> = rows
                .iter()
                .filter_map(|r| Some((r.origin_id.as_deref()?, r)))
                .collect();
            let by_code: HashMap<&str, &CodeRow> =
                rows.iter().map(|r| (r.full_code.as_str(), r)).collect();
            let mut ids: HashMap<String, i64> =
                rows.iter().map(|r| (r.full_code.clone(), r.id)).collect();
            let mut s = PullSummary::default();
            let ts = now();
            // The codes each kind of event is about: new ones arrive synced (usable in the ERP),
            // ERP-side changes update synced ones, and waiting ones the ERP already has are synced.
            let (mut created, mut updated, mut synced) = (Vec::new(), Vec::new(), Vec::new());
            // Codes the ERP has exactly that only a file had confirmed: cleared together below
            // (after a connector change that may be every code of the list).
            let mut confirmed = Vec::new();
            for r in remote {
                let local = by_origin
                    .get(r.origin_id.as_str())
                    .or_else(|| by_code.get(r.full_code.as_str()));
                let conflict = |local: serde_json::Value| Conflict {
                    full_code: r.full_code.clone(),
                    local,
                    erp: json!({
                        "full_code": r.full_code, "description": r.description, "active": r.active
                    }),
                };
                let changed_since_read = |l: &CodeRow| {
                    let mut local = local_view(l);
                    local["error"] = json!(
                        "changed in Costbridge while the ERP was being read (an export or an \
                         edit); run Sync from ERP again"
                    );
                    conflict(local)
                };
                match local {
                    Some(l) if l.full_code != r.full_code => {
                        // A rename or move made in the ERP: shown, not applied, so the tree
                        // here stays whole.
                        s.conflicts.push(conflict(local_view(l)));
                    }
                    Some(l) => {
                        let erp_agrees = l.description == r.description && l.active == r.active;
                        let Ok(next) = l.state().apply(Event::Pulled { erp_agrees }) else {
                            s.conflicts.push(conflict(local_view(l)));
                            continue;
                        };
                        let stays = l.state() == next;
                        let agrees = l.confirmed().is_some_and(|c| {
                            c.description == r.description && c.active == r.active
                        });
                        if stays && agrees && l.origin_id.as_deref() == Some(r.origin_id.as_str())
                        {
                            // A code only written to a file so far is confirmed now: no value
                            // changed, so no audit row or event says one did.
                            if l.delivered_to.is_some() {
                                confirmed.push(l.id);
                            }
                            s.unchanged += 1;
                            continue;
                        }
                        if l.updated_at > read_at {
                            s.conflicts.push(changed_since_read(l));
                            continue;
                        }
                        if stays {
                            // A synced code takes the ERP's values as its confirmed ones.
                            tx.execute(
                                "UPDATE cost_codes SET description = $2, active = $3, \
                                 confirmed_code = code, confirmed_full_code = full_code, \
                                 confirmed_description = $2, confirmed_active = $3, \
                                 origin_id = $4, last_synced_at = $5, updated_at = $5, \
                                 delivered_to = NULL WHERE id = $1",
                                [
                                    l.id.into(),
                                    (&r.description).into(),
                                    r.active.into(),
                                    (&r.origin_id).into(),
                                    ts.into(),
                                ],
                            )
                            .await?;
                            let before = json!({"description": l.description, "active": l.active});
                            let after = json!({
                                "description": r.description, "active": r.active,
                                "origin_id": r.origin_id
                            });
                            pulled(tx, company, actor, l.id, Some(before), after).await?;
                            updated.push(l.id);
                        } else {
                            // The ERP already has exactly what was waiting to be sent: it is
                            // synced.
                            tx.execute(
                                "UPDATE cost_codes SET sync_status = $5, confirmed_code = \
                                 code, confirmed_full_code = full_code, \
                                 confirmed_description = description, confirmed_active = \
                                 active, origin_id = $2, last_synced_at = $3, \
                                 rejection_reason = NULL, delivered_to = NULL, updated_at = \
                                 $3, changed_version = $4 WHERE id = $1",
                                [
                                    l.id.into(),
                                    (&r.origin_id).into(),
                                    ts.into(),
                                    version.into(),
                                    next.as_str().into(),
                                ],
                            )
                            .await?;
                            // It leaves the unsynced set: a page drawn before would send it.
                            send_changed = true;
                            let after = json!({"sync_status": next, "origin_id": r.origin_id});
                            pulled(tx, company, actor, l.id, Some(json!({"sync_status": l.sync_status})), after).await?;
                            synced.push(l.id);
                        }
                        s.updated += 1;
                    }
                    None => {
                        let parent = r.full_code.rsplit_once(delimiter).map(|(p, _)| p);
                        let parent_id = match parent {
                            None => None,
                            Some(p) => match ids.get(p) {
                                Some(id) => Some(*id),
                                None => {
                                    s.conflicts.push(conflict(json!({"missing_parent": p})));
                                    continue;
                                }
                            },
                        };
                        let segments = match wbs::split_full_code(&r.full_code, delimiter) {
                            Ok(segs) => segs,
                            Err(e) => {
                                let error = format!("full_code {e}");
                                s.conflicts.push(conflict(json!({ "error": error })));
                                continue;
                            }
                        };
                        let code = segments
                            .last()
                            .map(|c| c.as_str().to_owned())
                            .unwrap_or_default();
                        let id: i64 = tx
                            .scalar(
                                "INSERT INTO cost_codes (company_id, list_id, parent_id, \
                                 code, full_code, sort_key, description, tier, active, \
                                 sync_status, confirmed_code, confirmed_full_code, \
                                 confirmed_description, confirmed_active, origin_id, \
                                 last_synced_at, created_at, updated_at) VALUES ($1, $2, $3, \
                                 $4, $5, $6, $7, $8, $9, $12, $4, $5, $7, $9, $10, $11, $11, \
                                 $11) RETURNING id",
                                [
                                    company.into(),
                                    list.into(),
                                    parent_id.into(),
                                    (&code).into(),
                                    (&r.full_code).into(),
                                    wbs::sort_key(&r.full_code, delimiter).into(),
                                    (&r.description).into(),
                                    (segments.len() as i64).into(),
                                    r.active.into(),
                                    (&r.origin_id).into(),
                                    ts.into(),
                                    SyncState::Synced.as_str().into(),
                                ],
                            )
                            .await?;
                        let after = json!({
                            "full_code": r.full_code, "description": r.description,
                            "active": r.active, "sync_status": SyncState::Synced,
                            "origin_id": r.origin_id
                        });
                        pulled(tx, company, actor, id, None, after).await?;
                        ids.insert(r.full_code.clone(), id);
                        created.push(id);
                        s.created += 1;
                    }
                }
            }
            for ids in confirmed.chunks(rows_per_statement(tx.postgres(), 0, 1)) {
                let (table, args) = rows_table(
                    tx.postgres(),
                    0,
                    vec![Array::Int(ids.iter().map(|id| Some(*id)).collect())],
                );
                let sql = format!(
                    "UPDATE cost_codes SET delivered_to = NULL FROM {table} WHERE cost_codes.id \
                     = v.column1"
                );
                tx.execute(AssertSqlSafe(sql), args).await?;
            }
            synced.extend(&created);
            for (event, codes) in [
                (EventType::CodeCreated, &created),
                (EventType::CodeUpdated, &updated),
                (EventType::CodeSynced, &synced),
            ] {
                events::code_events_for(tx, company, event, About::default(), codes).await?;
            }
            if send_changed {
                unsynced_changed(tx, list, version).await?;
            }
            Ok(s)
        }) })
        .await
    }
}

/// A local code as a pull conflict shows it.
fn local_view(l: &CodeRow) -> serde_json::Value {
    json!({
        "full_code": l.full_code, "description": l.description, "active": l.active,
        "sync_status": l.sync_status
    })
}

/// Records what a pull did to one code: `before` is `None` for a code the pull created.
async fn pulled(
    tx: &mut Tx<'_>, company: i64, actor: i64, id: i64, before: Option<Value>, after: Value,
) -> Result<(), StoreError> {
    audit::record(
        tx,
        company,
        Some(actor),
        "cost_code.pulled",
        ("cost_code", id),
        before,
        Some(after),
    )
    .await
}
