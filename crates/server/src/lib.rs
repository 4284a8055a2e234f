//! The Costbridge server: what the application does (`ops`) and its two adapters, the JSON API
//! (`api`) and the web UI (`web`); the export worker and the CLI commands. Over the domain,
//! storage and ERP crates.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod csvio;
pub mod demo;
mod docs;
pub mod error;
pub mod events;
pub mod extract;
pub mod mail;
mod metrics;
pub mod ops;
pub mod password;
pub mod ratelimit;
pub mod retry;
pub mod secrets;
pub mod session;
pub mod state;
pub mod throttle;
pub(crate) mod web;
pub mod worker;
pub mod xero;
pub mod zone;

pub use app::App;
pub use config::Settings;
