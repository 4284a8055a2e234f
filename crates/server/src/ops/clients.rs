//! Machine clients (README, Integrations): an admin makes one for a system, with permissions
//! never above the admin's own; the system trades its id and secret for short-lived tokens.
use super::{OpError, OpResult, company, require, text};
use crate::password::{hash_token, random_hex};
use crate::state::AppState;
use costbridge_domain::Permissions;
use costbridge_storage::clients::{ApiClient, NewClient};
use costbridge_storage::users::User;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Instant;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Nightly ERP sync",
    "permissions": {"admin_tool": "read_only", "erp_integrations": "standard", "can_push_to_accounting": false}}))]
pub struct CreateClient {
    /// What the client is for, as admins will see it in the audit log.
    pub name: String,
    /// What its tokens may do: never more than the creating admin holds.
    pub permissions: Permissions,
}

/// A client with its secret, answered once: at creation and at rotation.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": 7, "client_id": "cbc_3f9a1c2e4b5d6a7f", "name": "Nightly ERP sync",
    "permissions": {"admin_tool": "read_only", "erp_integrations": "standard", "can_push_to_accounting": false},
    "created_by": "admin@demo.example", "created_at": "2026-11-30T15:00:00Z", "rotated_at": null, "revoked_at": null,
    "client_secret": "cbs_0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"}))]
pub struct WithSecret {
    #[serde(flatten)]
    pub client: ApiClient,
    /// Shown this once: store it now (Costbridge keeps only its hash).
    pub client_secret: String,
}

fn new_secret() -> (String, String) {
    let secret = random_hex("cbs_", 32);
    let hash = hash_token(&secret);
    (secret, hash)
}

/// Clients are managed by user managers, like the users whose rights they carry.
fn manager(caller: &User, cid: i64) -> OpResult<i64> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    Ok(company)
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn list(state: &AppState, caller: &User, cid: i64) -> OpResult<Vec<ApiClient>> {
    let company = manager(caller, cid)?;
    Ok(state.db.clients(company).await?)
}

/// Makes a client holding `permissions`: the granting rule of users (Push to accounting only
/// from an admin who holds it), and nothing the caller does not hold themselves.
#[tracing::instrument(skip(state, caller, body), fields(user = caller.id, name = %body.name))]
pub async fn create(
    state: &AppState, caller: &User, cid: i64, body: CreateClient,
) -> OpResult<WithSecret> {
    let company = manager(caller, cid)?;
    let p = body.permissions;
    let none = Permissions {
        can_push_to_accounting: false,
        ..p
    };
    caller
        .permissions
        .authorize_change(&none, &p)
        .map_err(OpError::Forbidden)?;
    let name = text("name", &body.name, 100)?;
    let client_id = random_hex("cbc_", 12);
    let (client_secret, secret_hash) = new_secret();
    let client = state
        .db
        .create_client(
            company,
            caller.id,
            &NewClient {
                name: &name,
                client_id: &client_id,
                secret_hash: &secret_hash,
                permissions: p,
            },
        )
        .await?;
    Ok(WithSecret {
        client,
        client_secret,
    })
}

/// A new secret; the old one and every token bought with it stop working at once. The secret
/// puts the client's rights in the caller's hands, so only an admin holding all of them may
/// take it, as for another user's password: rotating a client made by a fuller admin handed a
/// plain admin its Push to accounting.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn rotate(state: &AppState, caller: &User, cid: i64, id: i64) -> OpResult<WithSecret> {
    let company = manager(caller, cid)?;
    let client = state.db.client(company, id).await?;
    caller
        .permissions
        .authorize_account_change(&client.permissions)
        .map_err(OpError::Forbidden)?;
    let (client_secret, secret_hash) = new_secret();
    let client = state
        .db
        .rotate_client(company, caller.id, id, &secret_hash)
        .await?;
    Ok(WithSecret {
        client,
        client_secret,
    })
}

#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn revoke(state: &AppState, caller: &User, cid: i64, id: i64) -> OpResult<ApiClient> {
    let company = manager(caller, cid)?;
    Ok(state.db.revoke_client(company, caller.id, id).await?)
}

/// Why `POST /oauth/token` gave no token.
#[derive(Debug)]
pub enum TokenRefusal {
    /// Unknown client, wrong secret or revoked client (one answer for all three).
    BadClient,
    /// Too many wrong secrets for this client id from this address: the seconds to wait.
    Throttled(u64),
    Store(costbridge_storage::StoreError),
}

/// A token for a client that proved its secret. Wrong secrets count under the sign-in throttle
/// (the client id in place of an email), so a secret cannot be guessed faster than a password.
#[tracing::instrument(skip(state, secret))]
pub async fn issue_token(
    state: &AppState, client_id: &str, secret: &str, from: IpAddr,
) -> Result<(String, i64), TokenRefusal> {
    let key = format!("client {client_id}");
    let throttle = &state.sign_in;
    // Held until the secret is decided (the function's end).
    let _attempt = throttle
        .check(&key, from, Instant::now())
        .map_err(|locked| {
            tracing::warn!(client = %from, "client token refused: throttled");
            TokenRefusal::Throttled(locked.retry_after.as_secs().max(1))
        })?;
    let found = state
        .db
        .client_secret(client_id)
        .await
        .map_err(TokenRefusal::Store)?;
    let sent = hash_token(secret);
    let ok = found.as_ref().is_some_and(|c| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            c.secret_hash.as_bytes(),
            sent.as_bytes(),
        ))
    });
    let Some(client) = found.filter(|_| ok) else {
        throttle.failed(&key, from, Instant::now());
        tracing::warn!(client = %from, "client token refused: bad client id or secret");
        return Err(TokenRefusal::BadClient);
    };
    throttle.succeeded(&key, from, Instant::now());
    let minutes = state.api.client_token_minutes.max(1);
    let token = crate::password::new_token();
    let expires = costbridge_storage::now() + time::Duration::minutes(minutes);
    // The client was rotated or revoked while its secret was checked.
    if !state
        .db
        .insert_client_token(client.user_id, &hash_token(&token), expires, &sent)
        .await
        .map_err(TokenRefusal::Store)?
    {
        return Err(TokenRefusal::BadClient);
    }
    tracing::info!(company = client.company_id, "client token issued");
    Ok((token, minutes * 60))
}
