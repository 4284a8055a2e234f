//! The one place a connector is registered. Each connector is a module with a type that
//! implements [`Connector`]; [`CONNECTORS`] lists them. Everything that varies by connector is
//! derived from that list: the kinds the API accepts, the settings form, the masking (secret
//! fields are [`Secret`](crate::Secret)s) and the dispatch of every call.
//! `docs/adding-a-connector.md` walks through adding one.
use crate::file::Folder;
use crate::qbwc::Qbwc;
use crate::tryton::Tryton;
use crate::webhook::Webhook;
use crate::xero::{Xero, XeroEnv};
use crate::{
    ConnectorError, ErpCode, ExportContext, FieldErrors, GlAccount, LineResult, Lines, MASK,
    Outbound, secret, without_credentials,
};
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// One ERP connector: its settings, their checks, and what it does with the ERP.
///
/// A connector need not have a URL or a GL chart of its own; its settings are whatever
/// `Settings` holds. The calls take `&self`, made with [`Connector::new`] for each operation.
pub trait Connector: Sized + Send + Sync + 'static {
    /// What a connection stores, as the API takes it (without `kind`). Every secret is a
    /// [`Secret`](crate::Secret); use `#[serde(deny_unknown_fields)]` so a typo is an error.
    /// Its `ToSchema` is the `connector` body's schema in the OpenAPI document (secrets as
    /// `#[schema(value_type = String, format = Password)]`, nested types `#[schema(inline)]`).
    type Settings: Serialize + DeserializeOwned + utoipa::PartialSchema + Send + Sync + 'static;
    /// The `kind` in `connector: {"kind": …}`; never change it (stored connections carry it).
    const KIND: &'static str;
    /// The connector's name in the settings form.
    const LABEL: &'static str;
    /// The settings form's fields, in order: one per field of `Settings`.
    const FIELDS: &'static [Field];
    /// Lines per `export` call: each batch's results are committed as soon as it returns.
    const BATCH: usize;
    /// Whether `read_codes` works (the ERP queue then offers Sync from ERP).
    const CAN_READ_CODES: bool = false;
    /// Whether the ERP pulls its work (the QuickBooks Web Connector) instead of Costbridge
    /// pushing it: the worker then leaves the company's export jobs to the ERP's next poll,
    /// and the GL accounts come from what the ERP last reported.
    const PULLED: bool = false;

    /// Where a job's codes went when no ERP confirms them: a file that a person imports later
    /// (`costbridge-export-7.iif`). Its codes count as synced once it is written (README), and
    /// the pages then say "written to costbridge-export-7.iif", not "added to the ERP". `None`
    /// (the default): the ERP confirmed each code it took.
    fn delivered_to(_settings: &Self::Settings, _job: i64) -> Option<String> {
        None
    }

    /// The folder [`Self::delivered_to`]'s files are in, within what the operator allows, so a
    /// person can fetch one; `None` for a connector whose ERP takes the codes (or a folder
    /// that leads out of the company's own).
    fn delivery_folder(_settings: &Self::Settings, _env: &Env) -> Option<PathBuf> {
        None
    }

    /// The ERP profile (its id) whose rules what it writes must keep, when only one will do:
    /// an IIF file is QuickBooks Desktop's, whatever the company's ERP. `None` (the default):
    /// any profile.
    fn profile(_settings: &Self::Settings) -> Option<&'static str> {
        None
    }

    /// Checks settings that were read, within what the operator allows (`env`); each problem is
    /// added under its field's name.
    fn check(settings: &Self::Settings, env: &Env, errors: &mut FieldErrors);

    /// The connector for one operation, within what the operator allows (`env`).
    fn new(settings: &Self::Settings, env: &Env) -> Self;

    /// Checks the connection and says in plain words what is wrong.
    fn test(&self) -> impl Future<Output = (bool, String)> + Send;

    /// The GL accounts typed into the settings, for a connector that cannot read the ERP's chart.
    fn settings_gl_accounts(&self) -> &[GlAccount] {
        &[]
    }

    /// The GL accounts an approver may pick: from the ERP's chart where the connector can read
    /// one, else from the settings.
    fn gl_accounts(&self) -> impl Future<Output = Result<Vec<GlAccount>, ConnectorError>> + Send {
        let accounts = self.settings_gl_accounts().to_vec();
        async { Ok(accounts) }
    }

    /// Sends one batch (at most `BATCH` lines, parents first); one result per line, in order.
    /// `Err(Unavailable)` when the ERP cannot take it now: the job is retried later.
    fn export(
        &self, ctx: &ExportContext, lines: &dyn Lines,
    ) -> impl Future<Output = Result<Vec<(i64, LineResult)>, ConnectorError>> + Send;

    /// The ERP's own cost codes (Sync from ERP), for connectors with `CAN_READ_CODES`.
    fn read_codes(&self) -> impl Future<Output = Result<Vec<ErpCode>, ConnectorError>> + Send {
        async {
            Err(ConnectorError::NotSupported(format!(
                "the {} connector cannot read cost codes from the ERP",
                Self::KIND
            )))
        }
    }
}

/// What the operator's settings give every connector.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Where outbound connections may go.
    pub outbound: Outbound,
    /// Where export files may go: the operator's export root, then (after [`Env::company`])
    /// one company's own folder in it.
    pub files: PathBuf,
    /// The company the operation is for (set by [`Env::company`]).
    pub company: Option<i64>,
    /// The operator's Xero app, the companies' grants and the pacing of calls to Xero;
    /// `None` when the server has none (the Xero connector then says so).
    pub xero: Option<XeroEnv>,
}

impl Env {
    /// The environment of one company: its files go to its own folder, `company-<id>`.
    pub fn company(&self, id: i64) -> Env {
        Env {
            outbound: self.outbound.clone(),
            files: self.files.join(format!("company-{id}")),
            company: Some(id),
            xero: self.xero.clone(),
        }
    }
}

/// Every connector, in the order the settings form offers them.
pub static CONNECTORS: [Registration; 5] = [
    Registration::of::<Folder>(),
    Registration::of::<Tryton>(),
    Registration::of::<Webhook>(),
    Registration::of::<Xero>(),
    Registration::of::<Qbwc>(),
];

/// One field of a connector's settings, for the form and the API description.
#[derive(Debug)]
pub struct Field {
    /// The key in `connector: {…}`.
    pub name: &'static str,
    pub label: &'static str,
    pub input: Input,
}

impl Field {
    /// One line per field in a connector's `FIELDS`.
    pub const fn new(name: &'static str, label: &'static str, input: Input) -> Field {
        Field { name, label, input }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A line of text (sent trimmed).
    Text,
    /// An `http://` or `https://` address (sent trimmed).
    Url,
    /// A [`Secret`](crate::Secret): shown masked, sent as typed.
    Secret,
    /// One of these `(value, label)` pairs.
    Choice(&'static [(&'static str, &'static str)]),
    /// GL accounts: a list of `{code, name, kind}`.
    GlAccounts,
}

/// A registered connector, as the rest of Costbridge sees it.
pub struct Registration {
    pub kind: &'static str,
    pub label: &'static str,
    pub fields: &'static [Field],
    pub can_read_codes: bool,
    pub pulled: bool,
    /// The JSON schema of the settings (without `kind`).
    pub schema: fn() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    batch: usize,
    load: fn(Value) -> Result<Box<dyn Erased>, serde_json::Error>,
}

impl Registration {
    const fn of<C: Connector>() -> Registration {
        Registration {
            kind: C::KIND,
            label: C::LABEL,
            fields: C::FIELDS,
            can_read_codes: C::CAN_READ_CODES,
            pulled: C::PULLED,
            schema: <C::Settings as utoipa::PartialSchema>::schema,
            batch: C::BATCH,
            load: load::<C>,
        }
    }

    pub fn find(kind: &str) -> Option<&'static Registration> {
        CONNECTORS.iter().find(|r| r.kind == kind)
    }
}

fn load<C: Connector>(value: Value) -> Result<Box<dyn Erased>, serde_json::Error> {
    let settings: C::Settings = serde_json::from_value(value)?;
    Ok(Box::new(Typed::<C>(settings)))
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A connector's settings with the type forgotten, so one value can hold any connector's.
trait Erased: Send + Sync {
    fn json(&self) -> Value;
    fn check(&self, env: &Env, errors: &mut FieldErrors);
    fn test<'a>(&'a self, env: &'a Env) -> Boxed<'a, (bool, String)>;
    fn gl_accounts<'a>(&'a self, env: &'a Env)
    -> Boxed<'a, Result<Vec<GlAccount>, ConnectorError>>;
    fn export<'a>(
        &'a self, env: &'a Env, ctx: &'a ExportContext, lines: &'a dyn Lines,
    ) -> Boxed<'a, Result<Vec<(i64, LineResult)>, ConnectorError>>;
    fn read_codes<'a>(&'a self, env: &'a Env) -> Boxed<'a, Result<Vec<ErpCode>, ConnectorError>>;
    fn delivered_to(&self, job: i64) -> Option<String>;
    fn delivery_folder(&self, env: &Env) -> Option<PathBuf>;
    fn profile(&self) -> Option<&'static str>;
}

struct Typed<C: Connector>(C::Settings);

impl<C: Connector> Erased for Typed<C> {
    fn json(&self) -> Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }

    fn check(&self, env: &Env, errors: &mut FieldErrors) {
        C::check(&self.0, env, errors)
    }

    fn test<'a>(&'a self, env: &'a Env) -> Boxed<'a, (bool, String)> {
        Box::pin(async { C::new(&self.0, env).test().await })
    }

    fn gl_accounts<'a>(
        &'a self, env: &'a Env,
    ) -> Boxed<'a, Result<Vec<GlAccount>, ConnectorError>> {
        Box::pin(async { C::new(&self.0, env).gl_accounts().await })
    }

    fn export<'a>(
        &'a self, env: &'a Env, ctx: &'a ExportContext, lines: &'a dyn Lines,
    ) -> Boxed<'a, Result<Vec<(i64, LineResult)>, ConnectorError>> {
        Box::pin(async move { C::new(&self.0, env).export(ctx, lines).await })
    }

    fn read_codes<'a>(&'a self, env: &'a Env) -> Boxed<'a, Result<Vec<ErpCode>, ConnectorError>> {
        Box::pin(async { C::new(&self.0, env).read_codes().await })
    }

    fn delivered_to(&self, job: i64) -> Option<String> {
        C::delivered_to(&self.0, job)
    }

    fn delivery_folder(&self, env: &Env) -> Option<PathBuf> {
        C::delivery_folder(&self.0, env)
    }

    fn profile(&self) -> Option<&'static str> {
        C::profile(&self.0)
    }
}

/// A company's connection settings for one registered connector. It has no `Serialize`: what
/// goes out is either [`Self::masked`] (anyone may see it) or [`Self::stored`] (the database).
pub struct ConnectorSettings {
    registration: &'static Registration,
    settings: Box<dyn Erased>,
    /// The strictest by default; the server sets the operator's with [`Self::with_env`].
    env: Env,
}

impl ConnectorSettings {
    /// Reads the `connector` object and checks it within `env` (the settings keep it); a field
    /// in error is named `connector.<field>`. A secret sent back as `MASK` (as a client read it)
    /// keeps the value in `stored`.
    pub fn parse(
        stored: Option<&ConnectorSettings>, value: &Value, env: &Env,
    ) -> Result<Self, BTreeMap<String, Vec<String>>> {
        let field = |f: &str, m: String| BTreeMap::from([(f.to_owned(), vec![m])]);
        let registration = match value.get("kind").and_then(Value::as_str) {
            Some(kind) => Registration::find(kind).ok_or_else(|| {
                field(
                    "connector.kind",
                    format!("unknown connector '{kind}'; use {}", kinds_text()),
                )
            })?,
            None => return Err(field("connector.kind", "is required".into())),
        };
        let mut value = value.clone();
        if let Some(stored) = stored.filter(|s| s.kind() == registration.kind) {
            let masked = stored.masked();
            // A kept secret goes only to the address it was typed for: kept across a new URL,
            // an admin who never saw the ERP's password could point the connection at their
            // own server, press Test, and read it there.
            let moved = registration
                .fields
                .iter()
                .find(|f| f.input == Input::Url && value.get(f.name) != masked.get(f.name));
            match moved {
                None => keep_secrets(&mut value, &masked, &stored.stored()),
                Some(url) => refuse_kept_secrets(&mut value, &masked, url.label)?,
            }
        }
        let settings = Self::load(registration, value)
            .map_err(|e| field("connector", e.to_string()))?
            .with_env(env.clone());
        let mut errors = FieldErrors::default();
        settings.settings.check(env, &mut errors);
        errors.into_result().map(|()| settings)
    }

    fn load(registration: &'static Registration, mut value: Value) -> serde_json::Result<Self> {
        if let Some(o) = value.as_object_mut() {
            o.remove("kind");
        }
        Ok(ConnectorSettings {
            registration,
            settings: (registration.load)(value)?,
            env: Env::default(),
        })
    }

    /// The settings, used within what the operator allows.
    pub fn with_env(mut self, env: Env) -> Self {
        self.env = env;
        self
    }

    /// The settings with every secret as `MASK` and no user-info in a URL, for the admin's
    /// form and responses (the form sends the address back as it shows it).
    pub fn masked(&self) -> Value {
        self.urls_shown(without_credentials)
    }

    /// The settings as those who may read but not change the connection see them, and as the
    /// audit log keeps them: [`Self::masked`], with each address cut to its scheme and host (a
    /// hook's path may be its credential). (`host_only` drops user-info too.)
    pub fn summary(&self) -> Value {
        self.urls_shown(costbridge_domain::url::host_only)
    }

    /// The settings with secrets masked and each address field as `show` writes it.
    fn urls_shown(&self, show: fn(&str) -> String) -> Value {
        let mut v = self.json();
        if let Some(o) = v.as_object_mut() {
            for f in self
                .registration
                .fields
                .iter()
                .filter(|f| f.input == Input::Url)
            {
                if let Some(Value::String(url)) = o.get_mut(f.name) {
                    *url = show(url);
                }
            }
        }
        v
    }

    /// The settings with their secrets, for the database only (read back with `Deserialize`).
    pub fn stored(&self) -> Value {
        secret::exposed(|| self.json())
    }

    fn json(&self) -> Value {
        let mut v = self.settings.json();
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".into(), self.registration.kind.into());
        }
        v
    }

    /// The stored form with each secret's value passed through `seal` (the server encrypts
    /// them there); [`Self::from_stored`] reads it back.
    pub fn stored_with(&self, mut seal: impl FnMut(&str) -> String) -> Value {
        let mut value = self.stored();
        let sealed: Result<(), std::convert::Infallible> =
            each_secret(&mut value, &self.masked(), "", &mut |_, v| {
                if let Some(s) = v.as_str() {
                    *v = seal(s).into();
                }
                Ok(())
            });
        let Ok(()) = sealed;
        value
    }

    /// Reads a stored form whose secrets went through a seal: `open` gives each value back
    /// (or says why it cannot). Secret fields are found from the settings type, as in `masked`.
    pub fn from_stored(
        mut value: Value, mut open: impl FnMut(&str) -> Result<String, String>,
    ) -> Result<Self, String> {
        let sealed: ConnectorSettings =
            serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
        each_secret(&mut value, &sealed.masked(), "", &mut |_, v| {
            if let Some(s) = v.as_str() {
                *v = Value::String(open(s)?);
            }
            Ok::<(), String>(())
        })?;
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    pub fn kind(&self) -> &'static str {
        self.registration.kind
    }

    /// The ERP as people name it: the connector's label without how it connects ("Tryton",
    /// "Xero", "QuickBooks Desktop").
    pub fn erp_name(&self) -> &'static str {
        let label = self.registration.label;
        label.split_once(" (").map_or(label, |(name, _)| name)
    }

    #[tracing::instrument(skip_all, fields(kind = self.kind()))]
    pub async fn test(&self) -> (bool, String) {
        self.settings.test(&self.env).await
    }

    #[tracing::instrument(skip_all, fields(kind = self.kind()))]
    pub async fn gl_accounts(&self) -> Result<Vec<GlAccount>, ConnectorError> {
        self.settings.gl_accounts(&self.env).await
    }

    #[tracing::instrument(skip_all, fields(kind = self.kind(), job = ctx.job_id, lines = lines.len()))]
    pub async fn export(
        &self, ctx: &ExportContext, lines: &(impl Lines + ?Sized),
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        self.settings.export(&self.env, ctx, &lines).await
    }

    /// How many lines one export call takes: a file holds the whole job (one file per job),
    /// an ERP takes batches whose results are committed one by one.
    pub fn batch_size(&self) -> usize {
        self.registration.batch
    }

    /// Whether the ERP pulls its work instead (see [`Connector::PULLED`]).
    pub fn pulled(&self) -> bool {
        self.registration.pulled
    }

    /// Where export job `job`'s codes went when no ERP confirms them (see
    /// [`Connector::delivered_to`]); `None` when the ERP confirmed each one.
    pub fn delivered_to(&self, job: i64) -> Option<String> {
        self.settings.delivered_to(job)
    }

    /// The folder its export files are in (see [`Connector::delivery_folder`]).
    pub fn delivery_folder(&self) -> Option<PathBuf> {
        self.settings.delivery_folder(&self.env)
    }

    /// Whether it writes what only the profile `profile` (an id) keeps the rules of, while the
    /// connection's profile is another (see [`Connector::profile`]).
    pub fn needs_other_profile(&self, profile: &str) -> bool {
        self.settings.profile().is_some_and(|only| only != profile)
    }

    /// Whether its exports end in a file someone imports, so no ERP confirms its codes.
    pub fn writes_files(&self) -> bool {
        self.delivered_to(0).is_some()
    }

    /// Whether `read_codes` works for this connector (it offers Sync from ERP).
    pub fn can_read_codes(&self) -> bool {
        self.registration.can_read_codes
    }

    /// The ERP's own cost codes, for connectors that can read them.
    #[tracing::instrument(skip_all, fields(kind = self.kind()))]
    pub async fn read_codes(&self) -> Result<Vec<ErpCode>, ConnectorError> {
        self.settings.read_codes(&self.env).await
    }
}

/// Shows the masked settings.
impl fmt::Debug for ConnectorSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectorSettings({})", self.masked())
    }
}

/// Reads the stored form (`{"kind": …, …}`, as written by [`ConnectorSettings::stored`]).
impl<'de> Deserialize<'de> for ConnectorSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(d)?;
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| D::Error::missing_field("kind"))?;
        let registration = Registration::find(kind).ok_or_else(|| {
            D::Error::custom(format!("unknown connector '{kind}'; use {}", kinds_text()))
        })?;
        Self::load(registration, value).map_err(D::Error::custom)
    }
}

/// `file, tryton or webhook`.
fn kinds_text() -> String {
    let kinds: Vec<&str> = CONNECTORS.iter().map(|r| r.kind).collect();
    match kinds.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Where `value` holds `MASK` and the masked stored settings hold `MASK` (a secret field), the
/// stored secret goes back in. The fields come from the settings type, not from their names.
fn keep_secrets(value: &mut Value, masked: &Value, stored: &Value) {
    let kept: Result<(), std::convert::Infallible> =
        each_secret(value, masked, "", &mut |pointer, v| {
            if let (Some(MASK), Some(s)) = (v.as_str(), stored.pointer(pointer)) {
                *v = s.clone();
            }
            Ok(())
        });
    let Ok(()) = kept;
}

/// Each secret of `value` sent back as `MASK` while `url` changed, as a field error: it must be
/// typed again.
fn refuse_kept_secrets(
    value: &mut Value, masked: &Value, url: &str,
) -> Result<(), BTreeMap<String, Vec<String>>> {
    let mut errors = BTreeMap::new();
    let refused: Result<(), std::convert::Infallible> =
        each_secret(value, masked, "", &mut |pointer, v| {
            if v.as_str() == Some(MASK) {
                errors.insert(
                    format!("connector{}", pointer.replace('/', ".")),
                    vec![format!(
                        "type it again: the {url} changed, and Costbridge sends a stored secret \
                         only to the address it was entered for"
                    )],
                );
            }
            Ok(())
        });
    let Ok(()) = refused;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Calls `f` with the JSON pointer and the value of each field of `value` that `masked` shows
/// as `MASK`: the secret fields, known from the settings type rather than from their names.
fn each_secret<E>(
    value: &mut Value, masked: &Value, pointer: &str,
    f: &mut impl FnMut(&str, &mut Value) -> Result<(), E>,
) -> Result<(), E> {
    let (Some(value), Some(masked)) = (value.as_object_mut(), masked.as_object()) else {
        return Ok(());
    };
    for (key, v) in value.iter_mut() {
        let Some(m) = masked.get(key) else {
            continue;
        };
        let at = format!("{pointer}/{key}");
        if m.as_str() == Some(MASK) {
            f(&at, v)?;
        } else if v.is_object() {
            each_secret(v, m, &at, f)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    /// A settings object with one sample value per field, as a client would send it.
    fn sample(r: &Registration, secret: &str) -> Value {
        let mut o = Map::new();
        o.insert("kind".into(), r.kind.into());
        for f in r.fields {
            let v = match f.input {
                Input::Text => json!("sample"),
                Input::Url => json!("https://erp.example/"),
                Input::Secret => json!(secret),
                Input::Choice(options) => json!(options[0].0),
                Input::GlAccounts => json!([{"code": "4000", "name": "Income", "kind": "income"}]),
            };
            o.insert(f.name.into(), v);
        }
        Value::Object(o)
    }

    /// A connector's settings as the API takes them (docs/api.md): `{"kind": "tryton", "url", …}`.
    fn api_shape(r: &Registration) -> String {
        let mut out = format!("{{\"kind\": \"{}\"", r.kind);
        for f in r.fields {
            match f.input {
                Input::Choice(options) => {
                    let values: Vec<&str> = options.iter().map(|(v, _)| *v).collect();
                    out.push_str(&format!(", \"{}\": \"{}\"", f.name, values.join("|")));
                }
                Input::GlAccounts => out.push_str(&format!(", \"{}\": [...]", f.name)),
                _ => out.push_str(&format!(", \"{}\"", f.name)),
            }
        }
        out.push('}');
        out
    }

    #[test]
    fn every_connectors_form_fields_are_its_settings_and_its_secrets_are_masked() {
        const SECRET: &str = "a-secret-of-some-length";
        for r in &CONNECTORS {
            let sent = sample(r, SECRET);
            let settings = ConnectorSettings::parse(None, &sent, &Env::default())
                .unwrap_or_else(|e| panic!("{}: the form's fields do not parse: {e:?}", r.kind));
            let masked = settings.masked();
            assert!(!masked.to_string().contains(SECRET), "{}: {masked}", r.kind);
            for f in r.fields {
                assert_eq!(
                    masked[f.name] == MASK,
                    f.input == Input::Secret,
                    "{}.{}: a Secret field must be an Input::Secret and the other way round",
                    r.kind,
                    f.name
                );
            }
            // Stored, read back, and sent back masked: the secrets survive.
            let stored = settings.stored();
            assert_eq!(stored, sent, "{}", r.kind);
            let loaded: ConnectorSettings = serde_json::from_value(stored.clone()).unwrap();
            let again = ConnectorSettings::parse(Some(&loaded), &masked, &Env::default()).unwrap();
            assert_eq!(again.stored(), stored, "{}", r.kind);
        }
    }

    #[test]
    fn the_kinds_and_their_api_description_come_from_the_registry() {
        let shapes: Vec<String> = CONNECTORS.iter().map(api_shape).collect();
        // As the API takes the `connector` object (docs/api.md).
        assert_eq!(
            shapes,
            [
                r#"{"kind": "file", "directory", "format": "iif|csv", "gl_accounts": [...]}"#,
                r#"{"kind": "tryton", "url", "database", "username", "password"}"#,
                r#"{"kind": "webhook", "url", "secret", "gl_accounts": [...]}"#,
                r#"{"kind": "xero"}"#,
                r#"{"kind": "qbwc"}"#,
            ]
        );
        assert_eq!(kinds_text(), "file, tryton, webhook, xero or qbwc");
        assert_eq!(
            ConnectorSettings::parse(None, &json!({"kind": "ftp"}), &Env::default()).unwrap_err()["connector.kind"],
            ["unknown connector 'ftp'; use file, tryton, webhook, xero or qbwc"]
        );
    }

    #[test]
    fn every_secret_and_only_secrets_go_through_the_seal() {
        for r in &CONNECTORS {
            let sent = sample(r, "a-secret-of-some-length");
            let settings = ConnectorSettings::parse(None, &sent, &Env::default()).unwrap();
            let sealed = settings.stored_with(|s| format!("sealed({s})"));
            for f in r.fields {
                let expected = match f.input {
                    Input::Secret => json!("sealed(a-secret-of-some-length)"),
                    _ => sent[f.name].clone(),
                };
                assert_eq!(sealed[f.name], expected, "{}.{}", r.kind, f.name);
            }
            let opened = ConnectorSettings::from_stored(sealed.clone(), |s| {
                s.strip_prefix("sealed(")
                    .and_then(|s| s.strip_suffix(')'))
                    .map(str::to_owned)
                    .ok_or_else(|| format!("not sealed: {s}"))
            })
            .unwrap();
            assert_eq!(opened.stored(), sent, "{}", r.kind);
            if sealed != sent {
                let e = ConnectorSettings::from_stored(sealed, |_| Err("wrong key".into()));
                assert_eq!(e.unwrap_err(), "wrong key", "{}", r.kind);
            }
        }
    }

    #[test]
    fn connections_stored_before_the_registry_still_load() {
        for row in [
            json!({"kind": "file", "directory": "/srv/exports", "format": "csv", "gl_accounts": []}),
            json!({"kind": "tryton", "url": "http://localhost:8000/", "database": "costs",
                "username": "admin", "password": "s3cret"}),
            json!({"kind": "webhook", "url": "https://erp.example/hook",
                "secret": "whsec_0123456789abcdef", "gl_accounts": []}),
        ] {
            let s: ConnectorSettings = serde_json::from_value(row.clone()).unwrap();
            assert_eq!(s.stored(), row);
        }
        // A URL stored with user-info before it was refused: never shown, refused when saved.
        let old = json!({"kind": "webhook", "url": "https://hook:pw123@erp.example/hook",
            "secret": "whsec_0123456789abcdef", "gl_accounts": []});
        let s: ConnectorSettings = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(s.stored(), old);
        assert_eq!(s.masked()["url"], "https://erp.example/hook");
        assert!(!format!("{s:?}").contains("pw123"));
        let e = ConnectorSettings::parse(Some(&s), &old, &Env::default()).unwrap_err();
        assert_eq!(
            e["connector.url"],
            ["must not contain a user name or password; use the username/password fields"]
        );
        let e = serde_json::from_value::<ConnectorSettings>(json!({"kind": "ftp"})).unwrap_err();
        assert!(e.to_string().contains("unknown connector 'ftp'"), "{e}");
    }

    #[test]
    fn parse_names_the_bad_field() {
        let ok = ConnectorSettings::parse(
            None,
            &json!({"kind": "file", "directory": "x", "format": "iif",
            "gl_accounts": [{"code": "4000", "name": "Income", "kind": "income"}]}),
            &Env::default(),
        );
        assert!(ok.is_ok());
        let e = ConnectorSettings::parse(
            None,
            &json!({"kind": "file", "directory": "x", "format": "pdf"}),
            &Env::default(),
        )
        .unwrap_err();
        assert!(e["connector"][0].contains("pdf"), "{e:?}");
        let e = ConnectorSettings::parse(
            None,
            &json!({"kind": "file", "directory": "x", "format": "iif", "colour": 1}),
            &Env::default(),
        )
        .unwrap_err();
        assert!(e["connector"][0].contains("colour"), "{e:?}");
        let e = ConnectorSettings::parse(None, &json!({"kind": "file", "directory": "", "format": "csv",
            "gl_accounts": [{"code": "1", "name": "A", "kind": "income"}, {"code": "1", "name": "B", "kind": "expense"}]}), &Env::default()).unwrap_err();
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            ["connector.directory", "connector.gl_accounts[1]"]
        );
        let e = ConnectorSettings::parse(None, &json!({"kind": "tryton", "url": "ftp://x", "database": "", "username": "a", "password": MASK}), &Env::default()).unwrap_err();
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            ["connector.database", "connector.password", "connector.url"]
        );
        let e = ConnectorSettings::parse(
            None,
            &json!({"kind": "webhook", "url": "https://erp.example/hook", "secret": "short"}),
            &Env::default(),
        )
        .unwrap_err();
        assert_eq!(e.keys().collect::<Vec<_>>(), ["connector.secret"]);
        assert!(
            ConnectorSettings::parse(None, &json!({"kind": "ftp"}), &Env::default()).unwrap_err()["connector.kind"]
                [0]
            .contains("ftp")
        );
    }

    #[test]
    fn secrets_are_masked_and_kept_when_sent_back_masked() {
        let t = json!({"kind": "tryton", "url": "http://localhost:8000/", "database": "costs", "username": "admin", "password": "s3cret"});
        let stored = ConnectorSettings::parse(None, &t, &Env::default()).unwrap();
        let shown = stored.masked();
        assert_eq!(shown["password"], MASK);
        assert!(!shown.to_string().contains("s3cret"));
        let again = ConnectorSettings::parse(Some(&stored), &shown, &Env::default()).unwrap();
        assert_eq!(again.stored()["password"], "s3cret");
        // Another kind's stored secret is never taken.
        let w = json!({"kind": "webhook", "url": "https://erp.example/hook", "secret": MASK});
        let e = ConnectorSettings::parse(Some(&stored), &w, &Env::default()).unwrap_err();
        assert_eq!(e["connector.secret"], ["must be at least 16 characters"]);
        // Nor sent to a new address: it must be typed again there.
        let mut moved = shown.clone();
        moved["url"] = json!("http://attacker.example:8000/");
        let e = ConnectorSettings::parse(Some(&stored), &moved, &Env::default()).unwrap_err();
        assert_eq!(
            e["connector.password"],
            [
                "type it again: the Server URL changed, and Costbridge sends a stored secret only \
              to the address it was entered for"
            ]
        );
        moved["password"] = json!("typed-again");
        let again = ConnectorSettings::parse(Some(&stored), &moved, &Env::default()).unwrap();
        assert_eq!(again.stored()["password"], "typed-again");
    }

    #[tokio::test]
    async fn connector_spans_never_record_a_secret() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::fmt::format::FmtSpan;

        #[derive(Clone, Default)]
        struct Log(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Log {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        const SECRET: &str = "never-in-a-log-0123456789";
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::NEW)
            // Plain text whatever the environment says about colours, so the fields match.
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        // Nothing listens on a port just released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/");
        for value in [
            json!({"kind": "tryton", "url": url, "database": "costs", "username": "admin",
                "password": SECRET}),
            json!({"kind": "webhook", "url": url, "secret": SECRET}),
        ] {
            let settings = ConnectorSettings::parse(None, &value, &Env::default()).unwrap();
            let (ok, _) = settings.test().await;
            assert!(!ok);
            let ctx = ExportContext {
                job_id: 9,
                delimiter: '-',
                max_description: None,
            };
            let line = crate::test_line(1, "01");
            assert!(settings.export(&ctx, &[line]).await.is_err());
        }
        let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        for span in [
            "kind=\"tryton\"",
            "kind=\"webhook\"",
            "job=9",
            "login{database=costs user=admin}",
        ] {
            assert!(text.contains(span), "no {span} in:\n{text}");
        }
        assert!(!text.contains(SECRET), "{text}");
    }
}
