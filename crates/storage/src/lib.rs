//! Costbridge persistence. One [`Db`] over SQLite or PostgreSQL; every query is written once
//! and runs on both: `tx.rs` binds its values and runs it per backend (sqlx's `Any` driver
//! only carries primitives), [`Db::write`] runs a transaction. SQL lives here and nowhere else.
#![forbid(unsafe_code)]

pub mod audit;
pub mod clients;
pub mod codes;
pub mod company;
pub mod credentials;
mod db;
mod digest;
pub mod erp;
pub mod events;
mod found;
mod held;
pub mod import;
pub mod integrity;
pub mod jobs;
mod marks;
pub mod outbox;
pub mod pull;
pub mod qbwc;
pub mod queue;
pub mod requests;
pub mod sessions;
pub mod submissions;
mod tx;
pub mod users;
pub mod views;
pub mod xero;

pub use db::{Db, StoreError, now};

/// Axum handlers and the worker need the storage futures to be `Send`, also when awaited by a
/// future that borrows (where the compiler is weakest at proving it); this only has to compile.
#[cfg(test)]
#[allow(dead_code)]
mod send_check {
    fn assert_send<T: Send>(_: T) {}

    async fn borrowing_caller(db: &crate::Db, name: &str) {
        let _ = db.lists(1).await;
        let _ = db.create_list(1, 1, name).await;
        let _ = db.pull_from_erp(1, 1, 1, &[], crate::now()).await;
    }

    fn futures_are_send(db: &crate::Db) {
        assert_send(borrowing_caller(db, "x"));
    }
}
