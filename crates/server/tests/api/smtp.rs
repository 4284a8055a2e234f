//! A real SMTP server for the notification tests, on 127.0.0.1:0 over TCP. It speaks enough
//! ESMTP for any client (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), records each message,
//! and can be told to refuse mail with a given reply (4xx or 5xx) to MAIL FROM. Written here
//! rather than taken from a crate: the embeddable ones pull in a second TLS provider.
use base64::Engine;
use costbridge_server::config::{MailSettings, TlsMode};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The `[mail] base_url` of the notification tests: the links the emails carry.
pub const BASE: &str = "https://costbridge.example";

/// A fresh SMTP server and mail settings that send through it, with the digest hour at 08:00
/// in `time_zone`.
pub async fn mailroom(time_zone: &str) -> (SmtpServer, MailSettings) {
    let smtp = SmtpServer::start().await;
    let settings = MailSettings {
        host: Some("127.0.0.1".into()),
        port: Some(smtp.port),
        tls: TlsMode::None,
        from: "Costbridge <costbridge@one.example>".into(),
        base_url: BASE.into(),
        digest_hour: 8,
        time_zone: time_zone.into(),
        timeout_seconds: 5,
        ..MailSettings::default()
    };
    (smtp, settings)
}

#[derive(Default)]
struct Shared {
    received: Vec<Mail>,
    refuse: Option<String>,
}

pub struct SmtpServer {
    pub port: u16,
    shared: Arc<Mutex<Shared>>,
    accept: tokio::task::AbortHandle,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One message as the server received it, with its MIME parts decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// Unfolded header lines, in order.
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub html: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn subject(&self) -> String {
        decode_words(self.header("Subject").unwrap_or_default())
    }

    pub fn to(&self) -> &str {
        &self.envelope_to[0]
    }
}

impl SmtpServer {
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = session(socket, s).await;
                });
            }
        })
        .abort_handle();
        SmtpServer {
            port,
            shared,
            accept,
        }
    }

    /// `Some("451 4.3.0 Try again later")` refuses every message with that reply; `None` accepts.
    pub fn refuse(&self, reply: Option<&str>) {
        self.shared.lock().unwrap().refuse = reply.map(str::to_owned);
    }

    /// The messages received since the last call, sorted by recipient.
    pub fn take(&self) -> Vec<Mail> {
        let mut v = std::mem::take(&mut self.shared.lock().unwrap().received);
        v.sort_by(|a, b| a.envelope_to.cmp(&b.envelope_to));
        v
    }
}

async fn session(socket: TcpStream, shared: Arc<Mutex<Shared>>) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 localhost test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let reply = if upper.starts_with("EHLO") {
            "250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8".to_owned()
        } else if upper.starts_with("HELO") {
            "250 localhost".to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            match shared.lock().unwrap().refuse.clone() {
                Some(r) => r,
                None => {
                    from = address(&cmd[10..]);
                    to.clear();
                    "250 2.1.0 OK".to_owned()
                }
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&cmd[8..]));
            "250 2.1.5 OK".to_owned()
        } else if upper == "DATA" {
            write
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                // Undo dot-stuffing.
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let mail = parse(&from, &to, &data);
            shared.lock().unwrap().received.push(mail);
            "250 2.0.0 OK queued".to_owned()
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 OK".to_owned()
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 Bye\r\n").await?;
            return Ok(());
        } else {
            "502 5.5.2 Command not recognized".to_owned()
        };
        write.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
}

fn address(arg: &str) -> String {
    let a = arg.trim();
    let a = a.strip_prefix('<').unwrap_or(a);
    a.split('>').next().unwrap_or_default().trim().to_owned()
}

/// Splits header block and body, unfolding continued header lines.
fn split(raw: &str) -> (Vec<(String, String)>, String) {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in head.lines() {
        if l.starts_with(' ') || l.starts_with('\t') {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(l.trim());
            }
        } else if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (headers, body.to_owned())
}

fn get<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn parse(from: &str, to: &[String], data: &str) -> Mail {
    let (headers, body) = split(data);
    let ctype = get(&headers, "Content-Type").to_owned();
    let boundary = ctype
        .split("boundary=")
        .nth(1)
        .map(|b| {
            b.trim_matches('"')
                .split('"')
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .expect("a multipart message");
    let (mut text, mut html) = (String::new(), String::new());
    for part in body.split(&format!("--{boundary}")) {
        let part = part.trim_start_matches('\n');
        if part.starts_with("--") || part.trim().is_empty() {
            continue;
        }
        let (h, b) = split(part);
        let decoded = match get(&h, "Content-Transfer-Encoding")
            .to_ascii_lowercase()
            .as_str()
        {
            "base64" => String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b.split_whitespace().collect::<String>())
                    .expect("base64"),
            )
            .expect("utf-8"),
            "quoted-printable" => String::from_utf8(
                quoted_printable::decode(b.as_bytes(), quoted_printable::ParseMode::Robust)
                    .expect("quoted-printable"),
            )
            .expect("utf-8"),
            _ => b,
        };
        if get(&h, "Content-Type").starts_with("text/html") {
            html = decoded;
        } else {
            text = decoded;
        }
    }
    Mail {
        envelope_from: from.to_owned(),
        envelope_to: to.to_vec(),
        headers,
        text,
        html,
    }
}

/// Decodes RFC 2047 `=?utf-8?b?…?=` words (what a non-ASCII subject becomes); the space
/// between two encoded words is not part of the text.
fn decode_words(v: &str) -> String {
    let mut out = String::new();
    let mut after_word = false;
    for w in v.split_whitespace() {
        let word = w
            .to_ascii_lowercase()
            .starts_with("=?utf-8?b?")
            .then(|| w.strip_suffix("?=").map(|b| b[10..].to_owned()))
            .flatten();
        let between_words = after_word && word.is_some();
        if !(out.is_empty() || between_words) {
            out.push(' ');
        }
        match &word {
            Some(b64) => out.push_str(
                &String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .expect("encoded word"),
                )
                .expect("utf-8"),
            ),
            None => out.push_str(w),
        }
        after_word = word.is_some();
    }
    out
}
