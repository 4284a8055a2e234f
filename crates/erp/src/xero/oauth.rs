//! Xero's OAuth 2.0 authorization-code flow with PKCE: the address the admin is sent to, the
//! code exchanged for tokens, the refresh that rotates them, the organisations a grant covers
//! (`GET /connections`) and the revocation that ends the grant. The server keeps the state, the
//! verifier and the tokens; these are only the calls.
use super::XeroConfig;
use crate::{Outbound, Secret};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Items and accounts live under `accounting.settings`; `offline_access` gives a refresh token.
pub const SCOPES: &str = "offline_access accounting.settings";

/// Tokens as Xero's identity server issues them.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Seconds the access token lives (30 minutes at Xero).
    pub expires_in: i64,
}

/// One organisation a grant covers (`#/components/schemas/Connection`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Tenant {
    #[serde(rename = "tenantId")]
    pub tenant_id: String,
    #[serde(rename = "tenantName", default)]
    pub tenant_name: Option<String>,
    #[serde(rename = "tenantType", default)]
    pub tenant_type: Option<String>,
}

/// Why a call to Xero's identity server did not give what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// Xero says the grant or code is no longer valid (`invalid_grant`): revoked, unused for
    /// 60 days, already used, or expired. Only connecting again helps.
    #[error("Xero refused: the authorisation is no longer valid ({0})")]
    Gone(String),
    /// Xero refused the request for another reason it names (e.g. `invalid_client`).
    #[error("Xero refused the request: {0}")]
    Refused(String),
    /// No usable answer: retried later.
    #[error("{0}")]
    Unavailable(String),
}

/// The PKCE challenge (`S256`) for a verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Where the admin signs in to Xero and consents.
pub fn authorize_url(cfg: &XeroConfig, redirect_uri: &str, state: &str, verifier: &str) -> String {
    let mut url = Url::parse(&format!(
        "{}/identity/connect/authorize",
        cfg.login_base.trim_end_matches('/')
    ))
    .unwrap_or_else(|_| Url::parse("https://login.xero.com/identity/connect/authorize").unwrap());
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", SCOPES)
        .append_pair("state", state)
        .append_pair("code_challenge", &challenge(verifier))
        .append_pair("code_challenge_method", "S256");
    url.into()
}

/// Exchanges the code the callback received (with the PKCE verifier) for tokens.
pub async fn exchange_code(
    cfg: &XeroConfig, outbound: &Outbound, code: &str, verifier: &str, redirect_uri: &str,
) -> Result<Tokens, OAuthError> {
    token(
        cfg,
        outbound,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Uses a refresh token once: Xero answers a new pair and the old refresh token stops working.
pub async fn refresh(
    cfg: &XeroConfig, outbound: &Outbound, refresh_token: &Secret,
) -> Result<Tokens, OAuthError> {
    token(
        cfg,
        outbound,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ],
    )
    .await
}

/// The organisations the access token may use.
pub async fn connections(
    cfg: &XeroConfig, outbound: &Outbound, access_token: &Secret,
) -> Result<Vec<Tenant>, OAuthError> {
    let url = format!("{}/connections", cfg.api_base.trim_end_matches('/'));
    let response = client(cfg, outbound, &url)?
        .get(&url)
        .bearer_auth(access_token.expose())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    match response.status() {
        s if s.is_success() => response
            .json()
            .await
            .map_err(|e| OAuthError::Unavailable(format!("Xero's list of organisations: {e}"))),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Err(OAuthError::Gone("the access token was refused".into()))
        }
        s => Err(OAuthError::Unavailable(format!(
            "Xero answered HTTP {} to the list of organisations",
            crate::webhook::status_text(s)
        ))),
    }
}

/// Ends the grant: the refresh token and every access token made from it stop working.
pub async fn revoke(
    cfg: &XeroConfig, outbound: &Outbound, refresh_token: &Secret,
) -> Result<(), OAuthError> {
    let url = format!(
        "{}/connect/revocation",
        cfg.identity_base.trim_end_matches('/')
    );
    let response = client(cfg, outbound, &url)?
        .post(&url)
        .basic_auth(&cfg.client_id, Some(cfg.client_secret.expose()))
        .form(&[("token", refresh_token.expose())])
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    answer(response).await.map(|_: serde_json::Value| ())
}

async fn token(
    cfg: &XeroConfig, outbound: &Outbound, form: &[(&str, &str)],
) -> Result<Tokens, OAuthError> {
    let url = format!("{}/connect/token", cfg.identity_base.trim_end_matches('/'));
    let response = client(cfg, outbound, &url)?
        .post(&url)
        .basic_auth(&cfg.client_id, Some(cfg.client_secret.expose()))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| unreachable(&url, &e))?;
    answer(response).await
}

fn client(cfg: &XeroConfig, outbound: &Outbound, url: &str) -> Result<reqwest::Client, OAuthError> {
    super::client(cfg, outbound, url).map_err(OAuthError::Unavailable)
}

fn unreachable(url: &str, e: &reqwest::Error) -> OAuthError {
    OAuthError::Unavailable(super::unreachable(url, e))
}

/// A 2xx body, or the OAuth error Xero named (`{"error": "invalid_grant"}`).
async fn answer<T: serde::de::DeserializeOwned + Default>(
    response: reqwest::Response,
) -> Result<T, OAuthError> {
    #[derive(Deserialize)]
    struct Error {
        error: String,
    }
    let status = response.status();
    let body = response.bytes().await.unwrap_or_default();
    if status.is_success() {
        if body.is_empty() {
            return Ok(T::default());
        }
        return serde_json::from_slice(&body)
            .map_err(|e| OAuthError::Unavailable(format!("Xero's answer is not understood: {e}")));
    }
    let error = serde_json::from_slice::<Error>(&body).map(|e| e.error);
    match (status, error) {
        (_, Ok(e)) if e == "invalid_grant" => Err(OAuthError::Gone(e)),
        (s, Ok(e)) if s.is_client_error() => Err(OAuthError::Refused(e)),
        (s, _) => Err(OAuthError::Unavailable(format!(
            "Xero's identity server answered HTTP {}",
            crate::webhook::status_text(s)
        ))),
    }
}

impl Default for Tokens {
    /// Never used as tokens: only so an empty 2xx body can be read generically.
    fn default() -> Self {
        Tokens {
            access_token: Secret::default(),
            refresh_token: Secret::default(),
            expires_in: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_the_unpadded_base64url_sha256_of_the_verifier() {
        // Computed apart: base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=").
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWXOEjXk"),
            "ixTXRNjcs2t268cvWnWX5VszIOQVHn11amyq8l3uFfA"
        );
    }

    #[test]
    fn the_authorize_url_carries_state_pkce_and_scopes() {
        let cfg = XeroConfig::default();
        let url = Url::parse(&authorize_url(
            &cfg,
            "https://cb.example/oauth/xero/callback",
            "st&te",
            "verifier",
        ))
        .unwrap();
        assert_eq!(
            url.as_str().split('?').next(),
            Some("https://login.xero.com/identity/connect/authorize")
        );
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st&te");
        assert_eq!(q["code_challenge"], challenge("verifier"));
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], SCOPES);
        assert_eq!(q["redirect_uri"], "https://cb.example/oauth/xero/callback");
        assert_eq!(q["response_type"], "code");
    }
}
