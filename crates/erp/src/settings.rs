//! What connectors' settings share: GL accounts, and the checks that name a bad field.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

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

/// What is wrong with settings, by field: `connector.<field>` → messages.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: &str) {
        self.0
            .entry(format!("connector.{field}"))
            .or_default()
            .push(message.to_owned());
    }

    /// Text that must not be blank.
    pub fn required(&mut self, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(field, "is required");
        }
    }

    pub fn url(&mut self, field: &str, value: &str) {
        let ok = (value.starts_with("http://") || value.starts_with("https://"))
            && !value.contains(char::is_whitespace);
        if !ok {
            self.add(field, "must be an http:// or https:// address");
        }
    }

    /// GL accounts typed into the settings: code and name given, no control characters, no
    /// code twice.
    pub fn gl_accounts(&mut self, accounts: &[GlAccount]) {
        let mut seen = HashSet::new();
        for (i, a) in accounts.iter().enumerate() {
            let key = format!("gl_accounts[{i}]");
            if a.code.trim().is_empty() || a.name.trim().is_empty() {
                self.add(&key, "code and name are required");
            }
            if a.code.chars().chain(a.name.chars()).any(|c| c.is_control()) {
                self.add(&key, "contains a control character");
            }
            if !seen.insert(a.code.as_str()) {
                self.add(&key, &format!("duplicate account code '{}'", a.code));
            }
        }
    }

    pub(crate) fn into_result(self) -> Result<(), BTreeMap<String, Vec<String>>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}
