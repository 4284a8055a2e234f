//! SQLite's row triggers through a bulk statement. SQLite runs a trigger once per row, and its
//! triggers keep the counts (codes per list and state, queue items per company and state) and
//! mark an item superseded when its code gets a later one: ~1.2 µs a moved row for each count,
//! ~2.5 µs an inserted item for the superseding, 0.1–0.3 s for each 100,000-row statement of an
//! import, a send, an accept or an export's outcomes. [`Tx::hold_triggers`] holds them for the
//! rest of the transaction (a row of `triggers_held`, migration 202612020_bulk_row_triggers);
//! the caller then supersedes what it inserts in one statement, and the commit recounts the
//! held companies from their indexes first, so no transaction ends with its counts unmoved.
//! PostgreSQL's triggers run once per statement already: there nothing is held.
use crate::StoreError;
use crate::tx::{Queries, Tx};
use std::collections::BTreeSet;

/// Below this many rows a statement keeps its triggers without asking what a recount would cost.
const HOLD_FROM: usize = 1_000;

/// How many times faster a recount reads a code than the triggers count a moved row: a recount
/// reads every code and open item of the company from an index (~0.1 µs a code, 10 ms a
/// statement at 100,000), where the triggers cost ~1.2 µs or more a moved row. Holding pays
/// when the rows moved are at least this share of the company's codes, so a 1,000-code step
/// in a company of a million codes keeps its triggers.
const RECOUNT_SPEEDUP: usize = 12;

/// The companies whose counts a SQLite transaction holds, recounted before it commits.
#[derive(Default)]
pub(crate) struct Held(BTreeSet<i64>);

impl Tx<'_> {
    /// Holds SQLite's row triggers for the rest of this transaction when the statements about to
    /// run move `rows` codes or items of `company` and a recount costs less than the triggers
    /// would; answers whether they are held (never on PostgreSQL). While they are, the caller
    /// marks the items its inserts supersede itself, and counts read in this transaction are
    /// the ones from before it: the commit makes them right. A hold covers every row the
    /// transaction moves after it, so once one is taken, each later call holds too and names
    /// its company for the recount.
    pub(crate) async fn hold_triggers(
        &mut self, company: i64, rows: usize,
    ) -> Result<bool, StoreError> {
        let Tx::Sqlite(_, held) = self else {
            return Ok(false);
        };
        if !held.0.is_empty() {
            held.0.insert(company);
            return Ok(true);
        }
        if rows < HOLD_FROM {
            return Ok(false);
        }
        let codes: i64 = self
            .scalar(
                "SELECT CAST(COALESCE(SUM(s.n), 0) AS BIGINT) FROM list_state_counts s JOIN \
                 cost_code_lists l ON l.id = s.list_id WHERE l.company_id = $1",
                [company.into()],
            )
            .await?;
        if (rows * RECOUNT_SPEEDUP) < usize::try_from(codes).unwrap_or(usize::MAX) {
            return Ok(false);
        }
        self.execute("INSERT INTO triggers_held (held) VALUES (1)", [])
            .await?;
        if let Tx::Sqlite(_, held) = self {
            held.0.insert(company);
        }
        Ok(true)
    }

    /// Releases the held triggers and recounts each held company's lists and queue from the
    /// rows. `changes` (which tells a list's page marks to be taken again, marks.rs) grows by
    /// how far each count moved: what the triggers would have added for codes that moved one
    /// way, as every held step moves them (into one state, or out of one). A step that could
    /// move codes both into and out of one state (an import reverting one code to synced and
    /// changing another) takes the list, whose `version` moves the marks' stamp too.
    pub(crate) async fn release_triggers(&mut self) -> Result<(), StoreError> {
        let companies = match self {
            Tx::Sqlite(_, held) if !held.0.is_empty() => std::mem::take(&mut held.0),
            _ => return Ok(()),
        };
        self.execute("DELETE FROM triggers_held", []).await?;
        for company in companies {
            self.execute(
                "WITH lists AS (SELECT id FROM cost_code_lists WHERE company_id = $1), \
                 now AS (SELECT list_id, sync_status, COUNT(*) AS n FROM cost_codes WHERE \
                 list_id IN (SELECT id FROM lists) GROUP BY list_id, sync_status), \
                 keys AS (SELECT list_id, sync_status FROM now UNION SELECT list_id, \
                 sync_status FROM list_state_counts WHERE list_id IN (SELECT id FROM lists)) \
                 INSERT INTO list_state_counts (list_id, sync_status, n, changes) \
                 SELECT k.list_id, k.sync_status, COALESCE(now.n, 0), COALESCE(now.n, 0) \
                 FROM keys k LEFT JOIN now ON now.list_id = k.list_id AND now.sync_status \
                 = k.sync_status WHERE TRUE ON CONFLICT (list_id, sync_status) DO UPDATE SET \
                 n = excluded.n, changes = changes + abs(excluded.n - n)",
                [company.into()],
            )
            .await?;
            self.execute(
                "DELETE FROM erp_item_counts WHERE company_id = $1",
                [company.into()],
            )
            .await?;
            self.execute(
                "INSERT INTO erp_item_counts (company_id, status, n) SELECT company_id, \
                 status, COUNT(*) FROM erp_items WHERE company_id = $1 AND NOT superseded \
                 GROUP BY company_id, status",
                [company.into()],
            )
            .await?;
        }
        Ok(())
    }
}
