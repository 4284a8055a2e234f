//! ERP connectors: how Costbridge talks to each ERP. The wire formats live here and nowhere else.
#![forbid(unsafe_code)]

pub mod file;
mod settings;

pub use settings::{ConnectorSettings, FileFormat, GlAccount, GlKind, MASK};

/// One code to export, as the approver accepted it.
#[derive(Debug, Clone)]
pub struct ExportLine {
    pub item_id: i64,
    pub code: String,
    pub full_code: String,
    pub description: String,
    pub active: bool,
    pub parent_full_code: Option<String>,
    /// The ERP's key when the code was synced before (an update rather than a create).
    pub origin_id: Option<String>,
    pub income: Option<GlAccount>,
    pub expense: Option<GlAccount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineResult {
    Synced { origin_id: String },
    Failed { message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The ERP (or the folder) cannot be reached now; the job is retried with backoff.
    #[error("{0}")]
    Unavailable(String),
}

/// What every export needs besides the lines.
pub struct ExportContext {
    pub job_id: i64,
    pub delimiter: char,
    /// Descriptions longer than this are cut (the profile says so and the item noted it).
    pub max_description: Option<usize>,
}

impl ConnectorSettings {
    /// Checks the connection and says in plain words what is wrong.
    pub async fn test(&self) -> (bool, String) {
        match self {
            ConnectorSettings::File { directory, .. } => file::test(directory).await,
        }
    }

    /// The GL accounts an approver may pick.
    pub fn gl_accounts(&self) -> Vec<GlAccount> {
        match self {
            ConnectorSettings::File { gl_accounts, .. } => gl_accounts.clone(),
        }
    }

    pub async fn export(
        &self,
        ctx: &ExportContext,
        lines: &[ExportLine],
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        match self {
            ConnectorSettings::File {
                directory, format, ..
            } => file::export(directory, *format, ctx, lines).await,
        }
    }
}

/// Cuts a description to what the ERP keeps, on a character boundary.
pub fn fit_description(description: &str, max: Option<usize>) -> &str {
    match max.and_then(|m| description.char_indices().nth(m)) {
        Some((cut, _)) => &description[..cut],
        None => description,
    }
}
