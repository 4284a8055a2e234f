//! What every handler shares.
use crate::metrics::Metrics;
use crate::secrets::Cipher;
use crate::throttle::SignInThrottle;
use costbridge_storage::Db;
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
    /// Encrypts and decrypts the connector secrets stored in the database.
    pub cipher: Arc<Cipher>,
}
