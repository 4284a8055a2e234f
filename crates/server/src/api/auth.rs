//! Tokens, the caller, and the company's users (the rules are in `crate::ops::users`).
use crate::error::ApiResult;
use crate::extract::{Auth, Body, Caller, Paging, Q};
use crate::ops::users::{self, CreateUser, UpdateUser, authenticate};
use crate::password::{self, hash_token};
use crate::state::AppState;
use crate::throttle::ClientAddr;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use costbridge_domain::Permissions;
use costbridge_storage::users::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(update_user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "admin@demo.example", "password": "a long passphrase"}))]
struct Login {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"token": "cb_9a1e…", "user_id": 1, "company_id": 1}))]
struct NewToken {
    /// Send it as `Authorization: Bearer <token>`; shown this once (only its hash is kept).
    token: String,
    user_id: i64,
    company_id: i64,
}

/// Sign in: exchange an email and password for an API token
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", security(()), request_body = Login,
    responses((status = 201, description = "A new token", body = NewToken),
        (status = 401, description = "`unauthorized`: wrong email or password"),
        (status = 429, description = "`rate_limited`: too many failed sign-ins from here or for this account; see `Retry-After`")))]
#[tracing::instrument(skip_all, fields(email = %body.email))]
async fn create_token(
    State(state): State<AppState>, ClientAddr(client): ClientAddr, Body(body): Body<Login>,
) -> ApiResult<impl IntoResponse> {
    let signed_in = authenticate(&state, &body.email, body.password, client).await?;
    let (user, checked) = (&signed_in.user, Some(signed_in.password_hash.as_str()));
    let token = password::new_token();
    if !state
        .db
        .insert_token(user.id, &hash_token(&token), checked)
        .await?
    {
        return Err(users::changed_meanwhile(&state, &signed_in).await.into());
    }
    Ok((
        StatusCode::CREATED,
        Json(NewToken {
            token,
            user_id: user.id,
            company_id: user.company_id,
        }),
    ))
}

/// Revoke the calling token (with the session cookie: end the session)
#[utoipa::path(delete, path = "/api/v1/tokens/current", tag = "auth",
    operation_id = "revoke_current_token",
    responses((status = 204, description = "Revoked")))]
#[tracing::instrument(skip_all)]
async fn revoke_token(caller: Caller) -> ApiResult<StatusCode> {
    match &caller.auth {
        Auth::Token(hash) => caller.state.db.delete_token(hash).await?,
        Auth::Session { id_hash, .. } => caller.state.db.delete_session(id_hash).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The caller.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "email": "admin@demo.example", "name": "Demo Admin", "company_id": 1,
    "permissions": {"admin_tool": "admin", "erp_integrations": "admin", "can_push_to_accounting": true}, "digest_emails": true}))]
struct Me {
    id: i64,
    email: String,
    name: String,
    company_id: i64,
    permissions: Permissions,
    digest_emails: bool,
}

/// The calling user
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, description = "Who the token or session belongs to", body = Me)))]
#[tracing::instrument(skip_all)]
async fn me(caller: Caller) -> Json<Me> {
    let u = caller.user;
    Json(Me {
        id: u.id,
        email: u.email,
        name: u.name,
        company_id: u.company_id,
        permissions: u.permissions,
        digest_emails: u.digest_emails,
    })
}

/// The company's users
#[utoipa::path(get, path = "/api/v1/companies/{cid}/users", tag = "auth", params(Paging),
    responses((status = 200, description = "One page of the company's users", body = [User]),
        (status = 403, description = "`forbidden`: needs the Admin tool at read_only")))]
#[tracing::instrument(skip_all)]
async fn list_users(
    caller: Caller, uri: Uri, Path(cid): Path<i64>, Q(paging): Q<Paging>,
) -> ApiResult<Response> {
    let all = users::list(&caller.state, &caller.user, cid).await?;
    Ok(paging.check()?.respond_part(&uri, all))
}

/// Create a user
#[utoipa::path(post, path = "/api/v1/companies/{cid}/users", tag = "auth", request_body = CreateUser,
    responses((status = 201, description = "The new user", body = User),
        (status = 403, description = "`forbidden`: needs the Admin tool at admin (and Push to accounting to grant it)")))]
#[tracing::instrument(skip_all)]
async fn create_user(
    caller: Caller, Path(cid): Path<i64>, Body(body): Body<CreateUser>,
) -> ApiResult<impl IntoResponse> {
    let user = users::create(&caller.state, &caller.user, cid, body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Change a user (anyone may change their own name, password and email preference)
#[utoipa::path(patch, path = "/api/v1/companies/{cid}/users/{uid}", tag = "auth", request_body = UpdateUser,
    responses((status = 200, description = "The user as they are now", body = User),
        (status = 403, description = "`forbidden`: changing others needs the Admin tool at admin"),
        (status = 409, description = "`conflict`: the user still signs in with a password someone chose who lacks a permission this would give them (the user changes their own password first); or, lowering the user, they would keep signing in as someone with more rights: a person whose password they chose (who changes it first) or an API client whose secret they saw (rotated or revoked first); or they are the company's last full admin")))]
#[tracing::instrument(skip_all)]
async fn update_user(
    caller: Caller, ClientAddr(client): ClientAddr, Path((cid, uid)): Path<(i64, i64)>,
    Body(body): Body<UpdateUser>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        users::update(
            &caller.state,
            &caller.user,
            caller.credential(),
            cid,
            uid,
            body,
            client,
        )
        .await?,
    ))
}
