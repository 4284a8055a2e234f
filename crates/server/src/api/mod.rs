//! The JSON API of API.md. Each module owns its routes; `router()` merges them.
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::Router;
use costbridge_domain::ErpProfile;
use costbridge_erp::ConnectorSettings;
use serde::{Deserialize, Deserializer};

mod account;
mod audit;
pub mod auth;
pub mod codes;
pub mod connection;
pub mod queue;
pub mod send;

pub fn router(max_import_bytes: usize) -> Router<AppState> {
    Router::new()
        .merge(auth::router())
        .merge(account::router())
        .merge(connection::router())
        .merge(codes::router(max_import_bytes))
        .merge(send::router())
        .merge(queue::router())
        .merge(audit::router())
        .layer(axum::middleware::from_fn(crate::error::json_errors))
}

/// The company's ERP connection with its profile and parsed connector, if it has one.
pub struct Connection {
    pub profile: ErpProfile,
    pub settings: ConnectorSettings,
    pub erp_list_id: i64,
}

pub async fn connection(state: &AppState, company: i64) -> ApiResult<Option<Connection>> {
    let Some(stored) = state.db.erp_connection(company).await? else {
        return Ok(None);
    };
    let profile = ErpProfile::find(&stored.profile).ok_or_else(|| {
        ApiError::bad_request(format!(
            "the stored profile '{}' is unknown to this version",
            stored.profile
        ))
    })?;
    let settings: ConnectorSettings = serde_json::from_value(stored.connector).map_err(|e| {
        ApiError::bad_request(format!("the stored connector settings are unreadable: {e}"))
    })?;
    Ok(Some(Connection {
        profile,
        settings,
        erp_list_id: stored.erp_list_id,
    }))
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`) in PATCH bodies.
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Plain text a person typed: required, bounded, no control characters.
pub fn text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    if value.trim().is_empty() {
        return Err(ApiError::field(field, "is required"));
    }
    if value.chars().count() > max {
        return Err(ApiError::field(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(ApiError::field(
            field,
            format!("contains a control character (U+{:04X})", c as u32),
        ));
    }
    Ok(value.trim().to_owned())
}
