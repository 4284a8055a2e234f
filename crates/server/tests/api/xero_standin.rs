//! `XeroStandIn`: plays Xero's login page, identity (token) server and Accounting API, since
//! Xero cannot be reached from the tests. It keeps Xero's rules that matter to Costbridge:
//! codes and refresh tokens work once, a refresh rotates the refresh token, a revoked grant
//! answers `invalid_grant`, item codes are unique, each item of a `summarizeErrors=false`
//! batch answers on its own, and it can answer 429 (with `Retry-After`) or 5xx on demand.
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

pub const CLIENT_ID: &str = "standin-client";
pub const CLIENT_SECRET: &str = "standin-secret-0123456789";

#[derive(Default)]
pub struct Stand {
    /// `(tenantId, tenantName)` the grant covers.
    pub tenants: Vec<(String, String)>,
    /// Issued codes: code → (PKCE challenge, redirect_uri).
    codes: HashMap<String, (String, String)>,
    /// Refresh tokens that still work.
    live_refresh: HashSet<String>,
    /// Access tokens that still work.
    live_access: HashSet<String>,
    /// Every refresh token presented, in order (a reuse would show twice).
    pub refreshes: Vec<String>,
    /// Refresh tokens presented after they stopped working.
    pub reused: Vec<String>,
    /// Seconds each access token lives, as Xero's `expires_in`.
    pub expires_in: i64,
    /// Items per tenant, as Xero holds them.
    pub items: HashMap<String, Vec<Value>>,
    pub accounts: Vec<Value>,
    /// The next this many Accounting calls answer 429 `Retry-After: 0`.
    pub throttle: usize,
    /// The next this many Accounting calls answer 503.
    pub unavailable: usize,
    /// Every Accounting call, as `METHOD /Path`.
    pub calls: Vec<String>,
    /// The token endpoint refuses every code, as Xero does once a code expired (5 minutes).
    pub codes_expire: bool,
    /// Each `POST /Items` takes this long (to stop a server between two batches).
    pub post_delay: std::time::Duration,
    /// `GET /Items` answers an item Xero's description forbids (an `ItemID` that is no UUID),
    /// to show the contract check catches it.
    pub break_contract: bool,
    /// The next `POST /Items` finds this code created in Xero meanwhile (by another app).
    pub sneak_in: Option<String>,
    /// The most Accounting calls that ran at once.
    pub most_at_once: usize,
    at_once: usize,
    next_id: u64,
}

impl Stand {
    fn id(&mut self) -> String {
        self.next_id += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_id)
    }

    /// A new token pair, as Xero issues it (`access_token`, `refresh_token`, `expires_in`).
    pub fn token(&mut self) -> Value {
        let access = format!("at-{}", self.id());
        let refresh = format!("rt-{}", self.id());
        self.live_access.insert(access.clone());
        self.live_refresh.insert(refresh.clone());
        json!({"access_token": access, "refresh_token": refresh, "expires_in": self.expires_in,
            "token_type": "Bearer", "scope": "offline_access accounting.settings"})
    }

    /// Ends the grant: every token stops working, as after a revocation or 60 idle days.
    pub fn revoke(&mut self) {
        self.live_refresh.clear();
        self.live_access.clear();
    }

    /// Xero forgets a code, as when it was used already or expired.
    pub fn codes_used(&mut self, code: &str) {
        self.codes.remove(code);
    }

    /// The items of the (first) tenant.
    pub fn items(&self) -> Vec<Value> {
        self.tenants
            .first()
            .and_then(|t| self.items.get(&t.0))
            .cloned()
            .unwrap_or_default()
    }
}

#[derive(Clone)]
pub struct XeroStandIn {
    pub url: String,
    pub stand: Arc<Mutex<Stand>>,
}

impl XeroStandIn {
    pub async fn start(tenants: &[(&str, &str)]) -> XeroStandIn {
        let stand = Arc::new(Mutex::new(Stand {
            tenants: tenants
                .iter()
                .map(|(i, n)| (i.to_string(), n.to_string()))
                .collect(),
            expires_in: 1800,
            accounts: vec![
                json!({"AccountID": "10000000-0000-4000-8000-000000000001", "Code": "200", "Name": "Sales", "Type": "REVENUE", "Status": "ACTIVE"}),
                json!({"AccountID": "10000000-0000-4000-8000-000000000002", "Code": "310", "Name": "Cost of Goods Sold", "Type": "DIRECTCOSTS", "Status": "ACTIVE"}),
                json!({"AccountID": "10000000-0000-4000-8000-000000000003", "Code": "429", "Name": "General Expenses", "Type": "EXPENSE", "Status": "ACTIVE"}),
                json!({"AccountID": "10000000-0000-4000-8000-000000000004", "Code": "090", "Name": "Business Bank", "Type": "BANK", "Status": "ACTIVE"}),
            ],
            ..Stand::default()
        }));
        let app = Router::new()
            .route("/identity/connect/authorize", get(authorize))
            .route("/connect/token", post(token))
            .route("/connect/revocation", post(revocation))
            .route("/connections", get(connections))
            .route("/api.xro/2.0/Items", get(get_items).post(post_items))
            .route("/api.xro/2.0/Accounts", get(accounts))
            .route("/api.xro/2.0/Organisation", get(organisation))
            .with_state(stand.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        XeroStandIn { url, stand }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Stand) -> T) -> T {
        f(&mut self.stand.lock().unwrap())
    }

    /// Points a server's `[xero]` at this stand-in.
    pub fn configure(&self, s: &mut costbridge_server::Settings) {
        s.xero.client_id = CLIENT_ID.into();
        s.xero.client_secret = Some(CLIENT_SECRET.into());
        s.xero.api_base = self.url.clone();
        s.xero.accounting_base = format!("{}/api.xro/2.0", self.url);
        s.xero.identity_base = self.url.clone();
        s.xero.login_base = self.url.clone();
        s.xero.timeout_seconds = 5;
    }
}

type St = State<Arc<Mutex<Stand>>>;

/// The login and consent page: `consent=allow` (or `deny`) stands for the person's click.
async fn authorize(State(st): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let redirect = q.get("redirect_uri").cloned().unwrap_or_default();
    let state = q.get("state").cloned().unwrap_or_default();
    match q.get("consent").map(String::as_str) {
        Some("allow") => {
            let mut s = st.lock().unwrap();
            let code = format!("code-{}", s.id());
            let challenge = q.get("code_challenge").cloned().unwrap_or_default();
            s.codes.insert(code.clone(), (challenge, redirect.clone()));
            Redirect::to(&format!(
                "{redirect}?code={code}&state={state}&scope=offline_access"
            ))
            .into_response()
        }
        Some(_) => {
            Redirect::to(&format!("{redirect}?error=access_denied&state={state}")).into_response()
        }
        None => {
            let mut again: Vec<(String, String)> = q.into_iter().collect();
            again.sort();
            let query = serde_urlencoded(&again);
            axum::response::Html(format!(
                "<!doctype html><title>Xero stand-in: sign in</title><h1>XeroStandIn login</h1>\
                 <p>Costbridge asks to reach your organisations.</p>\
                 <a id=\"allow\" href=\"/identity/connect/authorize?{query}&consent=allow\">Allow access</a> \
                 <a id=\"deny\" href=\"/identity/connect/authorize?{query}&consent=deny\">Cancel</a>"
            ))
            .into_response()
        }
    }
}

fn serde_urlencoded(pairs: &[(String, String)]) -> String {
    let mut u = reqwest::Url::parse("http://x/").unwrap();
    u.query_pairs_mut().extend_pairs(pairs);
    u.query().unwrap_or_default().to_owned()
}

fn basic_ok(headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(expected.as_str())
}

/// Xero's answer to a token or revocation call without the app's credentials.
fn invalid_client() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "invalid_client"})),
    )
        .into_response()
}

fn oauth_error(e: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response()
}

/// The token and revocation endpoints: the app's credentials first, then `answer`.
fn for_the_app(
    st: &Mutex<Stand>, headers: &HeaderMap, answer: impl FnOnce(&mut Stand) -> Response,
) -> Response {
    if !basic_ok(headers) {
        return invalid_client();
    }
    answer(&mut st.lock().unwrap())
}

async fn token(
    State(st): St, headers: HeaderMap, Form(f): Form<HashMap<String, String>>,
) -> Response {
    for_the_app(&st, &headers, |s| {
        match f.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let code = f.get("code").cloned().unwrap_or_default();
                let Some((challenge, redirect)) = s.codes.remove(&code).filter(|_| !s.codes_expire)
                else {
                    return oauth_error("invalid_grant");
                };
                let verifier = f.get("code_verifier").cloned().unwrap_or_default();
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if computed != challenge || f.get("redirect_uri") != Some(&redirect) {
                    return oauth_error("invalid_grant");
                }
                Json(s.token()).into_response()
            }
            Some("refresh_token") => {
                let rt = f.get("refresh_token").cloned().unwrap_or_default();
                s.refreshes.push(rt.clone());
                if !s.live_refresh.remove(&rt) {
                    s.reused.push(rt);
                    return oauth_error("invalid_grant");
                }
                Json(s.token()).into_response()
            }
            _ => oauth_error("unsupported_grant_type"),
        }
    })
}

async fn revocation(
    State(st): St, headers: HeaderMap, Form(f): Form<HashMap<String, String>>,
) -> Response {
    for_the_app(&st, &headers, |s| {
        if f.get("token").is_some_and(|t| s.live_refresh.contains(t)) {
            s.revoke();
        }
        StatusCode::OK.into_response()
    })
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

async fn connections(State(st): St, headers: HeaderMap) -> Response {
    let s = st.lock().unwrap();
    if !s.live_access.contains(&bearer(&headers)) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let list: Vec<Value> = s
        .tenants
        .iter()
        .enumerate()
        .map(|(i, (id, name))| {
            json!({"id": format!("20000000-0000-4000-8000-{i:012}"), "tenantId": id,
                "tenantType": "ORGANISATION", "tenantName": name,
                "createdDateUtc": "2026-11-30T12:00:00.0000000", "updatedDateUtc": "2026-11-30T12:00:00.0000000"})
        })
        .collect();
    Json(list).into_response()
}

/// Checks what every Accounting call must carry; `Err` is Xero's answer. Counts the call.
fn admit(s: &mut Stand, headers: &HeaderMap, call: &str) -> Result<String, Box<Response>> {
    s.calls.push(call.to_owned());
    if headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) != Some("application/json") {
        return Err(
            (StatusCode::BAD_REQUEST, "<xml>JSON was not asked for</xml>")
                .into_response()
                .into(),
        );
    }
    if !s.live_access.contains(&bearer(headers)) {
        return Err((StatusCode::UNAUTHORIZED, Json(json!({"Type": null, "Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired: token expired"}))).into_response().into());
    }
    let tenant = headers
        .get("xero-tenant-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !s.tenants.iter().any(|t| t.0 == tenant) {
        return Err((StatusCode::FORBIDDEN, Json(json!({"Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"}))).into_response().into());
    }
    if s.throttle > 0 {
        s.throttle -= 1;
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            [("Retry-After", "0"), ("X-Rate-Limit-Problem", "minute")],
        )
            .into_response()
            .into());
    }
    if s.unavailable > 0 {
        s.unavailable -= 1;
        return Err(StatusCode::SERVICE_UNAVAILABLE.into_response().into());
    }
    Ok(tenant)
}

/// Counts the calls running at once while it lives.
struct Running(Arc<Mutex<Stand>>);

impl Running {
    fn new(st: &Arc<Mutex<Stand>>) -> Running {
        let mut s = st.lock().unwrap();
        s.at_once += 1;
        s.most_at_once = s.most_at_once.max(s.at_once);
        Running(st.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.lock().unwrap().at_once -= 1;
    }
}

async fn get_items(State(st): St, headers: HeaderMap) -> Response {
    let _running = Running::new(&st);
    let mut s = st.lock().unwrap();
    let tenant = match admit(&mut s, &headers, "GET /Items") {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let mut items = s.items.get(&tenant).cloned().unwrap_or_default();
    if s.break_contract {
        items.push(json!({"ItemID": "not-a-uuid", "Code": "99", "Name": "Broken"}));
    }
    Json(
        json!({"Id": "30000000-0000-4000-8000-000000000001", "Status": "OK",
        "ProviderName": "Costbridge", "DateTimeUTC": "/Date(1764504000000)/", "Items": items}),
    )
    .into_response()
}

async fn post_items(
    State(st): St, headers: HeaderMap, Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Response {
    let _running = Running::new(&st);
    let delay = st.lock().unwrap().post_delay;
    tokio::time::sleep(delay).await;
    let mut s = st.lock().unwrap();
    let tenant = match admit(&mut s, &headers, "POST /Items") {
        Ok(t) => t,
        Err(r) => return *r,
    };
    assert_eq!(q.get("summarizeErrors").map(String::as_str), Some("false"));
    if let Some(code) = s.sneak_in.take() {
        let id = s.id();
        s.items.entry(tenant.clone()).or_default().push(
            json!({"ItemID": id, "Code": code, "Name": "Made in Xero meanwhile",
                "Description": "Made in Xero meanwhile", "IsSold": true, "IsPurchased": true}),
        );
    }
    let chart: HashSet<String> = s
        .accounts
        .iter()
        .filter_map(|a| a["Code"].as_str().map(str::to_owned))
        .collect();
    let mut answered = Vec::new();
    for mut item in body["Items"].as_array().cloned().unwrap_or_default() {
        let code = item["Code"].as_str().unwrap_or_default().to_owned();
        let mut errors = Vec::new();
        for side in ["SalesDetails", "PurchaseDetails"] {
            if let Some(a) = item[side]["AccountCode"].as_str()
                && !chart.contains(a)
            {
                errors.push(json!({"Message": format!("Account code '{a}' is not a valid code for this document.")}));
            }
        }
        if item["Name"]
            .as_str()
            .is_some_and(|n| n.chars().count() > 50)
        {
            errors.push(json!({"Message": "The Name cannot be longer than 50 characters."}));
        }
        let id = s.id();
        let stored = s.items.entry(tenant.clone()).or_default();
        let existing = match item["ItemID"].as_str() {
            Some(i) => stored.iter().position(|x| x["ItemID"] == i),
            None => None,
        };
        if existing.is_none() && stored.iter().any(|x| x["Code"] == code.as_str()) {
            errors.push(json!({"Message": format!("Item code '{code}' already exists")}));
        }
        if !errors.is_empty() {
            item["ValidationErrors"] = json!(errors);
            item["StatusAttributeString"] = json!("ERROR");
            answered.push(item);
            continue;
        }
        if item["IsSold"] == false {
            // Xero nulls these on an item that is not sold.
            item.as_object_mut().unwrap().remove("Description");
            item.as_object_mut().unwrap().remove("SalesDetails");
        }
        item["UpdatedDateUTC"] = json!("/Date(1764504000000+0000)/");
        match existing {
            Some(i) => {
                let merged = stored[i].as_object_mut().unwrap();
                for (k, v) in item.as_object().unwrap() {
                    merged.insert(k.clone(), v.clone());
                }
                if item["IsSold"] == false {
                    merged.remove("Description");
                    merged.remove("SalesDetails");
                }
                answered.push(Value::Object(merged.clone()));
            }
            None => {
                item["ItemID"] = json!(id);
                stored.push(item.clone());
                answered.push(item);
            }
        }
    }
    Json(
        json!({"Id": "30000000-0000-4000-8000-000000000002", "Status": "OK",
        "ProviderName": "Costbridge", "DateTimeUTC": "/Date(1764504000000)/", "Items": answered}),
    )
    .into_response()
}

async fn accounts(State(st): St, headers: HeaderMap) -> Response {
    let mut s = st.lock().unwrap();
    if let Err(r) = admit(&mut s, &headers, "GET /Accounts") {
        return *r;
    }
    Json(json!({"Accounts": s.accounts})).into_response()
}

async fn organisation(State(st): St, headers: HeaderMap) -> Response {
    let mut s = st.lock().unwrap();
    let tenant = match admit(&mut s, &headers, "GET /Organisation") {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let name = s
        .tenants
        .iter()
        .find(|t| t.0 == tenant)
        .map(|t| t.1.clone());
    Json(json!({"Organisations": [{"Name": name, "OrganisationID": tenant}]})).into_response()
}

/// Prism (`@stoplight/prism-cli`, installed by scripts/setup into `.tools/prism`) as a proxy
/// in front of the stand-in's Accounting API: with `--errors`, a request the connector sends or
/// an answer the stand-in returns that breaks `xero_accounting.yaml` becomes a 422 or 500, so
/// the call fails. Stopped when dropped.
pub struct Prism {
    pub url: String,
    child: tokio::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Prism {
    /// `None` (with a note) when Prism is not installed; in CI that fails instead.
    pub async fn start(upstream: &str) -> Option<Prism> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let bin = root.join(".tools/prism/node_modules/.bin/prism");
        // Xero's description is shared beside the project, never copied into it.
        let spec = root.join("../shared/erp/xero/xero_accounting.yaml");
        if !bin.exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "Prism is missing at {}: run scripts/setup",
                bin.display()
            );
            eprintln!("skipping: Prism is not installed (scripts/setup installs it)");
            return None;
        }
        assert!(
            spec.exists(),
            "Xero's OpenAPI description is missing at {}",
            spec.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("prism.log");
        let child = tokio::process::Command::new(bin)
            .arg("proxy")
            .arg(&spec)
            .arg(upstream)
            .args(["--errors", "-h", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start prism");
        let prism = Prism {
            url: format!("http://127.0.0.1:{port}"),
            child,
            log,
            _dir: dir,
        };
        // Reading Xero's 25,000-line description takes Prism a while on a busy machine.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
        while !prism.output().contains("Prism is listening") {
            assert!(
                std::time::Instant::now() < deadline,
                "Prism did not start:\n{}",
                prism.output()
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        Some(prism)
    }

    /// What Prism logged: every request, and each violation it refused.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
