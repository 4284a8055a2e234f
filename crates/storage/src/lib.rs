//! Costbridge persistence. One [`Db`] over SQLite or PostgreSQL; every query is written once
//! and runs on both (the `with_pool!` and `write_tx!` macros expand it per backend, because
//! sqlx's `Any` driver only carries primitives). SQL lives here and nowhere else.
#![forbid(unsafe_code)]

#[macro_use]
mod db;
#[macro_use]
pub mod audit;
#[macro_use]
pub mod codes;
#[macro_use]
pub mod outbox;
#[macro_use]
pub mod credentials;
pub mod erp;
pub mod import;
pub mod integrity;
pub mod jobs;
pub mod pull;
pub mod qbwc;
pub mod queue;
pub mod sessions;
pub mod submissions;
pub mod users;
pub mod views;

pub use db::{Db, StoreError, now};
