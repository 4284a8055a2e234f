//! Browser tests: the web UI driven in headless Chromium through chromedriver (both from
//! Debian, installed by scripts/setup; never downloaded). Each test saves screenshots of the
//! pages it visits to docs/screenshots/, which the README shows.
mod a11y;
mod harness;
mod webdriver;

mod axe_pages;
mod clients;
mod codes;
mod events;
mod keyboard;
mod polish;
mod queue;
mod reasons;
#[path = "../api/serve.rs"]
mod serve;
mod settings;
mod setup;
mod xero;
mod zone;
// Shared with the API tests; the browser tests use the stand-in, not all of it.
#[allow(dead_code)]
#[path = "../api/xero_standin.rs"]
mod xero_standin;
// Shared with the API tests, which also make it fail and count its batches.
#[allow(dead_code)]
#[path = "../api/event_receiver.rs"]
mod event_receiver;
