//! Machine clients over the API, and `POST /oauth/token` (RFC 6749 §4.4, client credentials),
//! where a client trades its id and secret for a short-lived bearer token.
use crate::error::ApiResult;
use crate::extract::{Body, Caller};
use crate::ops::clients::{self, CreateClient, TokenRefusal, WithSecret};
use crate::state::AppState;
use crate::throttle::ClientAddr;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use costbridge_storage::clients::ApiClient;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
        .routes(routes!(rotate))
}

/// The token endpoint: outside `/api` (it takes a form, not JSON, and answers RFC 6749's error
/// bodies rather than Costbridge's).
pub fn oauth_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(token))
}

/// The company's API clients, revoked ones included
#[utoipa::path(get, path = "/api/v1/companies/{cid}/api_clients", tag = "clients",
    operation_id = "list_api_clients",
    responses((status = 200, description = "Every client of the company, never a secret", body = [ApiClient]),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn list(caller: Caller, Path(cid): Path<i64>) -> ApiResult<Json<Vec<ApiClient>>> {
    Ok(Json(clients::list(&caller.state, &caller.user, cid).await?))
}

/// Create an API client; its secret is answered this once
#[utoipa::path(post, path = "/api/v1/companies/{cid}/api_clients", tag = "clients",
    operation_id = "create_api_client", request_body = CreateClient,
    responses((status = 201, description = "The new client, with its secret", body = WithSecret),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin, and every permission given to the client")))]
#[tracing::instrument(skip_all)]
async fn create(
    caller: Caller, Path(cid): Path<i64>, Body(body): Body<CreateClient>,
) -> ApiResult<(StatusCode, Json<WithSecret>)> {
    let c = clients::create(&caller.state, &caller.user, cid, body).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Give an API client a new secret; the old one stops working at once
#[utoipa::path(post, path = "/api/v1/companies/{cid}/api_clients/{id}/rotate", tag = "clients",
    operation_id = "rotate_api_client_secret",
    responses((status = 200, description = "The client, with its new secret", body = WithSecret),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin"),
        (status = 409, description = "`conflict`: the client is revoked")))]
#[tracing::instrument(skip_all)]
async fn rotate(caller: Caller, Path((cid, id)): Path<(i64, i64)>) -> ApiResult<Json<WithSecret>> {
    Ok(Json(
        clients::rotate(&caller.state, &caller.user, cid, id).await?,
    ))
}

/// Revoke an API client: its secret and tokens stop working at once
#[utoipa::path(delete, path = "/api/v1/companies/{cid}/api_clients/{id}", tag = "clients",
    operation_id = "revoke_api_client",
    responses((status = 200, description = "The client, revoked", body = ApiClient),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin")))]
#[tracing::instrument(skip_all)]
async fn revoke(caller: Caller, Path((cid, id)): Path<(i64, i64)>) -> ApiResult<Json<ApiClient>> {
    Ok(Json(
        clients::revoke(&caller.state, &caller.user, cid, id).await?,
    ))
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

/// An RFC 6749 §5.2 error body (not Costbridge's `Error`: OAuth clients expect this one).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": "invalid_client",
    "error_description": "Costbridge knows no live client with this id and secret; check them, or ask an admin for a new secret"}))]
struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `unsupported_grant_type`, `invalid_scope`,
    /// `temporarily_unavailable` or `server_error`.
    error: &'static str,
    /// What happened and what to do, as a sentence.
    error_description: String,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = OAuthErrorBody {
            error: self.error,
            error_description: self.description,
        };
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
    if !headers.contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    let bad = || {
        refuse(
            "invalid_client",
            "the Authorization header is not valid HTTP Basic",
        )
    };
    let encoded = crate::extract::credentials(headers, "Basic").ok_or_else(bad)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
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

/// The form `POST /oauth/token` takes (RFC 6749 §4.4.2); the client authenticates either
/// with HTTP Basic or with `client_id` and `client_secret` here, not both.
#[derive(ToSchema)]
#[schema(example = json!({"grant_type": "client_credentials", "client_id": "cbc_3f9a1c2e4b5d6a7f",
    "client_secret": "cbs_0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}))]
struct TokenForm {
    /// Always `client_credentials`.
    #[schema(value_type = String, required = true)]
    grant_type: Option<String>,
    #[schema(nullable = false)]
    client_id: Option<String>,
    #[schema(nullable = false)]
    client_secret: Option<String>,
    /// Leave it out: a token carries the permissions set on the client.
    #[schema(nullable = false)]
    scope: Option<String>,
}

/// A bearer token for the API (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"access_token": "cbt_5e4d3c2b1a09f8e7d6c5b4a392817060", "token_type": "Bearer", "expires_in": 3600}))]
struct Issued {
    /// Send it as `Authorization: Bearer <access_token>`.
    access_token: String,
    token_type: &'static str,
    /// Seconds until it stops working; then ask for a new one.
    expires_in: i64,
}

/// Trade a client's id and secret for a bearer token (OAuth 2.0 client credentials)
#[utoipa::path(post, path = "/oauth/token", tag = "clients", operation_id = "oauth_token",
    security(()),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "A bearer token; never cached", body = Issued,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 400, description = "`invalid_request` (not a form, a parameter twice or missing), `unsupported_grant_type` or `invalid_scope`", body = OAuthErrorBody,
            example = json!({"error": "unsupported_grant_type", "error_description": "Costbridge issues tokens for grant_type=client_credentials only, not password"})),
        (status = 401, description = "`invalid_client`: no credentials, bad HTTP Basic, or no live client with this id and secret", body = OAuthErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"costbridge\"`"))),
        (status = 429, description = "`temporarily_unavailable`: too many wrong secrets for this client from this address", body = OAuthErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again")),
            example = json!({"error": "temporarily_unavailable", "error_description": "too many wrong secrets for this client from this address; try again in 30 seconds"})),
        (status = 500, description = "`server_error`: Costbridge could not issue a token; the cause is logged", body = OAuthErrorBody,
            example = json!({"error": "server_error", "error_description": "Costbridge could not issue a token; the cause is logged, try again"}))))]
#[tracing::instrument(skip_all)]
async fn token(
    State(state): State<AppState>, ClientAddr(from): ClientAddr, headers: HeaderMap, body: Bytes,
) -> Result<Response, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
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
    let mut take = |name: &str| params.remove(name);
    let form = TokenForm {
        grant_type: take("grant_type"),
        client_id: take("client_id"),
        client_secret: take("client_secret"),
        scope: take("scope"),
    };
    match form.grant_type.as_deref() {
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
    if form.scope.is_some_and(|s| !s.trim().is_empty()) {
        return Err(refuse(
            "invalid_scope",
            "Costbridge clients have no scopes: a token carries the permissions set on the client; leave scope out",
        ));
    }
    let in_form = match (form.client_id, form.client_secret) {
        (Some(id), Some(secret)) => Some((id, secret)),
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
        Ok((access_token, expires_in)) => Ok((
            no_store(),
            Json(Issued {
                access_token,
                token_type: "Bearer",
                expires_in,
            }),
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
