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
mod notify;
mod pages;
mod queue;
mod send;
mod session;
mod smtp;
mod throttle;
mod tryton;
