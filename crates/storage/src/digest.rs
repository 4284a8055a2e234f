//! The approvers' daily summary: who gets one (not for their own sends), whether it still has
//! a point when it goes out, and the one-click opt-out.
use crate::outbox::{APPROVER, Notice, SenderCount, enqueue};
use crate::tx::Queries;
use crate::{Db, StoreError, audit};
use costbridge_domain::queue::ItemStatus;
use serde_json::json;
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

impl Db {
    /// Whether a daily summary for this user still has a point: they are an approver, have not
    /// opted out, and something someone else sent still waits in their company's Ready to
    /// Export.
    pub async fn digest_still_wanted(&self, user: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM users u WHERE u.id = $1 AND \
             u.digest_emails AND {} AND EXISTS (SELECT 1 FROM erp_items \
             i WHERE i.company_id = u.company_id AND i.status = $2 AND \
             NOT i.superseded AND i.sent_by <> u.id)",
            *APPROVER
        );
        let n: i64 = self
            .pool()
            .scalar(
                AssertSqlSafe(sql),
                [user.into(), ItemStatus::Ready.as_str().into()],
            )
            .await?;
        Ok(n > 0)
    }

    /// Queues today's summary for every approver who wants one, in every company where codes
    /// wait that someone else sent (an approver's own sends are left out of their summary).
    /// `date` is the local date; the dedupe key `digest:<user>:<date>` makes a second run on
    /// the same day (another instance, a restart, cron) add nothing. Returns how many were
    /// queued.
    pub async fn enqueue_daily_summaries(&self, date: &str) -> Result<u64, StoreError> {
        type Sender = (i64, String, String, i64, OffsetDateTime);
        let ready = ItemStatus::Ready.as_str();
        self.write(|tx| {
            Box::pin(async move {
                let waiting: Vec<(i64, String)> = tx
                    .fetch_all(
                        "SELECT c.id, c.name FROM companies c WHERE EXISTS (SELECT 1 \
                         FROM erp_items i WHERE i.company_id = c.id AND i.status = \
                         $1 AND NOT i.superseded) ORDER BY c.id",
                        [ready.into()],
                    )
                    .await?;
                let mut queued = 0;
                for (company_id, company) in waiting {
                    let sql = format!(
                        "SELECT u.id, u.email FROM users u WHERE u.company_id = $1 \
                         AND u.digest_emails AND {} ORDER BY u.id",
                        *APPROVER
                    );
                    let approvers: Vec<(i64, String)> = tx
                        .fetch_all(AssertSqlSafe(sql), [company_id.into()])
                        .await?;
                    if approvers.is_empty() {
                        continue;
                    }
                    // Most codes first; each sender's count and oldest send.
                    let senders: Vec<Sender> = tx
                        .fetch_all(
                            "SELECT u.id, u.name, u.email, COUNT(*), MIN(i.sent_at) FROM \
                             erp_items i JOIN users u ON u.id = i.sent_by WHERE \
                             i.company_id = $1 AND i.status = $2 GROUP BY u.id, u.name, \
                             u.email ORDER BY COUNT(*) DESC, u.id",
                            [company_id.into(), ready.into()],
                        )
                        .await?;
                    for (user, email) in &approvers {
                        let others: Vec<&Sender> =
                            senders.iter().filter(|s| s.0 != *user).collect();
                        let Some(oldest_sent_at) = others.iter().map(|s| s.4).min() else {
                            continue;
                        };
                        let notice = Notice::DailySummary {
                            company: company.clone(),
                            date: date.to_owned(),
                            count: others.iter().map(|s| s.3).sum(),
                            oldest_sent_at,
                            senders: others
                                .iter()
                                .map(|(_, name, email, count, _)| SenderCount {
                                    name: name.clone(),
                                    email: email.clone(),
                                    count: *count,
                                })
                                .collect(),
                        };
                        let key = format!("digest:{user}:{date}");
                        queued +=
                            enqueue(tx, company_id, Some(*user), email, &notice, Some(key)).await?;
                    }
                }
                Ok(queued)
            })
        })
        .await
    }

    /// One-click unsubscribe from the daily summary; returns the user's email, or `NotFound`.
    pub async fn unsubscribe_digest(&self, user: i64) -> Result<String, StoreError> {
        self.write(|tx| {
            Box::pin(async move {
                let row: Option<(i64, String, bool)> = tx
                    .fetch_optional(
                        "SELECT company_id, email, digest_emails FROM users WHERE id \
                         = $1",
                        [user.into()],
                    )
                    .await?;
                let (company, email, before) = row.ok_or(StoreError::NotFound)?;
                if before {
                    tx.execute(
                        "UPDATE users SET digest_emails = FALSE WHERE id = $1",
                        [user.into()],
                    )
                    .await?;
                    audit::by_self(
                        tx,
                        company,
                        user,
                        "user.digest_unsubscribed",
                        Some(json!({"digest_emails": true})),
                        Some(json!({"digest_emails": false})),
                    )
                    .await?;
                }
                Ok(email)
            })
        })
        .await
    }
}
