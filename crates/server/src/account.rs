//! Account security (issue #9): who may change another user's credentials, one-time password
//! reset links, and the current password a person gives to change their own.
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Caller, hash_token};
use crate::mail::reset_link;
use crate::password;
use crate::state::AppState;
use costbridge_storage::credentials::ResetMail;
use costbridge_storage::outbox::{Notice, Person};
use costbridge_storage::users::User;
use time::{Duration, OffsetDateTime};

/// Long enough to reach someone who reads mail once a day, short enough that a forgotten
/// link in an inbox soon grants nothing.
const RESET_TTL: Duration = Duration::hours(24);

/// What the caller may change about `target`, checked before anything is written. Another
/// user's password or permissions need a user manager holding every permission `target`
/// holds; one's own password needs the current one. Returns the caller's own credential (the
/// hash of their session or token) that keeps working after their own password change.
pub async fn authorize_update(
    state: &AppState,
    caller: &Caller,
    target: &User,
    changes_credentials: bool,
    new_password: bool,
    current_password: Option<String>,
) -> ApiResult<Option<String>> {
    if target.id != caller.user.id {
        if changes_credentials {
            caller
                .user
                .permissions
                .authorize_account_change(&target.permissions)
                .map_err(ApiError::forbidden)?;
        }
        return Ok(None);
    }
    if new_password {
        let Some(current) = current_password else {
            return Err(ApiError::field(
                "current_password",
                "is required to change your own password",
            ));
        };
        if !password::verify(current, state.db.password_hash(target.id).await?).await {
            return Err(ApiError::field(
                "current_password",
                "is not your current password",
            ));
        }
    }
    Ok(Some(match &caller.auth {
        Auth::Token(hash) => hash.clone(),
        Auth::Session { id_hash, .. } => id_hash.clone(),
    }))
}

/// A reset link just issued: emailed when mail is on, otherwise its link is shown this once.
pub struct IssuedReset {
    pub expires_at: OffsetDateTime,
    pub emailed: bool,
    pub link: Option<String>,
}

/// Issues a one-time reset link for user `uid`, under the same rule as changing their password.
pub async fn issue_reset(
    state: &AppState,
    caller: &Caller,
    cid: i64,
    uid: i64,
) -> ApiResult<IssuedReset> {
    let company = caller.company(cid)?;
    let target = state.db.user(company, uid).await?;
    caller
        .user
        .permissions
        .authorize_account_change(&target.permissions)
        .map_err(ApiError::forbidden)?;
    let token = password::new_token();
    let expires_at = costbridge_storage::now() + RESET_TTL;
    let mail = match state.mail_on {
        true => Some(ResetMail {
            recipient: target.email.clone(),
            notice: Notice::PasswordReset {
                company: state.db.company_name(company).await?,
                issued_by: Person {
                    name: caller.user.name.clone(),
                    email: caller.user.email.clone(),
                },
                token: token.clone(),
                expires_at,
            },
        }),
        false => None,
    };
    state
        .db
        .create_password_reset(
            company,
            caller.user.id,
            uid,
            &hash_token(&token),
            expires_at,
            mail,
        )
        .await?;
    Ok(IssuedReset {
        expires_at,
        emailed: state.mail_on,
        link: (!state.mail_on).then(|| reset_link(&state.base_url, &token)),
    })
}

/// The user a reset token is for, while it is valid.
pub async fn reset_user(state: &AppState, token: &str) -> ApiResult<Option<User>> {
    Ok(state.db.password_reset_user(&hash_token(token)).await?)
}

/// Sets the password through a reset link, once; every session and token of the user ends.
pub async fn complete_reset(
    state: &AppState,
    token: &str,
    new_password: String,
) -> ApiResult<User> {
    crate::api::auth::check_password(&new_password)?;
    let hash = password::hash(new_password).await?;
    Ok(state
        .db
        .use_password_reset(&hash_token(token), &hash)
        .await?)
}
