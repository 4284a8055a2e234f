//! Tokens, the caller, and the company's users (the rules are in `crate::ops::users`).
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Caller};
use crate::ops::users::{self, CreateUser, UpdateUser, authenticate};
use crate::password::{self, hash_token};
use crate::state::AppState;
use crate::throttle::ClientAddr;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use costbridge_storage::users::User;
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tokens", post(create_token))
        .route("/api/v1/tokens/current", delete(revoke_token))
        .route("/api/v1/me", get(me))
        .route(
            "/api/v1/companies/{cid}/users",
            get(list_users).post(create_user),
        )
        .route("/api/v1/companies/{cid}/users/{uid}", patch(update_user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    email: String,
    password: String,
}

#[tracing::instrument(skip_all, fields(email = %body.email))]
async fn create_token(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    Body(body): Body<Login>,
) -> ApiResult<impl IntoResponse> {
    let user = authenticate(&state, &body.email, body.password, client).await?;
    let token = password::new_token();
    state.db.insert_token(user.id, &hash_token(&token)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"token": token, "user_id": user.id, "company_id": user.company_id})),
    ))
}

/// Revokes the calling token; called with the session cookie, it ends the session instead.
#[tracing::instrument(skip_all, fields(company = caller.user.company_id, user = caller.user.id))]
async fn revoke_token(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    match &caller.auth {
        Auth::Token(hash) => state.db.delete_token(hash).await?,
        Auth::Session { id_hash, .. } => state.db.delete_session(id_hash).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

#[tracing::instrument(skip_all, fields(company = caller.user.company_id, user = caller.user.id))]
async fn me(caller: Caller) -> Json<serde_json::Value> {
    let u = &caller.user;
    Json(
        json!({"id": u.id, "email": u.email, "name": u.name, "company_id": u.company_id, "permissions": u.permissions,
                "digest_emails": u.digest_emails}),
    )
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(users::list(&state, &caller.user, cid).await?))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id))]
async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<CreateUser>,
) -> ApiResult<impl IntoResponse> {
    let user = users::create(&state, &caller.user, cid, body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

#[tracing::instrument(skip_all, fields(company = cid, user = caller.user.id, target = uid))]
async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, uid)): Path<(i64, i64)>,
    Body(body): Body<UpdateUser>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        users::update(&state, &caller.user, caller.credential(), cid, uid, body).await?,
    ))
}
