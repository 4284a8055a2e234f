//! The API's per-owner request counts (README, Rate limits). Each instance counts in memory and
//! adds its counts to the database's shared count once a second; an owner close to the limit is
//! counted in the database on every request, so the refusal is exact however many instances
//! share the database. The list pages then pay a lock, not a write, per request (BENCHMARKS.md).
use costbridge_storage::Db;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The rate limit's fixed window.
pub const WINDOW_SECS: i64 = 60;

/// How often the counts kept in memory are added to the shared count.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The longest a request waits for its count in the database. SQLite has one writer: while a
/// long write runs (a 100,000-row import takes seconds) a read would otherwise wait for it just
/// to be counted; it is then counted here and reaches the database with the next flush.
const PATIENCE: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct RateCounts {
    tallies: Mutex<HashMap<i64, Tally>>,
}

/// One owner's count in one window, as this instance knows it.
#[derive(Default)]
struct Tally {
    window: i64,
    /// The shared count when the database last answered, plus what was counted here since.
    seen: i64,
    /// Counted here and not yet added to the database.
    pending: i64,
}

/// From how many requests before the limit every request is counted in the database: what
/// other instances counted but not yet flushed can then not carry an owner past the limit.
fn exact_within(limit: i64) -> i64 {
    (limit / 10).max(10)
}

/// The start (unix seconds) of the window `now` falls in.
pub fn window_of(now: i64) -> i64 {
    now - now.rem_euclid(WINDOW_SECS)
}

impl RateCounts {
    fn lock(&self) -> MutexGuard<'_, HashMap<i64, Tally>> {
        // A panic while holding the lock leaves plain counts behind: still usable.
        self.tallies.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one request of `owner` in `window` and returns the window's count so far.
    pub async fn count(&self, db: &Db, owner: i64, window: i64, limit: i64) -> i64 {
        let take = {
            let mut tallies = self.lock();
            let t = tallies.entry(owner).or_default();
            if t.window != window {
                *t = Tally {
                    window,
                    ..Tally::default()
                };
            }
            t.seen += 1;
            t.pending += 1;
            if limit - t.seen >= exact_within(limit) {
                return t.seen;
            }
            std::mem::take(&mut t.pending)
        };
        match tokio::time::timeout(PATIENCE, db.count_requests(owner, window, take)).await {
            Ok(Ok(shared)) => {
                self.learned(owner, window, shared);
                shared
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "rate limit count failed; counted in memory");
                self.restore(owner, window, take)
            }
            Err(_) => {
                tracing::debug!(
                    "rate limit count waited too long for the database; counted in memory"
                );
                self.restore(owner, window, take)
            }
        }
    }

    /// The database's count `shared` (which holds everything flushed so far) plus what was
    /// counted here since the flush was taken.
    fn learned(&self, owner: i64, window: i64, shared: i64) {
        if let Some(t) = self.lock().get_mut(&owner).filter(|t| t.window == window) {
            t.seen = t.seen.max(shared + t.pending);
        }
    }

    /// Puts back counts the database did not take, for the next flush; returns the count.
    fn restore(&self, owner: i64, window: i64, n: i64) -> i64 {
        let mut tallies = self.lock();
        match tallies.get_mut(&owner).filter(|t| t.window == window) {
            Some(t) => {
                t.pending += n;
                t.seen
            }
            None => n,
        }
    }

    /// Adds the counts kept here to the shared count; a window that is over is forgotten, as
    /// nothing reads its count any more.
    pub async fn flush(&self, db: &Db, now: i64) {
        let current = window_of(now);
        let due: Vec<(i64, i64, i64)> = {
            let mut tallies = self.lock();
            tallies.retain(|_, t| t.window == current);
            tallies
                .iter_mut()
                .filter(|(_, t)| t.pending > 0)
                .map(|(owner, t)| (*owner, t.window, std::mem::take(&mut t.pending)))
                .collect()
        };
        for (owner, window, n) in due {
            match db.count_requests(owner, window, n).await {
                Ok(shared) => self.learned(owner, window, shared),
                Err(e) => {
                    tracing::error!(error = %e, "rate limit counts could not be saved; kept for the next try");
                    self.restore(owner, window, n);
                }
            }
        }
    }

    /// Flushes every second until `stop` resolves, then once more.
    pub async fn run(&self, db: Db, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop => break,
            }
            self.flush(&db, now()).await;
        }
        self.flush(&db, now()).await;
    }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
