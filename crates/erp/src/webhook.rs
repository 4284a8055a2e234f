//! The webhook connector: each export batch is POSTed as signed JSON to the customer's endpoint,
//! which answers with a result per code.
//!
//! The contract, for whoever writes the receiver:
//!
//! * `POST <url>` with `Content-Type: application/json`, `User-Agent: costbridge/<version>` and
//!   a body `{"event": "cost_codes.export", "job_id": N, "codes": [{"item_id", "code",
//!   "full_code", "description", "active", "parent_full_code", "origin_id", "previous",
//!   "gl_income_account", "gl_expense_account"}, …]}`.
//! * `X-Costbridge-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<unix time>.<body>">`, keyed
//!   with the connection's secret; check it with [`verify`] (or the same recipe), which also
//!   refuses a signature more than five minutes away from the receiver's clock.
//! * `Idempotency-Key: costbridge-<job id>-<16 hex>`: the same batch sent again (after a timeout
//!   or a 5xx) carries the same key, so the receiver can answer it from what it did the first
//!   time instead of doing it twice.
//! * The answer is `2xx` with `{"results": [{"item_id": 1, "status": "synced", "origin_id":
//!   "…"}, {"item_id": 2, "status": "failed", "message": "…"}]}`. A 5xx, 408 or 429 (or no answer)
//!   means "try again later"; any other status refuses the whole batch.
//!
//! A connection test POSTs a signed `{"event": "ping"}`; any 2xx answer passes.
use std::collections::HashMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    ConnectorError, ExportContext, ExportLine, GlAccount, LineResult, WebhookSettings,
    fit_description,
};

/// Codes per POST.
pub const BATCH: usize = 500;

const SIGNATURE_HEADER: &str = "X-Costbridge-Signature";
const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
const USER_AGENT: &str = concat!("costbridge/", env!("CARGO_PKG_VERSION"));
/// How far (seconds) a signature's timestamp may be from the receiver's clock.
const MAX_SKEW_SECS: u64 = 300;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// What is quoted of an unexpected answer, in characters.
const QUOTE_CHARS: usize = 300;
/// A receiver's per-line message is kept up to this many characters.
const MESSAGE_CHARS: usize = 1000;
/// Answers larger than this are not read further (500 results take well under 100 KiB).
const MAX_ANSWER_BYTES: usize = 16 << 20;

type HmacSha256 = Hmac<Sha256>;

/// The header value that signs `body` at `unix_time`:
/// `t=<unix_time>,v1=<hex HMAC-SHA256 of "<unix_time>.<body>" keyed with secret>`.
pub fn sign(secret: &str, unix_time: i64, body: &[u8]) -> String {
    let digest = mac(secret, unix_time, body).finalize().into_bytes();
    format!("t={unix_time},v1={}", hex::encode(digest))
}

/// Checks a `X-Costbridge-Signature` header against the body as received, for receivers.
/// Refuses a timestamp more than 300 s away from `now_unix` (a replayed request, or clocks out
/// of step). The comparison is constant-time. Several `v1=` values (a secret being rotated) pass
/// if any one matches; unknown schemes are ignored.
pub fn verify(secret: &str, header: &str, body: &[u8], now_unix: i64) -> Result<(), String> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!(
                "the signature header is malformed: expected t=<unix time>,v1=<hex>, found '{}'",
                fit_description(part, Some(40))
            ));
        };
        match key.trim() {
            "t" => {
                let value = value.trim();
                timestamp = Some(value.parse::<i64>().map_err(|_| {
                    format!(
                        "the signature timestamp '{}' is not a Unix time",
                        fit_description(value, Some(40))
                    )
                })?);
            }
            "v1" => signatures.push(value.trim()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return Err("the signature header has no timestamp (t=<unix time>)".into());
    };
    if signatures.is_empty() {
        return Err("the signature header has no signature (v1=<hex>)".into());
    }
    let skew = now_unix.abs_diff(timestamp);
    if skew > MAX_SKEW_SECS {
        return Err(if timestamp < now_unix {
            format!(
                "the signature is {skew} s old; at most {MAX_SKEW_SECS} s is accepted (a replayed request, or clocks out of step)"
            )
        } else {
            format!(
                "the signature is dated {skew} s in the future; at most {MAX_SKEW_SECS} s is accepted (clocks out of step)"
            )
        });
    }
    let matches = signatures.iter().any(|s| {
        hex::decode(s).is_ok_and(|bytes| mac(secret, timestamp, body).verify_slice(&bytes).is_ok())
    });
    if matches {
        Ok(())
    } else {
        Err(
            "the signature does not match: the secret is wrong, or the body was changed after signing"
                .into(),
        )
    }
}

fn mac(secret: &str, unix_time: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(unix_time.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `costbridge-<job>-<first 16 hex of SHA-256 of the comma-joined item ids>`: the same batch of
/// the same job always gets the same key.
fn idempotency_key(job_id: i64, lines: &[ExportLine]) -> String {
    let ids: Vec<String> = lines.iter().map(|l| l.item_id.to_string()).collect();
    let digest = hex::encode(Sha256::digest(ids.join(",").as_bytes()));
    format!("costbridge-{job_id}-{}", &digest[..16])
}

#[derive(Serialize)]
struct Batch<'a> {
    event: &'static str,
    job_id: i64,
    codes: Vec<Code<'a>>,
}

#[derive(Serialize)]
struct Code<'a> {
    item_id: i64,
    code: &'a str,
    full_code: &'a str,
    description: &'a str,
    active: bool,
    parent_full_code: Option<&'a str>,
    origin_id: Option<&'a str>,
    previous: Option<PreviousOut<'a>>,
    gl_income_account: Option<Account<'a>>,
    gl_expense_account: Option<Account<'a>>,
}

#[derive(Serialize)]
struct PreviousOut<'a> {
    code: &'a str,
    full_code: &'a str,
    description: &'a str,
    active: bool,
}

#[derive(Serialize)]
struct Account<'a> {
    code: &'a str,
    name: &'a str,
}

impl<'a> Account<'a> {
    fn of(account: &'a Option<GlAccount>) -> Option<Self> {
        account.as_ref().map(|a| Account {
            code: &a.code,
            name: &a.name,
        })
    }
}

#[derive(Deserialize)]
struct Reply {
    results: Vec<ReplyLine>,
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ReplyLine {
    Synced {
        item_id: i64,
        origin_id: OriginId,
    },
    Failed {
        item_id: i64,
        #[serde(default)]
        message: Option<String>,
    },
}

/// ERPs key records by text or by number; both are kept as text.
#[derive(Deserialize)]
#[serde(untagged)]
enum OriginId {
    Text(String),
    Number(i64),
}

/// What came back over HTTP.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    /// False when the body was larger than `MAX_ANSWER_BYTES` and reading stopped.
    complete: bool,
}

pub struct Webhook {
    settings: WebhookSettings,
    timeout: Duration,
}

impl Webhook {
    pub fn new(settings: &WebhookSettings) -> Self {
        Webhook {
            settings: settings.clone(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long one POST may take, connecting and reading the answer included (default 30 s).
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    pub async fn test(&self) -> (bool, String) {
        let body = br#"{"event":"ping"}"#.to_vec();
        match self.post(body, None).await {
            Ok(a) if a.status.is_success() => (
                true,
                format!("The webhook answered HTTP {}.", a.status.as_u16()),
            ),
            Ok(a) => (
                false,
                format!(
                    "The webhook at {} answered HTTP {}: {}",
                    self.shown_url(),
                    status_text(a.status),
                    quote(&a.body)
                ),
            ),
            Err(e) => (false, format!("{}.", capitalise(&self.unreachable(&e)))),
        }
    }

    pub async fn export(
        &self,
        ctx: &ExportContext,
        lines: &[ExportLine],
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        if lines.is_empty() {
            return Ok(Vec::new());
        }
        let batch = Batch {
            event: "cost_codes.export",
            job_id: ctx.job_id,
            codes: lines
                .iter()
                .map(|l| Code {
                    item_id: l.item_id,
                    code: &l.code,
                    full_code: &l.full_code,
                    description: fit_description(&l.description, ctx.max_description),
                    active: l.active,
                    parent_full_code: l.parent_full_code.as_deref(),
                    origin_id: l.origin_id.as_deref(),
                    previous: l.previous.as_ref().map(|p| PreviousOut {
                        code: &p.code,
                        full_code: &p.full_code,
                        description: &p.description,
                        active: p.active,
                    }),
                    gl_income_account: Account::of(&l.income),
                    gl_expense_account: Account::of(&l.expense),
                })
                .collect(),
        };
        let body = serde_json::to_vec(&batch).map_err(|e| {
            ConnectorError::Unavailable(format!("could not encode the webhook batch: {e}"))
        })?;
        let key = idempotency_key(ctx.job_id, lines);
        tracing::debug!(
            job = ctx.job_id,
            codes = lines.len(),
            idempotency_key = %key,
            url = %self.shown_url(),
            "posting a batch to the webhook"
        );
        let answer = self
            .post(body, Some(&key))
            .await
            .map_err(|e| ConnectorError::Unavailable(self.unreachable(&e)))?;
        let status = answer.status;
        tracing::debug!(
            job = ctx.job_id,
            status = status.as_u16(),
            "webhook answered"
        );

        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            return Err(ConnectorError::Unavailable(format!(
                "the webhook at {} answered HTTP {}: {}",
                self.shown_url(),
                status_text(status),
                quote(&answer.body)
            )));
        }
        if !status.is_success() {
            let message = if status.is_redirection() {
                format!(
                    "the receiver refused the batch (HTTP {}, a redirect, which is not followed: set the connection's URL to the final address): {}",
                    status.as_u16(),
                    quote(&answer.body)
                )
            } else {
                format!(
                    "the receiver refused the batch (HTTP {}): {}",
                    status.as_u16(),
                    quote(&answer.body)
                )
            };
            return Ok(all_failed(lines, &message));
        }

        let reply = if answer.complete {
            serde_json::from_slice::<Reply>(&answer.body).map_err(|e| e.to_string())
        } else {
            Err(format!(
                "the answer is larger than {} MiB",
                MAX_ANSWER_BYTES >> 20
            ))
        };
        let reply = match reply {
            Ok(r) => r,
            Err(why) => {
                tracing::warn!(job = ctx.job_id, error = %why, "the webhook's answer is malformed");
                let message = format!(
                    "the receiver answered HTTP {} but not with {{\"results\": [...]}} ({why}); it answered: {}",
                    status.as_u16(),
                    quote(&answer.body)
                );
                return Ok(all_failed(lines, &message));
            }
        };

        let mut reported: HashMap<i64, LineResult> = HashMap::with_capacity(reply.results.len());
        for r in reply.results {
            let (item_id, result) = match r {
                ReplyLine::Synced { item_id, origin_id } => {
                    let origin_id = match origin_id {
                        OriginId::Text(t) => t.trim().to_owned(),
                        OriginId::Number(n) => n.to_string(),
                    };
                    let result = if origin_id.is_empty() {
                        LineResult::Failed {
                            message:
                                "the receiver reported this code synced but gave an empty origin_id"
                                    .into(),
                        }
                    } else {
                        LineResult::Synced { origin_id }
                    };
                    (item_id, result)
                }
                ReplyLine::Failed { item_id, message } => {
                    let message = message
                        .map(|m| fit_description(m.trim(), Some(MESSAGE_CHARS)).to_owned())
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| {
                            "the receiver reported a failure without a message".into()
                        });
                    (item_id, LineResult::Failed { message })
                }
            };
            // The first word on a line counts; a repeat is the receiver's mistake.
            reported.entry(item_id).or_insert(result);
        }
        let results: Vec<(i64, LineResult)> = lines
            .iter()
            .map(|l| {
                let result = reported
                    .remove(&l.item_id)
                    .unwrap_or_else(|| LineResult::Failed {
                        message: "the receiver did not report on this code in its answer".into(),
                    });
                (l.item_id, result)
            })
            .collect();
        if !reported.is_empty() {
            tracing::warn!(
                job = ctx.job_id,
                unknown = reported.len(),
                "the webhook reported on codes that were not in the batch; ignored"
            );
        }
        Ok(results)
    }

    /// One signed POST; the body is read whole (up to `MAX_ANSWER_BYTES`) within the timeout.
    async fn post(&self, body: Vec<u8>, key: Option<&str>) -> Result<Answer, reqwest::Error> {
        // No redirects: a POST would turn into a GET, and the signature would go elsewhere.
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut request = client
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, sign(&self.settings.secret, now, &body));
        if let Some(key) = key {
            request = request.header(IDEMPOTENCY_HEADER, key);
        }
        let mut response = request.body(body).send().await?;
        let status = response.status();
        let mut body = Vec::new();
        let mut complete = true;
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                complete = false;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            body,
            complete,
        })
    }

    /// Why a POST got no answer, in plain words, naming the URL.
    fn unreachable(&self, e: &reqwest::Error) -> String {
        let url = self.shown_url();
        if e.is_timeout() {
            format!(
                "the webhook at {url} did not answer within {}",
                duration_text(self.timeout)
            )
        } else if e.is_connect() {
            format!(
                "could not connect to the webhook at {url}: {}",
                root_cause(e)
            )
        } else if e.is_builder() {
            format!("the webhook URL {url} cannot be used: {}", root_cause(e))
        } else {
            format!(
                "the request to the webhook at {url} failed: {}",
                root_cause(e)
            )
        }
    }

    /// The URL for messages, with any password in it masked.
    fn shown_url(&self) -> String {
        match reqwest::Url::parse(&self.settings.url) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some(crate::MASK));
                u.to_string()
            }
            _ => self.settings.url.clone(),
        }
    }
}

fn all_failed(lines: &[ExportLine], message: &str) -> Vec<(i64, LineResult)> {
    lines
        .iter()
        .map(|l| {
            (
                l.item_id,
                LineResult::Failed {
                    message: message.to_owned(),
                },
            )
        })
        .collect()
}

/// The start of an answer for a message: at most `QUOTE_CHARS` characters, control characters
/// as spaces, `…` when cut.
fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(an empty answer)".into();
    }
    let cut = fit_description(text, Some(QUOTE_CHARS));
    let mut out: String = cut
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cut.len() < text.len() {
        out.push('…');
    }
    out
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn duration_text(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// The innermost error: reqwest's own message is "error sending request for url (…)", the cause
/// ("Connection refused", "dns error: …", "invalid peer certificate: …") is what helps.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
