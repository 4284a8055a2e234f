//! The retry policy shared by the export worker and the mail outbox, and how long the
//! background loops sleep between rounds.
use time::{Duration, OffsetDateTime};

/// `base` seconds, doubled per attempt after the first, never more than `cap` seconds.
pub fn backoff(base: i64, attempts: i64, cap: i64) -> Duration {
    let secs = base.saturating_mul(1i64 << attempts.clamp(1, 20).saturating_sub(1));
    Duration::seconds(secs.clamp(1, cap))
}

/// How long a background loop sleeps after a round: until its next item is `due`, but at
/// least `floor` (an item due now must not spin the loop) and at most five seconds, or five
/// seconds when nothing is due or the read failed (another instance may have queued work).
pub fn until_due<E>(
    due: Result<Option<OffsetDateTime>, E>, floor: Duration,
) -> std::time::Duration {
    let wait = match due {
        Ok(Some(due)) => (due - costbridge_storage::now()).clamp(floor, Duration::seconds(5)),
        _ => Duration::seconds(5),
    };
    wait.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(2, 1, 600), Duration::seconds(2));
        assert_eq!(backoff(2, 3, 600), Duration::seconds(8));
        assert_eq!(backoff(2, 30, 600), Duration::seconds(600));
        assert_eq!(backoff(60, 1, 3600), Duration::seconds(60));
        assert_eq!(backoff(60, 3, 3600), Duration::seconds(240));
        assert_eq!(backoff(60, 30, 3600), Duration::seconds(3600));
    }
}

/// Whether the service is stopping (SIGTERM). The background loops check it before they take
/// each job, email or batch: they drained everything due first, so a stop under a backlog
/// ran on for minutes until the supervisor killed the process mid-batch.
#[derive(Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    pub fn new(rx: tokio::sync::watch::Receiver<bool>) -> Stop {
        Stop(rx)
    }

    /// For one step driven from outside (tests, the CLI): it never stops.
    pub fn never() -> Stop {
        Stop(tokio::sync::watch::channel(false).1)
    }

    pub fn now(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the service is stopping.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}
