//! The Tryton connector (JSON-RPC): being written.
use crate::{
    ConnectorError, ErpCode, ExportContext, ExportLine, GlAccount, LineResult, TrytonSettings,
};

/// Codes per export call: Tryton's recipes show 1,000 analytic accounts per call is safe.
pub const BATCH: usize = 1000;

pub struct Tryton {
    settings: TrytonSettings,
}

impl Tryton {
    pub fn new(settings: &TrytonSettings) -> Self {
        Tryton {
            settings: settings.clone(),
        }
    }

    pub async fn test(&self) -> (bool, String) {
        (
            false,
            format!(
                "the Tryton connector for {} is not finished",
                self.settings.url
            ),
        )
    }

    pub async fn gl_accounts(&self) -> Result<Vec<GlAccount>, ConnectorError> {
        Err(ConnectorError::Unavailable("not finished".into()))
    }

    pub async fn export(
        &self,
        _ctx: &ExportContext,
        _lines: &[ExportLine],
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        Err(ConnectorError::Unavailable("not finished".into()))
    }

    pub async fn read_codes(&self) -> Result<Vec<ErpCode>, ConnectorError> {
        Err(ConnectorError::Unavailable("not finished".into()))
    }
}
