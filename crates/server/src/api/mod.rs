//! The JSON API (docs/api.md): routes over the operations of `crate::ops`, mapping their
//! errors to the API's error body. Each module owns its routes, registered with
//! `utoipa_axum::routes!` so that each one is in the OpenAPI document (`crate::docs`) from its
//! handler's `#[utoipa::path]`; `router()` merges them.
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

mod account;
mod audit;
mod auth;
mod codes;
mod connection;
pub mod qbwc;
mod queue;
mod send;
mod submissions;

pub fn router(max_import_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(account::router())
        .merge(connection::router())
        .merge(qbwc::router())
        .merge(codes::router(max_import_bytes))
        .merge(send::router())
        .merge(queue::router())
        .merge(audit::router())
        .merge(submissions::router())
        .layer(axum::middleware::from_fn(crate::error::json_errors))
}
