//! Settings: defaults, then an optional TOML file, then `COSTBRIDGE__SECTION__KEY` variables,
//! then command-line flags.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub worker: WorkerSettings,
    pub mail: MailSettings,
    pub outbound: OutboundSettings,
    pub export: ExportSettings,
    pub secrets: SecretsSettings,
    pub xero: XeroSettings,
    pub api: ApiSettings,
}

/// Machine clients, rate limits and idempotency keys on the JSON API (README, Integrations).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Requests each token owner (a person or a machine client) may make per minute, across
    /// every instance; 0 turns the limit off.
    pub requests_per_minute: i64,
    /// How long a token from `POST /oauth/token` lives.
    pub client_token_minutes: i64,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_hours: i64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            requests_per_minute: 600,
            client_token_minutes: 15,
            idempotency_hours: 24,
        }
    }
}

/// The operator's Xero app (README, Xero). Without a `client_id` the Xero connector says the
/// server has no Xero app. The bases default to Xero's own addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XeroSettings {
    pub client_id: String,
    /// Prefer the environment: `COSTBRIDGE__XERO__CLIENT_SECRET`.
    #[serde(skip_serializing)]
    pub client_secret: Option<Secret>,
    pub api_base: String,
    pub accounting_base: String,
    pub identity_base: String,
    pub login_base: String,
    /// Xero's limits per organisation; lower them if other apps share the organisation.
    pub calls_per_minute: usize,
    pub calls_per_day: usize,
    pub concurrent_calls: usize,
    /// Seconds one call to Xero may take.
    pub timeout_seconds: u64,
}

impl Default for XeroSettings {
    fn default() -> Self {
        let app = costbridge_erp::XeroConfig::default();
        let limits = costbridge_erp::xero::pace::Limits::default();
        XeroSettings {
            client_id: String::new(),
            client_secret: None,
            api_base: app.api_base,
            accounting_base: app.accounting_base,
            identity_base: app.identity_base,
            login_base: app.login_base,
            calls_per_minute: limits.per_minute,
            calls_per_day: limits.per_day,
            concurrent_calls: limits.concurrent,
            timeout_seconds: app.timeout.as_secs(),
        }
    }
}

impl XeroSettings {
    pub fn app(&self) -> costbridge_erp::XeroConfig {
        costbridge_erp::XeroConfig {
            client_id: self.client_id.clone(),
            client_secret: self
                .client_secret
                .as_ref()
                .map(|s| s.expose().into())
                .unwrap_or_default(),
            api_base: self.api_base.clone(),
            accounting_base: self.accounting_base.clone(),
            identity_base: self.identity_base.clone(),
            login_base: self.login_base.clone(),
            timeout: std::time::Duration::from_secs(self.timeout_seconds),
        }
    }

    pub fn limits(&self) -> costbridge_erp::xero::pace::Limits {
        costbridge_erp::xero::pace::Limits {
            per_minute: self.calls_per_minute,
            per_day: self.calls_per_day,
            concurrent: self.concurrent_calls,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: String,
    pub database_url: String,
    /// Largest JSON body accepted (bytes).
    pub max_body_bytes: usize,
    /// Largest CSV import accepted (bytes).
    pub max_import_bytes: usize,
    /// Behind a reverse proxy: the header it puts the client's address in (e.g.
    /// `X-Forwarded-For`; its last entry counts). Absent: the connection's address. Sign-in
    /// throttling counts failures per client address.
    pub client_ip_header: Option<String>,
    /// When set, `/metrics` needs `Authorization: Bearer <this>` (401 otherwise).
    #[serde(skip_serializing)]
    pub metrics_token: Option<Secret>,
    /// On SIGTERM or Ctrl-C, how long open requests may take to finish before the server stops
    /// without them (a second signal stops it at once).
    pub shutdown_grace_seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Run the export worker inside `serve`, with email and event delivery beside it (turn off
    /// only to run it elsewhere).
    pub enabled: bool,
    /// How long a claimed job stays claimed; a crashed worker's job is taken up again after it.
    pub lease_seconds: i64,
    /// Attempts before an unreachable ERP fails the job's rows, and before an event batch a
    /// subscriber keeps refusing is marked failed.
    pub max_attempts: i64,
    /// The first retry waits this long; each later one doubles it (capped at 10 minutes for
    /// exports, an hour for events).
    pub backoff_seconds: i64,
}

impl WorkerSettings {
    /// Settings no worker can run under refuse the start: a lease of no time at all is taken
    /// by another instance while its job runs (the lease is renewed every third of it).
    pub fn check(&self) -> anyhow::Result<()> {
        if self.lease_seconds < 1 {
            anyhow::bail!(
                "[worker] lease_seconds = {} claims a job for no time at all: another instance \
                 would take it while it runs (at least 1; the default is 30)",
                self.lease_seconds
            );
        }
        if self.max_attempts < 1 || self.backoff_seconds < 0 {
            anyhow::bail!(
                "[worker] max_attempts must be at least 1 and backoff_seconds not negative"
            );
        }
        Ok(())
    }
}

impl ServerSettings {
    /// An empty `metrics_token` refuses the start: it looked like a token and left `/metrics`
    /// open to anyone sending an empty one (or none).
    pub fn check(&self) -> anyhow::Result<()> {
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            anyhow::bail!(
                "[server] metrics_token is empty: set a token for /metrics, or remove the setting \
                 to leave /metrics open (only where the network keeps it private)"
            );
        }
        Ok(())
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            shutdown_grace_seconds: 30,
            database_url: "sqlite://costbridge.db".into(),
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 64 * 1024 * 1024,
            client_ip_header: None,
            metrics_token: None,
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            enabled: true,
            lease_seconds: 30,
            max_attempts: 5,
            backoff_seconds: 2,
        }
    }
}

/// Where ERP connectors may connect. By default no loopback, private, link-local or metadata
/// address, so a company admin cannot reach into the operator's network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundSettings {
    /// Allow every internal address (an on-premise ERP on the operator's network).
    pub allow_private: bool,
    /// Internal hosts allowed one by one: `10.0.0.5` (any port), `erp.internal:8000`.
    pub allow: Vec<String>,
}

impl OutboundSettings {
    fn policy(&self) -> anyhow::Result<costbridge_erp::Outbound> {
        costbridge_erp::Outbound::new(self.allow_private, &self.allow).map_err(anyhow::Error::msg)
    }
}

/// Where the file connector writes: each company in its own folder under `root`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportSettings {
    pub root: PathBuf,
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings {
            root: "./exports".into(),
        }
    }
}

/// The key that encrypts connector secrets in the database (README, Security). Without either
/// setting, SQLite uses `costbridge-secrets.key` next to its database file (created on first
/// start); PostgreSQL needs one of them, since every instance must share the key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsSettings {
    /// A file holding the key: 32 bytes in base64.
    pub key_file: Option<std::path::PathBuf>,
    /// The key itself, in base64; meant for the environment (`COSTBRIDGE__SECRETS__KEY`).
    #[serde(skip_serializing)]
    pub key: Option<Secret>,
}

/// Email notifications (docs/rules.md §6). Without a `host` the outbox still fills and nothing
/// is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// The SMTP server; absent means mail is not configured.
    pub host: Option<String>,
    /// Absent means the usual port for `tls`: 25, 587 (STARTTLS) or 465 (TLS).
    pub port: Option<u16>,
    pub tls: TlsMode,
    pub username: Option<String>,
    #[serde(skip_serializing)]
    pub password: Option<Secret>,
    /// The From header, e.g. `Costbridge <costbridge@example.com>`.
    pub from: String,
    /// Where people open Costbridge; links in emails start with it.
    pub base_url: String,
    /// The local hour (0–23) from which the daily summary goes out.
    pub digest_hour: u8,
    /// `UTC`, a fixed offset like `+01:00`, or an IANA name like `Europe/Paris`.
    pub time_zone: String,
    /// Attempts before a message is marked failed.
    pub max_attempts: i64,
    /// The first retry waits this long; each later one doubles it (capped at one hour).
    pub backoff_seconds: i64,
    /// How long one SMTP conversation may take before it counts as a failed attempt.
    pub timeout_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP: only for a relay on the same host or a trusted network.
    None,
    /// Connect in plain text, then upgrade with STARTTLS (required, never optional).
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// A secret from the settings: `Debug` never shows it. Numbers are accepted too, because
/// `COSTBRIDGE__MAIL__PASSWORD=123456` arrives typed as an integer.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Int(i64),
            Float(f64),
            Bool(bool),
        }
        Ok(Secret(match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Int(n) => n.to_string(),
            Raw::Float(n) => n.to_string(),
            Raw::Bool(b) => b.to_string(),
        }))
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            host: None,
            port: None,
            tls: TlsMode::Starttls,
            username: None,
            password: None,
            from: "Costbridge <costbridge@localhost>".into(),
            base_url: "http://127.0.0.1:8080".into(),
            digest_hour: 8,
            time_zone: "UTC".into(),
            max_attempts: 8,
            backoff_seconds: 60,
            timeout_seconds: 30,
        }
    }
}

pub const EXAMPLE: &str = r#"# Costbridge configuration. Every key can also be set in the environment as
# COSTBRIDGE__SECTION__KEY (e.g. COSTBRIDGE__SERVER__LISTEN=0.0.0.0:8080); flags win over both.

[server]
# Address to listen on; port 0 picks a free port (the bound address is logged).
listen = "127.0.0.1:8080"
# sqlite://FILE (embedded, the default) or postgres://USER@HOST/DB for several instances.
database_url = "sqlite://costbridge.db"
# Largest JSON request body, in bytes; bigger requests get 413.
max_body_bytes = 1048576
# Largest CSV import, in bytes.
max_import_bytes = 67108864
# Behind a reverse proxy, the header carrying the client's address (its last entry counts);
# set it only when the proxy always writes it. Sign-in throttling counts failures per client.
# client_ip_header = "X-Forwarded-For"
# When set, /metrics answers only `Authorization: Bearer <token>` (401 otherwise). Prefer the
# environment: COSTBRIDGE__SERVER__METRICS_TOKEN.
# metrics_token = "..."
# On SIGTERM or Ctrl-C, seconds open requests get to finish before the server stops without
# them; a second signal stops it at once.
shutdown_grace_seconds = 30

[worker]
# Run the background work inside `serve`: the export worker, email delivery, the daily summary
# and event delivery to subscribers.
enabled = true
# Seconds a claimed export job stays claimed; after a crash another worker resumes it then.
# (An event subscription is claimed for at least 60 s, longer than one delivery can take.)
lease_seconds = 30
# Attempts before an unreachable ERP fails the job's rows (they can be retried from the queue),
# and before a batch of events a subscriber keeps refusing is marked failed (Redeliver sends it).
max_attempts = 5
# First retry delay in seconds; doubles on each attempt, at most 10 minutes (events: an hour).
backoff_seconds = 2

[mail]
# The SMTP server. Without it emails wait in the outbox and a log line says mail is off.
# host = "smtp.example.com"
# Default: 25 for tls = "none", 587 for "starttls", 465 for "tls".
# port = 587
# "none" (plain, trusted relay only), "starttls" (upgrade required) or "tls" (SMTPS).
tls = "starttls"
# username = "costbridge"
# Prefer the environment for it: COSTBRIDGE__MAIL__PASSWORD. It is never logged.
# password = "..."
from = "Costbridge <costbridge@localhost>"
# Where people open Costbridge; every link in an email starts with it.
base_url = "http://127.0.0.1:8080"
# The approvers' daily summary goes out from this local hour (0-23) while codes wait.
digest_hour = 8
# "UTC", a fixed offset like "+01:00", or an IANA zone like "Europe/Paris" (system tz database).
time_zone = "UTC"
# Attempts before a message is marked failed; the first retry waits backoff_seconds, then doubles
# (at most one hour).
max_attempts = 8
backoff_seconds = 60
# Seconds one SMTP conversation may take.
timeout_seconds = 30

[outbound]
# Where ERP connectors (Tryton, webhook) may connect. By default they reach no loopback, private
# (10/8, 172.16/12, 192.168/16, fc00::/7), link-local or metadata (169.254/16, fe80::/10) or
# unspecified address, checked on every resolved address. For an ERP on your own network, allow
# it by host (any port) or host:port, or allow every internal address (not on a shared server).
# Also COSTBRIDGE__OUTBOUND__ALLOW_PRIVATE=true.
allow_private = false
allow = []
# allow = ["10.0.0.5", "erp.internal:8000"]

[export]
# The file connector writes under this folder, each company in its own subfolder
# (company-<id>); a company's `directory` setting is relative to it and cannot lead out.
root = "./exports"

[secrets]
# The key that encrypts connector passwords and webhook secrets in the database: 32 bytes in
# base64 (`head -c 32 /dev/urandom | base64`). Or set COSTBRIDGE__SECRETS__KEY to the base64.
# Default with SQLite: costbridge-secrets.key next to the database, created on first start.
# PostgreSQL needs one of the two (every instance shares the key).
# key_file = "/etc/costbridge/secrets.key"

[xero]
# Your Xero app (developer.xero.com → My Apps; redirect URI <base_url>/oauth/xero/callback).
# client_id = "..."
# The secret: better in the environment, COSTBRIDGE__XERO__CLIENT_SECRET. Never logged.
# client_secret = "..."
api_base = "https://api.xero.com"
accounting_base = "https://api.xero.com/api.xro/2.0"
identity_base = "https://identity.xero.com"
login_base = "https://login.xero.com"
# Xero's limits per organisation; Costbridge paces its calls within them.
calls_per_minute = 60
calls_per_day = 5000
concurrent_calls = 5
timeout_seconds = 30

[api]
# Requests per minute for each token owner (a person's token or session, a machine client);
# 0 turns the limit off. Each instance counts in memory and adds to the database's shared count
# every second, and counts in the database on every request near the limit. Answers
# carry X-Rate-Limit-Limit/-Remaining/-Reset; over the limit they are 429 with Retry-After.
requests_per_minute = 600
# Minutes a machine client's token from POST /oauth/token lives.
client_token_minutes = 15
# Hours an Idempotency-Key (and the answer it replays) is kept.
idempotency_hours = 24
"#;

/// Which database this instance uses, for the start's log line and its errors: a SQLite file
/// by its full path, a server without its password. "sqlite" alone did not show an instance
/// started on a new local file because its PostgreSQL setting was mistyped.
pub fn shown_database(url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let path = path.split('?').next().unwrap_or(path);
            let full = std::path::absolute(path).unwrap_or_else(|_| path.into());
            format!("sqlite://{}", full.display())
        }
        None => costbridge_erp::shown_url(url),
    }
}

impl Settings {
    /// Opens `[server] database_url`. A URL of neither kind (`postgress://…`) is refused by
    /// name; it was opened as a SQLite file of that name and stopped on "unable to open
    /// database file". A failure to connect says which database and which setting.
    pub async fn database(&self) -> anyhow::Result<costbridge_storage::Db> {
        let url = &self.server.database_url;
        let setting = "[server] database_url (or COSTBRIDGE_DATABASE_URL, --database-url)";
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|k| url.starts_with(k)) {
            anyhow::bail!(
                "{setting} is {}: it must start with sqlite:// (a file) or postgres:// (a server)",
                costbridge_erp::shown_url(url)
            );
        }
        costbridge_storage::Db::connect(url).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot open the database {} ({setting}): {e}",
                shown_database(url)
            )
        })
    }

    /// What connectors may do; a bad `[outbound]` entry stops the start.
    /// The Xero connector's grants are read from `db` and opened with `cipher`.
    pub fn connectors(
        &self, db: &costbridge_storage::Db, cipher: &std::sync::Arc<crate::secrets::Cipher>,
    ) -> anyhow::Result<costbridge_erp::Env> {
        let root = &self.export.root;
        let outbound = self.outbound.policy()?;
        Ok(costbridge_erp::Env {
            xero: Some(crate::xero::env(self, db, cipher, &outbound)),
            outbound,
            files: std::path::absolute(root)
                .map_err(|e| anyhow::anyhow!("[export] root {}: {e}", root.display()))?,
            company: None,
        })
    }

    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut doc = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            doc = text
                .parse()
                .map_err(|e| anyhow::anyhow!("{} is not valid TOML: {e}", path.display()))?;
        }
        with_env(doc, std::env::vars())
    }
}

/// The settings of `doc` (the file's) with the environment's variables over them. A variable is
/// typed as its value reads (`false`, `30`), and read again as the setting wants it when that
/// differs: text (`COSTBRIDGE__MAIL__PASSWORD=12345678` stopped the start, "expected a
/// string"), or a list, comma-separated (`COSTBRIDGE__OUTBOUND__ALLOW=10.0.0.5,10.0.0.6`). Any
/// other refusal names the variable it came from.
fn with_env(
    mut doc: toml::Table, vars: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Settings> {
    let set = apply_env(&mut doc, vars)?;
    // Each retry retypes one variable, so this ends.
    for _ in 0..=set.len() {
        let e = match toml::Value::Table(doc.clone()).try_into::<Settings>() {
            Ok(settings) => return Ok(settings),
            Err(e) => e.to_string(),
        };
        let Some(v) = set
            .iter()
            .find(|v| e.contains(&format!("`{}.{}`", v.section, v.name)))
        else {
            anyhow::bail!("invalid settings: {e}");
        };
        let slot = &mut doc[&v.section][&v.name];
        let retyped = if e.contains("expected a string") && !slot.is_str() {
            toml::Value::String(v.value.clone())
        } else if e.contains("expected a sequence") && !slot.is_array() {
            toml::Value::Array(
                v.value
                    .split(',')
                    .map(|item| toml::Value::String(item.trim().to_owned()))
                    .filter(|item| item.as_str() != Some(""))
                    .collect(),
            )
        } else {
            anyhow::bail!(
                "invalid settings: {e} (from the environment variable {})",
                v.key
            );
        };
        *slot = retyped;
    }
    anyhow::bail!("invalid settings from the environment")
}

/// A setting a variable gave: `COSTBRIDGE__<SECTION>__<NAME>=<value>` (no `Debug`: the value
/// may be a password).
struct FromEnv {
    key: String,
    section: String,
    name: String,
    value: String,
}

/// The `COSTBRIDGE__<SECTION>__<KEY>` variables over the file's settings. One without a
/// section is refused, not skipped: `COSTBRIDGE__DATABASE_URL=postgres://…` went unnoticed and
/// the instance started on a new, empty SQLite file.
fn apply_env(
    doc: &mut toml::Table, vars: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Vec<FromEnv>> {
    let mut set = Vec::new();
    for (key, value) in vars {
        let Some(rest) = key.strip_prefix("COSTBRIDGE__") else {
            continue;
        };
        let Some((section, name)) = rest
            .to_lowercase()
            .split_once("__")
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        else {
            anyhow::bail!(
                "the environment variable {key} names no setting: settings are \
                 COSTBRIDGE__<SECTION>__<KEY> (e.g. COSTBRIDGE__SERVER__LISTEN), and the \
                 database is COSTBRIDGE_DATABASE_URL (one underscore) or --database-url"
            );
        };
        // Numbers and booleans are typed so `COSTBRIDGE__WORKER__ENABLED=false` means false. A
        // number only when it reads back as written: a password `0123456789` (or `+1234`) was
        // kept as the number 123456789, silently, and the SMTP sign-in failed.
        let v = value
            .parse::<i64>()
            .ok()
            .filter(|n| n.to_string() == value)
            .map(toml::Value::Integer)
            .or_else(|| value.parse::<bool>().ok().map(toml::Value::Boolean))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        if let Some(t) = doc
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
        {
            t.insert(name.clone(), v);
            set.push(FromEnv {
                key,
                section,
                name,
                value,
            });
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_lease_of_no_time_is_refused() {
        let mut w = WorkerSettings::default();
        assert!(w.check().is_ok());
        w.lease_seconds = 0;
        let e = w.check().unwrap_err().to_string();
        assert!(
            e.contains("[worker] lease_seconds = 0 claims a job for no time"),
            "{e}"
        );
    }

    #[test]
    fn an_empty_metrics_token_is_refused() {
        let mut server = ServerSettings::default();
        assert!(server.check().is_ok());
        server.metrics_token = Some(" ".into());
        let e = server.check().unwrap_err().to_string();
        assert!(e.contains("[server] metrics_token is empty"), "{e}");
        server.metrics_token = Some("t0ken".into());
        assert!(server.check().is_ok());
    }

    #[test]
    fn the_database_is_shown_where_it_is_and_without_its_password() {
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            shown_database("sqlite://costbridge.db?mode=rwc"),
            format!("sqlite://{}", here.join("costbridge.db").display())
        );
        let pg = shown_database("postgres://cb:s3cret@db.internal:5432/costs");
        assert!(
            !pg.contains("s3cret") && pg.contains("db.internal:5432/costs"),
            "{pg}"
        );
    }

    #[tokio::test]
    async fn a_database_url_of_neither_kind_is_refused_by_its_setting() {
        let mut s = Settings::default();
        s.server.database_url = "postgress://cb:s3cret@db.internal/costs".into();
        let e = s.database().await.map(drop).unwrap_err().to_string();
        assert_eq!(
            e,
            "[server] database_url (or COSTBRIDGE_DATABASE_URL, --database-url) is \
             postgress://db.internal/costs: it must start with sqlite:// (a file) or postgres:// \
             (a server)"
        );
        s.server.database_url = "sqlite:///no/such/folder/costbridge.db".into();
        let e = s.database().await.map(drop).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "cannot open the database sqlite:///no/such/folder/costbridge.db ([server] \
                 database_url"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_variable_is_read_as_its_setting_wants_it() {
        let var = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let s = with_env(
            toml::Table::new(),
            [
                var("COSTBRIDGE__MAIL__USERNAME", "12345"),
                var("COSTBRIDGE__MAIL__PASSWORD", "true"),
                var("COSTBRIDGE__SERVER__METRICS_TOKEN", "0123456789"),
                var("COSTBRIDGE__XERO__CLIENT_SECRET", "+1234"),
                var("COSTBRIDGE__OUTBOUND__ALLOW", "10.0.0.5, 10.0.0.6/32"),
                var("COSTBRIDGE__WORKER__LEASE_SECONDS", "45"),
                var("COSTBRIDGE__WORKER__ENABLED", "false"),
            ],
        )
        .unwrap();
        assert_eq!(s.mail.username.as_deref(), Some("12345"));
        assert_eq!(s.mail.password.as_ref().map(|p| p.expose()), Some("true"));
        // Digits are kept as written, leading zero and sign included.
        assert_eq!(
            s.server.metrics_token.as_ref().map(|t| t.expose()),
            Some("0123456789")
        );
        assert_eq!(
            s.xero.client_secret.as_ref().map(|t| t.expose()),
            Some("+1234")
        );
        assert_eq!(s.outbound.allow, ["10.0.0.5", "10.0.0.6/32"]);
        assert_eq!((s.worker.lease_seconds, s.worker.enabled), (45, false));
        let e = with_env(
            toml::Table::new(),
            [var("COSTBRIDGE__WORKER__LEASE_SECONDS", "soon")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("worker.lease_seconds")
                && e.ends_with("(from the environment variable COSTBRIDGE__WORKER__LEASE_SECONDS)"),
            "{e}"
        );
    }

    #[test]
    fn an_environment_setting_without_a_section_is_refused() {
        let var = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        let mut doc = toml::Table::new();
        apply_env(
            &mut doc,
            [
                var("COSTBRIDGE__SERVER__DATABASE_URL", "postgres://db/costs"),
                var("COSTBRIDGE_CONFIG", "/etc/costbridge.toml"),
                var("PATH", "/usr/bin"),
            ],
        )
        .unwrap();
        assert_eq!(
            doc["server"]["database_url"].as_str(),
            Some("postgres://db/costs")
        );
        let e = apply_env(
            &mut toml::Table::new(),
            [var("COSTBRIDGE__DATABASE_URL", "postgres://db/costs")],
        )
        .map(drop)
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("COSTBRIDGE__DATABASE_URL names no setting"),
            "{e}"
        );
        assert!(
            e.contains("COSTBRIDGE_DATABASE_URL (one underscore)"),
            "{e}"
        );
    }

    #[test]
    fn the_example_is_the_default() {
        let parsed: Settings = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(
            toml::to_string(&parsed).unwrap(),
            toml::to_string(&Settings::default()).unwrap()
        );
    }

    #[test]
    fn the_outbound_policy_is_read_and_a_bad_entry_named() {
        let s: Settings =
            toml::from_str("[outbound]\nallow = [\"10.0.0.5\", \"erp.internal:8000\"]").unwrap();
        assert!(!s.outbound.allow_private);
        assert!(s.outbound.policy().is_ok());
        let s: Settings = toml::from_str("[outbound]\nallow = [\"http://x/y\"]").unwrap();
        assert_eq!(
            s.outbound.policy().unwrap_err().to_string(),
            "[outbound] allow: 'http://x/y' is not a host or host:port"
        );
    }

    #[test]
    fn the_mail_password_is_never_shown() {
        let s: Settings = toml::from_str(
            "[mail]\nhost = \"smtp.example.com\"\nusername = \"cb\"\npassword = \"hunter2-secret\"",
        )
        .unwrap();
        assert_eq!(
            s.mail.password.as_ref().map(Secret::expose),
            Some("hunter2-secret")
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!toml::to_string(&s).unwrap().contains("hunter2"));
        // An all-digit password set in the environment arrives as a number.
        let s: Settings = toml::from_str("[mail]\npassword = 123456").unwrap();
        assert_eq!(s.mail.password.as_ref().map(Secret::expose), Some("123456"));
    }
}
