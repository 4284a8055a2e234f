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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConnectorSettings {
    /// Writes each export as a file in a folder (QuickBooks Desktop IIF, or CSV).
    File {
        directory: PathBuf,
        format: FileFormat,
        #[serde(default)]
        gl_accounts: Vec<GlAccount>,
    },
}

impl ConnectorSettings {
    /// Reads the `connector` object; unknown kinds name the ones this build has.
    pub fn parse(value: &serde_json::Value) -> Result<Self, BTreeMap<String, Vec<String>>> {
        let field = |f: &str, m: String| BTreeMap::from([(f.to_owned(), vec![m])]);
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("file") => {}
            Some(k @ ("tryton" | "webhook")) => {
                return Err(field(
                    "connector.kind",
                    format!("the {k} connector is not available in this version yet; use \"file\""),
                ));
            }
            Some(other) => {
                return Err(field(
                    "connector.kind",
                    format!("unknown connector '{other}'; use \"file\""),
                ));
            }
            None => return Err(field("connector.kind", "is required".into())),
        }
        let settings: ConnectorSettings =
            serde_json::from_value(value.clone()).map_err(|e| field("connector", e.to_string()))?;
        settings.check().map(|()| settings)
    }

    fn check(&self) -> Result<(), BTreeMap<String, Vec<String>>> {
        let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        match self {
            ConnectorSettings::File {
                directory,
                gl_accounts,
                ..
            } => {
                if directory.as_os_str().is_empty() {
                    errors
                        .entry("connector.directory".into())
                        .or_default()
                        .push("is required".into());
                }
                let mut seen = HashSet::new();
                for (i, a) in gl_accounts.iter().enumerate() {
                    let key = format!("connector.gl_accounts[{i}]");
                    if a.code.trim().is_empty() || a.name.trim().is_empty() {
                        errors
                            .entry(key.clone())
                            .or_default()
                            .push("code and name are required".into());
                    }
                    if a.code.chars().chain(a.name.chars()).any(|c| c.is_control()) {
                        errors
                            .entry(key.clone())
                            .or_default()
                            .push("contains a control character".into());
                    }
                    if !seen.insert(a.code.as_str()) {
                        errors
                            .entry(key)
                            .or_default()
                            .push(format!("duplicate account code '{}'", a.code));
                    }
                }
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
            ConnectorSettings::File { .. } => "file",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_names_the_bad_field() {
        let ok =
            ConnectorSettings::parse(&json!({"kind": "file", "directory": "x", "format": "iif",
            "gl_accounts": [{"code": "4000", "name": "Income", "kind": "income"}]}));
        assert!(ok.is_ok());
        let e =
            ConnectorSettings::parse(&json!({"kind": "file", "directory": "x", "format": "pdf"}))
                .unwrap_err();
        assert!(e["connector"][0].contains("pdf"), "{e:?}");
        let e = ConnectorSettings::parse(
            &json!({"kind": "file", "directory": "x", "format": "iif", "colour": 1}),
        )
        .unwrap_err();
        assert!(e["connector"][0].contains("colour"), "{e:?}");
        let e = ConnectorSettings::parse(&json!({"kind": "file", "directory": "", "format": "csv",
            "gl_accounts": [{"code": "1", "name": "A", "kind": "income"}, {"code": "1", "name": "B", "kind": "expense"}]})).unwrap_err();
        assert_eq!(
            e.keys().collect::<Vec<_>>(),
            ["connector.directory", "connector.gl_accounts[1]"]
        );
        assert!(
            ConnectorSettings::parse(&json!({"kind": "ftp"})).unwrap_err()["connector.kind"][0]
                .contains("ftp")
        );
    }
}
