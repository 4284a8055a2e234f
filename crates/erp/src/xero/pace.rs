//! Xero's limits per organisation (tenant): calls per minute, calls per day, calls at once.
//! Each call takes a turn first, so this process keeps within them instead of collecting 429s;
//! a 429 still happens when another instance or app shares the tenant, and the connector obeys
//! its `Retry-After`. The windows are fields, so tests run a "minute" in milliseconds.
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Xero's published limits (README of `shared/erp/xero`), the defaults of `[xero]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_minute: usize,
    pub per_day: usize,
    pub concurrent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_minute: 60,
            per_day: 5_000,
            concurrent: 5,
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// The turns of every tenant this process calls.
#[derive(Debug)]
pub struct Pacer {
    limits: Limits,
    /// The two windows: a minute and a day, except in tests.
    minute: Duration,
    day: Duration,
    tenants: Mutex<HashMap<String, Arc<Tenant>>>,
}

#[derive(Debug)]
struct Tenant {
    at_once: Arc<Semaphore>,
    /// When each call of the last minute, then of the last day, started.
    minute: Mutex<VecDeque<Instant>>,
    day: Mutex<VecDeque<Instant>>,
}

/// A call's turn: held while the call runs (it counts toward the calls at once).
#[derive(Debug)]
pub struct Turn {
    _permit: OwnedSemaphorePermit,
}

impl Pacer {
    pub fn new(limits: Limits) -> Pacer {
        Pacer::with_windows(limits, MINUTE, DAY)
    }

    /// Pacing over other windows than a minute and a day (tests).
    pub fn with_windows(limits: Limits, minute: Duration, day: Duration) -> Pacer {
        Pacer {
            limits,
            minute,
            day,
            tenants: Mutex::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Waits for a turn to call `tenant` within the minute and concurrency limits; `Err` with
    /// how long until the day's limit lets another call through (too long to wait in a call).
    pub async fn turn(&self, tenant: &str) -> Result<Turn, Duration> {
        let t = self
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(tenant.to_owned())
            .or_insert_with(|| {
                Arc::new(Tenant {
                    at_once: Arc::new(Semaphore::new(self.limits.concurrent.max(1))),
                    minute: Mutex::default(),
                    day: Mutex::default(),
                })
            })
            .clone();
        let permit = t
            .at_once
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        {
            let now = Instant::now();
            let mut day = t.day.lock().unwrap_or_else(PoisonError::into_inner);
            forget_before(&mut day, now, self.day);
            if day.len() >= self.limits.per_day {
                return Err(day[0] + self.day - now);
            }
        }
        loop {
            let now = Instant::now();
            let wait = {
                let mut minute = t.minute.lock().unwrap_or_else(PoisonError::into_inner);
                forget_before(&mut minute, now, self.minute);
                if minute.len() < self.limits.per_minute.max(1) {
                    minute.push_back(now);
                    t.day
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push_back(now);
                    break;
                }
                minute[0] + self.minute - now
            };
            tokio::time::sleep(wait).await;
        }
        Ok(Turn { _permit: permit })
    }
}

fn forget_before(calls: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while calls
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        calls.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(300);

    #[tokio::test]
    async fn calls_are_paced_per_minute_and_refused_past_the_days_limit() {
        let limits = Limits {
            per_minute: 60,
            per_day: 130,
            concurrent: 5,
        };
        let pacer = Pacer::with_windows(limits, TICK, Duration::from_secs(3600));
        let start = Instant::now();
        for _ in 0..60 {
            pacer.turn("org-a").await.unwrap();
        }
        assert!(
            start.elapsed() < TICK,
            "the first 60 calls of a minute wait for nothing"
        );
        // The 61st waits for the first call of the "minute" to leave it.
        pacer.turn("org-a").await.unwrap();
        assert!(start.elapsed() >= TICK);
        // Another organisation has its own turns.
        let other = Instant::now();
        pacer.turn("org-b").await.unwrap();
        assert!(other.elapsed() < TICK);
        for _ in 0..69 {
            pacer.turn("org-a").await.unwrap();
        }
        let wait = pacer.turn("org-a").await.unwrap_err();
        assert!(wait > Duration::from_secs(3500), "{wait:?}");
    }

    #[tokio::test]
    async fn at_most_the_concurrent_limit_run_at_once() {
        let pacer = Pacer::new(Limits {
            concurrent: 2,
            ..Limits::default()
        });
        let a = pacer.turn("org").await.unwrap();
        let _b = pacer.turn("org").await.unwrap();
        let third = pacer.turn("org");
        tokio::pin!(third);
        assert!(tokio::time::timeout(TICK, &mut third).await.is_err());
        drop(a);
        third.await.unwrap();
    }
}
