//! The email outbox. A notice is written in the same transaction as the change it tells about
//! (so it is never lost and never sent for a change that rolled back); the server's mail worker
//! claims it with a lease, renders it once, and sends it with retries. What the email says is
//! decided in the server (`crates/server/src/mail/`); here is only what happened.
use crate::clients::PEOPLE;
use crate::db::Lease;
use crate::tx::{Queries, Tx};
use crate::users::{USER_COLS, User, UserRow};
use crate::{Db, StoreError};
use costbridge_domain::Permissions;
use costbridge_domain::queue::{ItemStatus, MailStatus};
use costbridge_domain::sync::SyncState;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::AssertSqlSafe;
use time::{Duration, OffsetDateTime};

/// An email lists at most this many codes; its count says how many there are in all.
pub const LISTED_CODES: i64 = 50;

/// Who may export or reject codes (docs/rules.md §1), as a condition on `users u`, from the
/// domain's rule.
pub static APPROVER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let levels = costbridge_domain::queue::sql_in(
        costbridge_domain::Permissions::approver_levels().map(costbridge_domain::Level::as_str),
    );
    format!(
        "u.erp_integrations IN {levels} AND u.can_push_to_accounting AND {}",
        PEOPLE
    )
});

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeLine {
    pub full_code: String,
    pub description: String,
    /// The refusal's message, for a code that failed to export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who refused it: "Costbridge" or the ERP by name (absent for rows failed before this
    /// was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_by: Option<String>,
}

/// What the person an email goes to may do about it, so it offers only that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reader {
    /// May retry or reject codes in ERP Integrations (an accounting approver).
    pub approver: bool,
    /// May change and send codes.
    pub edits_codes: bool,
}

impl From<&Permissions> for Reader {
    fn from(p: &Permissions) -> Reader {
        Reader {
            approver: p.is_approver(),
            edits_codes: p.can_write_codes(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderCount {
    pub name: String,
    pub email: String,
    pub count: i64,
}

/// What happened, as the outbox keeps it. `codes` holds the first [`LISTED_CODES`] in list order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// To each approver: codes arrived in Ready to Export; `resent` of them had been rejected.
    CodesSent {
        company: String,
        sender: Person,
        count: i64,
        resent: i64,
        codes: Vec<CodeLine>,
    },
    /// To the one who sent them.
    CodesRejected {
        company: String,
        rejected_by: Person,
        reason: String,
        count: i64,
        codes: Vec<CodeLine>,
    },
    /// To the one who sent them, once per export job, with who refused each code and why.
    ExportFailed {
        company: String,
        export_job_id: i64,
        count: i64,
        codes: Vec<CodeLine>,
        /// What the sender may do now (read when the notice is queued).
        #[serde(default)]
        reader: Reader,
    },
    /// To each approver who has not opted out, once a day while codes someone else sent wait
    /// (an approver's own sends are left out of theirs).
    DailySummary {
        company: String,
        /// The approver's local date the summary is for (`YYYY-MM-DD`).
        date: String,
        count: i64,
        #[serde(with = "time::serde::rfc3339")]
        oldest_sent_at: OffsetDateTime,
        senders: Vec<SenderCount>,
    },
    /// To one user: a link to set their password, sent by an admin. The outbox keeps
    /// the link only until it is sent; it works once and expires at `expires_at`.
    PasswordReset {
        company: String,
        issued_by: Person,
        token: String,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// To each admin: Xero says the company's grant is gone (revoked, or unused for 60 days);
    /// exports to Xero wait until someone connects again.
    XeroNeedsReconnect { company: String, problem: String },
}

impl Notice {
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::CodesSent { .. } => "codes_sent",
            Notice::CodesRejected { .. } => "codes_rejected",
            Notice::ExportFailed { .. } => "export_failed",
            Notice::DailySummary { .. } => "daily_summary",
            Notice::PasswordReset { .. } => "password_reset",
            Notice::XeroNeedsReconnect { .. } => "xero_needs_reconnect",
        }
    }

    /// The payload column. Only a date outside years 0–9999 could fail to serialise.
    pub fn to_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|e| sqlx::Error::Encode(Box::new(e)).into())
    }
}

/// Queues one email inside the caller's transaction; a taken `dedupe_key` makes it a no-op.
/// Returns the number of rows written (0 or 1).
pub(crate) async fn enqueue(
    tx: &mut Tx<'_>, company: i64, user: Option<i64>, recipient: &str, notice: &Notice,
    dedupe: Option<String>,
) -> Result<u64, StoreError> {
    tx.execute(
        "INSERT INTO outbox (company_id, user_id, kind, recipient, \
         payload, dedupe_key, status, attempts, next_attempt_at, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6, $8, 0, $7, $7) \
         ON CONFLICT (dedupe_key) DO NOTHING",
        [
            company.into(),
            user.into(),
            notice.kind().into(),
            recipient.into(),
            notice.to_json()?.into(),
            dedupe.into(),
            crate::now().into(),
            MailStatus::Pending.as_str().into(),
        ],
    )
    .await
}

/// The company's name and one of its users' name and email: who a notice is from.
async fn company_and_person(
    tx: &mut Tx<'_>, company: i64, user: i64,
) -> Result<(String, Person), StoreError> {
    let (company, name, email): (String, String, String) = tx
        .fetch_one(
            "SELECT c.name, u.name, u.email FROM companies c JOIN users \
             u ON u.company_id = c.id WHERE c.id = $1 AND u.id = $2",
            [company.into(), user.into()],
        )
        .await?;
    Ok((company, Person { name, email }))
}

/// Tells the company's approvers (except the sender) that submission `sub` is ready to export.
/// Runs after the submission's codes became pending, so `status_before_send` says which of them
/// had been rejected.
pub(crate) async fn notify_codes_sent(
    tx: &mut Tx<'_>, company: i64, sub: i64, sender: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT u.id, u.email FROM users u WHERE u.company_id = $1 \
         AND u.id <> $2 AND {}",
        *APPROVER
    );
    let approvers: Vec<(i64, String)> = tx
        .fetch_all(AssertSqlSafe(sql), [company.into(), sender.into()])
        .await?;
    if approvers.is_empty() {
        return Ok(());
    }
    let (company_name, sender_person) = company_and_person(tx, company, sender).await?;
    // `erp_items_submission` (submission, state) finds the items; the company scopes them.
    let (count, resent): (i64, i64) = tx
        .fetch_one(
            "SELECT COUNT(*), COUNT(CASE WHEN c.status_before_send = $4 \
             THEN 1 END) FROM erp_items i JOIN cost_codes c ON c.id = \
             i.cost_code_id WHERE i.company_id = $1 AND i.status = $3 \
             AND i.submission_id = $2",
            [
                company.into(),
                sub.into(),
                ItemStatus::Ready.as_str().into(),
                SyncState::Rejected.as_str().into(),
            ],
        )
        .await?;
    let codes: Vec<(String, String)> = tx
        .fetch_all(
            "SELECT full_code, description FROM erp_items WHERE \
             company_id = $1 AND status = $4 AND submission_id = $2 \
             ORDER BY sort_key, id LIMIT $3",
            [
                company.into(),
                sub.into(),
                LISTED_CODES.into(),
                ItemStatus::Ready.as_str().into(),
            ],
        )
        .await?;
    let notice = Notice::CodesSent {
        company: company_name,
        sender: sender_person,
        count,
        resent,
        codes: lines(codes),
    };
    for (id, email) in &approvers {
        let key = format!("codes_sent:{sub}:{id}");
        enqueue(tx, company, Some(*id), email, &notice, Some(key)).await?;
    }
    Ok(())
}

/// Tells each sender (other than the approver) which of their codes were rejected, and why.
/// The rejected items are the ones `actor` decided at `at`.
pub(crate) async fn notify_codes_rejected(
    tx: &mut Tx<'_>, company: i64, actor: i64, at: OffsetDateTime, reason: &str,
) -> Result<(), StoreError> {
    const MINE: &str = "i.company_id = $1 AND i.status = $4 AND i.decided_by = $2 \
                        AND i.decided_at = $3";
    let rejected = ItemStatus::Rejected.as_str();
    let sql = format!(
        "SELECT u.id, u.name, u.email, COUNT(*) FROM erp_items i \
         JOIN users u ON u.id = i.sent_by WHERE {MINE} AND i.sent_by \
         <> $2 AND {PEOPLE} GROUP BY u.id, u.name, u.email ORDER BY u.id"
    );
    let senders: Vec<(i64, String, String, i64)> = tx
        .fetch_all(
            AssertSqlSafe(sql),
            [company.into(), actor.into(), at.into(), rejected.into()],
        )
        .await?;
    if senders.is_empty() {
        return Ok(());
    }
    let (company_name, rejected_by) = company_and_person(tx, company, actor).await?;
    let sql = format!(
        "SELECT i.full_code, i.description FROM erp_items i WHERE \
         {MINE} AND i.sent_by = $5 ORDER BY i.sort_key, i.id LIMIT $6"
    );
    for (sender, _, sender_email, count) in &senders {
        let codes: Vec<(String, String)> = tx
            .fetch_all(
                AssertSqlSafe(sql.clone()),
                [
                    company.into(),
                    actor.into(),
                    at.into(),
                    rejected.into(),
                    (*sender).into(),
                    LISTED_CODES.into(),
                ],
            )
            .await?;
        let notice = Notice::CodesRejected {
            company: company_name.clone(),
            rejected_by: rejected_by.clone(),
            reason: reason.to_owned(),
            count: *count,
            codes: lines(codes),
        };
        enqueue(tx, company, Some(*sender), sender_email, &notice, None).await?;
    }
    Ok(())
}

/// Once an export job is finished, tells each sender which of their codes failed, with the ERP's
/// message: one email per sender per job however many batches it took.
pub(crate) async fn notify_export_failed(
    tx: &mut Tx<'_>, company: i64, job: i64,
) -> Result<(), StoreError> {
    let failed = ItemStatus::Failed.as_str();
    let sql = format!(
        "SELECT u.id, u.email, COUNT(*) FROM erp_items i JOIN users u ON u.id = i.sent_by \
         WHERE i.export_job_id = $1 AND i.status = $2 AND {PEOPLE} GROUP BY u.id, u.email \
         ORDER BY u.id"
    );
    let senders: Vec<(i64, String, i64)> = tx
        .fetch_all(AssertSqlSafe(sql), [job.into(), failed.into()])
        .await?;
    if senders.is_empty() {
        return Ok(());
    }
    let company_name: String = tx
        .scalar("SELECT name FROM companies WHERE id = $1", [company.into()])
        .await?;
    for (sender, sender_email, count) in &senders {
        let person: Option<UserRow> = tx
            .fetch_optional(
                AssertSqlSafe(format!("SELECT {USER_COLS} FROM users u WHERE u.id = $1")),
                [(*sender).into()],
            )
            .await?;
        let reader = person
            .map(|p| Reader::from(&User::from(p).permissions))
            .unwrap_or_default();
        type Failed = (String, String, Option<String>, Option<String>);
        let codes: Vec<Failed> = tx
            .fetch_all(
                "SELECT full_code, description, erp_message, refused_by FROM \
                 erp_items WHERE export_job_id = $1 AND status = $4 AND sent_by \
                 = $2 ORDER BY sort_key, id LIMIT $3",
                [
                    job.into(),
                    (*sender).into(),
                    LISTED_CODES.into(),
                    failed.into(),
                ],
            )
            .await?;
        let notice = Notice::ExportFailed {
            company: company_name.clone(),
            export_job_id: job,
            count: *count,
            codes: codes
                .into_iter()
                .map(|(full_code, description, message, refused_by)| CodeLine {
                    full_code,
                    description,
                    message,
                    refused_by,
                })
                .collect(),
            reader,
        };
        // Keyed by job: a late second close of the same job (an expired lease) adds nothing.
        let key = format!("export_failed:{job}:{sender}");
        enqueue(tx, company, Some(*sender), sender_email, &notice, Some(key)).await?;
    }
    Ok(())
}

pub fn lines(codes: Vec<(String, String)>) -> Vec<CodeLine> {
    codes
        .into_iter()
        .map(|(full_code, description)| CodeLine {
            full_code,
            description,
            message: None,
            refused_by: None,
        })
        .collect()
}

/// One email taken for delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedMail {
    pub id: i64,
    pub company_id: i64,
    pub user_id: Option<i64>,
    pub kind: String,
    pub recipient: String,
    pub payload: String,
    pub subject: Option<String>,
    pub text_body: Option<String>,
    pub html_body: Option<String>,
    pub headers: Option<String>,
    /// Including this one.
    pub attempts: i64,
    pub created_at: OffsetDateTime,
    /// This claim's lease: what the claim records later applies only while it still holds it.
    pub locked_until: OffsetDateTime,
}

/// A message as it is sent, kept so every attempt sends the same thing.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    /// Extra header lines (name, value), e.g. `List-Unsubscribe`.
    pub headers: Vec<(String, String)>,
}

/// One outbox row as the operator (and tests) see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub company_id: i64,
    pub user_id: Option<i64>,
    pub kind: String,
    pub recipient: String,
    #[sqlx(try_from = "String")]
    pub status: MailStatus,
    pub attempts: i64,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub dedupe_key: Option<String>,
    pub sent_at: Option<OffsetDateTime>,
}

const CLAIM_COLS: &str = "id, company_id, user_id, kind, recipient, payload, subject, \
                          text_body, html_body, headers, attempts, created_at, locked_until";

/// Clears a password reset link from its email once the email is closed (sent, given up on or
/// dropped): the link works until it expires, and whoever reads the database or a backup could
/// use it. Only its hash is kept (`password_resets`); migration 202612070 cleared older rows.
const FORGET_LINK: &str = "payload = CASE WHEN kind = 'password_reset' THEN '{}' ELSE payload \
     END, text_body = CASE WHEN kind = 'password_reset' THEN NULL ELSE text_body END, \
     html_body = CASE WHEN kind = 'password_reset' THEN NULL ELSE html_body END";

impl Db {
    /// Takes the next due email for `lease` (one at a time, so a slow server never holds more
    /// than one message past its lease).
    pub async fn claim_mail(
        &self, at: OffsetDateTime, lease: Duration,
    ) -> Result<Option<ClaimedMail>, StoreError> {
        let due = format!(
            "status = '{}' AND next_attempt_at <= $2 AND (locked_until \
             IS NULL OR locked_until < $2)",
            MailStatus::Pending
        );
        self.claim(
            &Lease {
                table: "outbox",
                set: "locked_until = $1, attempts = attempts + 1",
                due: &due,
                order: "next_attempt_at, id",
                returning: CLAIM_COLS,
            },
            at,
            lease,
        )
        .await
    }

    pub async fn save_rendered(&self, id: i64, r: &Rendered) -> Result<(), StoreError> {
        let headers = json!(r.headers).to_string();
        self.pool()
            .execute(
                "UPDATE outbox SET subject = $2, text_body = $3, html_body = \
                 $4, headers = $5 WHERE id = $1",
                [
                    id.into(),
                    (&r.subject).into(),
                    (&r.text_body).into(),
                    (&r.html_body).into(),
                    headers.into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Recorded whatever was recorded meanwhile: a message a late mailer did send is sent.
    pub async fn mail_sent(&self, id: i64, at: OffsetDateTime) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE outbox SET status = $3, sent_at = $2, locked_until = NULL, last_error = \
             NULL, {FORGET_LINK} WHERE id = $1"
        );
        self.pool()
            .execute(
                AssertSqlSafe(sql),
                [id.into(), at.into(), MailStatus::Sent.as_str().into()],
            )
            .await?;
        Ok(())
    }

    /// The server refused or could not be reached: try again at `at`. Like [`Db::mail_closed`],
    /// only while this claim still holds the message: a mailer whose lease ran out while it
    /// waited on the server must neither undo what the mailer that took the message over
    /// recorded (sent, say) nor release that one's lease (a third would send it again).
    pub async fn mail_retry_at(
        &self, mail: &ClaimedMail, error: &str, at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.pool()
            .execute(
                "UPDATE outbox SET next_attempt_at = $2, locked_until = NULL, last_error = $3 \
                 WHERE id = $1 AND status = $4 AND locked_until = $5",
                [
                    mail.id.into(),
                    at.into(),
                    error.into(),
                    MailStatus::Pending.as_str().into(),
                    mail.locked_until.into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// Gives up on a message (`Failed`), or drops one that no longer applies (`Cancelled`),
    /// while this claim still holds it.
    pub async fn mail_closed(
        &self, mail: &ClaimedMail, status: MailStatus, why: &str,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE outbox SET status = $2, locked_until = NULL, last_error = $3, \
             {FORGET_LINK} WHERE id = $1 AND status = $4 AND locked_until = $5"
        );
        self.pool()
            .execute(
                AssertSqlSafe(sql),
                [
                    mail.id.into(),
                    status.as_str().into(),
                    why.into(),
                    MailStatus::Pending.as_str().into(),
                    mail.locked_until.into(),
                ],
            )
            .await?;
        Ok(())
    }

    /// The installation's secret for signing unsubscribe links (made by the migration).
    pub async fn mail_key(&self, name: &str) -> Result<String, StoreError> {
        self.pool()
            .scalar_optional(
                "SELECT secret FROM mail_keys WHERE name = $1",
                [name.into()],
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// The newest outbox rows, for the operator's `notify` commands and for tests.
    pub async fn outbox_rows(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        self.pool()
            .fetch_all(
                "SELECT id, company_id, user_id, kind, recipient, status, \
                 attempts, next_attempt_at, last_error, dedupe_key, sent_at \
                 FROM outbox ORDER BY id DESC LIMIT $1",
                [limit.into()],
            )
            .await
    }

    /// Emails in `status` (waiting to go out, or given up on), for the operator's gauges.
    pub async fn outbox_count(&self, status: MailStatus) -> Result<i64, StoreError> {
        self.pool()
            .scalar(
                "SELECT COUNT(*) FROM outbox WHERE status = $1",
                [status.as_str().into()],
            )
            .await
    }

    /// When the next pending email is due, so an idle mail worker knows how long it may sleep.
    pub async fn next_mail_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        self.pool()
            .scalar(
                "SELECT MIN(COALESCE(locked_until, next_attempt_at)) FROM \
                 outbox WHERE status = $1",
                [MailStatus::Pending.as_str().into()],
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_with_their_kind() {
        let n = Notice::CodesRejected {
            company: "One".into(),
            rejected_by: Person {
                name: "Ann".into(),
                email: "ann@one.example".into(),
            },
            reason: "wrong tier".into(),
            count: 1,
            codes: lines(vec![("01".into(), "General".into())]),
        };
        let text = n.to_json().unwrap();
        assert!(text.contains(r#""kind":"codes_rejected""#), "{text}");
        assert_eq!(serde_json::from_str::<Notice>(&text).unwrap(), n);
        assert_eq!(n.kind(), "codes_rejected");
    }
}
