//! What every handler shares.
use crate::config::ApiSettings;
use crate::metrics::Metrics;
use crate::secrets::Cipher;
use crate::throttle::SignInThrottle;
use costbridge_storage::Db;
use costbridge_storage::erp::UnsyncedChecks;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// Woken when an export job is queued, so the worker starts at once instead of polling.
    pub worker_wake: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    pub sign_in: Arc<SignInThrottle>,
    /// Where people open Costbridge (`[mail] base_url`): links start with it, and an https
    /// address makes the session cookie `Secure`.
    pub base_url: Arc<str>,
    /// Whether an SMTP server is configured; without one, a reset link is shown to the admin.
    pub mail_on: bool,
    /// What connectors may do, from the operator's settings (`[outbound]`, `[export]`); a
    /// company's connector gets `connectors.company(id)`.
    pub connectors: costbridge_erp::Env,
    /// Encrypts and decrypts the connector secrets stored in the database.
    pub cipher: Arc<Cipher>,
    pub first_run: Arc<FirstRun>,
    /// The Send to ERP button's check of each list's unsynced codes, until they change.
    pub unsynced_checks: Arc<UnsyncedChecks>,
    /// `[api]`: rate limit, machine-client token lifetime, idempotency-key lifetime.
    pub api: ApiSettings,
    /// Each company's time zone, for the pages (`zone::ZoneCache`).
    pub zones: Arc<crate::zone::ZoneCache>,
    /// Each company's name, for the pages' header (`ops::company::Names`).
    pub names: Arc<crate::ops::company::Names>,
    /// The API's rate-limit counts, flushed to the database each second (`ratelimit`).
    pub rates: Arc<crate::ratelimit::RateCounts>,
    /// Each company's GL accounts as its ERP last gave them (`ops::queue::GlCache`).
    pub gl_accounts: Arc<crate::ops::queue::GlCache>,
}

/// First-run setup's guard: whoever reaches an empty server first (a page at a name rebound to
/// it, anyone through a proxy) must also know the code it logged at start.
#[derive(Debug, Default)]
pub struct FirstRun {
    /// `None` once the database had a company at start: setup is closed then anyway.
    pub code: Option<String>,
}

impl FirstRun {
    /// Whether a setup request with this `code` may go ahead.
    pub fn allows(&self, code: &str) -> bool {
        self.code.as_deref().is_some_and(|c| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                c.as_bytes(),
                code.trim().as_bytes(),
            ))
        })
    }
}
