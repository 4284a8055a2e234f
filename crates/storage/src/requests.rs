//! What the API keeps about requests across instances (README, Integrations): the first answer
//! to each `Idempotency-Key`, and each token owner's request count in the current window.
use crate::tx::{Queries, Tx};
use crate::{Db, StoreError, now};
use time::OffsetDateTime;

/// The first answer to a key, replayed to every retry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredAnswer {
    pub status: i64,
    /// JSON `[[name, value], …]` of the headers worth replaying.
    pub headers: String,
    pub body: String,
}

/// Where a key stands when a request arrives with it.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This request is the first (or takes over an abandoned claim): it runs.
    Mine,
    /// The first request with this key is still running.
    InFlight,
    /// The key was used for another request (method, path or body).
    OtherRequest,
    /// The first request finished: its answer.
    Done(StoredAnswer),
    /// The first request changed data, then its server stopped before it answered: it does
    /// not run again, and no answer was kept.
    Interrupted,
}

tokio::task_local! {
    /// The key of the request this task runs ([`Db::under_key`]); `None` inside [`aside`].
    static UNDER_KEY: Option<(KeyOwner, String)>;
}

/// Runs `write`, a write of Costbridge's own bookkeeping that is not the request's change (a
/// renewed Xero token), without marking the request's key: a 502 from the ERP after such a
/// write is let go of like any server error before a change, so a retry runs again.
pub(crate) async fn aside<F: Future>(write: F) -> F::Output {
    UNDER_KEY.scope(None, write).await
}

/// Marks the key of the request running this transaction as having changed data, inside the
/// transaction (called just before every write commits): the mark and the change are saved
/// together or not at all, so neither a server error after the commit nor a crash before the
/// answer was kept lets a retry run the change again. Outside [`Db::under_key`] it does nothing.
pub(crate) async fn mark_changed(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    let Ok(Some((owner, key))) = UNDER_KEY.try_with(Clone::clone) else {
        return Ok(());
    };
    tx.execute(
        "UPDATE idempotency_keys SET changed = TRUE WHERE company_id = $1 AND caller_id = $2 \
         AND key = $3 AND NOT changed",
        [owner.company.into(), owner.caller.into(), key.into()],
    )
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: String,
    changed: bool,
    status: Option<i64>,
    headers: Option<String>,
    body: Option<String>,
    locked_until: OffsetDateTime,
}

/// Who used a key: the company and the users row of the caller (a person or a machine client).
#[derive(Debug, Clone, Copy)]
pub struct KeyOwner {
    pub company: i64,
    pub caller: i64,
}

/// A kept answer's body as stored (`before`) and sealed under a new key (`after`).
#[derive(Debug, Clone)]
pub struct KeptAnswer {
    pub owner: KeyOwner,
    pub key: String,
    pub before: String,
    pub after: String,
}

/// Writes re-sealed answers (`secrets rotate`); one that changed or expired meanwhile fails the
/// whole rotation, which can then be run again.
pub(crate) async fn rewrite_answers(
    tx: &mut Tx<'_>, rows: &[KeptAnswer],
) -> Result<(), StoreError> {
    for a in rows {
        let done = tx
            .execute(
                "UPDATE idempotency_keys SET body = $1 WHERE company_id = $2 AND caller_id = $3 \
                 AND key = $4 AND body = $5",
                [
                    a.after.as_str().into(),
                    a.owner.company.into(),
                    a.owner.caller.into(),
                    a.key.as_str().into(),
                    a.before.as_str().into(),
                ],
            )
            .await?;
        if done != 1 {
            return Err(StoreError::Conflict(
                "a kept idempotent answer changed or expired meanwhile; nothing was changed, run \
                 it again"
                    .into(),
            ));
        }
    }
    Ok(())
}

impl Db {
    /// Runs `request` (a request that claimed `key`) so that each write transaction it commits
    /// marks the key as having changed data ([`mark_changed`]).
    pub async fn under_key<F: Future>(owner: KeyOwner, key: String, request: F) -> F::Output {
        UNDER_KEY.scope(Some((owner, key)), request).await
    }

    /// Every kept answer's body, for `secrets rotate`.
    pub async fn kept_answers(&self) -> Result<Vec<(KeyOwner, String, String)>, StoreError> {
        let rows: Vec<(i64, i64, String, String)> = self
            .pool()
            .fetch_all(
                "SELECT company_id, caller_id, key, body FROM idempotency_keys WHERE body IS NOT \
                 NULL ORDER BY company_id, caller_id, key",
                [],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(company, caller, key, body)| (KeyOwner { company, caller }, key, body))
            .collect())
    }

    /// Claims `key` for a request whose method, path and body hash to `hash`. The row's primary
    /// key makes the claim atomic across instances; a claim not finished by `lease_until`
    /// (its instance died) may be taken over, and keys past `expires_at` are forgotten.
    pub async fn claim_idempotency_key(
        &self, owner: KeyOwner, key: &str, hash: &str, lease_until: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let t = now();
                tx.execute(
                    "DELETE FROM idempotency_keys WHERE expires_at <= $1",
                    [t.into()],
                )
                .await?;
                let inserted = tx
                    .execute(
                        "INSERT INTO idempotency_keys (company_id, caller_id, key, \
                         request_hash, locked_until, expires_at) VALUES ($1, $2, $3, $4, $5, \
                         $6) ON CONFLICT (company_id, caller_id, key) DO NOTHING",
                        [
                            owner.company.into(),
                            owner.caller.into(),
                            key.into(),
                            hash.into(),
                            lease_until.into(),
                            expires_at.into(),
                        ],
                    )
                    .await?;
                if inserted == 1 {
                    return Ok(Claim::Mine);
                }
                let row: KeyRow = tx
                    .fetch_one(
                        "SELECT request_hash, changed, status, headers, body, locked_until FROM \
                         idempotency_keys WHERE company_id = $1 AND caller_id = $2 AND key = $3",
                        [owner.company.into(), owner.caller.into(), key.into()],
                    )
                    .await?;
                if row.request_hash != hash {
                    return Ok(Claim::OtherRequest);
                }
                match (row.status, row.headers, row.body) {
                    (Some(status), Some(headers), Some(body)) => Ok(Claim::Done(StoredAnswer {
                        status,
                        headers,
                        body,
                    })),
                    _ if row.locked_until > t => Ok(Claim::InFlight),
                    _ if row.changed => Ok(Claim::Interrupted),
                    _ => {
                        tx.execute(
                            "UPDATE idempotency_keys SET locked_until = $4 WHERE company_id = \
                             $1 AND caller_id = $2 AND key = $3",
                            [
                                owner.company.into(),
                                owner.caller.into(),
                                key.into(),
                                lease_until.into(),
                            ],
                        )
                        .await?;
                        Ok(Claim::Mine)
                    }
                }
            })
        })
        .await
    }

    /// Records the first answer to a claimed key.
    pub async fn finish_idempotency_key(
        &self, owner: KeyOwner, key: &str, answer: &StoredAnswer,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                tx.execute(
                    "UPDATE idempotency_keys SET status = $4, headers = $5, body = $6 WHERE \
                     company_id = $1 AND caller_id = $2 AND key = $3",
                    [
                        owner.company.into(),
                        owner.caller.into(),
                        key.into(),
                        answer.status.into(),
                        answer.headers.as_str().into(),
                        answer.body.as_str().into(),
                    ],
                )
                .await?;
                Ok::<_, StoreError>(())
            })
        })
        .await
    }

    /// Lets go of a claimed key whose request did not finish with an answer worth keeping (a
    /// server error), unless it changed data: a retry then runs the request again. False when
    /// the request changed data (the key is kept; its caller keeps an answer for it).
    pub async fn release_idempotency_key(
        &self, owner: KeyOwner, key: &str,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let changed: Option<bool> = tx
                    .scalar_optional(
                        "SELECT changed FROM idempotency_keys WHERE company_id = $1 AND \
                         caller_id = $2 AND key = $3",
                        [owner.company.into(), owner.caller.into(), key.into()],
                    )
                    .await?;
                let changed = changed.unwrap_or(false);
                if !changed {
                    tx.execute(
                        "DELETE FROM idempotency_keys WHERE company_id = $1 AND caller_id = $2 \
                         AND key = $3 AND status IS NULL",
                        [owner.company.into(), owner.caller.into(), key.into()],
                    )
                    .await?;
                }
                Ok::<_, StoreError>(!changed)
            })
        })
        .await
    }

    /// Adds `n` requests of `owner` to the fixed window starting at `window_start` (unix
    /// seconds) and returns the window's count so far: one upsert, shared by every instance.
    pub async fn count_requests(
        &self, owner: i64, window_start: i64, n: i64,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                tx.scalar(
                    // A late count for a window another instance has already ended (clocks
                    // a little apart) is dropped rather than taking the row back in time.
                    "INSERT INTO rate_counters (owner_id, window_start, hits) VALUES ($1, $2, $3) \
                     ON CONFLICT (owner_id) DO UPDATE SET \
                     hits = CASE WHEN rate_counters.window_start = excluded.window_start \
                     THEN rate_counters.hits + excluded.hits \
                     WHEN rate_counters.window_start > excluded.window_start \
                     THEN rate_counters.hits ELSE excluded.hits END, \
                     window_start = CASE WHEN rate_counters.window_start > excluded.window_start \
                     THEN rate_counters.window_start ELSE excluded.window_start END \
                     RETURNING hits",
                    [owner.into(), window_start.into(), n.into()],
                )
                .await
            })
        })
        .await
    }
}
