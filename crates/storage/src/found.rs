//! Search within a list, from memory. `LIKE '%…%'` can use no index, so a search statement
//! read every code of the list twice (the page, then its count): 38 searches a second at
//! 100,000 codes. Instead each searched list's full codes and descriptions are kept, lowered,
//! in one buffer, which `memmem` scans in well under a millisecond; the page's codes are then
//! read by id. The buffer is taken again whenever the list's stamp moves (see `marks`): every
//! write that changes a code's text takes the list and bumps its version, and every change of
//! state moves its counts' `changes`.
use crate::codes::{CODE_COLS, CodeFilter, CodeRow, PAGE_ORDER};
use crate::marks::{OfList, Stamp};
use crate::tx::{Arg, Queries, marks};
use crate::{Db, StoreError};
use costbridge_domain::sync::SyncState;
use memchr::memmem::Finder;
use sqlx::AssertSqlSafe;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// The most text kept for all lists together (about 100 bytes a code): past it, every kept
/// list is dropped and taken again as searched, so memory stays bounded.
const KEPT_BYTES: usize = 64 << 20;

/// How often a search starts again when a write lands while it reads its page; past that it
/// answers what it read, as a search statement and its count (two statements) always did.
const TRIES: usize = 3;

/// Ends a code's full code, before its description. A search text holding it (or
/// [`CODE_END`]) is answered by the statement, so no match runs from one field into the next.
const FIELD_END: u8 = 1;
/// Ends a code's description, before the next code.
const CODE_END: u8 = 0;

/// Search texts whose matches each list keeps (at most 4 bytes a code each).
const FOUND_KEPT: usize = 8;

/// Codes read per statement while a list's text is taken.
const READ_CHUNK: usize = 5000;

/// One list's codes in list order, as a search sees them.
struct Codes {
    /// Each code's lowered full code and description, each followed by its end mark.
    text: Vec<u8>,
    /// Where each code starts in `text`.
    starts: Vec<u32>,
    ids: Vec<i64>,
    states: Vec<SyncState>,
    /// The codes (indexes) that the last few search texts matched, newest last: paging
    /// through a search, or many people running the same one, reads the text once. They go
    /// with the codes, so a change to the list drops them too.
    found: Mutex<Vec<Matched>>,
}

impl Codes {
    fn bytes(&self) -> usize {
        self.text.len() + self.starts.len() * 4 + self.ids.len() * 8 + self.states.len()
    }

    /// The indexes of the codes whose text contains `needle`, in list order, each once.
    fn matches(&self, needle: &str) -> Arc<[u32]> {
        let kept = |found: &[Matched]| {
            found
                .iter()
                .find(|(n, _)| **n == *needle)
                .map(|(_, m)| m.clone())
        };
        if let Some(m) = kept(&self.found.lock().unwrap_or_else(PoisonError::into_inner)) {
            return m;
        }
        let finder = Finder::new(needle.as_bytes());
        let mut out = Vec::new();
        let mut from = 0;
        // Each match skips to the next code: a code matching twice counts once.
        while from < self.text.len() {
            let Some(at) = finder.find(&self.text[from..]).map(|at| from + at) else {
                break;
            };
            let i = self.starts.partition_point(|&s| s as usize <= at) - 1;
            from = self
                .starts
                .get(i + 1)
                .map_or(self.text.len(), |&s| s as usize);
            out.push(i as u32);
        }
        let out: Arc<[u32]> = out.into();
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        // Searches asking at once each scan (the lock is not held meanwhile); one keeps it.
        if let Some(m) = kept(&found) {
            return m;
        }
        if found.len() >= FOUND_KEPT {
            found.remove(0);
        }
        found.push((needle.into(), out.clone()));
        out
    }

    /// The ids of the page (`skip` matches after the code at index `after`, if any, then up to
    /// `limit`) and how many codes match in all.
    fn page(
        &self, needle: &str, state: Option<SyncState>, after: Option<usize>, skip: usize,
        limit: usize,
    ) -> (Vec<i64>, i64) {
        let (mut page, mut total, mut seen) = (Vec::new(), 0i64, 0usize);
        for &i in self.matches(needle).iter() {
            let i = i as usize;
            if state.is_some_and(|s| s != self.states[i]) {
                continue;
            }
            total += 1;
            if after.is_some_and(|a| i <= a) {
                continue;
            }
            if seen >= skip && page.len() < limit {
                page.push(self.ids[i]);
            }
            seen += 1;
        }
        (page, total)
    }
}

/// A search text and the indexes of the codes it matched.
type Matched = (Box<str>, Arc<[u32]>);

/// A list in one database.
type Key = (String, i64);

/// Each searched list's codes, with the stamp they were read at.
type Kept = HashMap<Key, (Stamp, Arc<Codes>)>;

static KEPT: LazyLock<Mutex<Kept>> = LazyLock::new(Default::default);

/// Held while a list's codes are read: sixteen searches arriving together after a change wait
/// for one reading (some 20 MB while it lasts, at 100,000 codes) instead of making sixteen.
static READING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One page of a search: the codes and how many match in all.
pub(crate) type Found = (Vec<CodeRow>, i64);

impl Db {
    /// The page of `company`'s `list` whose codes contain `q` (lowered) in their full code or
    /// description, in the filter's state and after its code, if given: `None` when memory
    /// cannot answer it (then the statement does), including when the list is not the
    /// company's.
    pub(crate) async fn search_page(
        &self, company: i64, list: i64, q: &str, f: &CodeFilter, limit: i64, offset: i64,
    ) -> Result<Option<Found>, StoreError> {
        let state = f.sync_status.as_deref();
        let position = match &f.after_code {
            Some(full_code) => Some(self.position(company, full_code).await?),
            None => None,
        };
        if q.bytes().any(|b| b == FIELD_END || b == CODE_END) {
            return Ok(None);
        }
        let of = OfList {
            company,
            list,
            state: None,
        };
        // A state no code can be in is the statement's to answer (nothing, or not found).
        let state = match state.map(SyncState::parse) {
            Some(None) => return Ok(None),
            Some(parsed) => parsed,
            None => None,
        };
        let (skip, limit) = (
            usize::try_from(offset).unwrap_or(0),
            usize::try_from(limit).unwrap_or(0),
        );
        let mut last = None;
        let Some(mut stamp) = self.stamp(&of).await? else {
            return Ok(None);
        };
        for _ in 0..TRIES {
            let codes = self.codes_at(&of, stamp).await?;
            let after = match (f.after, &position) {
                (Some(id), _) => match codes.ids.iter().position(|&i| i == id) {
                    Some(at) => Some(at),
                    // Not in the list: the statement says so, in its words.
                    None => return Ok(None),
                },
                // The kept codes hold no keys: the first code past the position is read by
                // the list's index, and the page starts at its place. Read between the two
                // stamps, so a write that moves it makes this try start again.
                (None, Some(key)) => match self.first_after(&of, key).await? {
                    None => Some(codes.ids.len()),
                    Some(id) => match codes.ids.iter().position(|&i| i == id) {
                        Some(at) => at.checked_sub(1),
                        None => return Ok(None),
                    },
                },
                (None, None) => None,
            };
            let (ids, total) = codes.page(q, state, after, skip, limit);
            drop(codes);
            let rows = self.rows_by_id(list, &ids).await?;
            last = Some((rows, total));
            // The stamp read after the rows is the next try's: one query a try, not two.
            match self.stamp(&of).await? {
                Some(now) if now == stamp => break,
                Some(now) => stamp = now,
                None => return Ok(None),
            }
        }
        Ok(last)
    }

    /// The list's codes as they stood at `stamp`, kept or read now.
    async fn codes_at(&self, of: &OfList<'_>, stamp: Stamp) -> Result<Arc<Codes>, StoreError> {
        let key = (self.identity(), of.list);
        let kept = || {
            KEPT.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .filter(|(at, _)| *at == stamp)
                .map(|(_, codes)| codes.clone())
        };
        if let Some(codes) = kept() {
            return Ok(codes);
        }
        let _reading = READING.lock().await;
        // Another search may have read them while this one waited.
        if let Some(codes) = kept() {
            return Ok(codes);
        }
        // The stale text goes before the new is read, so the two are never held together.
        KEPT.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
        let codes = Arc::new(self.read_codes(of).await?);
        // Kept only if nothing moved while they were read (the caller checks its own page).
        if self.stamp(of).await? == Some(stamp) {
            let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
            let held: usize = kept.values().map(|(_, c)| c.bytes()).sum();
            if held + codes.bytes() > KEPT_BYTES {
                kept.clear();
            }
            kept.insert(key, (stamp, codes.clone()));
        }
        Ok(codes)
    }

    /// Reads the list in key order, a chunk at a time: the whole list's rows at once held some
    /// 20 MB besides the text, at 100,000 codes.
    async fn read_codes(&self, of: &OfList<'_>) -> Result<Codes, StoreError> {
        let mut codes = Codes {
            text: Vec::new(),
            starts: Vec::new(),
            ids: Vec::new(),
            states: Vec::new(),
            found: Mutex::default(),
        };
        let mut after: Option<(String, String)> = None;
        loop {
            let (_, mut args) = of.args("c.");
            let from = match after.take() {
                Some((sort_key, full_code)) => {
                    args.extend([sort_key.into(), full_code.into()]);
                    " AND (c.sort_key, c.full_code) > ($3, $4)"
                }
                None => "",
            };
            let sql = format!(
                "SELECT c.id, c.full_code, c.description, c.sync_status, c.sort_key FROM \
                 cost_codes c WHERE c.list_id = $1 AND c.company_id = $2{from} ORDER BY \
                 {PAGE_ORDER} LIMIT {READ_CHUNK}"
            );
            let rows: Vec<(i64, String, String, String, String)> =
                self.pool().fetch_all(AssertSqlSafe(sql), args).await?;
            let full = rows.len() == READ_CHUNK;
            for (id, full_code, description, state, sort_key) in rows {
                // 4 GiB of text is some 40 million codes: far past any list.
                codes.starts.push(codes.text.len() as u32);
                codes.ids.push(id);
                codes
                    .states
                    .push(SyncState::try_from(state).map_err(StoreError::decode)?);
                codes
                    .text
                    .extend_from_slice(full_code.to_lowercase().as_bytes());
                codes.text.push(FIELD_END);
                codes
                    .text
                    .extend_from_slice(description.to_lowercase().as_bytes());
                codes.text.push(CODE_END);
                after = Some((sort_key, full_code));
            }
            if !full {
                break;
            }
        }
        codes.text.shrink_to_fit();
        Ok(codes)
    }

    /// The first code of the list after `key` in list order, if any.
    async fn first_after(
        &self, of: &OfList<'_>, (sort_key, full_code): &(String, String),
    ) -> Result<Option<i64>, StoreError> {
        let (_, mut args) = of.args("c.");
        args.extend([sort_key.as_str().into(), full_code.as_str().into()]);
        let sql = format!(
            "SELECT c.id FROM cost_codes c WHERE c.list_id = $1 AND c.company_id = $2 AND \
             (c.sort_key, c.full_code) > ($3, $4) ORDER BY {PAGE_ORDER} LIMIT 1"
        );
        self.pool().scalar_optional(AssertSqlSafe(sql), args).await
    }

    /// The codes of `list` with these ids, in list order.
    async fn rows_by_id(&self, list: i64, ids: &[i64]) -> Result<Vec<CodeRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // By id alone: given the list too, SQLite walks the list's index (which also gives the
        // order) and tests every code's id, 100,000 rows for a page of 100.
        let sql = format!(
            "SELECT {CODE_COLS}, c.sort_key FROM cost_codes c WHERE c.id IN ({}) ORDER BY \
             {PAGE_ORDER}",
            marks(ids.len(), 1)
        );
        let mut rows: Vec<CodeRow> = self
            .fetch_packed(
                &sql,
                CODE_COLS,
                PAGE_ORDER,
                ids.iter().map(|&id| Arg::from(id)),
            )
            .await?;
        rows.retain(|r| r.list_id == list);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(rows: &[(&str, &str, SyncState)]) -> Codes {
        let mut c = Codes {
            text: Vec::new(),
            starts: Vec::new(),
            ids: Vec::new(),
            states: Vec::new(),
            found: Mutex::default(),
        };
        for (i, (code, description, state)) in rows.iter().enumerate() {
            c.starts.push(c.text.len() as u32);
            c.ids.push(i as i64 + 1);
            c.states.push(*state);
            c.text.extend_from_slice(code.to_lowercase().as_bytes());
            c.text.push(FIELD_END);
            c.text
                .extend_from_slice(description.to_lowercase().as_bytes());
            c.text.push(CODE_END);
        }
        c
    }

    #[test]
    fn a_code_matching_twice_counts_once_and_pages_follow_the_list() {
        use SyncState::{New, Synced};
        let c = codes(&[
            ("01", "Item 7 and item 7", New),
            ("01-1", "Other", Synced),
            ("01-7", "Item", New),
            ("02", "ITEM 77", Synced),
        ]);
        assert_eq!(c.page("item 7", None, None, 0, 10), (vec![1, 4], 2));
        assert_eq!(c.page("7", None, None, 1, 1), (vec![3], 3));
        assert_eq!(c.page("7", Some(Synced), None, 0, 10), (vec![4], 1));
        assert_eq!(c.page("7", None, Some(0), 0, 10), (vec![3, 4], 3));
        // Nothing runs from a full code into its description or into the next code.
        assert_eq!(c.page("01item", None, None, 0, 10), (vec![], 0));
        assert_eq!(c.page("", None, None, 0, 2), (vec![1, 2], 4));
    }

    #[test]
    fn a_search_text_is_matched_once_while_kept() {
        let c = codes(&[
            ("01", "Item 7", SyncState::New),
            ("02", "Other", SyncState::New),
        ]);
        let first = c.matches("7");
        assert_eq!(*first, [0]);
        assert!(Arc::ptr_eq(&first, &c.matches("7")), "kept");
        for n in 0..FOUND_KEPT {
            c.matches(&format!("x{n}"));
        }
        let again = c.matches("7");
        assert!(!Arc::ptr_eq(&first, &again), "the oldest text went first");
        assert_eq!(*again, [0]);
        assert_eq!(c.found.lock().unwrap().len(), FOUND_KEPT);
    }
}
