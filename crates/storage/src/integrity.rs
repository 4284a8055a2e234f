//! The invariants that tie codes, queue items, submissions and the audit trail together, checked
//! against what is stored. The concurrent-load tests call it after every run; an operator can
//! run it on a live database (`costbridge check`) because it only reads.
use crate::tx::Queries;
use crate::{Db, StoreError};
use costbridge_domain::queue::{ItemStatus, JobStatus, sql_in};
use costbridge_domain::sync::SyncState;
use sqlx::AssertSqlSafe;
use std::collections::HashMap;

impl Db {
    /// Every broken invariant of one company (or of all, with `None`), as sentences naming the
    /// rows; empty when the data is whole.
    pub async fn integrity_violations(
        &self, company: Option<i64>,
    ) -> Result<Vec<String>, StoreError> {
        type CodeItems = Vec<(i64, String, String, Option<String>, i64)>;
        type Counts = Vec<(i64, i64)>;
        type Events = Vec<(i64, String, Option<String>)>;
        let (codes, submissions, items_per_sub, events, synced_items): (
            CodeItems,
            Counts,
            Counts,
            Events,
            Counts,
        ) = {
            // One snapshot: read one table after another from the pool, an export recorded
            // between two reads of a live database was reported as a broken invariant.
            let mut pool = self.snapshot().await?;
            let open = sql_in(ItemStatus::open_for_any().map(ItemStatus::as_str));
            // Each code with the status of its open item (NULL when none) and how many it has.
            let codes = pool
                .fetch_all(
                    AssertSqlSafe(format!(
                        "SELECT c.id, c.full_code, c.sync_status, MIN(i.status), \
                         COUNT(i.id) FROM cost_codes c LEFT JOIN erp_items i ON \
                         i.cost_code_id = c.id AND i.status IN {open} WHERE ($1 IS \
                         NULL OR c.company_id = $1) GROUP BY c.id, c.full_code, \
                         c.sync_status ORDER BY c.id"
                    )),
                    [company.into()],
                )
                .await?;
            let submissions = pool
                .fetch_all(
                    "SELECT id, code_count FROM submissions WHERE ($1 IS NULL OR \
                     company_id = $1) ORDER BY id",
                    [company.into()],
                )
                .await?;
            let items_per_sub = pool
                .fetch_all(
                    "SELECT submission_id, COUNT(*) FROM erp_items WHERE ($1 IS \
                     NULL OR company_id = $1) GROUP BY submission_id",
                    [company.into()],
                )
                .await?;
            let events = pool
                .fetch_all(
                    "SELECT entity_id, action, after FROM audit_events WHERE ($1 \
                     IS NULL OR company_id = $1) AND action IN \
                     ('cost_code.sent', 'cost_code.synced') ORDER BY id",
                    [company.into()],
                )
                .await?;
            let synced_items = pool
                .fetch_all(
                    "SELECT cost_code_id, COUNT(*) FROM erp_items WHERE ($1 IS \
                     NULL OR company_id = $1) AND status = $2 GROUP BY \
                     cost_code_id",
                    [company.into(), ItemStatus::Synced.as_str().into()],
                )
                .await?;
            (codes, submissions, items_per_sub, events, synced_items)
        };
        let mut out = Vec::new();
        for (id, full_code, status, open, count) in &codes {
            let Some(state) = SyncState::parse(status) else {
                out.push(format!(
                    "code {id} ('{full_code}') has the unknown state '{status}'"
                ));
                continue;
            };
            let expected = ItemStatus::open_for(state).map(ItemStatus::as_str);
            if *count > 1 {
                out.push(format!(
                    "code {id} ('{full_code}', {status}) has {count} open queue \
                     items"
                ));
            } else if open.as_deref() != expected {
                out.push(format!(
                    "code {id} ('{full_code}') is {status} but its open queue \
                     item is {}",
                    open.as_deref().unwrap_or("missing")
                ));
            }
        }
        let items: HashMap<i64, i64> = items_per_sub.into_iter().collect();
        let existing: std::collections::HashSet<i64> = codes.iter().map(|c| c.0).collect();
        // Per submission: its 'sent' events, and those of codes deleted since (a rejected or
        // retrieved code the ERP never had may be deleted; its closed item goes with it).
        let mut sent_events: HashMap<i64, i64> = HashMap::new();
        let mut deleted: HashMap<i64, i64> = HashMap::new();
        let mut synced_events: HashMap<i64, i64> = HashMap::new();
        for (code, action, after) in &events {
            if action == "cost_code.synced" {
                *synced_events.entry(*code).or_default() += 1;
                continue;
            }
            let sub = after
                .as_deref()
                .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
                .and_then(|a| a["submission_id"].as_i64());
            match sub {
                Some(sub) => {
                    *sent_events.entry(sub).or_default() += 1;
                    if !existing.contains(code) {
                        *deleted.entry(sub).or_default() += 1;
                    }
                }
                None => out.push(format!(
                    "a 'sent' audit event of code {code} names no submission"
                )),
            }
        }
        for (sub, count) in &submissions {
            let (items, events, deleted) = (
                items.get(sub).copied().unwrap_or(0),
                sent_events.get(sub).copied().unwrap_or(0),
                deleted.get(sub).copied().unwrap_or(0),
            );
            if items + deleted != *count || events != *count {
                out.push(format!(
                    "submission {sub} counts {count} codes but has {items} queue \
                     items and {events} 'sent' audit events"
                ));
            }
        }
        // Each confirmed export is one 'synced' event: a code confirmed twice for one item was
        // exported twice.
        let synced_items: HashMap<i64, i64> = synced_items.into_iter().collect();
        let mut confirmed: Vec<i64> = synced_items
            .keys()
            .chain(synced_events.keys())
            .copied()
            .collect();
        confirmed.sort_unstable();
        confirmed.dedup();
        for code in &confirmed {
            let items = synced_items.get(code).copied().unwrap_or(0);
            let events = synced_events.get(code).copied().unwrap_or(0);
            if events != items {
                out.push(format!(
                    "code {code} has {events} 'synced' audit events for {items} \
                     synced queue items"
                ));
            }
        }
        // A job closes only once none of its items is exporting: one left in a finished job
        // is stranded, exported and recorded by no worker.
        let stranded: Vec<(i64, i64)> = self
            .pool()
            .fetch_all(
                "SELECT i.id, i.export_job_id FROM erp_items i JOIN export_jobs j ON j.id = \
                 i.export_job_id WHERE ($1 IS NULL OR i.company_id = $1) AND i.status = $2 AND \
                 j.status = $3 ORDER BY i.id",
                [
                    company.into(),
                    ItemStatus::Exporting.as_str().into(),
                    JobStatus::Done.as_str().into(),
                ],
            )
            .await?;
        out.extend(stranded.into_iter().map(|(item, job)| {
            format!("queue item {item} is exporting in export job {job}, which is done")
        }));
        out.extend(self.count_violations(company).await?);
        out.extend(self.reference_violations(company).await?);
        Ok(out)
    }

    /// The kept counts ([`KEPT`]: codes per list and state, which list pages show as totals;
    /// queue items per company and state, which the queue's tabs and pages show; items per
    /// export job and state, which a job's status shows) against the
    /// rows they count, and each queue item's `superseded` mark against its code's items.
    async fn count_violations(&self, company: Option<i64>) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for kept in &KEPT {
            let Kept {
                table,
                rows,
                owner,
                state,
                scope,
                says,
            } = kept;
            let sql = format!(
                "SELECT k.{owner}, k.{state}, COALESCE(s.n, 0), COALESCE(c.n, 0) \
                 FROM (SELECT {owner}, {state} FROM {table} UNION \
                       SELECT {owner}, {state} FROM {rows}) k {scope} \
                 LEFT JOIN {table} s ON s.{owner} = k.{owner} AND s.{state} = k.{state} \
                 LEFT JOIN (SELECT {owner}, {state}, COUNT(*) AS n FROM {rows} \
                            GROUP BY {owner}, {state}) c \
                   ON c.{owner} = k.{owner} AND c.{state} = k.{state} \
                 WHERE COALESCE(s.n, 0) <> COALESCE(c.n, 0) ORDER BY k.{owner}, k.{state}"
            );
            let wrong: Vec<(i64, String, i64, i64)> = self
                .pool()
                .fetch_all(AssertSqlSafe(sql), [company.into()])
                .await?;
            out.extend(
                wrong
                    .into_iter()
                    .map(|(owner, state, kept, real)| says(owner, &state, kept, real)),
            );
        }
        let flags: Vec<(i64, bool)> = self
            .pool()
            .fetch_all(
                "SELECT i.id, i.superseded FROM erp_items i WHERE ($1 IS NULL OR \
                 i.company_id = $1) AND i.superseded <> EXISTS (SELECT 1 FROM erp_items \
                 later WHERE later.cost_code_id = i.cost_code_id AND later.id > i.id) \
                 ORDER BY i.id",
                [company.into()],
            )
            .await?;
        out.extend(flags.into_iter().map(|(id, superseded)| {
            let (is, has) = if superseded {
                ("", "no")
            } else {
                (" not", "a")
            };
            format!("queue item {id} is{is} marked superseded but its code has {has} later item")
        }));
        Ok(out)
    }

    /// The references PostgreSQL no longer checks row by row on the bulk tables (migrations
    /// 202611312, 202611317 and 202611318), and what no foreign key could say: each code's list
    /// is of its company and its parent of its list, each queue item's code, submission and
    /// export job are of its company, and every person a code's item or audit event names is a
    /// user of that same company.
    async fn reference_violations(&self, company: Option<i64>) -> Result<Vec<String>, StoreError> {
        let wrong: Vec<(String, i64, String)> = self
            .pool()
            .fetch_all(
                "SELECT 'code', c.id, CASE WHEN l.id IS NULL THEN 'a list that does not exist' \
                   WHEN l.company_id <> c.company_id THEN 'a list of another company' \
                   WHEN p.id IS NULL THEN 'a parent code that does not exist' \
                   ELSE 'a parent code in another list' END \
                 FROM cost_codes c LEFT JOIN cost_code_lists l ON l.id = c.list_id \
                 LEFT JOIN cost_codes p ON p.id = c.parent_id \
                 WHERE ($1 IS NULL OR c.company_id = $1 OR l.company_id = $1) \
                   AND (l.id IS NULL OR c.company_id <> l.company_id \
                        OR (c.parent_id IS NOT NULL AND (p.id IS NULL OR p.list_id <> c.list_id))) \
                 UNION ALL SELECT 'queue item', i.id, \
                   CASE WHEN c.id IS NULL THEN 'a cost code that does not exist' \
                   WHEN c.company_id <> i.company_id THEN 'a cost code of another company' \
                   WHEN s.id IS NULL THEN 'a sender who is not a user of its company' \
                   WHEN b.id IS NULL THEN 'a submission that is not its company''s' \
                   WHEN i.decided_by IS NOT NULL AND d.id IS NULL \
                     THEN 'a decider who is not a user of its company' \
                   ELSE 'an export job that is not its company''s' END \
                 FROM erp_items i LEFT JOIN cost_codes c ON c.id = i.cost_code_id \
                 LEFT JOIN users s ON s.id = i.sent_by AND s.company_id = i.company_id \
                 LEFT JOIN users d ON d.id = i.decided_by AND d.company_id = i.company_id \
                 LEFT JOIN submissions b ON b.id = i.submission_id AND b.company_id = i.company_id \
                 LEFT JOIN export_jobs j ON j.id = i.export_job_id AND j.company_id = i.company_id \
                 WHERE ($1 IS NULL OR i.company_id = $1 OR c.company_id = $1) \
                   AND (c.id IS NULL OR i.company_id <> c.company_id OR s.id IS NULL \
                        OR b.id IS NULL OR (i.decided_by IS NOT NULL AND d.id IS NULL) \
                        OR (i.export_job_id IS NOT NULL AND j.id IS NULL)) \
                 UNION ALL SELECT 'audit event', e.id, CASE WHEN k.id IS NULL \
                   THEN 'a company that does not exist' \
                   ELSE 'an actor who is not a user of its company' END \
                 FROM audit_events e \
                 LEFT JOIN companies k ON k.id = e.company_id \
                 LEFT JOIN users a ON a.id = e.actor_id AND a.company_id = e.company_id \
                 WHERE ($1 IS NULL OR e.company_id = $1) \
                   AND (k.id IS NULL OR (e.actor_id IS NOT NULL AND a.id IS NULL)) \
                 ORDER BY 1, 2",
                [company.into()],
            )
            .await?;
        Ok(wrong
            .into_iter()
            .map(|(what, id, names)| format!("{what} {id} names {names}"))
            .collect())
    }
}

/// A count kept by triggers (docs/storage.md, "Counts kept by triggers"): its table, the rows
/// it counts (a `FROM` item), its owner and state columns, the join that limits owners to the
/// company `$1` (all when it is NULL), and the sentence for a count that drifted.
struct Kept {
    table: &'static str,
    rows: &'static str,
    owner: &'static str,
    state: &'static str,
    scope: &'static str,
    says: fn(i64, &str, i64, i64) -> String,
}

const KEPT: [Kept; 3] = [
    Kept {
        table: "list_state_counts",
        rows: "cost_codes r",
        owner: "list_id",
        state: "sync_status",
        scope: "JOIN cost_code_lists l ON l.id = k.list_id AND ($1 IS NULL OR l.company_id = $1)",
        says: |list, state, kept, real| {
            format!("list {list} counts {kept} {state} codes but has {real}")
        },
    },
    Kept {
        table: "erp_item_counts",
        rows: "(SELECT company_id, status FROM erp_items WHERE NOT superseded) r",
        owner: "company_id",
        state: "status",
        scope: "JOIN companies co ON co.id = k.company_id AND ($1 IS NULL OR co.id = $1)",
        says: |company, state, kept, real| {
            format!("company {company}'s queue counts {kept} {state} items but has {real}")
        },
    },
    Kept {
        table: "job_item_counts",
        rows: "(SELECT export_job_id, status FROM erp_items WHERE export_job_id IS NOT NULL) r",
        owner: "export_job_id",
        state: "status",
        scope: "JOIN export_jobs j ON j.id = k.export_job_id AND ($1 IS NULL OR j.company_id = $1)",
        says: |job, state, kept, real| {
            format!("export job {job} counts {kept} {state} items but has {real}")
        },
    },
];
