//! The test harness: a real server on 127.0.0.1:0 over a fresh database (SQLite file or a new
//! PostgreSQL database), driven over HTTP; the export worker is driven step by step.
use costbridge_domain::Permissions;
use costbridge_server::Settings;
use costbridge_server::config::WorkerSettings;
use costbridge_storage::users::NewUser;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderName};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn(TestApp)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::helpers::{Backend, TestApp};
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = TestApp::spawn(Backend::Sqlite).await { super::$name(app).await }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = TestApp::spawn(Backend::Postgres).await { super::$name(app).await }
            }
        }
    )*};
}

/// Runs `$f(Backend)` as the two tests `$sqlite` and `$postgres`, for a test that starts its
/// own servers.
#[macro_export]
macro_rules! per_backend {
    ($f:ident: $sqlite:ident, $postgres:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            $f($crate::helpers::Backend::Sqlite).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            $f($crate::helpers::Backend::Postgres).await
        }
    };
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub app_state: costbridge_server::state::AppState,
    pub worker: WorkerSettings,
    /// The first admin's token (admin everywhere, may push to accounting).
    pub token: String,
    pub company: i64,
    /// The database this server runs on, for a second instance or a command-line run.
    pub database_url: String,
    /// The server's `[export] root`; this company's files are in [`TestApp::export_dir`].
    pub exports: tempfile::TempDir,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A throwaway PostgreSQL database, dropped when the test ends (even when it fails).
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            })
        })
        .join();
    }
}

pub fn pg_admin_url() -> String {
    std::env::var("COSTBRIDGE_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A CSV of `n` codes: divisions `01`, `02`, … each followed by up to 99 children `01-001`, ….
pub fn divisions_csv(n: usize) -> String {
    let mut csv = String::from("full_code,description,active\n");
    let codes = (1..).flat_map(|d| {
        (0..100).map(move |i| match i {
            0 => format!("{d:02}"),
            _ => format!("{d:02}-{i:03}"),
        })
    });
    for full in codes.take(n) {
        csv.push_str(&format!("{full},Code {full},true\n"));
    }
    csv
}

async fn create_pg_database() -> Option<PgDatabase> {
    use sqlx::Connection;
    let admin_url = pg_admin_url();
    let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("PostgreSQL is required in CI ({admin_url}): {e}")
        }
        Err(e) => {
            eprintln!("skipping the PostgreSQL variant: cannot reach {admin_url}: {e}");
            return None;
        }
    };
    let name = format!(
        "cbt_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand_suffix()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    Some(PgDatabase { admin_url, name })
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// A call to the server at `base` with `token` (and a JSON body if any): the status and the
/// answer, as JSON or else as its text.
pub async fn call_at(
    client: &reqwest::Client, base: &str, method: &str, path: &str, token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = client
        .request(method.parse().expect("method"), format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    answer(req.send().await.expect("request")).await
}

async fn send_with(
    mut req: reqwest::RequestBuilder, headers: &[(HeaderName, &str)],
) -> reqwest::Response {
    for (name, value) in headers {
        req = req.header(name, *value);
    }
    req.send().await.expect("request")
}

async fn answer(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The `key` of every element of the array `v`, each a string.
/// A page answered 200: its `Total` header, the path its `Link: rel="next"` gives (if any) and
/// its JSON body.
pub async fn paged(res: reqwest::Response) -> (i64, Option<String>, Value) {
    assert_eq!(res.status(), StatusCode::OK, "{}", res.url());
    let total = res.headers()["total"].to_str().unwrap().parse().unwrap();
    let next = res.headers()["link"]
        .to_str()
        .unwrap()
        .split(", ")
        .find_map(|l| l.strip_suffix("; rel=\"next\""))
        .map(|l| l.trim_matches(['<', '>']).to_owned());
    (total, next, res.json().await.unwrap())
}

pub fn strings<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|e| e[key].as_str().expect("a string"))
        .collect()
}

/// Permissions as the API takes them: the Admin tool's level, ERP Integrations' level, and
/// whether they may push to accounting.
pub fn perms(admin_tool: &str, erp_integrations: &str, can_push_to_accounting: bool) -> Value {
    json!({"admin_tool": admin_tool, "erp_integrations": erp_integrations,
        "can_push_to_accounting": can_push_to_accounting})
}

/// The message of an error answer (it must have one).
pub fn error_message(b: &Value) -> &str {
    b["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message: {b}"))
}

/// The first error a refusal names for `field` (it must name one).
pub fn field_error<'a>(b: &'a Value, field: &str) -> &'a str {
    b["error"]["details"]["fields"][field][0]
        .as_str()
        .unwrap_or_else(|| panic!("no error for {field}: {b}"))
}

/// Imports `csv` into the list at `list_path` (`/api/v1/companies/…/cost_code_lists/<id>`) on
/// the server at `base` and sends it to the ERP as a person would (reading the button's list
/// version first); each step must succeed.
pub async fn import_and_send(base: &str, token: &str, list_path: &str, csv: String) {
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{base}{list_path}/import"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    send_at(&client, base, token, list_path).await;
}

/// Sends the list at `list_path` to the ERP on the server at `base` as a person would (reading
/// the button's list version first); it must be accepted. Returns the answer.
pub async fn send_at(client: &reqwest::Client, base: &str, token: &str, list_path: &str) -> Value {
    let send = format!("{list_path}/send_to_erp");
    let (_, st) = call_at(client, base, "GET", &send, token, None).await;
    let version = json!({"list_version": st["list_version"]});
    let (s, b) = call_at(client, base, "POST", &send, token, Some(version)).await;
    assert_eq!(s, StatusCode::CREATED, "{b} (button said {st})");
    b
}

/// The key every test server encrypts connector secrets with (PostgreSQL needs one set).
/// The sign-in form of the first admin of [`TestApp::spawn`].
pub const ADMIN_LOGIN: [(&str, &str); 2] = [
    ("email", "admin@one.example"),
    ("password", "first-admin-password"),
];

/// `[api] requests_per_minute` of every test server unless a test sets its own.
pub const TEST_RATE_LIMIT: i64 = 1_000_000;

pub const SECRETS_KEY: &str = "dGVzdC1rZXktZm9yLWNvbm5lY3Rvci1zZWNyZXRzISE=";

impl TestApp {
    /// A server over an empty database (the first-run state): no company, no token.
    pub async fn empty(backend: Backend) -> Option<TestApp> {
        TestApp::empty_with(backend, |_| {}).await
    }

    /// [`TestApp::empty`] with its settings changed by `tweak` before it starts.
    pub async fn empty_with(
        backend: Backend, tweak: impl FnOnce(&mut Settings),
    ) -> Option<TestApp> {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(create_pg_database().await?),
        };
        let mut settings = Settings::default();
        settings.server.listen = "127.0.0.1:0".into();
        settings.server.database_url = match &pg {
            None => format!("sqlite://{}", dir.path().join("test.db").display()),
            Some(db) => {
                let base = db
                    .admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b)
                    .unwrap_or(&db.admin_url)
                    .to_owned();
                format!("{base}/{}", db.name)
            }
        };
        settings.server.max_body_bytes = 64 * 1024;
        settings.secrets.key = Some(SECRETS_KEY.into());
        settings.worker.enabled = false;
        settings.worker.max_attempts = 2;
        // Tryton and the webhook receivers of the tests listen on loopback.
        settings.outbound.allow_private = true;
        // Tests make many calls a minute with one token: the limit stays on (so every call
        // counts, as in production) but out of reach, except where a test lowers it.
        settings.api.requests_per_minute = TEST_RATE_LIMIT;
        let exports = tempfile::tempdir().expect("tempdir");
        settings.export.root = exports.path().to_owned();
        tweak(&mut settings);
        let worker = settings.worker.clone();
        let database_url = settings.server.database_url.clone();
        let (base, app_state, stop) = crate::serve::serve(settings).await;
        Some(TestApp {
            base,
            client: reqwest::Client::new(),
            app_state,
            worker,
            token: String::new(),
            company: 0,
            database_url,
            exports,
            _dir: dir,
            _pg: pg,
            _stop: stop,
        })
    }

    /// A server with one company and its first admin, whose token the calls use.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |_| {}).await
    }

    /// [`TestApp::spawn`] with its settings changed by `tweak` before it starts.
    pub async fn spawn_with(
        backend: Backend, tweak: impl FnOnce(&mut Settings),
    ) -> Option<TestApp> {
        let mut app = TestApp::empty_with(backend, tweak).await?;
        let (company, user_id) = app
            .new_company(
                "One Builders",
                "admin@one.example",
                "Ada Admin",
                "first-admin-password",
            )
            .await;
        let token = app.token_for(user_id).await;
        std::fs::create_dir_all(app.exports.path().join(format!("company-{company}")))
            .expect("company export folder");
        app.token = token;
        app.company = company;
        Some(app)
    }

    /// A company on this server whose first admin (admin everywhere, may push) signs in with
    /// `email` and `password`; returns the company's id and the admin's.
    pub async fn new_company(
        &self, company: &str, email: &str, name: &str, password: &str,
    ) -> (i64, i64) {
        let hash = costbridge_server::password::hash_blocking(password).expect("hash");
        let admin = NewUser {
            email,
            name,
            password_hash: &hash,
            permissions: Permissions::FULL,
        };
        self.app_state
            .db
            .create_company(company, &admin)
            .await
            .expect("company")
    }

    /// Two Builders, a second company whose admin is Zed: its id and Zed's token.
    pub async fn company_two(&self) -> (i64, String) {
        let (zed, password) = ("zed@two.example", "second-admin-password");
        let (two, _) = self.two_builders(zed, "Zed Two", password).await;
        (two, self.login(zed, password).await)
    }

    /// Two Builders, a second company, with this first admin: its id and the admin's.
    pub async fn two_builders(&self, email: &str, name: &str, password: &str) -> (i64, i64) {
        self.new_company("Two Builders", email, name, password)
            .await
    }

    /// A new API token of this user, stored as the server stores one.
    pub async fn token_for(&self, user_id: i64) -> String {
        let token = costbridge_server::password::new_token();
        self.app_state
            .db
            .insert_token(
                user_id,
                &costbridge_server::password::hash_token(&token),
                None,
            )
            .await
            .expect("token");
        token
    }

    /// The first company's export folder (`<[export] root>/company-<id>`).
    pub fn export_dir(&self) -> std::path::PathBuf {
        self.exports
            .path()
            .join(format!("company-{}", self.company))
    }

    pub fn c(&self, path: &str) -> String {
        self.c_of(self.company, path)
    }

    /// `path` under another company's API.
    pub fn c_of(&self, company: i64, path: &str) -> String {
        format!("/api/v1/companies/{company}{path}")
    }

    pub async fn call(
        &self, method: &str, path: &str, token: &str, body: Option<Value>,
    ) -> (StatusCode, Value) {
        call_at(&self.client, &self.base, method, path, token, body).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, &self.token, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, &self.token, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("PATCH", path, &self.token, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("PUT", path, &self.token, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call("DELETE", path, &self.token, None).await
    }

    /// The answer itself to a body-less call with the admin's token, for its headers or bytes.
    pub async fn request(&self, method: &str, path: &str) -> reqwest::Response {
        self.client
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.base),
            )
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request")
    }

    /// Tests the saved ERP connection on the server at `base` (this one or a second instance).
    pub async fn test_connection_at(&self, base: &str) -> (StatusCode, Value) {
        let path = self.c("/erp_connection/test");
        call_at(
            &self.client,
            base,
            "POST",
            &path,
            &self.token,
            Some(json!({})),
        )
        .await
    }

    /// A page as the browser with this session cookie sees it.
    pub async fn page(&self, cookie: &str, path: &str) -> String {
        self.page_with(path, &[(COOKIE, cookie)])
            .await
            .text()
            .await
            .expect("html")
    }

    /// The answer to a browser's GET of `path` with these headers (a redirect is not followed).
    pub async fn page_with(&self, path: &str, headers: &[(HeaderName, &str)]) -> reqwest::Response {
        let req = crate::session::no_redirects().get(format!("{}{path}", self.base));
        send_with(req, headers).await
    }

    /// The answer to a browser's form POST to `path` with these headers (a redirect is not
    /// followed).
    pub async fn post_form(
        &self, path: &str, headers: &[(HeaderName, &str)], fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let req = crate::session::no_redirects().post(format!("{}{path}", self.base));
        send_with(req.form(fields), headers).await
    }

    /// A signed-in browser: its session cookie and the CSRF token its pages give htmx.
    pub async fn page_session(&self, email: &str, password: &str) -> (String, String) {
        let (_, cookie) = self.session(email, password).await;
        let csrf = crate::session::csrf_of(self, &cookie).await;
        (cookie, csrf)
    }

    /// A button's or a form's htmx POST from a page of this session.
    pub async fn htmx_post(
        &self, cookie: &str, csrf: &str, path: &str, form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, cookie)
            .header("x-csrf-token", csrf)
            .header("hx-request", "true")
            .form(form)
            .send()
            .await
            .expect("request")
    }

    /// [`Self::htmx_post`]'s status and body.
    pub async fn htmx_form(
        &self, cookie: &str, csrf: &str, path: &str, form: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let res = self.htmx_post(cookie, csrf, path, form).await;
        (res.status(), res.text().await.expect("body"))
    }

    /// A call with the admin's token that must answer `expected`; returns the answer.
    pub async fn expect(
        &self, expected: StatusCode, method: &str, path: &str, body: Value,
    ) -> Value {
        let (s, b) = self.call(method, path, &self.token, Some(body)).await;
        assert_eq!(s, expected, "{b}");
        b
    }

    /// A POST that must create something (201); returns the answer.
    pub async fn created(&self, path: &str, body: Value) -> Value {
        self.expect(StatusCode::CREATED, "POST", path, body).await
    }

    /// A POST that must start a job (202); returns the answer.
    pub async fn accepted(&self, path: &str, body: Value) -> Value {
        self.expect(StatusCode::ACCEPTED, "POST", path, body).await
    }

    /// A PATCH that must succeed (200); returns the answer.
    pub async fn patched(&self, path: &str, body: Value) -> Value {
        self.expect(StatusCode::OK, "PATCH", path, body).await
    }

    /// `n` identical POSTs at once with the admin's token; their statuses, in order.
    pub async fn posts_at_once(&self, path: &str, body: &Value, n: usize) -> Vec<StatusCode> {
        let mut handles = Vec::new();
        for _ in 0..n {
            let (client, url, token, body) = (
                self.client.clone(),
                format!("{}{path}", self.base),
                self.token.clone(),
                body.clone(),
            );
            handles.push(tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    pub async fn raw(
        &self, method: &str, path: &str, content_type: &str, body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let res = self
            .client
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.base),
            )
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        answer(res).await
    }

    /// Imports a CSV file into a list; the answer must be 200. Returns `{created, updated, unchanged}`.
    /// A new list of the first company named `name`, made over the API: its id.
    pub async fn new_list(&self, name: &str) -> i64 {
        let made = self
            .created(&self.c("/cost_code_lists"), json!({ "name": name }))
            .await;
        made["id"].as_i64().expect("list id")
    }

    pub async fn import(&self, list: i64, csv: String) -> Value {
        let (s, b) = self
            .raw(
                "POST",
                &self.c(&format!("/cost_code_lists/{list}/import")),
                "text/csv",
                csv.into_bytes(),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    /// Downloads a list as CSV.
    pub async fn export(&self, list: i64) -> reqwest::Response {
        self.request("GET", &self.c(&format!("/cost_code_lists/{list}/export")))
            .await
    }

    /// Creates a user with these permissions and returns a token for them.
    pub async fn user(&self, email: &str, permissions: Value) -> String {
        self.created(&self.c("/users"), json!({"email": email, "name": "Test User", "password": "a-long-password", "permissions": permissions}))
            .await;
        self.login(email, "a-long-password").await
    }

    /// Signs in through the sign-in page like a browser: a client that follows no redirect,
    /// and the session cookie (`name=value`) to send with it.
    pub async fn session(&self, email: &str, password: &str) -> (reqwest::Client, String) {
        let res = self
            .post_form("/login", &[], &[("email", email), ("password", password)])
            .await;
        let cookie = res.headers()[reqwest::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        (crate::session::no_redirects(), cookie)
    }

    /// Asks for an API token with these credentials: the status and the answer.
    pub async fn sign_in(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.call(
            "POST",
            "/api/v1/tokens",
            "",
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let (s, b) = self.sign_in(email, password).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["token"].as_str().expect("token").to_owned()
    }

    /// Connects a file ERP writing to this test's export folder; returns the ERP list id.
    /// Stores `connector` as the company's connection behind the API's back: a connection
    /// saved before a rule the API now applies.
    pub async fn store_connection(&self, profile: &str, connector: &Value) {
        let (_, me) = self.get("/api/v1/me").await;
        let actor = me["id"].as_i64().expect("me");
        self.app_state
            .db
            .put_erp_connection(self.company, actor, profile, connector, &json!({}))
            .await
            .expect("stored");
    }

    pub async fn connect(&self, profile: &str, format: &str) -> i64 {
        let (s, b) = self
            .put(&self.c("/erp_connection"), json!({"profile": profile, "connector": {"kind": "file", "directory": self.export_dir(), "format": format,
                    "gl_accounts": [{"code": "4000", "name": "Construction Income", "kind": "income"},
                                    {"code": "5000", "name": "Job Costs", "kind": "expense"}]}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["erp_list_id"].as_i64().expect("erp list")
    }

    pub async fn code(
        &self, list: i64, code: &str, description: &str, parent: Option<i64>,
    ) -> Value {
        self.created(
            &self.c(&format!("/cost_code_lists/{list}/cost_codes")),
            json!({"code": code, "description": description, "parent_id": parent}),
        )
        .await
    }

    pub async fn send(&self, list: i64) -> Value {
        let list_path = self.c(&format!("/cost_code_lists/{list}"));
        send_at(&self.client, &self.base, &self.token, &list_path).await
    }

    pub async fn items(&self, filter: &str) -> Vec<Value> {
        let (s, b) = self
            .get(&self.c(&format!("/erp/cost_codes?filter={filter}&per_page=1000")))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b.as_array().expect("items").clone()
    }

    /// A gauge's value on `/metrics`, as the exposition writes it (`None` when it is absent).
    pub async fn gauge(&self, name: &str) -> Option<String> {
        let (_, text) = self.call("GET", "/metrics", "", None).await;
        let text = text.as_str().unwrap_or_default().to_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
    }

    /// What `costbridge check` finds wrong in the test's company (`Db::integrity_violations`).
    pub async fn violations(&self) -> Vec<String> {
        self.app_state
            .db
            .integrity_violations(Some(self.company))
            .await
            .expect("check")
    }

    pub async fn status_of(&self, list: i64, id: i64) -> String {
        let (_, b) = self
            .get(&self.c(&format!("/cost_code_lists/{list}/cost_codes/{id}")))
            .await;
        b["sync_status"].as_str().expect("status").to_owned()
    }

    /// Accepts every ready item in one request, income account 4000 filling any left empty;
    /// answers the queued job (the worker has not run).
    pub async fn accept_waiting(&self) -> Value {
        self.accepted(
            &self.c("/erp/cost_codes/export"),
            json!({"gl_income_account": "4000"}),
        )
        .await
    }

    /// Gives every ready item an income account, exports them all and runs the worker.
    pub async fn accept_all(&self) -> i64 {
        for item in self.items("ready_to_export").await {
            self.patched(
                &self.c(&format!("/erp/cost_codes/{}", item["id"])),
                json!({"gl_income_account": "4000"}),
            )
            .await;
        }
        let b = self
            .accepted(&self.c("/erp/cost_codes/export"), json!({}))
            .await;
        self.run_worker().await;
        b["export_job_id"].as_i64().expect("job")
    }

    /// Settings for another server or command on this test's database (its worker off).
    pub fn instance_settings(&self) -> Settings {
        let mut settings = Settings::default();
        settings.server.listen = "127.0.0.1:0".into();
        settings.server.database_url = self.database_url.clone();
        settings.secrets.key = Some(SECRETS_KEY.into());
        settings.worker.enabled = false;
        // As the first instance: the test peers listen on loopback, exports go to its root.
        settings.outbound.allow_private = true;
        settings.export.root = self.exports.path().to_owned();
        settings.api.requests_per_minute = TEST_RATE_LIMIT;
        settings
    }

    /// A second server on this test's database, its settings changed by `tweak`; returns its
    /// base URL and a sender that stops it (dropping it does too).
    pub async fn second_instance(
        &self, tweak: impl FnOnce(&mut Settings),
    ) -> (String, tokio::sync::oneshot::Sender<()>) {
        let mut settings = self.instance_settings();
        tweak(&mut settings);
        let (base, _, stop) = crate::serve::serve(settings).await;
        (base, stop)
    }

    /// The actions of the audit events matching `query` (e.g. `entity_type=user`), newest first.
    pub async fn audit_actions(&self, query: &str) -> Vec<String> {
        let (s, ev) = self
            .get(&self.c(&format!("/audit_events?per_page=1000&{query}")))
            .await;
        assert_eq!(s, StatusCode::OK, "{ev}");
        ev.as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["action"].as_str().map(str::to_owned))
            .collect()
    }

    pub async fn run_worker(&self) -> usize {
        costbridge_server::worker::run_pending_exports(&self.app_state, &self.worker)
            .await
            .expect("worker step")
    }
}
