//! What each email says: subject, plain text and HTML, from the notice the outbox keeps.
//! Every wording lives here.
use super::zone::Zone;
use costbridge_storage::outbox::{CodeLine, Notice, Rendered, SenderCount};
use std::fmt::Write;
use time::OffsetDateTime;

/// Pages of the web UI the links open. Approvers get the ERP Integrations queue; senders (Admin
/// tool, maybe no ERP Integrations rights) get the ERP list filtered to their codes' state.
pub const READY_PAGE: &str = "/erp?filter=ready_to_export";
pub const REJECTED_PAGE: &str = "/codes?status=rejected";
pub const FAILED_PAGE: &str = "/codes?status=failed";
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
    pub zone: &'a Zone,
    pub zone_name: &'a str,
    /// The one-click unsubscribe link, for the daily summary.
    pub unsubscribe: Option<String>,
}

/// One email in the making: lines of text, and the same content as HTML.
struct Doc {
    text: String,
    html: String,
}

impl Doc {
    fn new() -> Doc {
        Doc {
            text: String::new(),
            html: String::from(
                "<!DOCTYPE html><html><body style=\"font-family: sans-serif; line-height: 1.4\">\n",
            ),
        }
    }

    fn para(&mut self, s: &str) {
        let _ = writeln!(self.text, "{s}\n");
        let _ = writeln!(self.html, "<p>{}</p>", esc(s));
    }

    fn codes(&mut self, codes: &[CodeLine], total: i64) {
        let width = codes
            .iter()
            .map(|c| c.full_code.chars().count())
            .max()
            .unwrap_or(0);
        self.html
            .push_str("<table cellpadding=\"4\" style=\"border-collapse: collapse\">\n");
        for c in codes {
            let _ = write!(self.text, "  {:<width$}  {}", c.full_code, c.description);
            let _ = write!(
                self.html,
                "<tr><td><code>{}</code></td><td>{}</td>",
                esc(&c.full_code),
                esc(&c.description)
            );
            if let Some(m) = &c.message {
                let _ = write!(self.text, "\n  {:<width$}  ERP: {m}", "");
                let _ = write!(self.html, "<td>ERP: {}</td>", esc(m));
            }
            self.text.push('\n');
            self.html.push_str("</tr>\n");
        }
        self.html.push_str("</table>\n");
        let more = total - codes.len() as i64;
        if more > 0 {
            self.para(&format!("… and {} more.", number(more)));
        } else {
            self.text.push('\n');
        }
    }

    fn link(&mut self, label: &str, url: &str) {
        let _ = writeln!(self.text, "{label}: {url}\n");
        let _ = writeln!(
            self.html,
            "<p><a href=\"{}\">{}</a></p>",
            esc(url),
            esc(label)
        );
    }

    fn footer(mut self, lines: &[String]) -> (String, String) {
        self.text.push_str("-- \n");
        self.html
            .push_str("<hr><p style=\"color: #666; font-size: smaller\">");
        for (i, l) in lines.iter().enumerate() {
            let _ = writeln!(self.text, "{l}");
            if i > 0 {
                self.html.push_str("<br>");
            }
            self.html.push_str(&linkify(l));
        }
        self.html.push_str("</p>\n</body></html>\n");
        (self.text, self.html)
    }
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
        } => {
            doc.para(&format!(
                "The ERP did not take {} that you sent (export job {export_job_id}). \
                 What the ERP said is under each code.",
                codes_n(*count)
            ));
            doc.codes(codes, *count);
            doc.para(
                "An accounting approver can retry them from Failed to Export, or reject them.",
            );
            doc.link("See the failed codes", &url(FAILED_PAGE));
            (
                format!("{company}: {} failed to export", codes_n(*count)),
                vec![format!(
                    "You receive this because you sent these codes to ERP Integrations of {company} in Costbridge."
                )],
            )
        }
        Notice::DailySummary {
            company,
            date,
            count,
            oldest_sent_at,
            senders,
        } => {
            doc.para(&format!(
                "{} of {company} {} in Ready to Export.",
                codes_n(*count),
                if *count == 1 { "waits" } else { "wait" }
            ));
            doc.para(&format!(
                "The oldest has waited since {}.",
                local_time(*oldest_sent_at, ctx)
            ));
            doc.para(&format!("Sent by {}.", senders_list(senders)));
            doc.link("Open Ready to Export", &url(READY_PAGE));
            let mut footer = vec![format!(
                "Costbridge sends this summary to the approvers of {company} once a day ({date}) while codes wait."
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
                local_time(*expires_at, ctx)
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

fn codes_n(n: i64) -> String {
    format!("{} cost code{}", number(n), if n == 1 { "" } else { "s" })
}

/// 5000 → "5,000".
fn number(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn senders_list(senders: &[SenderCount]) -> String {
    senders
        .iter()
        .map(|s| format!("{} ({}): {}", s.name, s.email, number(s.count)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn local_time(t: OffsetDateTime, ctx: &Context<'_>) -> String {
    let l = ctx.zone.local(t);
    format!(
        "{} {:02}:{:02} ({})",
        l.date(),
        l.hour(),
        l.minute(),
        ctx.zone_name
    )
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a footer line and makes a trailing URL clickable.
fn linkify(line: &str) -> String {
    match line.rsplit_once(": http") {
        Some((label, rest)) => {
            let u = format!("http{rest}");
            format!("{}: <a href=\"{}\">{}</a>", esc(label), esc(&u), esc(&u))
        }
        None => esc(line),
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
    }

    #[test]
    fn html_is_escaped() {
        let zone = Zone::parse("UTC").unwrap();
        let ctx = Context {
            base_url: "https://cb.example/",
            zone: &zone,
            zone_name: "UTC",
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
