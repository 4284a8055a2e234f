//! The QuickBooks Desktop connector through the QuickBooks Web Connector (QBWC). QuickBooks
//! pulls: QBWC, beside QuickBooks on the customer's Windows machine, polls Costbridge's SOAP
//! service (served by the server, `/qbwc`), takes qbXML requests and hands back QuickBooks'
//! answers. So this connector never calls out: the worker leaves its jobs to the service
//! ([`Connector::PULLED`]), and the GL accounts are those QuickBooks reported last. The
//! pure parts live here: the qbXML messages (`qbxml`), what to do per code (`plan`), the SOAP
//! wire, WSDL and `.qwc` file (`soap`).
pub mod plan;
pub mod qbxml;
pub mod soap;
pub mod xml;

use crate::{
    Connector, ConnectorError, Env, ExportContext, Field, FieldErrors, GlAccount, LineResult, Lines,
};
use serde::{Deserialize, Serialize};

/// Nothing to set: the Web Connector's user name and password are made by Costbridge (the
/// password shown once and stored hashed, apart from the connection).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QbwcSettings {}

pub struct Qbwc;

const PULLED_ONLY: &str = "QuickBooks Desktop takes its work through the QuickBooks Web Connector; Costbridge does not call it";

impl Connector for Qbwc {
    type Settings = QbwcSettings;
    const KIND: &'static str = "qbwc";
    const LABEL: &'static str = "QuickBooks Desktop (Web Connector)";
    const FIELDS: &'static [Field] = &[];
    /// Codes per qbXML round: each answer is committed before the next round is handed out.
    const BATCH: usize = 100;
    const PULLED: bool = true;
    /// Sync from ERP is asked of the next session (the server's `ops::qbwc`), never of `read_codes`.
    const CAN_READ_CODES: bool = true;

    fn check(_: &QbwcSettings, _: &Env, _: &mut FieldErrors) {}

    fn new(_: &QbwcSettings, _: &Env) -> Self {
        Qbwc
    }

    async fn test(&self) -> (bool, String) {
        (false, PULLED_ONLY.into())
    }

    async fn gl_accounts(&self) -> Result<Vec<GlAccount>, ConnectorError> {
        Err(ConnectorError::NotSupported(PULLED_ONLY.into()))
    }

    async fn export(
        &self, _: &ExportContext, _: &dyn Lines,
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        Err(ConnectorError::NotSupported(PULLED_ONLY.into()))
    }
}
