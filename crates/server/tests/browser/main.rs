//! Browser tests: the web UI driven in headless Chromium through chromedriver (both from
//! Debian, installed by scripts/setup; never downloaded). Each test saves screenshots of the
//! pages it visits to docs/screenshots/, which the README shows.
mod harness;
mod webdriver;

mod codes;
mod polish;
mod queue;
mod reasons;
mod settings;
mod setup;
mod xero;
// Shared with the API tests; the browser tests use the stand-in, not all of it.
#[allow(dead_code)]
#[path = "../api/xero_standin.rs"]
mod xero_standin;
