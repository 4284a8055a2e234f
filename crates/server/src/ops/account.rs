//! Account security: who may change another user's credentials, one-time password
//! reset links, and the current password a person gives to change their own.
use super::users::{check_password, hash};
use super::{OpError, OpResult, company};
use crate::mail::reset_link;
use crate::password::{self, hash_token};
use crate::state::AppState;
use costbridge_storage::credentials::ResetMail;
use costbridge_storage::outbox::{Notice, Person};
use costbridge_storage::users::User;
use serde_json::json;
use std::net::IpAddr;
use std::time::Instant;
use time::{Duration, OffsetDateTime};

/// Long enough to reach someone who reads mail once a day, short enough that a forgotten
/// link in an inbox soon grants nothing.
const RESET_TTL: Duration = Duration::hours(24);

/// What the caller may change about `target`, checked before anything is written. Another
/// user's password or permissions need a user manager holding every permission `target`
/// holds; one's own password needs the current one, guessed under the sign-in throttle (from
/// `client`) like a sign-in: otherwise a stolen token could try 600 passwords a minute and
/// learn the one it was meant never to get. Returns the caller's own credential
/// (`credential`: the hash of the session or token they call with) that keeps working after
/// their own password change.
#[allow(clippy::too_many_arguments)]
pub async fn authorize_update(
    state: &AppState, caller: &User, credential: &str, target: &User, changes_credentials: bool,
    new_password: bool, current_password: Option<String>, client: IpAddr,
) -> OpResult<Option<String>> {
    if target.id != caller.id {
        if changes_credentials {
            caller
                .permissions
                .authorize_account_change(&target.permissions)
                .map_err(OpError::Forbidden)?;
        }
        return Ok(None);
    }
    if new_password {
        let Some(current) = current_password else {
            return Err(OpError::field(
                "current_password",
                "is required to change your own password",
            ));
        };
        let throttle = &state.sign_in;
        // Held until the password is decided.
        let _attempt = throttle
            .check(&target.email, client, Instant::now())
            .map_err(|locked| OpError::RateLimited(locked.retry_after.as_secs().max(1)))?;
        if !password::verify(current, state.db.password_hash(target.id).await?).await {
            throttle.failed(&target.email, client, Instant::now());
            let after = json!({"client": client.to_string(), "via": "current_password"});
            state
                .db
                .audit_sign_in(
                    &target.email,
                    Some(target.id),
                    "user.current_password_refused",
                    after,
                )
                .await?;
            return Err(OpError::field(
                "current_password",
                "is not your current password",
            ));
        }
        throttle.succeeded(&target.email, client, Instant::now());
    }
    Ok(Some(credential.to_owned()))
}

/// A reset link just issued: emailed when mail is on, otherwise its link is shown this once.
pub struct IssuedReset {
    pub expires_at: OffsetDateTime,
    pub emailed: bool,
    pub link: Option<String>,
}

/// Issues a one-time reset link for user `uid`, under the same rule as changing their password.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn issue_reset(
    state: &AppState, caller: &User, cid: i64, uid: i64,
) -> OpResult<IssuedReset> {
    let company = company(caller, cid)?;
    let target = state.db.user(company, uid).await?;
    caller
        .permissions
        .authorize_account_change(&target.permissions)
        .map_err(OpError::Forbidden)?;
    let token = password::new_token();
    let expires_at = costbridge_storage::now() + RESET_TTL;
    let mail = match state.mail_on {
        true => Some(ResetMail {
            recipient: target.email.clone(),
            notice: Notice::PasswordReset {
                company: state.db.company_name(company).await?,
                issued_by: Person {
                    name: caller.name.clone(),
                    email: caller.email.clone(),
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
            caller.id,
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
pub async fn reset_user(state: &AppState, token: &str) -> OpResult<Option<User>> {
    Ok(state.db.password_reset_user(&hash_token(token)).await?)
}

/// Sets the password through a reset link, once; every session and token of the user ends.
pub async fn complete_reset(state: &AppState, token: &str, new_password: String) -> OpResult<User> {
    // The link first: hashing costs a core and 19 MiB, and anyone may post here without
    // signing in, so a made-up token must not buy a hash. (The write checks it again.)
    if reset_user(state, token).await?.is_none() {
        return Err(costbridge_storage::credentials::invalid_reset().into());
    }
    check_password(&new_password)?;
    let hash = hash(new_password).await?;
    Ok(state
        .db
        .use_password_reset(&hash_token(token), &hash)
        .await?)
}
