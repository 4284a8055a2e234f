//! The text-and-HTML builder every email is written with, and the little wordings they share.
use costbridge_storage::outbox::CodeLine;
use std::fmt::Write;

/// One email in the making: lines of text, and the same content as HTML.
pub struct Doc {
    text: String,
    html: String,
}

impl Doc {
    pub fn new() -> Doc {
        Doc {
            text: String::new(),
            html: String::from(
                "<!DOCTYPE html><html><body style=\"font-family: sans-serif; line-height: 1.4\">\n",
            ),
        }
    }

    /// Writes one line to each part; a `String` cannot fail to take it.
    fn line(&mut self, text: std::fmt::Arguments, html: std::fmt::Arguments) {
        let _ = writeln!(self.text, "{text}");
        let _ = writeln!(self.html, "{html}");
    }

    pub fn para(&mut self, s: &str) {
        self.line(format_args!("{s}\n"), format_args!("<p>{}</p>", esc(s)));
    }

    /// A paragraph that starts with `lead` in bold (in HTML).
    pub fn lead(&mut self, lead: &str, rest: &str) {
        self.line(
            format_args!("{lead} {rest}\n"),
            format_args!("<p><strong>{}</strong> {}</p>", esc(lead), esc(rest)),
        );
    }

    /// The codes listed (full code and description), then how many more there are of `total`.
    pub fn codes(&mut self, codes: &[CodeLine], total: i64) {
        self.table(codes.iter());
        self.more(total - codes.len() as i64);
    }

    pub fn table<'c>(&mut self, codes: impl Iterator<Item = &'c CodeLine> + Clone) {
        let width = codes
            .clone()
            .map(|c| c.full_code.chars().count())
            .max()
            .unwrap_or(0);
        self.html
            .push_str("<table cellpadding=\"4\" style=\"border-collapse: collapse\">\n");
        for c in codes {
            self.line(
                format_args!("  {:<width$}  {}", c.full_code, c.description),
                format_args!(
                    "<tr><td><code>{}</code></td><td>{}</td></tr>",
                    esc(&c.full_code),
                    esc(&c.description)
                ),
            );
        }
        self.html.push_str("</table>\n");
        self.text.push('\n');
    }

    /// "… and N more." under a list that shows only the first codes.
    pub fn more(&mut self, more: i64) {
        if more > 0 {
            self.para(&format!("… and {} more.", number(more)));
        }
    }

    pub fn link(&mut self, label: &str, url: &str) {
        self.line(
            format_args!("{label}: {url}\n"),
            format_args!("<p><a href=\"{}\">{}</a></p>", esc(url), esc(label)),
        );
    }

    pub fn footer(mut self, lines: &[String]) -> (String, String) {
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

pub fn codes_n(n: i64) -> String {
    format!("{} cost code{}", number(n), if n == 1 { "" } else { "s" })
}

/// 5000 → "5,000".
pub fn number(n: i64) -> String {
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

pub fn esc(s: &str) -> String {
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
pub fn linkify(line: &str) -> String {
    match line.rsplit_once(": http") {
        Some((label, rest)) => {
            let u = format!("http{rest}");
            format!("{}: <a href=\"{}\">{}</a>", esc(label), esc(&u), esc(&u))
        }
        None => esc(line),
    }
}
