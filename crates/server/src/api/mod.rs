//! The JSON API (docs/api.md): routes over the operations of `crate::ops`, mapping their
//! errors to the API's error body. Each module owns its routes; `router()` merges them.
use crate::state::AppState;
use axum::Router;

mod account;
mod audit;
mod auth;
mod codes;
mod connection;
mod events;
pub mod qbwc;
mod queue;
mod send;
mod submissions;

pub fn router(max_import_bytes: usize) -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(account::router())
        .merge(connection::router())
        .merge(events::router())
        .merge(qbwc::router())
        .merge(codes::router(max_import_bytes))
        .merge(send::router())
        .merge(queue::router())
        .merge(audit::router())
        .merge(submissions::router())
        .layer(axum::middleware::from_fn(crate::error::json_errors))
}
