//! Signing in and the company's users: who may grant what, and the checks on email, name and
//! password.
use super::{Fields, OpError, OpResult, company, nullable, present, require, text};
use crate::password;
use crate::state::AppState;
use costbridge_domain::Permissions;
use costbridge_storage::users::{NewUser, User, UserPatch};
use serde::Deserialize;
use std::net::IpAddr;

/// Who signed in, and the password hash their password matched.
pub struct SignedIn {
    pub user: User,
    /// A session or token is stored only while the user still has it (`Db::insert_token`).
    pub password_hash: String,
}

/// A sign-in whose session or token could not be stored because the password changed while
/// it was checked: audited as refused (the throttle's audit row said it signed in), and
/// answered as a wrong password, which it now is.
pub async fn changed_meanwhile(state: &AppState, signed_in: &SignedIn) -> OpError {
    let after = serde_json::json!({"reason": "the password changed while it was checked"});
    let user = &signed_in.user;
    match state
        .db
        .audit_sign_in(&user.email, Some(user.id), "user.sign_in_refused", after)
        .await
    {
        Ok(()) => OpError::BadCredentials,
        Err(e) => e.into(),
    }
}

/// Checks an email and password from `client` under the sign-in throttle; shared by API
/// tokens and the web sign-in.
#[tracing::instrument(skip(state, password))]
pub async fn authenticate(
    state: &AppState, email: &str, password: String, client: IpAddr,
) -> OpResult<SignedIn> {
    crate::throttle::sign_in(state, email, password, client).await
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn list(state: &AppState, caller: &User, cid: i64) -> OpResult<Vec<User>> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_read_codes(), "admin_tool=read_only")?;
    Ok(state.db.users(company).await?)
}

/// One user of the caller's company: oneself, or anyone for those who may read the list.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn get(state: &AppState, caller: &User, cid: i64, uid: i64) -> OpResult<User> {
    let company = company(caller, cid)?;
    if uid != caller.id {
        require(caller.permissions.can_read_codes(), "admin_tool=read_only")?;
    }
    Ok(state.db.user(company, uid).await?)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "estimator@acme.example", "name": "Eve Estimator", "password": "a long passphrase",
    "permissions": {"admin_tool": "standard", "erp_integrations": "read_only", "can_push_to_accounting": false}}))]
pub struct CreateUser {
    pub email: String,
    pub name: String,
    pub password: String,
    pub permissions: Permissions,
}

pub fn check_email(email: &str) -> OpResult<String> {
    let email = text("email", email, 254)?;
    let valid = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.contains(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(OpError::field("email", "is not an email address"))
    }
}

pub fn check_password(pw: &str) -> OpResult<()> {
    let n = pw.chars().count();
    if n < 10 {
        return Err(OpError::field("password", "must be at least 10 characters"));
    }
    if n > 512 {
        return Err(OpError::field("password", "is longer than 512 characters"));
    }
    Ok(())
}

/// The argon2 hash of a password that passed [`check_password`].
pub async fn hash(password: String) -> OpResult<String> {
    password::hash(password)
        .await
        .map_err(|e| OpError::Broken(e.to_string()))
}

/// Adds a user to the caller's company, under the rule for who may grant what.
#[tracing::instrument(skip(state, caller, body), fields(user = caller.id, email = %body.email))]
pub async fn create(state: &AppState, caller: &User, cid: i64, body: CreateUser) -> OpResult<User> {
    let company = company(caller, cid)?;
    let none = Permissions {
        can_push_to_accounting: false,
        ..body.permissions
    };
    caller
        .permissions
        .authorize_change(&none, &body.permissions)
        .map_err(OpError::Forbidden)?;
    let mut fields = Fields::new();
    let Some((name, email)) = check_person(&mut fields, &body.name, &body.email, &body.password)?
    else {
        return Err(OpError::Invalid(fields));
    };
    let hash = hash(body.password).await?;
    Ok(state
        .db
        .create_user(
            company,
            caller.id,
            &NewUser {
                email: &email,
                name: &name,
                password_hash: &hash,
                permissions: body.permissions,
            },
        )
        .await?)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Eve Estimator", "digest_emails": true}))]
pub struct UpdateUser {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub password: Option<String>,
    /// Required with `password` when changing one's own.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub current_password: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub permissions: Option<Permissions>,
    #[serde(default, deserialize_with = "nullable")]
    pub digest_emails: Option<Option<bool>>,
}

/// Changes a user; anyone may change their own name, password (giving the current one) and
/// email preference. `credential` is the hash of the session or token the caller uses: after
/// their own password change it is the one that keeps working.
#[tracing::instrument(skip(state, caller, credential, body), fields(user = caller.id))]
#[allow(clippy::too_many_arguments)]
pub async fn update(
    state: &AppState, caller: &User, credential: &str, cid: i64, uid: i64, body: UpdateUser,
    client: IpAddr,
) -> OpResult<User> {
    let company = company(caller, cid)?;
    let target = state.db.user(company, uid).await?;
    let own = uid == caller.id;
    let keep_credential = super::account::authorize_update(
        state,
        caller,
        credential,
        &target,
        body.password.is_some() || body.permissions.is_some_and(|p| p != target.permissions),
        body.password.is_some(),
        body.current_password,
        client,
    )
    .await?;
    // Permissions follow the granting rule; anything else about another user is for admins.
    // Permissions sent unchanged (as the page's form sends them) are no grant, and are not
    // written either: written, they undid a demotion committed since `target` was read.
    let permissions = body.permissions.filter(|p| *p != target.permissions);
    if let Some(p) = permissions {
        caller
            .permissions
            .authorize_change(&target.permissions, &p)
            .map_err(OpError::Forbidden)?;
    } else if !own {
        require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    }
    let name = body
        .name
        .as_deref()
        .map(|n| text("name", n, 200))
        .transpose()?;
    let password_hash = match body.password {
        Some(pw) => {
            check_password(&pw)?;
            Some(hash(pw).await?)
        }
        None => None,
    };
    let digest_emails = match body.digest_emails {
        Some(None) => return Err(OpError::field("digest_emails", "must be true or false")),
        other => other.flatten(),
    };
    let patch = UserPatch {
        name,
        password_hash,
        permissions,
        digest_emails,
        keep_credential,
        // An admin who types someone's password has chosen it (the store judges them).
        password_set_by: (!own).then_some(caller.id),
    };
    Ok(state.db.update_user(company, caller.id, uid, patch).await?)
}

/// A new company and its first admin (the setup page and `costbridge bootstrap`), checked as
/// one: every problem is reported at its field. Returns the trimmed company name, person's name
/// and email.
pub fn check_founding(
    company: &str, name: &str, email: &str, password: &str,
) -> OpResult<(String, String, String)> {
    let mut fields = Fields::new();
    let company = keep(&mut fields, text("company", company, 200))?;
    let person = check_person(&mut fields, name, email, password)?;
    match (company, person) {
        (Some(company), Some((name, email))) => Ok((company, name, email)),
        _ => Err(OpError::Invalid(fields)),
    }
}

/// A new person's name, email and password, checked as one: every problem goes to `fields`
/// (adding a user reported only the first). The trimmed name and email when all are good.
fn check_person(
    fields: &mut Fields, name: &str, email: &str, password: &str,
) -> OpResult<Option<(String, String)>> {
    let name = keep(fields, text("name", name, 200))?;
    let email = keep(fields, check_email(email))?;
    let password = keep(fields, check_password(password))?;
    Ok(match (name, email, password) {
        (Some(name), Some(email), Some(())) => Some((name, email)),
        _ => None,
    })
}

/// A check's value, or its field errors added to `fields`; any other error ends the checks.
fn keep<T>(fields: &mut Fields, r: OpResult<T>) -> OpResult<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(OpError::Invalid(f)) => {
            for (k, v) in f {
                fields.entry(k).or_default().extend(v);
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// First-run setup: the first company and its first user (admin everywhere, with Push to
/// accounting). Returns the user's id.
#[tracing::instrument(skip(state, password))]
pub async fn setup(
    state: &AppState, company: &str, name: &str, email: &str, password: String,
) -> OpResult<i64> {
    let (company, name, email) = check_founding(company, name, email, &password)?;
    let hash = hash(password).await?;
    let admin = NewUser {
        email: &email,
        name: &name,
        password_hash: &hash,
        permissions: Permissions::FULL,
    };
    let (_, user_id) = state.db.create_company(&company, &admin).await?;
    Ok(user_id)
}
