//! QuickBooks Desktop through the QuickBooks Web Connector: the company's Web Connector state,
//! password and `.qwc` file (JSON API), and the SOAP endpoint QBWC polls (`/qbwc`), which is
//! authenticated by its own tickets (no cookie, no bearer token).
use crate::error::ApiResult;
use crate::extract::Caller;
use crate::ops::qbwc::{self as ops, session};
use crate::state::AppState;
use crate::throttle::ClientAddr;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use costbridge_erp::qbwc::soap::{self, Reply};
use serde_json::{Value, json};

/// QuickBooks' answers to a round of 100 codes, escaped inside SOAP, stay well under this.
const SOAP_MAX_BYTES: usize = 16 << 20;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/companies/{cid}/erp_connection/qbwc", get(status))
        .route(
            "/api/v1/companies/{cid}/erp_connection/qbwc/password",
            post(password),
        )
        .route("/api/v1/companies/{cid}/erp_connection/qbwc/qwc", get(qwc))
}

/// The SOAP service and its WSDL, outside the JSON API's error handling.
pub fn soap_router() -> Router<AppState> {
    Router::new().route(
        "/qbwc",
        get(wsdl)
            .post(call)
            .layer(DefaultBodyLimit::max(SOAP_MAX_BYTES)),
    )
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<ops::Status>> {
    Ok(Json(ops::status(&state, &caller.user, cid).await?))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn password(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let (user, password) = ops::new_password(&state, &caller.user, cid).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user_name": user, "password": password})),
    ))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn qwc(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Response> {
    let (name, text) = ops::qwc_file(&state, &caller.user, cid).await?;
    Ok(qwc_download(&name, text))
}

/// The `.qwc` file as a download (the pages use it too).
pub fn qwc_download(name: &str, text: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/xml".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        text,
    )
        .into_response()
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn wsdl(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let location = format!("{}/qbwc", state.base_url.trim_end_matches('/'));
    if query.is_some_and(|q| q.eq_ignore_ascii_case("wsdl")) {
        return xml(StatusCode::OK, soap::wsdl(&location));
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("Costbridge's QuickBooks Web Connector service. Add the .qwc file from Costbridge's ERP connection page to the QuickBooks Web Connector; the service description is at {location}?wsdl\n"),
    )
        .into_response()
}

#[tracing::instrument(skip_all)]
async fn call(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: String,
) -> Response {
    let action = headers.get("soapaction").and_then(|v| v.to_str().ok());
    let call = match soap::read_call(&body, action) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable QBWC call");
            return xml(
                StatusCode::INTERNAL_SERVER_ERROR,
                soap::fault(&format!("Costbridge could not read the call: {e}")),
            );
        }
    };
    match session::answer(&state, client, &call).await {
        Ok(reply) => xml(StatusCode::OK, soap::reply(&call.method, &reply)),
        Err(e) => {
            tracing::error!(error = %e, method = %call.method, "QBWC call failed");
            let reply = match call.method.as_str() {
                // An answer QBWC understands: stop, then ask getLastError.
                "receiveResponseXML" => Reply::Number(-1),
                _ => {
                    return xml(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        soap::fault(
                            "Costbridge failed to handle the call; see its log. Nothing was lost: the codes wait for the next run.",
                        ),
                    );
                }
            };
            xml(StatusCode::OK, soap::reply(&call.method, &reply))
        }
    }
}
