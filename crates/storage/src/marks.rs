//! Where a page by number starts. `OFFSET 99700` walks 99,700 index entries on every request;
//! instead, the key of every [`STRIDE`]th code of a list (or of one state in it) is taken once
//! and kept in memory, and a page starts after the nearest mark with a short walk from there.
//! Marks are taken again whenever the list's stamp moves: its `version` (bumped by every
//! rename and every write that takes the list) and the `changes` its kept counts carry (moved by
//! triggers whenever a code enters or leaves the list or a state, migration
//! `202611315_page_marks`), so no write path has to remember them.
use crate::tx::{Arg, Queries};
use crate::{Db, StoreError};
use sqlx::AssertSqlSafe;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// Codes from one mark to the next: the most a page by number walks.
pub(crate) const STRIDE: i64 = 1000;

/// Lists (and states in them) whose marks are kept; past this, all are dropped and taken again
/// as asked, so memory stays bounded whatever the number of lists.
const KEPT: usize = 512;

/// A list in one database, with the state its pages are filtered by.
#[derive(PartialEq, Eq, Hash)]
struct Key {
    db: String,
    list: i64,
    state: Option<String>,
}

/// The list's version and its counts' `changes` when the marks were taken.
pub(crate) type Stamp = (i64, i64);

/// The sort key and full code of codes number STRIDE, 2 × STRIDE, … in list order.
type Keys = Arc<Vec<(String, String)>>;

static MARKS: LazyLock<Mutex<HashMap<Key, (Stamp, Keys)>>> = LazyLock::new(Default::default);

/// Where a page at `offset` starts: after the code with this sort key and full code, skipping
/// this many more.
pub(crate) struct Start {
    pub anchor: (String, String),
    pub skip: i64,
}

impl Db {
    /// The start of the page at `offset` in `company`'s `list` (of codes in `state`, if
    /// given), from its marks; `None` when the page lies before the first mark, or the list is
    /// not the company's (the page itself then says so).
    pub(crate) async fn page_start(
        &self, company: i64, list: i64, state: Option<&str>, offset: i64,
    ) -> Result<Option<Start>, StoreError> {
        let key = Key {
            db: self.identity(),
            list,
            state: state.map(str::to_owned),
        };
        let of_list = OfList {
            company,
            list,
            state,
        };
        let Some(stamp) = self.stamp(&of_list).await? else {
            return Ok(None);
        };
        let kept = {
            let marks = MARKS.lock().unwrap_or_else(PoisonError::into_inner);
            marks
                .get(&key)
                .filter(|(at, _)| *at == stamp)
                .map(|(_, keys)| keys.clone())
        };
        let keys = match kept {
            Some(keys) => keys,
            None => {
                let keys = Arc::new(self.take_marks(&of_list).await?);
                // Kept only if nothing moved while they were taken; if something did, they
                // still serve this request as well as an offset would under the same change.
                if self.stamp(&of_list).await? == Some(stamp) {
                    let mut marks = MARKS.lock().unwrap_or_else(PoisonError::into_inner);
                    if marks.len() >= KEPT {
                        marks.clear();
                    }
                    marks.insert(key, (stamp, keys.clone()));
                }
                keys
            }
        };
        let passed = usize::try_from(offset / STRIDE)
            .unwrap_or(0)
            .min(keys.len());
        Ok(passed.checked_sub(1).map(|i| Start {
            anchor: keys[i].clone(),
            skip: offset - passed as i64 * STRIDE,
        }))
    }

    pub(crate) async fn stamp(&self, of: &OfList<'_>) -> Result<Option<Stamp>, StoreError> {
        let (only, args) = of.args("s.");
        let sql = format!(
            "SELECT l.version, CAST(COALESCE((SELECT SUM(s.changes) FROM list_state_counts s \
             WHERE s.list_id = l.id{only}), 0) AS BIGINT) FROM cost_code_lists l WHERE l.id = \
             $1 AND l.company_id = $2"
        );
        self.pool().fetch_optional(AssertSqlSafe(sql), args).await
    }

    async fn take_marks(&self, of: &OfList<'_>) -> Result<Vec<(String, String)>, StoreError> {
        let (only, args) = of.args("c.");
        let sql = format!(
            "SELECT sort_key, full_code FROM (SELECT c.sort_key, c.full_code, ROW_NUMBER() \
             OVER (ORDER BY {order}) AS r FROM cost_codes c WHERE c.list_id = $1 AND \
             c.company_id = $2{only}) m WHERE r % {STRIDE} = 0 ORDER BY r",
            order = crate::codes::PAGE_ORDER
        );
        self.pool().fetch_all(AssertSqlSafe(sql), args).await
    }
}

/// The codes a list's marks (or its search text, `found.rs`) are taken over: the list (`$1`)
/// of the caller's company (`$2`), and one state (`$3`) if given.
pub(crate) struct OfList<'a> {
    pub company: i64,
    pub list: i64,
    pub state: Option<&'a str>,
}

impl OfList<'_> {
    /// The condition on the state, if any (`table` prefixes its column), and the arguments.
    pub(crate) fn args(&self, table: &str) -> (String, Vec<Arg>) {
        let mut args = vec![self.list.into(), self.company.into()];
        let only = match self.state {
            Some(s) => {
                args.push(s.into());
                format!(" AND {table}sync_status = $3")
            }
            None => String::new(),
        };
        (only, args)
    }
}
