//! Settings: defaults, then an optional TOML file, then `COSTBRIDGE__SECTION__KEY` variables,
//! then command-line flags.
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub worker: WorkerSettings,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Run the export worker inside `serve` (turn off only to run it elsewhere).
    pub enabled: bool,
    /// How long a claimed job stays claimed; a crashed worker's job is taken up again after it.
    pub lease_seconds: i64,
    /// Attempts before an unreachable ERP fails the job's rows.
    pub max_attempts: i64,
    /// The first retry waits this long; each later one doubles it (capped at 10 minutes).
    pub backoff_seconds: i64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            database_url: "sqlite://costbridge.db".into(),
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 64 * 1024 * 1024,
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

[worker]
# Run the export worker inside `serve`.
enabled = true
# Seconds a claimed export job stays claimed; after a crash another worker resumes it then.
lease_seconds = 30
# Attempts before an unreachable ERP fails the job's rows (they can be retried from the queue).
max_attempts = 5
# First retry delay in seconds; doubles on each attempt, at most 10 minutes.
backoff_seconds = 2
"#;

impl Settings {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
        let mut doc = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            doc = text
                .parse()
                .map_err(|e| anyhow::anyhow!("{} is not valid TOML: {e}", path.display()))?;
        }
        for (key, value) in std::env::vars() {
            let Some(rest) = key.strip_prefix("COSTBRIDGE__") else {
                continue;
            };
            let Some((section, name)) = rest
                .to_lowercase()
                .split_once("__")
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
            else {
                continue;
            };
            // Numbers and booleans are typed so `COSTBRIDGE__WORKER__ENABLED=false` means false.
            let v = value
                .parse::<i64>()
                .map(toml::Value::Integer)
                .or_else(|_| value.parse::<bool>().map(toml::Value::Boolean))
                .unwrap_or(toml::Value::String(value));
            if let Some(t) = doc
                .entry(section)
                .or_insert_with(|| toml::Value::Table(Default::default()))
                .as_table_mut()
            {
                t.insert(name, v);
            }
        }
        toml::Value::Table(doc)
            .try_into()
            .map_err(|e| anyhow::anyhow!("invalid settings: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_the_default() {
        let parsed: Settings = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(
            toml::to_string(&parsed).unwrap(),
            toml::to_string(&Settings::default()).unwrap()
        );
    }
}
