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
mod export;
mod sign;
mod wire;

use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::{
    Connector, ConnectorError, Env, ExportContext, Field, FieldErrors, GlAccount, Input,
    LineResult, Lines, Outbound, Secret,
};

pub use sign::{sign, verify};

/// Codes per POST.
pub const BATCH: usize = 500;

const SIGNATURE_HEADER: &str = "X-Costbridge-Signature";
const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
const USER_AGENT: &str = concat!("costbridge/", env!("CARGO_PKG_VERSION"));
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Answers larger than this are not read further (500 results take well under 100 KiB).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// What came back over HTTP.
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    /// False when the body was larger than `MAX_ANSWER_BYTES` and reading stopped.
    complete: bool,
}

/// Why a POST got no answer.
enum Unsent {
    /// The operator's outbound policy refuses the address.
    Refused(String),
    Http(reqwest::Error),
}

impl From<reqwest::Error> for Unsent {
    fn from(e: reqwest::Error) -> Self {
        Unsent::Http(e)
    }
}

/// The customer's endpoint that receives each export batch as signed JSON.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where each batch is POSTed (`https://…`).
    pub url: String,
    /// The HMAC key of `X-Costbridge-Signature` (at least 16 characters; shown as `********`).
    #[schema(value_type = String, format = Password)]
    pub secret: Secret,
    /// The accounts the approver picks from.
    #[serde(default)]
    #[schema(inline)]
    pub gl_accounts: Vec<GlAccount>,
}

pub struct Webhook {
    settings: WebhookSettings,
    timeout: Duration,
    outbound: Outbound,
}

impl Connector for Webhook {
    type Settings = WebhookSettings;
    const KIND: &'static str = "webhook";
    const LABEL: &'static str = "Webhook (signed JSON)";
    const FIELDS: &'static [Field] = &[
        Field::new("url", "Endpoint URL", Input::Url),
        Field::new("secret", "Signing secret", Input::Secret),
        Field::new("gl_accounts", "GL accounts", Input::GlAccounts),
    ];
    const BATCH: usize = BATCH;

    fn check(s: &WebhookSettings, _env: &Env, errors: &mut FieldErrors) {
        errors.url("url", &s.url);
        if s.secret.is_mask() || s.secret.expose().chars().count() < 16 {
            errors.add("secret", "must be at least 16 characters");
        }
        errors.gl_accounts(&s.gl_accounts);
    }

    fn new(settings: &WebhookSettings, env: &Env) -> Self {
        Webhook {
            settings: settings.clone(),
            timeout: DEFAULT_TIMEOUT,
            outbound: env.outbound.clone(),
        }
    }

    fn settings_gl_accounts(&self) -> &[GlAccount] {
        &self.settings.gl_accounts
    }

    async fn test(&self) -> (bool, String) {
        let body = br#"{"event":"ping"}"#.to_vec();
        match self.post(body, None).await {
            Ok(a) if a.status.is_success() => (
                true,
                format!("The webhook answered HTTP {}.", a.status.as_u16()),
            ),
            Ok(a) => (
                false,
                format!(
                    "The webhook at {} answered HTTP {}.",
                    self.shown_url(),
                    status_text(a.status),
                ),
            ),
            Err(e) => (false, format!("{}.", capitalise(&e))),
        }
    }

    async fn export(
        &self, ctx: &ExportContext, lines: &dyn Lines,
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        export::export(self, ctx, &lines.to_vec()).await
    }
}

impl Webhook {
    /// A receiver outside any ERP connection (an event subscriber, README Integrations →
    /// Events): signed with `secret` as export batches are, under the same outbound policy.
    pub fn endpoint(url: &str, secret: Secret, outbound: &Outbound) -> Webhook {
        Webhook {
            settings: WebhookSettings {
                url: url.to_owned(),
                secret,
                gl_accounts: Vec::new(),
            },
            timeout: DEFAULT_TIMEOUT,
            outbound: outbound.clone(),
        }
    }

    /// POSTs `body` signed, with `key` as its `Idempotency-Key`: the receiver's HTTP status and
    /// the body it answered, or in plain words why there is no answer.
    pub async fn post_signed(&self, body: Vec<u8>, key: &str) -> Result<(u16, Vec<u8>), String> {
        let a = self.post(body, Some(key)).await?;
        Ok((a.status.as_u16(), a.body))
    }

    /// How long one POST may take, connecting and reading the answer included (default 30 s).
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// One signed POST; the body is read whole (up to `MAX_ANSWER_BYTES`) within the timeout.
    /// `Err` says in plain words why there is no answer.
    #[tracing::instrument(level = "debug", skip_all, fields(url = %crate::shown_url(&self.settings.url), idempotency_key = key))]
    async fn post(&self, body: Vec<u8>, key: Option<&str>) -> Result<Answer, String> {
        self.send(body, key).await.map_err(|e| match e {
            Unsent::Refused(why) => format!(
                "the webhook at {} may not be reached: {why}",
                self.shown_url()
            ),
            Unsent::Http(e) => self.unreachable(&e),
        })
    }

    async fn send(&self, body: Vec<u8>, key: Option<&str>) -> Result<Answer, Unsent> {
        // No redirects (the policy follows none): a POST would turn into a GET, and the
        // signature would go elsewhere.
        let client = self
            .outbound
            .client(&self.settings.url)
            .map_err(Unsent::Refused)?
            .timeout(self.timeout)
            .user_agent(USER_AGENT)
            .build()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut request = client
            .post(&self.settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                sign(self.settings.secret.expose(), now, &body),
            );
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

    /// The URL for messages, which reach read-only users (a test's answer, a job's error, a
    /// failed row): its scheme and host, since a hook's path may be its credential.
    fn shown_url(&self) -> String {
        costbridge_domain::url::host_only(&self.settings.url)
    }
}

pub(crate) fn status_text(status: StatusCode) -> String {
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
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
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
