//! Xero connections (issue #11): the OAuth sign-in an admin starts from the ERP connection
//! page, the organisation picked, Disconnect, and the grants the connector draws access tokens
//! from. Tokens and the PKCE verifier are stored encrypted with the secrets key; a refresh holds
//! the grant's row lock until the rotated pair is stored ([`Db::refresh_xero_grant`]).
use crate::config::Settings;
use crate::ops::{OpError, OpResult, company, require};
use crate::password::{hash_token, new_token};
use crate::secrets::Cipher;
use crate::state::AppState;
use costbridge_domain::xero::GrantStatus;
use costbridge_erp::xero::oauth::{self, OAuthError, Tenant, Tokens};
use costbridge_erp::xero::{XeroEnv, pace::Pacer};
use costbridge_erp::{Outbound, Secret};
use costbridge_storage::users::User;
use costbridge_storage::xero::{Refreshed, XeroTokens};
use costbridge_storage::{Db, StoreError, now};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

mod grants;

use grants::StoredGrants;

/// A sign-in to Xero must come back within this long.
const SIGN_IN_TTL: Duration = Duration::minutes(10);
pub const CALLBACK_PATH: &str = "/oauth/xero/callback";

/// The Xero connector's environment: the operator's app and the grants stored in `db`.
pub fn env(settings: &Settings, db: &Db, cipher: &Arc<Cipher>, outbound: &Outbound) -> XeroEnv {
    let config = Arc::new(settings.xero.app());
    XeroEnv {
        grants: Arc::new(StoredGrants {
            db: db.clone(),
            cipher: cipher.clone(),
            config: config.clone(),
            outbound: outbound.clone(),
        }),
        config,
        pacer: Arc::new(Pacer::new(settings.xero.limits())),
    }
}

pub(super) fn sealed(cipher: &Cipher, t: &Tokens) -> XeroTokens {
    XeroTokens {
        access_token: cipher.seal(t.access_token.expose()),
        refresh_token: cipher.seal(t.refresh_token.expose()),
        access_expires_at: now() + Duration::seconds(t.expires_in),
    }
}

fn app(state: &AppState) -> OpResult<&XeroEnv> {
    state
        .connectors
        .xero
        .as_ref()
        .filter(|x| !x.config.client_id.is_empty())
        .ok_or_else(|| {
            OpError::NotSupported(
                "Costbridge: this server has no Xero app configured; the operator sets [xero] \
                 client_id and client_secret (README, Xero)"
                    .into(),
            )
        })
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}{CALLBACK_PATH}", state.base_url.trim_end_matches('/'))
}

/// The company's Xero grant as the ERP connection page shows it.
pub struct Status {
    pub organisation: Option<String>,
    /// The organisations to pick from while none is picked.
    pub tenants: Vec<Tenant>,
    pub connected_at: OffsetDateTime,
    pub connected_by: String,
    /// Why the connection needs reconnecting, when it does.
    pub problem: Option<String>,
}

pub async fn status(state: &AppState, caller: &User, cid: i64) -> OpResult<Option<Status>> {
    let company = company(caller, cid)?;
    Ok(state.db.xero_grant(company).await?.map(|g| Status {
        organisation: g.tenant_name.clone().or(g.tenant_id.clone()),
        tenants: serde_json::from_str(&g.tenants).unwrap_or_default(),
        connected_at: g.connected_at,
        connected_by: g.connected_by_name,
        problem: (g.status == GrantStatus::NeedsReconnect)
            .then(|| g.problem.unwrap_or_else(|| "the grant is gone".into())),
    }))
}

/// Starts a sign-in at Xero for the caller's session; the address to send the browser to.
#[tracing::instrument(skip_all, fields(user = caller.id))]
pub async fn start(
    state: &AppState, caller: &User, cid: i64, session_hash: &str,
) -> OpResult<String> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    let xero = app(state)?;
    let sign_in = new_token();
    let verifier = new_token();
    state
        .db
        .put_xero_oauth_state(
            &hash_token(&sign_in),
            company,
            caller.id,
            session_hash,
            &state.cipher.seal(&verifier),
            SIGN_IN_TTL,
        )
        .await?;
    Ok(oauth::authorize_url(
        &xero.config,
        &redirect_uri(state),
        &sign_in,
        &verifier,
    ))
}

/// What Xero sent back to the callback.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// Finishes a sign-in: checks the state against the caller's session, exchanges the code and
/// stores the grant. Returns whether an organisation is still to be picked, or (inner `Err`)
/// why nothing changed, in words for the admin.
#[tracing::instrument(skip_all, fields(user = caller.id))]
pub async fn callback(
    state: &AppState, caller: &User, session_hash: &str, back: &Callback,
) -> OpResult<Result<bool, String>> {
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    let xero = app(state)?;
    match finish(state, caller, session_hash, back, xero).await {
        Ok(pick) => Ok(Ok(pick)),
        Err(Stop::Said(m)) => Ok(Err(m)),
        Err(Stop::Store(e)) => Err(e.into()),
    }
}

/// Why a callback changed nothing: words for the admin, or the database.
enum Stop {
    Said(String),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

fn refused(message: &str) -> Stop {
    Stop::Said(message.to_owned())
}

async fn finish(
    state: &AppState, caller: &User, session_hash: &str, back: &Callback, xero: &XeroEnv,
) -> Result<bool, Stop> {
    let started = match back.state.as_deref() {
        Some(s) => state.db.take_xero_oauth_state(&hash_token(s)).await?,
        None => None,
    };
    let Some(started) = started.filter(|s| {
        s.session_hash == session_hash
            && s.user_id == caller.id
            && s.company_id == caller.company_id
    }) else {
        return Err(refused(
            "Costbridge refused the answer from Xero: it does not belong to a sign-in started \
             in this browser session (state mismatch). Nothing changed; click Connect to Xero \
             to start again.",
        ));
    };
    if started.expires_at < now() {
        return Err(refused(
            "Costbridge refused the answer from Xero: the sign-in took longer than 10 minutes. \
             Nothing changed; click Connect to Xero to start again.",
        ));
    }
    if let Some(error) = &back.error {
        let what = if error == "access_denied" {
            "consent was not given".to_owned()
        } else {
            format!("Xero answered '{error}'")
        };
        return Err(refused(&format!(
            "Xero did not connect: {what}. Nothing changed; click Connect to Xero to try again."
        )));
    }
    let code = back.code.as_deref().unwrap_or_default();
    let verifier = state.cipher.open(&started.verifier).map_err(|e| {
        refused(&format!(
            "Costbridge cannot read the sign-in it started: {e}"
        ))
    })?;
    let tokens = oauth::exchange_code(
        &xero.config,
        &state.connectors.outbound,
        code,
        &verifier,
        &redirect_uri(state),
    )
    .await
    .map_err(|e| match e {
        OAuthError::Gone(_) => refused(
            "Xero refused the sign-in code: it expired or was already used. Nothing changed; \
             click Connect to Xero to start again.",
        ),
        e => refused(&format!(
            "Xero did not connect: {e}. Nothing changed; try again."
        )),
    })?;
    let tenants = oauth::connections(
        &xero.config,
        &state.connectors.outbound,
        &tokens.access_token,
    )
    .await
    .map_err(|e| {
        refused(&format!(
            "Xero did not list the organisations: {e}. Try again."
        ))
    })?;
    let only = match tenants.as_slice() {
        [] => {
            return Err(refused(
                "Xero's answer covers no organisation: sign in again and tick the organisation \
                 to connect.",
            ));
        }
        [one] => Some((
            one.tenant_id.as_str(),
            one.tenant_name.as_deref().unwrap_or(one.tenant_id.as_str()),
        )),
        _ => None,
    };
    state
        .db
        .save_xero_grant(
            started.company_id,
            caller.id,
            &serde_json::to_string(&tenants).unwrap_or_else(|_| "[]".into()),
            only,
            &sealed(&state.cipher, &tokens),
        )
        .await?;
    Ok(only.is_none())
}

/// The admin picks one of the grant's organisations.
#[tracing::instrument(skip_all, fields(user = caller.id))]
pub async fn pick(state: &AppState, caller: &User, cid: i64, tenant_id: &str) -> OpResult<()> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    let status = status(state, caller, cid).await?.ok_or(OpError::NotFound)?;
    let tenant = status
        .tenants
        .iter()
        .find(|t| t.tenant_id == tenant_id)
        .ok_or_else(|| {
            OpError::field(
                "tenant_id",
                "is not an organisation this Xero connection covers",
            )
        })?;
    state
        .db
        .pick_xero_tenant(
            company,
            caller.id,
            &tenant.tenant_id,
            tenant.tenant_name.as_deref().unwrap_or(&tenant.tenant_id),
        )
        .await?;
    Ok(())
}

/// Revokes the grant at Xero and forgets it. A grant Xero already gave up is just forgotten.
#[tracing::instrument(skip_all, fields(user = caller.id))]
pub async fn disconnect(state: &AppState, caller: &User, cid: i64) -> OpResult<()> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    let xero = app(state)?;
    // Under the grant's lock, so no refresh rotates the token being revoked.
    let revoked = state
        .db
        .refresh_xero_grant(company, |g| async move {
            let outcome = match state.cipher.open(&g.refresh_token) {
                // A token Costbridge cannot read cannot be revoked either: just forget it.
                Err(_) => Ok(()),
                Ok(token) => {
                    let token = Secret::from(token);
                    match oauth::revoke(&xero.config, &state.connectors.outbound, &token).await {
                        Ok(()) | Err(OAuthError::Gone(_)) => Ok(()),
                        Err(e) => Err(OpError::Erp(format!(
                            "Xero could not revoke the connection ({e}); it stays connected. \
                             Try again."
                        ))),
                    }
                }
            };
            Ok::<_, StoreError>(Refreshed::Kept(outcome))
        })
        .await?;
    if let Some(outcome) = revoked {
        outcome?;
        state.db.delete_xero_grant(company, caller.id).await?;
    }
    Ok(())
}
