//! Tokens, the caller, and the company's users.
use super::{nullable, text};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Body, Caller, hash_token};
use crate::password;
use crate::state::AppState;
use crate::throttle::ClientAddr;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use costbridge_domain::Permissions;
use costbridge_storage::users::{NewUser, User, UserPatch};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;

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

/// Checks an email and password from `client`, under the sign-in throttle; shared by tokens
/// and web sign-in.
pub async fn authenticate(
    state: &AppState,
    email: &str,
    password: String,
    client: IpAddr,
) -> ApiResult<User> {
    crate::throttle::sign_in(state, email, password, client).await
}

/// Revokes the calling token; called with the session cookie, it ends the session instead.
async fn revoke_token(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    match &caller.auth {
        Auth::Token(hash) => state.db.delete_token(hash).await?,
        Auth::Session { id_hash, .. } => state.db.delete_session(id_hash).await?,
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn me(caller: Caller) -> Json<serde_json::Value> {
    let u = &caller.user;
    Json(
        json!({"id": u.id, "email": u.email, "name": u.name, "company_id": u.company_id, "permissions": u.permissions,
                "digest_emails": u.digest_emails}),
    )
}

async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
) -> ApiResult<Json<Vec<User>>> {
    let company = caller.company(cid)?;
    caller.require(
        caller.user.permissions.can_read_codes(),
        "admin_tool=read_only",
    )?;
    Ok(Json(state.db.users(company).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub name: String,
    pub password: String,
    pub permissions: Permissions,
}

pub fn check_email(email: &str) -> ApiResult<String> {
    let email = text("email", email, 254)?;
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.contains(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(ApiError::field("email", "is not an email address"))
    }
}

pub fn check_password(pw: &str) -> ApiResult<()> {
    let n = pw.chars().count();
    if n < 10 {
        return Err(ApiError::field(
            "password",
            "must be at least 10 characters",
        ));
    }
    if n > 512 {
        return Err(ApiError::field("password", "is longer than 512 characters"));
    }
    Ok(())
}

async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(cid): Path<i64>,
    Body(body): Body<CreateUser>,
) -> ApiResult<impl IntoResponse> {
    let user = create_user_as(&state, &caller, cid, body).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Adds a user to the caller's company, under the rule for who may grant what.
pub async fn create_user_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    body: CreateUser,
) -> ApiResult<User> {
    let company = caller.company(cid)?;
    let none = Permissions {
        can_push_to_accounting: false,
        ..body.permissions
    };
    caller
        .user
        .permissions
        .authorize_change(&none, &body.permissions)
        .map_err(ApiError::forbidden)?;
    let email = check_email(&body.email)?;
    let name = text("name", &body.name, 200)?;
    check_password(&body.password)?;
    let hash = password::hash(body.password).await?;
    Ok(state
        .db
        .create_user(
            company,
            caller.user.id,
            &NewUser {
                email: &email,
                name: &name,
                password_hash: &hash,
                permissions: body.permissions,
            },
        )
        .await?)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub name: Option<String>,
    pub password: Option<String>,
    /// Required with `password` when changing one's own.
    pub current_password: Option<String>,
    pub permissions: Option<Permissions>,
    #[serde(default, deserialize_with = "nullable")]
    pub digest_emails: Option<Option<bool>>,
}

async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    Path((cid, uid)): Path<(i64, i64)>,
    Body(body): Body<UpdateUser>,
) -> ApiResult<Json<User>> {
    Ok(Json(update_user_as(&state, &caller, cid, uid, body).await?))
}

/// Changes a user; anyone may change their own name, password (giving the current one) and
/// email preference.
pub async fn update_user_as(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    uid: i64,
    body: UpdateUser,
) -> ApiResult<User> {
    let company = caller.company(cid)?;
    let target = state.db.user(company, uid).await?;
    let own = uid == caller.user.id;
    let keep_credential = crate::account::authorize_update(
        state,
        caller,
        &target,
        body.password.is_some() || body.permissions.is_some_and(|p| p != target.permissions),
        body.password.is_some(),
        body.current_password,
    )
    .await?;
    // Permissions follow the granting rule; anything else about another user is for admins.
    if let Some(p) = &body.permissions {
        caller
            .user
            .permissions
            .authorize_change(&target.permissions, p)
            .map_err(ApiError::forbidden)?;
    } else if !own {
        caller.require(
            caller.user.permissions.can_manage_users(),
            "admin_tool=admin",
        )?;
    }
    let name = body
        .name
        .as_deref()
        .map(|n| text("name", n, 200))
        .transpose()?;
    let password_hash = match body.password {
        Some(pw) => {
            check_password(&pw)?;
            Some(password::hash(pw).await?)
        }
        None => None,
    };
    let digest_emails = match body.digest_emails {
        Some(None) => return Err(ApiError::field("digest_emails", "must be true or false")),
        other => other.flatten(),
    };
    let patch = UserPatch {
        name,
        password_hash,
        permissions: body.permissions,
        digest_emails,
        keep_credential,
    };
    Ok(state
        .db
        .update_user(company, caller.user.id, uid, patch)
        .await?)
}
