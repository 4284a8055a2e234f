//! ERP connectors: how Costbridge talks to each ERP. The wire formats live here and nowhere else.
#![forbid(unsafe_code)]

pub mod file;
mod settings;
pub mod tryton;
pub mod webhook;

pub use settings::{
    ConnectorSettings, FileFormat, FileSettings, GlAccount, GlKind, MASK, TrytonSettings,
    WebhookSettings,
};

/// The values the ERP last confirmed for a code, used to detect changes made in the ERP since
/// (the conflict check) before an update overwrites them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub code: String,
    pub full_code: String,
    pub description: String,
    pub active: bool,
}

/// One code to export, as the approver accepted it. Lines come parents first.
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
    /// What the ERP confirmed last time, when the code was synced before.
    pub previous: Option<Previous>,
    pub income: Option<GlAccount>,
    pub expense: Option<GlAccount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineResult {
    Synced { origin_id: String },
    Failed { message: String },
}

/// A cost code as the ERP holds it (for sync from ERP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpCode {
    pub origin_id: String,
    pub full_code: String,
    pub description: String,
    pub active: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The ERP (or the folder) cannot be reached now; the job is retried with backoff.
    #[error("{0}")]
    Unavailable(String),
    /// This connector cannot do what was asked (e.g. read codes back from a file).
    #[error("{0}")]
    NotSupported(String),
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
            ConnectorSettings::File(f) => file::test(&f.directory).await,
            ConnectorSettings::Tryton(s) => tryton::Tryton::new(s).test().await,
            ConnectorSettings::Webhook(s) => webhook::Webhook::new(s).test().await,
        }
    }

    /// The GL accounts an approver may pick: from the ERP's chart where the connector can read
    /// one, else from the connection's settings.
    pub async fn gl_accounts(&self) -> Result<Vec<GlAccount>, ConnectorError> {
        match self {
            ConnectorSettings::File(f) => Ok(f.gl_accounts.clone()),
            ConnectorSettings::Tryton(s) => tryton::Tryton::new(s).gl_accounts().await,
            ConnectorSettings::Webhook(s) => Ok(s.gl_accounts.clone()),
        }
    }

    pub async fn export(
        &self,
        ctx: &ExportContext,
        lines: &[ExportLine],
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        match self {
            ConnectorSettings::File(f) => file::export(&f.directory, f.format, ctx, lines).await,
            ConnectorSettings::Tryton(s) => tryton::Tryton::new(s).export(ctx, lines).await,
            ConnectorSettings::Webhook(s) => webhook::Webhook::new(s).export(ctx, lines).await,
        }
    }

    /// How many lines one export call takes: a file holds the whole job (one file per job),
    /// an ERP takes batches whose results are committed one by one.
    pub fn batch_size(&self) -> usize {
        match self {
            ConnectorSettings::File(_) => usize::MAX,
            ConnectorSettings::Tryton(_) => tryton::BATCH,
            ConnectorSettings::Webhook(_) => webhook::BATCH,
        }
    }

    /// Whether `read_codes` works for this connector (it offers Sync from ERP).
    pub fn can_read_codes(&self) -> bool {
        matches!(self, ConnectorSettings::Tryton(_))
    }

    /// The ERP's own cost codes, for connectors that can read them.
    pub async fn read_codes(&self) -> Result<Vec<ErpCode>, ConnectorError> {
        match self {
            ConnectorSettings::Tryton(s) => tryton::Tryton::new(s).read_codes().await,
            other => Err(ConnectorError::NotSupported(format!(
                "the {} connector cannot read cost codes from the ERP",
                other.kind()
            ))),
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
