//! QuickBooks Desktop through the QuickBooks Web Connector: the company's login (a user name
//! and a generated password, shown once and stored hashed), its `.qwc` file, what QBWC last
//! told, and the GL accounts QuickBooks last reported. The SOAP sessions are in `session`.
mod rounds;
pub mod session;

use super::connection::{Connection, connection};
use super::{OpError, OpResult, company, require};
use crate::password;
use crate::state::AppState;
use costbridge_erp::GlAccount;
use costbridge_erp::qbwc::soap::{Qwc, qwc};
use costbridge_storage::qbwc::QbwcLogin;
use costbridge_storage::users::User;
use rand::RngCore;
use serde::Serialize;
use time::OffsetDateTime;

/// How often QBWC runs the session by itself (the user may change it in QBWC).
const EVERY_MINUTES: u32 = 15;

/// The Web Connector's user name for a company: stable, so a new password needs no new file.
pub fn user_name(company: i64) -> String {
    format!("costbridge-{company}")
}

/// The company's connection, which must be the Web Connector's.
async fn qbwc_connection(state: &AppState, company: i64) -> OpResult<Connection> {
    let conn = connection(state, company)
        .await?
        .ok_or(OpError::NoConnection)?;
    if !conn.settings.pulled() {
        return Err(OpError::NotSupported(format!(
            "Costbridge: the company's ERP connection is '{}', not the QuickBooks Web Connector; save the connection with the connector 'qbwc' first",
            conn.settings.kind()
        )));
    }
    Ok(conn)
}

/// What the connection page and `GET …/erp_connection/qbwc` show.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = QbwcStatus, example = json!({"user_name": "costbridge-1", "has_password": true, "app_url": "https://costbridge.acme.example/qbwc",
    "last_seen_at": "2026-11-30T15:00:00Z", "quickbooks_version": "34.0", "company_file": "C:\\Acme.QBW", "last_error": null,
    "accounts_as_of": "2026-11-30T15:00:00Z", "waiting_codes": 0, "sync_requested": false, "last_sync": null, "last_sync_at": null}))]
pub struct Status {
    pub user_name: String,
    /// Whether a password was made (it is never shown again).
    pub has_password: bool,
    pub app_url: String,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub last_seen_at: Option<OffsetDateTime>,
    #[schema(required = true)]
    pub quickbooks_version: Option<String>,
    #[schema(required = true)]
    pub company_file: Option<String>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub accounts_as_of: Option<OffsetDateTime>,
    /// Codes exported and waiting for the Web Connector's next run.
    pub waiting_codes: i64,
    /// Sync from ERP was asked for and waits for the next run.
    pub sync_requested: bool,
    /// The last Sync from ERP's summary (`created`, `updated`, `unchanged`, `conflicts`).
    #[schema(value_type = Option<Object>)]
    #[schema(required = true)]
    pub last_sync: Option<serde_json::Value>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub last_sync_at: Option<OffsetDateTime>,
}

fn app_url(state: &AppState) -> String {
    format!("{}/qbwc", state.base_url.trim_end_matches('/'))
}

/// The Web Connector's state for an admin or approver of the company.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn status(state: &AppState, caller: &User, cid: i64) -> OpResult<Status> {
    let company = company(caller, cid)?;
    require(
        caller.permissions.can_manage_users() || caller.permissions.can_read_erp_queue(),
        "admin_tool=admin",
    )?;
    qbwc_connection(state, company).await?;
    let login: Option<QbwcLogin> = state.db.qbwc_login(company).await?;
    let waiting_codes = state.db.qbwc_remaining(company).await?;
    Ok(match login {
        Some(l) => Status {
            user_name: l.user_name,
            has_password: true,
            app_url: app_url(state),
            last_seen_at: l.last_seen_at,
            quickbooks_version: l.qb_version,
            company_file: l.company_file,
            last_error: l.last_error,
            accounts_as_of: l.accounts_at,
            waiting_codes,
            sync_requested: l.pull_requested_by.is_some(),
            last_sync: l.last_pull.and_then(|t| serde_json::from_str(&t).ok()),
            last_sync_at: l.last_pull_at,
        },
        None => Status {
            user_name: user_name(company),
            has_password: false,
            app_url: app_url(state),
            last_seen_at: None,
            quickbooks_version: None,
            company_file: None,
            last_error: None,
            accounts_as_of: None,
            waiting_codes,
            sync_requested: false,
            last_sync: None,
            last_sync_at: None,
        },
    })
}

/// A Web Connector password, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = QbwcPassword, example = json!({"user_name": "costbridge-1", "password": "q7…"}))]
pub struct NewPassword {
    /// The user name the Web Connector signs in with.
    pub user_name: String,
    pub password: String,
}

/// A new Web Connector password for the company (replacing any older one, whose sessions
/// end).
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn new_password(state: &AppState, caller: &User, cid: i64) -> OpResult<NewPassword> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    qbwc_connection(state, company).await?;
    let secret = password::new_token();
    let hash = password::hash(secret.clone())
        .await
        .map_err(|e| OpError::Broken(e.to_string()))?;
    let user = user_name(company);
    state
        .db
        .set_qbwc_password(company, caller.id, &user, &hash)
        .await?;
    Ok(NewPassword {
        user_name: user,
        password: secret,
    })
}

/// A GUID in the braces QBWC writes (`{xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx}`), random.
fn guid() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode_upper(b);
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The company's `.qwc` file: `(file name, content)`, with fresh OwnerID and FileID.
#[tracing::instrument(skip(state, caller), fields(user = caller.id))]
pub async fn qwc_file(state: &AppState, caller: &User, cid: i64) -> OpResult<(String, String)> {
    let company = company(caller, cid)?;
    require(caller.permissions.can_manage_users(), "admin_tool=admin")?;
    qbwc_connection(state, company).await?;
    let name = state.db.company_name(company).await?;
    let (owner, file) = (guid(), guid());
    let support = format!("{}/", state.base_url.trim_end_matches('/'));
    let text = qwc(&Qwc {
        company: &name,
        app_url: &app_url(state),
        support_url: &support,
        user_name: &user_name(company),
        owner_id: &owner,
        file_id: &file,
        every_minutes: EVERY_MINUTES,
    });
    Ok((format!("costbridge-company-{company}.qwc"), text))
}

/// The GL accounts QuickBooks reported at the Web Connector's last session, and when.
pub async fn accounts(
    state: &AppState, company: i64,
) -> OpResult<(Vec<GlAccount>, Option<OffsetDateTime>)> {
    let login = state.db.qbwc_login(company).await?;
    let Some((Some(text), at)) = login.map(|l| (l.accounts, l.accounts_at)) else {
        return Err(OpError::Erp(
            "QuickBooks has not reported its accounts yet: they arrive at the QuickBooks Web Connector's next run (in QBWC, tick Costbridge and press Update Selected)".into(),
        ));
    };
    let list = serde_json::from_str(&text).map_err(|e| {
        OpError::Broken(format!(
            "the stored QuickBooks accounts are unreadable: {e}"
        ))
    })?;
    Ok((list, at))
}

/// The connection test of a pulled connection: what QBWC last did.
pub async fn test(state: &AppState, company: i64) -> OpResult<(bool, String)> {
    let login = state.db.qbwc_login(company).await?;
    let zone = super::company::zone(state, company).await?;
    Ok(match login {
        None => (
            false,
            "Costbridge: no QuickBooks Web Connector password yet. Download the .qwc file, make a password, add the file to the Web Connector and type the password there.".into(),
        ),
        Some(QbwcLogin { last_seen_at: None, .. }) => (
            false,
            "Costbridge: the QuickBooks Web Connector has not connected yet. Add the .qwc file to it and press Update Selected.".into(),
        ),
        Some(l) => match l.last_error {
            Some(e) => (false, format!("The QuickBooks Web Connector's last run failed: {e}")),
            None => (
                true,
                format!(
                    "The QuickBooks Web Connector last connected at {}{}.",
                    l.last_seen_at
                        .map(|t| zone.show(t))
                        .unwrap_or_default(),
                    l.qb_version
                        .map(|v| format!(" ({v})"))
                        .unwrap_or_default()
                ),
            ),
        },
    })
}

/// When the Web Connector last connected, in the company's time zone.
async fn last_seen(state: &AppState, company: i64) -> OpResult<Option<String>> {
    let seen = state
        .db
        .qbwc_login(company)
        .await?
        .and_then(|l| l.last_seen_at);
    let zone = super::company::zone(state, company).await?;
    Ok(seen.map(|t| zone.show(t)))
}

/// For a company whose ERP pulls its work: what its waiting export jobs wait for.
pub async fn waiting_line(state: &AppState, company: i64) -> OpResult<Option<String>> {
    if !connection(state, company)
        .await?
        .is_some_and(|c| c.settings.pulled())
    {
        return Ok(None);
    }
    let seen = last_seen(state, company).await?;
    Ok(Some(match seen {
        Some(t) => format!(
            "Waiting for the QuickBooks Web Connector (last seen {t}): the codes go to QuickBooks at its next run."
        ),
        None => "Waiting for the QuickBooks Web Connector, which has not connected yet: add the .qwc file from Company settings → ERP connection to it.".into(),
    }))
}

/// Sync from ERP for the Web Connector: QuickBooks is asked at the next run (it cannot be
/// called); says so in words for the person who asked.
pub async fn request_pull(state: &AppState, company: i64, actor: i64) -> OpResult<String> {
    if !state.db.request_qbwc_pull(company, actor).await? {
        return Err(OpError::Conflict(
            "Costbridge: the QuickBooks Web Connector is not set up yet; make its password and add the .qwc file to it first (Company settings → ERP connection)".into(),
        ));
    }
    let seen = last_seen(state, company).await?;
    Ok(format!(
        "Costbridge asked for QuickBooks' service items: they arrive at the QuickBooks Web Connector's next run{}. The result shows under Company settings → ERP connection and in the audit log.",
        seen.map(|t| format!(" (last seen {t})"))
            .unwrap_or_default()
    ))
}
