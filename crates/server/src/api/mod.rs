//! The JSON API (docs/api.md): routes over the operations of `crate::ops`, mapping their
//! errors to the API's error body. Each module owns its routes, registered with
//! `utoipa_axum::routes!` so that each one is in the OpenAPI document (`crate::docs`) from its
//! handler's `#[utoipa::path]`; `router()` merges them.
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;

mod account;
mod audit;
mod auth;
mod clients;
mod codes;
mod connection;
mod events;
mod guard;
mod idempotency;
pub mod qbwc;
mod queue;
mod send;
mod submissions;

/// The API's routes behind its guard (caller, rate limit, `Idempotency-Key`: `guard.rs`), and
/// the OAuth token endpoint beside them.
pub fn router(
    state: &AppState, max_body_bytes: usize, max_import_bytes: usize,
) -> OpenApiRouter<AppState> {
    let guard = guard::Guard {
        state: state.clone(),
        max_body: max_body_bytes,
        max_import: max_import_bytes,
    };
    let mut guarded = OpenApiRouter::new()
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
        .merge(clients::router());
    crate::docs::mark_guarded(guarded.get_openapi_mut());
    guarded
        .layer(axum::middleware::from_fn_with_state(guard, guard::guard))
        .merge(clients::oauth_router())
        .layer(axum::middleware::from_fn(crate::error::json_errors))
}
