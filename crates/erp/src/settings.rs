//! Connector settings as the API takes them (`connector: {"kind": …}`), their checks, and the
//! masked form that is all anyone gets back.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

pub const MASK: &str = "********";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GlKind {
    Income,
    Expense,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlAccount {
    pub code: String,
    pub name: String,
    pub kind: GlKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Iif,
    Csv,
}

/// A folder that receives one file per export job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub directory: PathBuf,
    pub format: FileFormat,
    #[serde(default)]
    pub gl_accounts: Vec<GlAccount>,
}

/// A Tryton server reached over JSON-RPC (`url` is the server root, e.g. `http://host:8000/`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrytonSettings {
    pub url: String,
    pub database: String,
    pub username: String,
    pub password: String,
}

/// The customer's endpoint that receives each export batch as signed JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: String,
    #[serde(default)]
    pub gl_accounts: Vec<GlAccount>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectorSettings {
    /// Writes each export as a file in a folder (QuickBooks Desktop IIF, or CSV).
    File(FileSettings),
    Tryton(TrytonSettings),
    Webhook(WebhookSettings),
}

impl ConnectorSettings {
    /// Reads the `connector` object; a field in error is named `connector.<field>`. A secret
    /// sent back as `MASK` (as a client read it) keeps the value in `stored`.
    pub fn parse(
        stored: Option<&ConnectorSettings>,
        value: &serde_json::Value,
    ) -> Result<Self, BTreeMap<String, Vec<String>>> {
        let field = |f: &str, m: String| BTreeMap::from([(f.to_owned(), vec![m])]);
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("file" | "tryton" | "webhook") => {}
            Some(other) => {
                return Err(field(
                    "connector.kind",
                    format!("unknown connector '{other}'; use file, tryton or webhook"),
                ));
            }
            None => return Err(field("connector.kind", "is required".into())),
        }
        let mut settings: ConnectorSettings =
            serde_json::from_value(value.clone()).map_err(|e| field("connector", e.to_string()))?;
        match (&mut settings, stored) {
            (ConnectorSettings::Tryton(new), Some(ConnectorSettings::Tryton(old)))
                if new.password == MASK =>
            {
                new.password = old.password.clone();
            }
            (ConnectorSettings::Webhook(new), Some(ConnectorSettings::Webhook(old)))
                if new.secret == MASK =>
            {
                new.secret = old.secret.clone();
            }
            _ => {}
        }
        settings.check().map(|()| settings)
    }

    fn check(&self) -> Result<(), BTreeMap<String, Vec<String>>> {
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut err = |f: &str, m: &str| {
            errors
                .entry(format!("connector.{f}"))
                .or_default()
                .push(m.to_owned())
        };
        let url_ok = |u: &str| {
            (u.starts_with("http://") || u.starts_with("https://"))
                && !u.contains(char::is_whitespace)
        };
        match self {
            ConnectorSettings::File(f) => {
                if f.directory.as_os_str().is_empty() {
                    err("directory", "is required");
                }
                check_accounts(&f.gl_accounts, &mut err);
            }
            ConnectorSettings::Tryton(t) => {
                if !url_ok(&t.url) {
                    err("url", "must be an http:// or https:// address");
                }
                for (name, v) in [("database", &t.database), ("username", &t.username)] {
                    if v.trim().is_empty() {
                        err(name, "is required");
                    }
                }
                if t.password.is_empty() || t.password == MASK {
                    err("password", "is required");
                }
            }
            ConnectorSettings::Webhook(w) => {
                if !url_ok(&w.url) {
                    err("url", "must be an http:// or https:// address");
                }
                if w.secret == MASK || w.secret.chars().count() < 16 {
                    err("secret", "must be at least 16 characters");
                }
                check_accounts(&w.gl_accounts, &mut err);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The settings with every secret replaced by `MASK`, for responses and the audit log.
    pub fn masked(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        for secret in ["password", "secret"] {
            if let Some(s) = v.get_mut(secret) {
                *s = MASK.into();
            }
        }
        v
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorSettings::File(_) => "file",
            ConnectorSettings::Tryton(_) => "tryton",
            ConnectorSettings::Webhook(_) => "webhook",
        }
    }
}

fn check_accounts(accounts: &[GlAccount], err: &mut impl FnMut(&str, &str)) {
    let mut seen = HashSet::new();
    for (i, a) in accounts.iter().enumerate() {
        let key = format!("gl_accounts[{i}]");
        if a.code.trim().is_empty() || a.name.trim().is_empty() {
            err(&key, "code and name are required");
        }
        if a.code.chars().chain(a.name.chars()).any(|c| c.is_control()) {
            err(&key, "contains a control character");
        }
        if !seen.insert(a.code.as_str()) {
            err(&key, &format!("duplicate account code '{}'", a.code));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_names_the_bad_field() {
        let ok = ConnectorSettings::parse(
            None,
            &json!({"kind": "file", "directory": "x", "format": "iif",
            "gl_accounts": [{"code": "4000", "name": "Income", "kind": "income"}]}),
        );
        assert!(ok.is_ok());
        let e = ConnectorSettings::parse(
            None,
            &json!({"kind": "file", "directory": "x", "format": "pdf"}),
        )
        .unwrap_err();
        assert!(e["connector"][0].contains("pdf"), "{e:?}");
        let e = ConnectorSettings::parse(
            None,
            &json!({"kind": "file", "directory": "x", "format": "iif", "colour": 1}),
        )
        .unwrap_err();
        assert!(e["connector"][0].contains("colour"), "{e:?}");
        let e = ConnectorSettings::parse(None, &json!({"kind": "file", "directory": "", "format": "csv",
            "gl_accounts": [{"code": "1", "name": "A", "kind": "income"}, {"code": "1", "name": "B", "kind": "expense"}]})).unwrap_err();
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            ["connector.directory", "connector.gl_accounts[1]"]
        );
        let e = ConnectorSettings::parse(None, &json!({"kind": "tryton", "url": "ftp://x", "database": "", "username": "a", "password": MASK})).unwrap_err();
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            ["connector.database", "connector.password", "connector.url"]
        );
        let e = ConnectorSettings::parse(
            None,
            &json!({"kind": "webhook", "url": "https://erp.example/hook", "secret": "short"}),
        )
        .unwrap_err();
        assert_eq!(e.keys().collect::<Vec<_>>(), ["connector.secret"]);
        assert!(
            ConnectorSettings::parse(None, &json!({"kind": "ftp"})).unwrap_err()["connector.kind"]
                [0]
            .contains("ftp")
        );
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_and_kept_when_sent_back_masked() {
        let t = json!({"kind": "tryton", "url": "http://localhost:8000/", "database": "costs", "username": "admin", "password": "s3cret"});
        let stored = ConnectorSettings::parse(None, &t).unwrap();
        let shown = stored.masked();
        assert_eq!(shown["password"], MASK);
        assert!(!shown.to_string().contains("s3cret"));
        let again = ConnectorSettings::parse(Some(&stored), &shown).unwrap();
        let ConnectorSettings::Tryton(s) = again else {
            panic!()
        };
        assert_eq!(s.password, "s3cret");
    }
}
