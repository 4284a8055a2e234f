//! The webhook connector: being written.
use crate::{ConnectorError, ExportContext, ExportLine, LineResult, WebhookSettings};

/// Codes per POST.
pub const BATCH: usize = 500;

pub struct Webhook {
    settings: WebhookSettings,
}

impl Webhook {
    pub fn new(settings: &WebhookSettings) -> Self {
        Webhook {
            settings: settings.clone(),
        }
    }

    pub async fn test(&self) -> (bool, String) {
        (
            false,
            format!(
                "the Webhook connector for {} is not finished",
                self.settings.url
            ),
        )
    }

    pub async fn export(
        &self,
        _ctx: &ExportContext,
        _lines: &[ExportLine],
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        Err(ConnectorError::Unavailable("not finished".into()))
    }
}
