//! The Xero connector: each cost code is a Xero *Item* in the organisation the company
//! connected with OAuth 2.0.
//!
//! The operator registers one Xero app (`[xero]` in the server's settings: [`XeroConfig`]); a
//! company's connection stores nothing of its own (its settings are empty): the grant — the
//! organisation and the encrypted tokens — is kept by the server, which hands the connector a
//! fresh access token through [`Grants`], refreshing it under a database lock.
//!
//! An export batch costs two calls: one `GET /Items` to look every item up by code (so a retried
//! or resumed export creates nothing twice), then one `POST /Items?summarizeErrors=false`
//! creating and updating the batch, where each item answers on its own. Calls are paced per
//! organisation ([`pace`]); a `429` postpones the job by Xero's `Retry-After` without failing it.
pub mod items;
pub mod oauth;
pub mod pace;

use crate::{
    Connector, ConnectorError, Env, ErpCode, ExportContext, Field, FieldErrors, GlAccount,
    LineResult, Lines, Secret,
};
use items::{Accounts, Items, Step};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Items per POST: 500 keeps a request far below Xero's 3.5 MB limit, and a 10,000-code export
/// at 40 calls.
pub const BATCH: usize = 500;

/// The operator's Xero app and where Xero is (the tests point the bases at stand-ins).
#[derive(Debug, Clone)]
pub struct XeroConfig {
    pub client_id: String,
    pub client_secret: Secret,
    /// Where `/connections` is: `https://api.xero.com`.
    pub api_base: String,
    /// The Accounting API, as the server of Xero's OpenAPI description:
    /// `https://api.xero.com/api.xro/2.0`.
    pub accounting_base: String,
    /// Token and revocation endpoints: `https://identity.xero.com`.
    pub identity_base: String,
    /// Where people sign in and consent: `https://login.xero.com`.
    pub login_base: String,
    /// How long one call may take.
    pub timeout: Duration,
}

impl Default for XeroConfig {
    fn default() -> Self {
        XeroConfig {
            client_id: String::new(),
            client_secret: Secret::default(),
            api_base: "https://api.xero.com".into(),
            accounting_base: "https://api.xero.com/api.xro/2.0".into(),
            identity_base: "https://identity.xero.com".into(),
            login_base: "https://login.xero.com".into(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A usable access token and the organisation it is for.
#[derive(Debug, Clone)]
pub struct Access {
    pub token: Secret,
    pub tenant_id: String,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The company's Xero grant, as the server keeps it.
pub trait Grants: Send + Sync + 'static {
    /// A token that is still valid, refreshed first when it is about to expire or is
    /// `refused` (Xero just answered 401 to it). `Err` says what the company must do, e.g.
    /// connect again after the grant was revoked.
    fn access<'a>(
        &'a self, company: i64, refused: Option<&'a Secret>,
    ) -> Boxed<'a, Result<Access, ConnectorError>>;
}

/// What the server gives the Xero connector: the app, the grants and the pacing.
#[derive(Clone)]
pub struct XeroEnv {
    pub config: Arc<XeroConfig>,
    pub grants: Arc<dyn Grants>,
    pub pacer: Arc<pace::Pacer>,
}

impl fmt::Debug for XeroEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XeroEnv({})", self.config.api_base)
    }
}

/// A Xero connection stores no settings: the organisation and tokens come with the grant.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct XeroSettings {}

pub struct Xero {
    env: Option<XeroEnv>,
    company: Option<i64>,
    outbound: crate::Outbound,
}

impl Connector for Xero {
    type Settings = XeroSettings;
    const KIND: &'static str = "xero";
    const LABEL: &'static str = "Xero (OAuth 2.0)";
    const FIELDS: &'static [Field] = &[];
    const BATCH: usize = BATCH;
    const CAN_READ_CODES: bool = true;

    fn check(_: &XeroSettings, _env: &Env, _errors: &mut FieldErrors) {}

    fn new(_: &XeroSettings, env: &Env) -> Self {
        Xero {
            env: env.xero.clone(),
            company: env.company,
            outbound: env.outbound.clone(),
        }
    }

    async fn test(&self) -> (bool, String) {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Organisations {
            #[serde(default)]
            organisations: Vec<Organisation>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Organisation {
            #[serde(default)]
            name: String,
        }
        match self
            .call::<Organisations>(Method::GET, "/Organisation", &[], None)
            .await
        {
            Ok(o) => (
                true,
                format!(
                    "Xero answered: connected to the organisation '{}'.",
                    o.organisations.first().map_or("", |o| o.name.as_str())
                ),
            ),
            Err(e) => (false, format!("{e}.")),
        }
    }

    async fn gl_accounts(&self) -> Result<Vec<GlAccount>, ConnectorError> {
        let accounts: Accounts = self
            .call(
                Method::GET,
                "/Accounts",
                &[("where", "Status==\"ACTIVE\"")],
                None,
            )
            .await?;
        Ok(items::gl_accounts(accounts.accounts))
    }

    async fn export(
        &self, ctx: &ExportContext, lines: &dyn Lines,
    ) -> Result<Vec<(i64, LineResult)>, ConnectorError> {
        // A batch is planned as a whole (at most `BATCH` lines).
        let lines = &lines.to_vec();
        let existing: Items = self.call(Method::GET, "/Items", &[], None).await?;
        let mut results = Vec::with_capacity(lines.len());
        let mut writes = Vec::new();
        for (id, step) in items::plan(lines, &existing.items, ctx.max_description) {
            match step {
                Step::Done(r) => results.push((id, r)),
                Step::Write(item) => writes.push((id, item)),
            }
        }
        if !writes.is_empty() {
            let body = Items {
                items: writes.iter().map(|(_, i)| i.clone()).collect(),
            };
            let answer: Items = self
                .call(
                    Method::POST,
                    "/Items",
                    &[("summarizeErrors", "false")],
                    Some(serde_json::to_value(body).unwrap_or_default()),
                )
                .await?;
            results.extend(items::read_answer(&writes, answer));
        }
        // One result per line, in the lines' order.
        let order: std::collections::HashMap<i64, usize> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (l.item_id, i))
            .collect();
        results.sort_by_key(|(id, _)| order.get(id).copied());
        Ok(results)
    }

    async fn read_codes(&self) -> Result<Vec<ErpCode>, ConnectorError> {
        let existing: Items = self.call(Method::GET, "/Items", &[], None).await?;
        Ok(items::as_codes(existing.items))
    }
}

impl Xero {
    fn env(&self) -> Result<(&XeroEnv, i64), ConnectorError> {
        match (&self.env, self.company) {
            (Some(env), Some(company)) if !env.config.client_id.is_empty() => Ok((env, company)),
            _ => Err(ConnectorError::NotSupported(
                "Costbridge: this server has no Xero app configured; the operator sets [xero] \
                 client_id and client_secret (README, Xero)"
                    .into(),
            )),
        }
    }

    /// One Accounting API call within the organisation's limits. A 401 refreshes the token
    /// once; a 429 becomes [`ConnectorError::RateLimited`] with Xero's `Retry-After`.
    #[tracing::instrument(level = "debug", skip(self, body), fields(company = self.company))]
    async fn call<T: serde::de::DeserializeOwned>(
        &self, method: Method, path: &str, query: &[(&str, &str)], body: Option<serde_json::Value>,
    ) -> Result<T, ConnectorError> {
        let (env, company) = self.env()?;
        let url = format!("{}{path}", env.config.accounting_base.trim_end_matches('/'));
        let client =
            client(&env.config, &self.outbound, &url).map_err(ConnectorError::Unavailable)?;
        let mut refused: Option<Secret> = None;
        loop {
            let access = env.grants.access(company, refused.as_ref()).await?;
            let _turn = env.pacer.turn(&access.tenant_id).await.map_err(|wait| {
                rate_limited(wait, "Costbridge keeps within Xero's 5,000 calls a day")
            })?;
            let mut request = client
                .request(method.clone(), &url)
                .query(query)
                .bearer_auth(access.token.expose())
                .header("xero-tenant-id", &access.tenant_id)
                // Xero answers XML to anything that does not ask for JSON.
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| ConnectorError::Unavailable(unreachable(&url, &e)))?;
            let status = response.status();
            match status {
                s if s.is_success() => {
                    return response.json().await.map_err(|e| {
                        ConnectorError::Unavailable(format!(
                            "Xero's answer to {method} {path} is not understood: {e}"
                        ))
                    });
                }
                StatusCode::UNAUTHORIZED if refused.is_none() => refused = Some(access.token),
                StatusCode::TOO_MANY_REQUESTS => {
                    let after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.trim().parse().ok())
                        .unwrap_or(60);
                    let problem = response
                        .headers()
                        .get("X-Rate-Limit-Problem")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("minute")
                        .to_owned();
                    return Err(rate_limited(
                        Duration::from_secs(after),
                        &format!("Xero's {problem} limit was reached"),
                    ));
                }
                s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                    return Err(ConnectorError::Unavailable(format!(
                        "Xero answered HTTP {} to {method} {path}; Costbridge tries again later",
                        crate::webhook::status_text(s)
                    )));
                }
                s => {
                    let detail = refusal(response).await;
                    return Err(ConnectorError::Unavailable(format!(
                        "Xero refused {method} {path} with HTTP {}{detail}",
                        crate::webhook::status_text(s)
                    )));
                }
            }
        }
    }
}

/// Xero's own words for a refused request (`{"Message": …}` or `{"Detail": …}`), as
/// `: <words>`; nothing else of the body is shown.
async fn refusal(response: reqwest::Response) -> String {
    #[derive(Deserialize)]
    struct Said {
        #[serde(rename = "Message", alias = "Detail", default)]
        message: String,
    }
    match response.json::<Said>().await {
        Ok(s) if !s.message.is_empty() => format!(": {}", s.message),
        _ => String::new(),
    }
}

fn rate_limited(after: Duration, why: &str) -> ConnectorError {
    ConnectorError::RateLimited {
        message: format!(
            "waiting for Xero's rate limit: {why}; the export goes on by itself in {} s",
            after.as_secs()
        ),
        after,
    }
}

/// A client for `url` within the operator's outbound policy and the app's timeout.
fn client(
    config: &XeroConfig, outbound: &crate::Outbound, url: &str,
) -> Result<reqwest::Client, String> {
    outbound
        .client(url)
        .map_err(|why| format!("Xero at {url} may not be reached: {why}"))?
        .timeout(config.timeout)
        .build()
        .map_err(|e| e.to_string())
}

/// Why a call to Xero got no answer, in words.
fn unreachable(url: &str, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("Xero at {url} did not answer in time; Costbridge tries again later")
    } else {
        format!(
            "could not reach Xero at {url}: {}",
            crate::webhook::root_cause(e)
        )
    }
}
