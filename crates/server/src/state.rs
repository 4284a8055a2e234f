//! What every handler shares.
use crate::metrics::Metrics;
use costbridge_storage::Db;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// Woken when an export job is queued, so the worker starts at once instead of polling.
    pub worker_wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub login_limiter: Arc<RateLimiter>,
    /// Where people open Costbridge (`[mail] base_url`): links start with it, and an https
    /// address makes the session cookie `Secure`.
    pub base_url: Arc<str>,
    /// Whether an SMTP server is configured; without one, a reset link is shown to the admin.
    pub mail_on: bool,
}

/// A fixed-window limit per key (here: per login email), enough to stop password guessing
/// from one client without a shared store.
pub struct RateLimiter {
    window: Duration,
    max: u32,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        RateLimiter {
            window,
            max,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(seconds)` to wait when the key is over its limit.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        hits.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        let entry = hits.entry(key.to_owned()).or_insert((now, 0));
        entry.1 += 1;
        if entry.1 > self.max {
            let wait = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(wait.as_secs().max(1));
        }
        Ok(())
    }
}
