//! Email notifications (docs/rules.md §6). Storage writes notices to the outbox in the
//! workflow's own transactions; this module delivers them over SMTP (each claimed with a lease,
//! rendered once, retried with backoff), queues the approvers' daily summary, and serves the
//! one-click unsubscribe link. `serve` runs [`run`]; tests and the CLI call [`deliver_pending`] and
//! [`run_daily_summary`] with an explicit clock.
mod doc;
mod render;
mod smtp;
pub mod unsubscribe;

use crate::config::MailSettings;
use crate::retry::{Stop, backoff, until_due};
use costbridge_domain::queue::MailStatus;
use costbridge_storage::Db;
use costbridge_storage::outbox::{ClaimedMail, Notice, Rendered};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// A refusing mail server is retried at most every hour.
const MAX_BACKOFF_SECONDS: i64 = 3600;

pub use crate::zone::Zone;
pub use render::{FAILED_PAGE, READY_PAGE, REJECTED_PAGE, RESET_PAGE, reset_link};

/// What one delivery round did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    pub sent: u64,
    /// Refused or unreachable; tried again later.
    pub retried: u64,
    /// Given up after `max_attempts`, or unsendable (a malformed address).
    pub failed: u64,
    /// Daily summaries that lost their point before going out (nothing waits any more).
    pub cancelled: u64,
}

/// A configured mail setup: the SMTP transport (a connection pool) and the parsed settings.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    zone: Zone,
    settings: MailSettings,
}

impl Mailer {
    /// `None` when no SMTP host is configured; an error names a bad setting.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Option<Mailer>> {
        let (from, zone) = check(settings)?;
        let Some(transport) = smtp::transport(settings)? else {
            return Ok(None);
        };
        Ok(Some(Mailer {
            transport,
            from,
            zone,
            settings: settings.clone(),
        }))
    }

    /// Sends every email that is due at `now`, one claimed at a time. Stops early when the
    /// server cannot be reached at all, so a down server costs one attempt per round.
    pub async fn deliver_pending(
        &self, db: &Db, now: OffsetDateTime,
    ) -> anyhow::Result<DeliveryReport> {
        self.deliver_due(db, now, &Stop::never()).await
    }

    /// [`Self::deliver_pending`], taking no new email once the service is stopping.
    async fn deliver_due(
        &self, db: &Db, now: OffsetDateTime, stop: &Stop,
    ) -> anyhow::Result<DeliveryReport> {
        let mut report = DeliveryReport::default();
        // Longer than one SMTP conversation can take, so no other instance takes a message
        // that is still being sent.
        let lease = Duration::seconds((self.settings.timeout_seconds as i64 * 4).max(60));
        // Stamped with the time passed since the round began, as the event deliveries are: a
        // long round (a backlog after an outage, the morning's summaries) otherwise handed
        // out leases already run out, and another instance sent the same email again.
        let started = std::time::Instant::now();
        while !stop.now() {
            let at = now + started.elapsed();
            let Some(mail) = db.claim_mail(at, lease).await? else {
                break;
            };
            // Its retry is set from the same time: from the round's start, a retry due within
            // the round was taken again at once, and a down server burned every attempt.
            match self.deliver(db, &mail, at).await? {
                Step::Sent => report.sent += 1,
                Step::Cancelled => report.cancelled += 1,
                Step::Failed => report.failed += 1,
                Step::Retry { server_down } => {
                    report.retried += 1;
                    if server_down {
                        break;
                    }
                }
            }
        }
        Ok(report)
    }

    #[tracing::instrument(skip_all, fields(mail = mail.id, kind = %mail.kind, attempt = mail.attempts))]
    async fn deliver(
        &self, db: &Db, mail: &ClaimedMail, now: OffsetDateTime,
    ) -> anyhow::Result<Step> {
        let notice: Option<Notice> = serde_json::from_str(&mail.payload).ok();
        if let Some(Notice::DailySummary { date, .. }) = &notice {
            let wanted = match mail.user_id {
                Some(u) => db.digest_still_wanted(u).await?,
                None => false,
            };
            let today = self.zone.local(now).date().to_string();
            if !wanted || *date != today {
                db.mail_closed(mail, MailStatus::Cancelled, "nothing waits in Ready to Export any more, the person opted out, or the day is over")
                    .await?;
                return Ok(Step::Cancelled);
            }
        }
        let rendered = match (&mail.subject, &mail.text_body, &mail.html_body) {
            (Some(subject), Some(text), Some(html)) => Rendered {
                subject: subject.clone(),
                text_body: text.clone(),
                html_body: html.clone(),
                headers: mail
                    .headers
                    .as_deref()
                    .and_then(|h| serde_json::from_str(h).ok())
                    .unwrap_or_default(),
            },
            _ => {
                let Some(notice) = notice else {
                    db.mail_closed(
                        mail,
                        MailStatus::Failed,
                        "the stored notice is unreadable by this version",
                    )
                    .await?;
                    return Ok(Step::Failed);
                };
                let unsubscribe = match (&notice, mail.user_id) {
                    (Notice::DailySummary { .. }, Some(user)) => {
                        Some(unsubscribe::link(db, &self.settings.base_url, user).await?)
                    }
                    _ => None,
                };
                let zone = Zone::company(db.company_time_zone(mail.company_id).await?.as_deref());
                let r = render::render(
                    &notice,
                    &render::Context {
                        base_url: &self.settings.base_url,
                        zone: &zone,
                        unsubscribe,
                    },
                );
                db.save_rendered(mail.id, &r).await?;
                r
            }
        };
        let message = match self.message(&rendered, &mail.recipient, mail.id, mail.created_at) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "email cannot be built; giving up on it");
                db.mail_closed(mail, MailStatus::Failed, &e.to_string())
                    .await?;
                return Ok(Step::Failed);
            }
        };
        match self.transport.send(message).await {
            Ok(_) => {
                db.mail_sent(mail.id, costbridge_storage::now()).await?;
                tracing::info!(to = %mail.recipient, "email sent");
                Ok(Step::Sent)
            }
            Err(e) => {
                // No SMTP reply code at all: connection refused, TLS failure, timeout.
                let server_down = !(e.is_permanent() || e.is_transient());
                let error = e.to_string();
                if mail.attempts >= self.settings.max_attempts {
                    tracing::warn!(error = %error, "email failed; giving up after {} attempts", mail.attempts);
                    db.mail_closed(
                        mail,
                        MailStatus::Failed,
                        &format!("{error} (gave up after {} attempts)", mail.attempts),
                    )
                    .await?;
                    Ok(Step::Failed)
                } else {
                    let delay = backoff(
                        self.settings.backoff_seconds,
                        mail.attempts,
                        MAX_BACKOFF_SECONDS,
                    );
                    tracing::warn!(error = %error, retry_in_s = delay.whole_seconds(), "email not sent; will retry");
                    db.mail_retry_at(mail, &error, now + delay).await?;
                    Ok(Step::Retry { server_down })
                }
            }
        }
    }

    fn message(
        &self, r: &Rendered, to: &str, id: i64, created_at: OffsetDateTime,
    ) -> anyhow::Result<Message> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| anyhow::anyhow!("'{to}' is not a valid address: {e}"))?;
        let domain = self.from.email.domain().to_owned();
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&r.subject)
            .date(created_at.into())
            // Stable per outbox row, so a retried message keeps its identity.
            .message_id(Some(format!(
                "<costbridge.{id}.{}@{domain}>",
                created_at.unix_timestamp()
            )));
        for (name, value) in &r.headers {
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|e| anyhow::anyhow!("header {name}: {e}"))?;
            b = b.raw_header(HeaderValue::new(name, value.clone()));
        }
        Ok(b.multipart(MultiPart::alternative_plain_html(
            r.text_body.clone(),
            r.html_body.clone(),
        ))?)
    }
}

enum Step {
    Sent,
    Retry { server_down: bool },
    Failed,
    Cancelled,
}

/// Checks the settings that do not depend on a server: From address and time zone.
pub fn check(settings: &MailSettings) -> anyhow::Result<(Mailbox, Zone)> {
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| anyhow::anyhow!("[mail] from = '{}' is not an address: {e}", settings.from))?;
    let zone = Zone::parse(&settings.time_zone).map_err(|e| anyhow::anyhow!("[mail] {e}"))?;
    if settings.digest_hour > 23 {
        anyhow::bail!(
            "[mail] digest_hour must be 0-23, not {}",
            settings.digest_hour
        );
    }
    if !(settings.base_url.starts_with("http://") || settings.base_url.starts_with("https://")) {
        anyhow::bail!("[mail] base_url must start with http:// or https://");
    }
    Ok((from, zone))
}

/// Delivers what is due at `now`; without a configured host it sends nothing (the outbox keeps
/// filling and is delivered once mail is set up).
pub async fn deliver_pending(
    db: &Db, settings: &MailSettings, now: OffsetDateTime,
) -> anyhow::Result<DeliveryReport> {
    match Mailer::new(settings)? {
        Some(m) => m.deliver_pending(db, now).await,
        None => {
            tracing::debug!("mail is not configured; emails wait in the outbox");
            Ok(DeliveryReport::default())
        }
    }
}

/// Queues today's daily summary if `now` is at or past the configured local hour; returns how
/// many were queued (0 before the hour, or when they were already queued today).
pub async fn run_daily_summary(
    db: &Db, settings: &MailSettings, now: OffsetDateTime,
) -> anyhow::Result<u64> {
    let (_, zone) = check(settings)?;
    if settings.host.is_none() || zone.local(now).hour() < settings.digest_hour {
        return Ok(0);
    }
    queue_daily_summary(db, settings, now).await
}

/// Queues today's daily summary whatever the hour (`costbridge notify daily-summary`), still
/// once per person per local day.
pub async fn queue_daily_summary(
    db: &Db, settings: &MailSettings, now: OffsetDateTime,
) -> anyhow::Result<u64> {
    let (_, zone) = check(settings)?;
    let date = zone.local(now).date().to_string();
    let queued = db.enqueue_daily_summaries(&date).await?;
    if queued > 0 {
        tracing::info!(date, queued, "daily summaries queued");
    }
    Ok(queued)
}

/// Sends `costbridge notify test` straight through SMTP (not the outbox), so the operator sees
/// the server's answer at once.
pub async fn send_test(settings: &MailSettings, to: &str) -> anyhow::Result<String> {
    let mailer = Mailer::new(settings)?.ok_or_else(|| {
        anyhow::anyhow!("mail is not configured: set [mail] host (or COSTBRIDGE__MAIL__HOST)")
    })?;
    let message = mailer.message(
        &render::test_message(&settings.base_url),
        to,
        0,
        costbridge_storage::now(),
    )?;
    let response = mailer
        .transport
        .send(message)
        .await
        .map_err(|e| anyhow::anyhow!("{}", smtp::explain(&e, settings)))?;
    Ok(response.message().collect::<Vec<_>>().join(" "))
}

/// The mail worker inside `serve`: delivers due emails every few seconds and, from the
/// configured hour on, queues the daily summary once per local day (the outbox's dedupe key
/// keeps it once per person across restarts and instances).
pub async fn run(db: Db, settings: MailSettings, mut stop: Stop) {
    let mailer = match Mailer::new(&settings) {
        Ok(Some(m)) => m,
        Ok(None) => {
            tracing::warn!(
                "mail is not configured ([mail] host): notifications wait in the outbox until it is"
            );
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "mail settings are invalid; no email will be sent");
            return;
        }
    };
    tracing::info!(host = ?settings.host, base_url = %settings.base_url, "mail delivery started");
    let mut summarised: Option<time::Date> = None;
    loop {
        let now = costbridge_storage::now();
        let local = mailer.zone.local(now);
        if local.hour() >= settings.digest_hour && summarised != Some(local.date()) {
            match queue_daily_summary(&db, &settings, now).await {
                Ok(_) => summarised = Some(local.date()),
                Err(e) => tracing::error!(error = %e, "daily summary failed; will try again"),
            }
        }
        // A fresh clock, so a summary queued just now goes out in this round.
        let now = costbridge_storage::now();
        if let Err(e) = mailer.deliver_due(&db, now, &stop).await {
            tracing::error!(error = %e, "mail delivery step failed");
        }
        if stop.now() {
            return;
        }
        let wait = until_due(db.next_mail_due().await, Duration::milliseconds(200));
        tokio::select! {
            _ = stop.wait() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let mut s = MailSettings::default();
        assert!(check(&s).is_ok());
        s.from = "not an address".into();
        assert!(check(&s).unwrap_err().to_string().contains("[mail] from"));
        s = MailSettings::default();
        s.time_zone = "Nowhere/Land".into();
        assert!(check(&s).unwrap_err().to_string().contains("time_zone"));
        s = MailSettings::default();
        s.digest_hour = 24;
        assert!(check(&s).is_err());
    }
}
