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
use axum::routing::get;
use axum::{Json, Router};
use costbridge_erp::qbwc::soap::{self, Reply};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// QuickBooks' answers to a round of 100 codes, escaped inside SOAP, stay well under this.
const SOAP_MAX_BYTES: usize = 16 << 20;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(password))
        .routes(routes!(qwc))
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

/// The QuickBooks Web Connector's state
#[utoipa::path(get, path = "/api/v1/companies/{cid}/erp_connection/qbwc", tag = "connection",
    operation_id = "qbwc_status",
    responses((status = 200, description = "User name, last seen, QuickBooks version, company file, last error, accounts as of, waiting codes", body = ops::Status),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin or ERP Integrations at read_only"),
        (status = 422, description = "`not_supported`: the connection is not the Web Connector's; `no_erp_connection`")))]
#[tracing::instrument(skip_all)]
async fn status(caller: Caller, Path(cid): Path<i64>) -> ApiResult<Json<ops::Status>> {
    Ok(Json(ops::status(&caller.state, &caller.user, cid).await?))
}

/// Make a new QuickBooks Web Connector password (ends the old one and its sessions)
#[utoipa::path(post, path = "/api/v1/companies/{cid}/erp_connection/qbwc/password", tag = "connection",
    operation_id = "new_qbwc_password",
    responses((status = 201, description = "The password, this once", body = ops::NewPassword),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin"),
        (status = 422, description = "`not_supported`: the connection is not the Web Connector's; `no_erp_connection`")))]
#[tracing::instrument(skip_all)]
async fn password(
    caller: Caller, Path(cid): Path<i64>,
) -> ApiResult<(StatusCode, Json<ops::NewPassword>)> {
    let made = ops::new_password(&caller.state, &caller.user, cid).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// The company's `.qwc` file for the QuickBooks Web Connector (fresh OwnerID and FileID)
#[utoipa::path(get, path = "/api/v1/companies/{cid}/erp_connection/qbwc/qwc", tag = "connection",
    operation_id = "qbwc_file",
    responses((status = 200, description = "The .qwc file, as an attachment", content_type = "application/xml", body = String,
        example = "<?xml version=\"1.0\"?><QBWCXML><AppName>Costbridge</AppName></QBWCXML>"),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin"),
        (status = 422, description = "`not_supported`: the connection is not the Web Connector's; `no_erp_connection`")))]
#[tracing::instrument(skip_all)]
async fn qwc(caller: Caller, Path(cid): Path<i64>) -> ApiResult<Response> {
    let (name, text) = ops::qwc_file(&caller.state, &caller.user, cid).await?;
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
    State(state): State<AppState>, ClientAddr(client): ClientAddr, headers: HeaderMap, body: String,
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
