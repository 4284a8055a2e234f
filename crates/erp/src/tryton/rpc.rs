//! Tryton's JSON-RPC as it is spoken over HTTP: the envelope, session login, the error shapes,
//! and a per-process session cache so each operation does not pay for a fresh (argon2) login.
//!
//! Shapes verified against trytond 8.2 (see `scripts/tryton/README.md`): the body has exactly
//! `id`, `method` and `params`; database calls go to `{url}{db}/rpc/`; `model.*` calls end with a
//! context object that must carry the company; HTTP 401 with an empty body means the session is
//! gone; a business refusal is HTTP 200 with `{"error": ["UserError", [message, …]]}`.
use crate::{Outbound, Secret, TrytonSettings};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How long one call may take. The largest calls (1,000 analytic accounts) take ~1–2 s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call did not return a result.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// Tryton cannot be reached or answered like a broken server: retry the job later.
    Down(String),
    /// Tryton answered and refused this call (a `UserError`, or a server-side exception for
    /// this data). Nothing of the call was stored: one call is one transaction.
    Refused(String),
}

/// Why a login failed, for plain messages in the connection test.
#[derive(Debug, Clone)]
pub(crate) enum LoginError {
    Unreachable(String),
    /// HTTP 404 on `{url}{db}/rpc/`: no such database (or not a Tryton server).
    NoDatabase,
    BadCredentials,
    TooManyAttempts,
    Other(String),
}

#[derive(Clone)]
pub(crate) struct Session {
    auth: String,
    pub company: i64,
}

/// Sessions by (url, database, username, password digest): a later operation with the same
/// settings reuses the session; changed settings (e.g. a new password) log in again.
static SESSIONS: LazyLock<Mutex<HashMap<[u8; 32], Session>>> = LazyLock::new(Default::default);

/// A client that connects where the operator's policy allows, or why `url` may not be reached.
fn http(outbound: &Outbound, url: &str) -> Result<reqwest::Client, String> {
    outbound
        .client(url)
        .map_err(|why| format!("the address may not be reached: {why}"))?
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(|e| transport_text(&e))
}

pub(crate) struct Rpc {
    /// The server root with a trailing slash, e.g. `http://127.0.0.1:8000/`.
    root_url: String,
    /// `root_url` for messages, without user-info.
    pub shown_url: String,
    /// Refused by the outbound policy: every call answers with the reason.
    http: Result<reqwest::Client, String>,
    db_url: String,
    pub database: String,
    pub username: String,
    password: Secret,
    key: [u8; 32],
    session: Mutex<Option<Session>>,
    next_id: AtomicU64,
}

/// What one HTTP exchange produced.
enum Answer {
    Result(Value),
    Refused(String),
    Status(u16, String),
    Transport(String),
}

impl Rpc {
    pub fn new(s: &TrytonSettings, outbound: &Outbound) -> Self {
        let mut root_url = s.url.trim().to_owned();
        if !root_url.ends_with('/') {
            root_url.push('/');
        }
        let db_url = format!("{root_url}{}/rpc/", s.database.trim());
        let mut h = Sha256::new();
        for part in [
            root_url.as_str(),
            &s.database,
            &s.username,
            s.password.expose(),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        Rpc {
            shown_url: crate::shown_url(&root_url),
            http: http(outbound, &root_url),
            root_url,
            db_url,
            database: s.database.trim().to_owned(),
            username: s.username.clone(),
            password: s.password.clone(),
            key: h.finalize().into(),
            session: Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    async fn post(&self, url: &str, auth: Option<&str>, method: &str, params: &Value) -> Answer {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"id": id, "method": method, "params": params});
        let http = match &self.http {
            Ok(http) => http,
            Err(why) => return Answer::Transport(why.clone()),
        };
        let mut req = http.post(url).json(&body);
        if let Some(a) = auth {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        let started = Instant::now();
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Answer::Transport(transport_text(&e)),
        };
        let status = resp.status().as_u16();
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => return Answer::Transport(transport_text(&e)),
        };
        tracing::debug!(
            method,
            status,
            ms = started.elapsed().as_millis() as u64,
            "tryton call"
        );
        if status != 200 {
            // What the server sent stays out: only Tryton's own JSON-RPC errors are quoted.
            return Answer::Status(status, reason(status));
        }
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return Answer::Status(status, "not a JSON-RPC answer".into());
        };
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return Answer::Refused(error_text(err));
        }
        match v.get("result") {
            Some(r) => Answer::Result(r.clone()),
            None => Answer::Status(status, "a JSON answer without result or error".into()),
        }
    }

    /// `common.server.version` on the server root (no database, no login). `Down`: nothing
    /// answers; `Refused`: something answers, but not like Tryton.
    pub async fn version(&self) -> Result<String, Fault> {
        let url = format!("{}rpc/", self.root_url);
        match self
            .post(&url, None, "common.server.version", &json!([]))
            .await
        {
            Answer::Result(v) => Ok(v.as_str().unwrap_or_default().to_owned()),
            Answer::Refused(m) => Err(Fault::Refused(m)),
            // Something answered, but not Tryton's JSON-RPC.
            Answer::Status(s, m) => Err(Fault::Refused(format!("HTTP {s}: {m}"))),
            Answer::Transport(m) => Err(Fault::Down(m)),
        }
    }

    /// `common.db.list` (may be disabled on a server; then an error).
    pub async fn databases(&self) -> Result<Vec<String>, Fault> {
        let url = format!("{}rpc/", self.root_url);
        match self.post(&url, None, "common.db.list", &json!([])).await {
            Answer::Result(v) => Ok(v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()),
            Answer::Refused(m) => Err(Fault::Refused(m)),
            Answer::Status(s, m) => Err(Fault::Down(format!("HTTP {s}: {m}"))),
            Answer::Transport(m) => Err(Fault::Down(m)),
        }
    }

    /// A fresh login (never from the cache); the session then replaces the cached one.
    #[tracing::instrument(skip_all, fields(database = %self.database, user = %self.username))]
    pub async fn login(&self) -> Result<Session, LoginError> {
        let params = json!([self.username, {"password": self.password.expose()}, "en"]);
        let (uid, token) = match self
            .post(&self.db_url, None, "common.db.login", &params)
            .await
        {
            Answer::Result(v) => match (
                v.get(0).and_then(Value::as_i64),
                v.get(1).and_then(Value::as_str),
            ) {
                (Some(uid), Some(token)) => (uid, token.to_owned()),
                _ => return Err(LoginError::BadCredentials),
            },
            Answer::Refused(m) => return Err(LoginError::Other(m)),
            Answer::Status(401 | 403, _) => return Err(LoginError::BadCredentials),
            Answer::Status(429, _) => return Err(LoginError::TooManyAttempts),
            Answer::Status(404, _) => return Err(LoginError::NoDatabase),
            Answer::Status(s, m) => return Err(LoginError::Other(format!("HTTP {s}: {m}"))),
            Answer::Transport(m) => return Err(LoginError::Unreachable(m)),
        };
        let auth = format!(
            "Session {}",
            base64(format!("{}:{uid}:{token}", self.username).as_bytes())
        );
        let prefs = match self
            .post(
                &self.db_url,
                Some(&auth),
                "model.res.user.get_preferences",
                &json!([true, {}]),
            )
            .await
        {
            Answer::Result(v) => v,
            Answer::Refused(m) => return Err(LoginError::Other(m)),
            Answer::Status(s, m) => return Err(LoginError::Other(format!("HTTP {s}: {m}"))),
            Answer::Transport(m) => return Err(LoginError::Unreachable(m)),
        };
        let company = prefs.get("company").and_then(Value::as_i64).ok_or_else(|| {
            LoginError::Other(format!(
                "the Tryton user '{}' has no current company; choose one in the user's preferences",
                self.username
            ))
        })?;
        let session = Session { auth, company };
        self.remember(Some(session.clone()));
        Ok(session)
    }

    fn remember(&self, session: Option<Session>) {
        if let Ok(mut cache) = SESSIONS.lock() {
            match &session {
                Some(s) => {
                    cache.insert(self.key, s.clone());
                }
                None => {
                    cache.remove(&self.key);
                }
            }
        }
        if let Ok(mut mine) = self.session.lock() {
            *mine = session;
        }
    }

    /// The session of this operation: the cached one, else a new login.
    pub async fn session(&self) -> Result<Session, Fault> {
        let mine = self.session.lock().ok().and_then(|s| s.clone());
        if let Some(s) = mine {
            return Ok(s);
        }
        let cached = SESSIONS.lock().ok().and_then(|c| c.get(&self.key).cloned());
        if let Some(s) = cached {
            if let Ok(mut mine) = self.session.lock() {
                *mine = Some(s.clone());
            }
            return Ok(s);
        }
        self.login()
            .await
            .map_err(|e| Fault::Down(self.login_message(&e)))
    }

    /// A plain sentence for a failed login.
    pub fn login_message(&self, e: &LoginError) -> String {
        match e {
            LoginError::Unreachable(m) => {
                format!("Cannot reach the Tryton server at {}: {m}", self.shown_url)
            }
            LoginError::NoDatabase => format!(
                "The Tryton server at {} has no database '{}' (or the URL is not a Tryton server's root)",
                self.shown_url, self.database
            ),
            LoginError::BadCredentials => format!(
                "Wrong username or password for Tryton database '{}' (user '{}')",
                self.database, self.username
            ),
            LoginError::TooManyAttempts => format!(
                "Tryton refuses logins for user '{}' for a few minutes after too many failed attempts; check the password and try again later",
                self.username
            ),
            LoginError::Other(m) => format!("Tryton login failed: {m}"),
        }
    }

    /// One call on the database, with the session; a session that Tryton no longer knows (401)
    /// is replaced by a new login once.
    #[tracing::instrument(level = "debug", skip_all, fields(method = %method))]
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, Fault> {
        let mut session = self.session().await?;
        for attempt in 0..2 {
            match self
                .post(&self.db_url, Some(&session.auth), method, &params)
                .await
            {
                Answer::Result(v) => return Ok(v),
                Answer::Refused(m) => return Err(Fault::Refused(m)),
                Answer::Status(401, _) if attempt == 0 => {
                    tracing::info!("Tryton session expired; logging in again");
                    self.remember(None);
                    session = self
                        .login()
                        .await
                        .map_err(|e| Fault::Down(self.login_message(&e)))?;
                }
                Answer::Status(s, m) => {
                    return Err(Fault::Down(format!(
                        "Tryton at {} answered HTTP {s} to {method}: {m}",
                        self.shown_url
                    )));
                }
                Answer::Transport(m) => {
                    return Err(Fault::Down(format!(
                        "Cannot reach the Tryton server at {}: {m}",
                        self.shown_url
                    )));
                }
            }
        }
        Err(Fault::Down(format!(
            "Tryton at {} keeps refusing the session after a new login",
            self.shown_url
        )))
    }

    /// `model.<model>.<method>` with `args` followed by the context (company; inactive records
    /// included unless `active_only`).
    pub async fn model(
        &self, model: &str, method: &str, args: Vec<Value>, active_only: bool,
    ) -> Result<Value, Fault> {
        let session = self.session().await?;
        let mut ctx = json!({"company": session.company});
        if !active_only {
            ctx["active_test"] = Value::Bool(false);
        }
        let mut params = args;
        params.push(ctx);
        self.call(&format!("model.{model}.{method}"), Value::Array(params))
            .await
    }

    /// `search_read` → the records as JSON objects.
    pub async fn search_read(
        &self, model: &str, domain: Value, limit: Option<usize>, order: Value, fields: &[&str],
        active_only: bool,
    ) -> Result<Vec<Value>, Fault> {
        let v = self
            .model(
                model,
                "search_read",
                vec![domain, json!(0), json!(limit), order, json!(fields)],
                active_only,
            )
            .await?;
        match v {
            Value::Array(a) => Ok(a),
            other => Err(Fault::Down(format!(
                "Tryton answered search_read on {model} with {other} instead of a list"
            ))),
        }
    }
}

fn transport_text(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({detail})")
    }
}

/// The message of a JSON-RPC `error`: `["UserError", [message, description, domain]]` or
/// `[exception text, traceback]`. The domain part can be tens of kB: only the message is kept.
fn error_text(err: &Value) -> String {
    match err {
        Value::Array(a) => {
            let head = a.first().and_then(Value::as_str).unwrap_or_default();
            match a.get(1) {
                Some(Value::Array(detail))
                    if head.ends_with("Error") || head.ends_with("Warning") =>
                {
                    let msg = detail.first().and_then(Value::as_str).unwrap_or(head);
                    let desc = detail.get(1).and_then(Value::as_str).unwrap_or_default();
                    if desc.trim().is_empty() {
                        msg.to_owned()
                    } else {
                        format!("{msg} {desc}")
                    }
                }
                _ => head.to_owned(),
            }
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The status's standard reason (`Not Found`), for a message.
fn reason(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("an unexpected status")
        .to_owned()
}

/// Standard base64 (RFC 4648, with padding), for the session header.
fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Tryton reads booleans back as 0/1 on SQLite and true/false elsewhere.
pub(crate) fn as_bool(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}

pub(crate) fn as_id(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

pub(crate) fn as_text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str).map(str::to_owned)
}
