//! Black-box API tests; each runs once on SQLite and once on PostgreSQL.
mod helpers;

mod account;
mod auth;
mod cli;
mod codes;
mod edges;
mod formulas;
mod hardening;
mod import;
mod load;
mod notify;
mod outbound;
mod pages;
mod qbwc;
mod qbwc_export;
mod qbwc_standin;
mod queue;
mod secrets;
mod send;
mod session;
mod smtp;
mod stale;
mod throttle;
mod trail;
mod tryton;
