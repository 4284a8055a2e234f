//! Machine clients over the API, and `POST /oauth/token` (RFC 6749 §4.4, client credentials),
//! where a client trades its id and secret for a short-lived bearer token.
use crate::error::ApiResult;
use crate::extract::{Body, Caller};
use crate::ops::clients::{self, CreateClient, TokenRefusal, WithSecret};
use crate::state::AppState;
use crate::throttle::ClientAddr;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use costbridge_storage::clients::ApiClient;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/companies/{cid}/api_clients",
            get(list).post(create),
        )
        .route(
            "/api/v1/companies/{cid}/api_clients/{id}",
            axum::routing::delete(revoke),
        )
        .route(
            "/api/v1/companies/{cid}/api_clients/{id}/rotate",
            post(rotate),
        )
}

/// The token endpoint: outside `/api` (it takes a form, not JSON, and answers RFC 6749's error
/// bodies rather than Costbridge's).
pub fn oauth_router() -> Router<AppState> {
    Router::new().route("/oauth/token", post(token))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Vec<ApiClient>>> {
    Ok(Json(clients::list(&state, &caller.user, cid).await?))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<CreateClient>,
) -> ApiResult<(StatusCode, Json<WithSecret>)> {
    let c = clients::create(&state, &caller.user, cid, body).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, client = id))]
async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, id)): Path<(i64, i64)>,
) -> ApiResult<Json<WithSecret>> {
    Ok(Json(clients::rotate(&state, &caller.user, cid, id).await?))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, client = id))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, id)): Path<(i64, i64)>,
) -> ApiResult<Json<ApiClient>> {
    Ok(Json(clients::revoke(&state, &caller.user, cid, id).await?))
}

/// An RFC 6749 §5.2 error: `{error, error_description}`, never cached.
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
}

fn refuse(error: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError {
        status: match error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        },
        error,
        description: description.into(),
        retry_after: None,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut res = (self.status, no_store(), Json(body)).into_response();
        let h = res.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"costbridge\""),
            );
        }
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// The client's id and secret from HTTP Basic (each form-urlencoded, RFC 6749 §2.3.1), if sent.
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        refuse(
            "invalid_client",
            "the Authorization header is not valid HTTP Basic",
        )
    };
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(bad)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|d| String::from_utf8(d).ok())
        .ok_or_else(bad)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

#[tracing::instrument(skip_all)]
async fn token(
    State(state): State<AppState>,
    ClientAddr(from): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(refuse(
            "invalid_request",
            "send the parameters as Content-Type: application/x-www-form-urlencoded",
        ));
    }
    let mut params = std::collections::BTreeMap::new();
    for (k, v) in form_urlencoded::parse(&body) {
        if params
            .insert(k.clone().into_owned(), v.into_owned())
            .is_some()
        {
            return Err(refuse(
                "invalid_request",
                format!("the parameter {k} is given more than once"),
            ));
        }
    }
    match params.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(other) => {
            return Err(refuse(
                "unsupported_grant_type",
                format!(
                    "Costbridge issues tokens for grant_type=client_credentials only, not {other}"
                ),
            ));
        }
        None => return Err(refuse("invalid_request", "grant_type is missing")),
    }
    if params.get("scope").is_some_and(|s| !s.trim().is_empty()) {
        return Err(refuse(
            "invalid_scope",
            "Costbridge clients have no scopes: a token carries the permissions set on the client; leave scope out",
        ));
    }
    let in_form = match (params.get("client_id"), params.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        (None, None) => None,
        _ => {
            return Err(refuse(
                "invalid_request",
                "send both client_id and client_secret, or neither and HTTP Basic instead",
            ));
        }
    };
    let (id, secret) = match (basic(&headers)?, in_form) {
        (Some(_), Some(_)) => {
            return Err(refuse(
                "invalid_request",
                "authenticate the client one way: HTTP Basic or the client_id and client_secret parameters, not both",
            ));
        }
        (Some(c), None) | (None, Some(c)) => c,
        (None, None) => {
            return Err(refuse(
                "invalid_client",
                "no client credentials: send the client id and secret as HTTP Basic or as client_id and client_secret",
            ));
        }
    };
    match clients::issue_token(&state, &id, &secret, from).await {
        Ok((token, expires_in)) => Ok((
            no_store(),
            Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in})),
        )
            .into_response()),
        Err(TokenRefusal::BadClient) => Err(refuse(
            "invalid_client",
            "Costbridge knows no live client with this id and secret; check them, or ask an admin for a new secret",
        )),
        Err(TokenRefusal::Throttled(secs)) => Err(OAuthError {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "temporarily_unavailable",
            description: format!(
                "too many wrong secrets for this client from this address; try again in {secs} seconds"
            ),
            retry_after: Some(secs),
        }),
        Err(TokenRefusal::Store(e)) => {
            tracing::error!(error = %e, "storage failure");
            Err(OAuthError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                error: "server_error",
                description: "Costbridge could not issue a token; the cause is logged, try again"
                    .into(),
                retry_after: None,
            })
        }
    }
}
