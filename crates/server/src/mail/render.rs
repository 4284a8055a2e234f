//! What each email says: subject, plain text and HTML, from the notice the outbox keeps.
//! Every wording lives here.
use super::doc::{Doc, codes_n, number};
use crate::zone::Zone;
use costbridge_domain::queue::refused;
use costbridge_storage::outbox::{CodeLine, Notice, Reader, Rendered, SenderCount};

/// Pages of the web UI the links open. Approvers get the ERP Integrations queue; senders (Admin
/// tool, maybe no ERP Integrations rights) get the ERP list filtered to their codes' state.
pub const READY_PAGE: &str = "/erp?filter=ready_to_export";
pub const REJECTED_PAGE: &str = "/codes?status=rejected";
pub const FAILED_PAGE: &str = "/codes?status=failed";
/// The approvers' Failed to Export tab, where they retry or reject failed codes.
const FAILED_QUEUE: &str = "/erp?filter=failed";
/// Where a password reset link leads; the token follows as `?token=`.
pub const RESET_PAGE: &str = "/reset-password";

/// The one-time link that lets a user set their password.
pub fn reset_link(base_url: &str, token: &str) -> String {
    format!(
        "{}{RESET_PAGE}?token={token}",
        base_url.trim_end_matches('/')
    )
}

pub struct Context<'a> {
    pub base_url: &'a str,
    /// The company's zone: every time in the email is in it, named.
    pub zone: &'a Zone,
    /// The one-click unsubscribe link, for the daily summary.
    pub unsubscribe: Option<String>,
}

pub fn render(notice: &Notice, ctx: &Context<'_>) -> Rendered {
    let url = |path: &str| format!("{}{path}", ctx.base_url.trim_end_matches('/'));
    let mut doc = Doc::new();
    let mut headers = vec![("Auto-Submitted".to_owned(), "auto-generated".to_owned())];
    let (subject, footer) = match notice {
        Notice::CodesSent {
            company,
            sender,
            count,
            resent,
            codes,
        } => {
            let what = match *resent {
                0 => format!("{} ready to export", codes_n(*count)),
                r if r == *count => format!("{} re-sent for export", codes_n(*count)),
                r => format!(
                    "{} ready to export ({} re-sent after rejection)",
                    codes_n(*count),
                    number(r)
                ),
            };
            doc.para(&format!(
                "{} ({}) sent {} of {company} to ERP Integrations. They wait in Ready to Export \
                 for an accounting approver to export or reject them.",
                sender.name,
                sender.email,
                codes_n(*count)
            ));
            if *resent > 0 {
                doc.para(&format!(
                    "{} of them had been rejected before and {} sent again.",
                    number(*resent),
                    if *resent == 1 { "was" } else { "were" }
                ));
            }
            doc.codes(codes, *count);
            doc.link("Review them in Ready to Export", &url(READY_PAGE));
            (
                format!("{company}: {what}, sent by {}", sender.name),
                vec![format!(
                    "You receive this because you are an accounting approver of {company} in Costbridge."
                )],
            )
        }
        Notice::CodesRejected {
            company,
            rejected_by,
            reason,
            count,
            codes,
        } => {
            doc.para(&format!(
                "{} ({}) rejected {} that you sent to ERP Integrations.",
                rejected_by.name,
                rejected_by.email,
                codes_n(*count)
            ));
            doc.para(&format!("Reason: {reason}"));
            doc.codes(codes, *count);
            doc.para("Change them as the reason says, then send them again.");
            doc.link("See the rejected codes", &url(REJECTED_PAGE));
            (
                format!(
                    "{company}: {} rejected by {}: {}",
                    codes_n(*count),
                    rejected_by.name,
                    shorten(reason, 60)
                ),
                vec![format!(
                    "You receive this because you sent these codes to ERP Integrations of {company} in Costbridge."
                )],
            )
        }
        Notice::ExportFailed {
            company,
            export_job_id,
            count,
            codes,
            reader,
        } => {
            doc.para(&format!(
                "{} that you sent to ERP Integrations did not export (export job \
                 {export_job_id}). Who refused them, and why:",
                codes_n(*count)
            ));
            refusals(&mut doc, codes);
            doc.more(*count - codes.len() as i64);
            what_you_can_do(&mut doc, reader, company, &url);
            (
                format!("{company}: {} failed to export", codes_n(*count)),
                vec![format!(
                    "You receive this because you sent these codes to ERP Integrations of {company} in Costbridge."
                )],
            )
        }
        Notice::DailySummary {
            company,
            count,
            oldest_sent_at,
            senders,
            ..
        } => {
            doc.para(&format!(
                "{} of {company} {} in Ready to Export.",
                codes_n(*count),
                if *count == 1 { "waits" } else { "wait" }
            ));
            doc.para(&format!(
                "The oldest has waited since {}.",
                ctx.zone.show(*oldest_sent_at)
            ));
            doc.para(&format!("Sent by {}.", senders_list(senders)));
            doc.link("Open Ready to Export", &url(READY_PAGE));
            let mut footer = vec![format!(
                "Costbridge sends this summary to the approvers of {company} every day while codes someone else sent wait in Ready to Export."
            )];
            if let Some(u) = &ctx.unsubscribe {
                headers.push(("List-Unsubscribe".into(), format!("<{u}>")));
                headers.push((
                    "List-Unsubscribe-Post".into(),
                    "List-Unsubscribe=One-Click".into(),
                ));
                footer.push(format!("Stop these summaries: {u}"));
            }
            (
                format!(
                    "{company}: {} waiting in Ready to Export (daily summary)",
                    codes_n(*count)
                ),
                footer,
            )
        }
        Notice::PasswordReset {
            company,
            issued_by,
            token,
            expires_at,
        } => {
            doc.para(&format!(
                "{} ({}) asked Costbridge to let you set a new password for {company}.",
                issued_by.name, issued_by.email
            ));
            doc.link("Set your password", &reset_link(ctx.base_url, token));
            doc.para(&format!(
                "The link works once, until {}. Setting a password signs you out everywhere else.",
                ctx.zone.show(*expires_at)
            ));
            (
                format!("{company}: set your password"),
                vec![
                    "If you did not expect this, ignore it: your password stays as it is."
                        .to_owned(),
                ],
            )
        }
        Notice::XeroNeedsReconnect { company, problem } => {
            doc.para(&format!(
                "Xero no longer accepts Costbridge's connection to {company}'s organisation \
                 ({problem}). Exports to Xero wait until an admin connects again."
            ));
            doc.link("Connect to Xero again", &url("/settings/erp"));
            (
                format!("{company}: connect to Xero again"),
                vec!["You receive this as an admin of the company in Costbridge.".to_owned()],
            )
        }
    };
    let (text_body, html_body) = doc.footer(&footer);
    Rendered {
        subject: format!("[Costbridge] {subject}"),
        text_body,
        html_body,
        headers,
    }
}

/// The `notify test` message.
pub fn test_message(base_url: &str) -> Rendered {
    let mut doc = Doc::new();
    doc.para("This is a test message from Costbridge. Mail delivery works.");
    doc.link("Costbridge", base_url);
    let (text_body, html_body) = doc.footer(&["Sent by `costbridge notify test`.".to_owned()]);
    Rendered {
        subject: "[Costbridge] Test message".into(),
        text_body,
        html_body,
        headers: vec![("Auto-Submitted".into(), "auto-generated".into())],
    }
}

fn senders_list(senders: &[SenderCount]) -> String {
    senders
        .iter()
        .map(|s| format!("{} ({}): {}", s.name, s.email, codes_n(s.count)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The failed codes grouped under each distinct refusal, in the order they first appear:
/// who refused (Costbridge, or the ERP by name), what they said, then the codes.
fn refusals(doc: &mut Doc, codes: &[CodeLine]) {
    let mut groups: Vec<(Option<&str>, Option<&str>, Vec<&CodeLine>)> = Vec::new();
    for c in codes {
        let key = (c.refused_by.as_deref(), c.message.as_deref());
        match groups.iter_mut().find(|(by, m, _)| (*by, *m) == key) {
            Some(g) => g.2.push(c),
            None => groups.push((key.0, key.1, vec![c])),
        }
    }
    for (by, message, codes) in groups {
        let n = codes_n(codes.len() as i64);
        let lead = format!("{}:", refused(by, &n));
        doc.lead(&lead, message.unwrap_or("no reason was recorded."));
        doc.table(codes.into_iter());
    }
}

/// What the sender of failed codes can do about them, by what they may do in Costbridge.
fn what_you_can_do(doc: &mut Doc, reader: &Reader, company: &str, url: &dyn Fn(&str) -> String) {
    if reader.approver {
        doc.para(
            "Once the cause is fixed, retry them from Failed to Export in ERP Integrations, or \
             reject them with a reason.",
        );
        doc.link(
            "Retry or reject them in Failed to Export",
            &url(FAILED_QUEUE),
        );
    } else {
        doc.para(&format!(
            "An accounting approver of {company} retries or rejects them in ERP Integrations; \
             tell one when the cause is fixed."
        ));
    }
    if reader.edits_codes {
        doc.para(
            "Where the reason is a code's value or a parent that was not sent, change or send \
             that code in the cost code list (failed codes themselves unlock once rejected).",
        );
        doc.link("See the failed codes", &url(FAILED_PAGE));
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use costbridge_storage::outbox::Person;

    #[test]
    fn numbers_and_plurals() {
        assert_eq!(number(5000), "5,000");
        assert_eq!(number(999), "999");
        assert_eq!(number(1_234_567), "1,234,567");
        assert_eq!(codes_n(1), "1 cost code");
        assert_eq!(codes_n(2), "2 cost codes");
        let failed = costbridge_domain::queue::ItemStatus::Failed.filter().0;
        assert_eq!(FAILED_QUEUE, format!("/erp?filter={failed}"));
    }

    #[test]
    fn html_is_escaped() {
        let zone = Zone::parse("UTC").unwrap();
        let ctx = Context {
            base_url: "https://cb.example/",
            zone: &zone,
            unsubscribe: None,
        };
        let r = render(
            &Notice::CodesRejected {
                company: "A&B <Builders>".into(),
                rejected_by: Person {
                    name: "Ann".into(),
                    email: "ann@ab.example".into(),
                },
                reason: "use <b>tier</b> 2".into(),
                count: 1,
                codes: vec![CodeLine {
                    full_code: "01".into(),
                    description: "Fees & \"permits\"".into(),
                    message: None,
                    refused_by: None,
                }],
            },
            &ctx,
        );
        assert!(
            r.html_body.contains("use &lt;b&gt;tier&lt;/b&gt; 2"),
            "{}",
            r.html_body
        );
        assert!(r.html_body.contains("Fees &amp; &quot;permits&quot;"));
        assert!(!r.html_body.contains("<Builders>"));
        assert!(r.text_body.contains("Reason: use <b>tier</b> 2"));
        assert!(
            r.text_body
                .contains("https://cb.example/codes?status=rejected")
        );
    }
}
