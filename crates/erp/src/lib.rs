//! ERP connectors: how Costbridge talks to each ERP. The wire formats live here and nowhere else.
#![forbid(unsafe_code)]

mod connector;
pub mod file;
mod outbound;
pub mod qbwc;
mod secret;
mod settings;
pub mod tryton;
pub mod webhook;
pub mod xero;

pub use connector::{CONNECTORS, Connector, ConnectorSettings, Env, Field, Input, Registration};
pub use file::{FileFormat, FileSettings};
pub use outbound::Outbound;
pub use secret::{MASK, Secret};
pub use settings::{FieldErrors, GlAccount, GlKind, shown_url, url_problem, without_credentials};
pub use tryton::TrytonSettings;
pub use webhook::WebhookSettings;
pub use xero::{XeroConfig, XeroEnv, XeroSettings};

/// The values the ERP last confirmed for a code, used to detect changes made in the ERP since
/// (the conflict check) before an update overwrites them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous<'a> {
    pub code: &'a str,
    pub full_code: &'a str,
    pub description: &'a str,
    pub active: bool,
}

/// One code to export, as the approver accepted it. Lines come parents first. A line borrows
/// the row it was read as and the connection's account it names: a 100,000-code export holds
/// its rows once, not a second copy of every text in its lines.
#[derive(Debug, Clone, Copy)]
pub struct ExportLine<'a> {
    pub item_id: i64,
    pub code: &'a str,
    pub full_code: &'a str,
    pub description: &'a str,
    pub active: bool,
    pub parent_full_code: Option<&'a str>,
    /// The ERP's key when the code was synced before (an update rather than a create).
    pub origin_id: Option<&'a str>,
    /// What the ERP confirmed last time, when the code was synced before.
    pub previous: Option<Previous<'a>>,
    pub income: Option<&'a GlAccount>,
    pub expense: Option<&'a GlAccount>,
}

/// The lines of one export call, each made when the connector reads it. The worker's rows stay
/// the only copy: a 100,000-code file export no longer also holds 100,000 lines at once (16.8 MB
/// at the export's peak, BENCHMARKS.md session 14). Tests and batches pass slices.
pub trait Lines: Sync {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Line `i` (`i < len()`).
    fn line(&self, i: usize) -> ExportLine<'_>;

    /// Every line at once, for a connector that plans a batch as a whole.
    fn to_vec(&self) -> Vec<ExportLine<'_>> {
        (0..self.len()).map(|i| self.line(i)).collect()
    }
}

impl Lines for [ExportLine<'_>] {
    fn len(&self) -> usize {
        <[ExportLine]>::len(self)
    }

    fn line(&self, i: usize) -> ExportLine<'_> {
        self[i]
    }
}

impl Lines for Vec<ExportLine<'_>> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn line(&self, i: usize) -> ExportLine<'_> {
        self[i]
    }
}

/// A borrowed source is one too, so a slice (unsized) can be passed on as `&dyn Lines`.
impl<L: Lines + ?Sized> Lines for &L {
    fn len(&self) -> usize {
        (**self).len()
    }

    fn line(&self, i: usize) -> ExportLine<'_> {
        (**self).line(i)
    }
}

impl<const N: usize> Lines for [ExportLine<'_>; N] {
    fn len(&self) -> usize {
        N
    }

    fn line(&self, i: usize) -> ExportLine<'_> {
        self[i]
    }
}

/// A plain line for unit tests: active, never synced, no parent and no GL accounts. The
/// description is leaked: a test's few lines live as long as the test.
#[cfg(test)]
pub(crate) fn test_line(item_id: i64, full_code: &str) -> ExportLine<'_> {
    ExportLine {
        item_id,
        code: full_code.rsplit('-').next().unwrap_or(full_code),
        full_code,
        description: format!("Desc {full_code}").leak(),
        active: true,
        parent_full_code: None,
        origin_id: None,
        previous: None,
        income: None,
        expense: None,
    }
}

/// A GL account for unit tests, leaked like [`test_line`]'s description: lines borrow it.
#[cfg(test)]
pub(crate) fn test_account(code: &str, name: &str, kind: GlKind) -> &'static GlAccount {
    Box::leak(Box::new(GlAccount {
        code: code.into(),
        name: name.into(),
        kind,
    }))
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
    /// The ERP asks Costbridge to slow down: the job waits `after` and goes on, without
    /// counting as a failed attempt.
    #[error("{message}")]
    RateLimited {
        message: String,
        after: std::time::Duration,
    },
}

/// What every export needs besides the lines.
pub struct ExportContext {
    pub job_id: i64,
    pub delimiter: char,
    /// Descriptions longer than this are cut (the profile says so and the item noted it).
    pub max_description: Option<usize>,
}

/// Cuts a description to what the ERP keeps, on a character boundary.
pub fn fit_description(description: &str, max: Option<usize>) -> &str {
    match max.and_then(|m| description.char_indices().nth(m)) {
        Some((cut, _)) => &description[..cut],
        None => description,
    }
}
