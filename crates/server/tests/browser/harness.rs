//! The browser harness: the real server in-process on a fresh SQLite file, Debian's
//! chromedriver on a free port, and headless Chromium with a throwaway profile. Waits are on
//! conditions with timeouts, never blind sleeps; the export worker is driven by the test.
use crate::webdriver::{Driver, Element};
use costbridge_domain::{Level, Permissions};
use costbridge_server::Settings;
use costbridge_server::config::WorkerSettings;
use costbridge_server::state::AppState;
use costbridge_storage::users::NewUser;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const ADMIN: &str = "admin@one.example";
pub const PASSWORD: &str = "a-long-password";
/// Three codes in two tiers, for a test that needs a small list to act on.
pub const THREE_CODES: &str =
    "01,General Requirements,true\n01-100,Project Management,true\n02,Existing Conditions,true";
/// How long a condition may take before the test fails (htmx swaps take milliseconds).
const PATIENCE: Duration = Duration::from_secs(15);

/// One browser at a time: two Chromiums on a 2-core machine make every wait flaky.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// False (with a note) when the browser is not installed; in CI that is a failure instead.
pub fn available() -> bool {
    if Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{CHROMEDRIVER} or {CHROMIUM} is missing; scripts/setup installs chromium and chromium-driver"
        );
    }
    eprintln!(
        "skipping the browser tests: {CHROMEDRIVER} is missing (scripts/setup installs chromium and chromium-driver)"
    );
    false
}

pub fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
}

/// The server under test.
pub struct Site {
    pub base: String,
    pub state: AppState,
    pub worker: WorkerSettings,
    pub exports: tempfile::TempDir,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Someone who may look at both tools and change nothing.
pub const VIEWER_RIGHTS: Permissions = Permissions {
    admin_tool: Level::ReadOnly,
    erp_integrations: Level::ReadOnly,
    can_push_to_accounting: false,
};

/// Someone of the Admin tool at `level`, with no part in ERP Integrations.
pub fn admin_tool_only(level: Level) -> Permissions {
    Permissions {
        admin_tool: level,
        erp_integrations: Level::None,
        can_push_to_accounting: false,
    }
}

/// A company made for a test, with its first admin (admin everywhere, may push).
pub struct Company {
    pub id: i64,
    pub admin: i64,
}

impl Site {
    /// A server over an empty database (the first-run state).
    pub async fn start() -> Arc<Site> {
        Site::start_with(|_| {}).await
    }

    /// [`Site::start`] with its settings changed by `tweak` before it starts.
    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Arc<Site> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings::default();
        settings.server.listen = "127.0.0.1:0".into();
        settings.server.database_url =
            format!("sqlite://{}", dir.path().join("browser.db").display());
        settings.worker.enabled = false;
        settings.worker.max_attempts = 1;
        // Each company's exports land in <root>/company-<id> (see `export_files`).
        let exports = tempfile::tempdir().expect("tempdir");
        settings.export.root = exports.path().to_owned();
        tweak(&mut settings);
        let worker = settings.worker.clone();
        let (base, state, stop) = crate::serve::serve(settings).await;
        Arc::new(Site {
            base,
            state,
            worker,
            exports,
            _dir: dir,
            _stop: stop,
        })
    }

    /// A server with one company ([`Site::company`]), or `None` where there is no browser
    /// to test it with (see [`available`]).
    pub async fn for_browser() -> Option<(Arc<Site>, Company)> {
        if !available() {
            return None;
        }
        let site = Site::start().await;
        let company = site.company().await;
        Some((site, company))
    }

    /// [`Site::for_browser`] with the company connected to a file ERP of `profile`, its ERP
    /// list holding `csv` (full_code,description,active rows); returns the ERP list id too.
    pub async fn with_codes(profile: &str, csv: &str) -> Option<(Arc<Site>, Company, i64)> {
        let (site, company) = Site::for_browser().await?;
        let list = site.connect(&company, profile).await;
        site.codes(&company, list, csv).await;
        Some((site, company, list))
    }

    pub async fn company(&self) -> Company {
        let hash = costbridge_server::password::hash_blocking(PASSWORD).expect("hash");
        let admin = NewUser {
            email: ADMIN,
            name: "Ada Admin",
            password_hash: &hash,
            permissions: Permissions::FULL,
        };
        let (id, admin) = self
            .state
            .db
            .create_company("One Builders", &admin)
            .await
            .expect("company");
        Company { id, admin }
    }

    pub async fn user(&self, c: &Company, email: &str, name: &str, permissions: Permissions) {
        let hash = costbridge_server::password::hash_blocking(PASSWORD).expect("hash");
        let u = NewUser {
            email,
            name,
            password_hash: &hash,
            permissions,
        };
        self.state
            .db
            .create_user(c.id, c.admin, &u)
            .await
            .expect("user");
    }

    /// How many files the file connector wrote for the companies of this site.
    pub fn export_files(&self) -> usize {
        std::fs::read_dir(self.exports.path())
            .unwrap()
            .map(|company| std::fs::read_dir(company.unwrap().path()).unwrap().count())
            .sum()
    }

    /// Connects a file ERP (writing into the company's folder of this test's export root);
    /// returns the ERP list id.
    pub async fn connect(&self, c: &Company, profile: &str) -> i64 {
        let connector = serde_json::json!({
            "kind": "file", "directory": ".", "format": "iif",
            "gl_accounts": [
                {"code": "4000", "name": "Construction Income", "kind": "income"},
                {"code": "5000", "name": "Job Materials", "kind": "expense"},
            ],
        });
        self.state
            .db
            .put_erp_connection(c.id, c.admin, profile, &connector, &connector)
            .await
            .expect("connection")
            .erp_list_id
    }

    /// Imports `csv` (full_code,description,active) into a list as the company's admin.
    pub async fn codes(&self, c: &Company, list: i64, csv: &str) {
        let admin = self.state.db.user(c.id, c.admin).await.expect("admin");
        costbridge_server::ops::imports::import(
            &self.state,
            &admin,
            c.id,
            list,
            format!("full_code,description,active\n{csv}").as_bytes(),
            |_| {},
        )
        .await
        .expect("import");
    }

    pub async fn run_worker(&self) -> usize {
        costbridge_server::worker::run_pending_exports(&self.state, &self.worker)
            .await
            .expect("worker step")
    }
}

/// A Chromium window on the site.
#[derive(Clone)]
pub struct Browser {
    pub d: Driver,
    pub base: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `body` with a fresh browser on `site`; the browser and chromedriver are closed
/// afterwards even when the body fails, and a failure leaves a screenshot in target/.
pub async fn with_browser<F, Fut>(site: &Site, name: &str, body: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _one = ONE_AT_A_TIME.lock().await;
    let port = free_port();
    let mut driver = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    wait_until("chromedriver to answer", || async {
        reqwest::get(format!("{url}/status"))
            .await
            .ok()
            .filter(|r| r.status().is_success())
    })
    .await;
    let profile = tempfile::tempdir().expect("profile dir");
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.path().display()));
    let d = Driver::start(&url, CHROMIUM, &args)
        .await
        .expect("browser session");
    let b = Browser {
        d: d.clone(),
        base: site.base.clone(),
    };
    let outcome = tokio::spawn(body(b)).await;
    if outcome.is_err() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-failures");
        let _ = std::fs::create_dir_all(&dir);
        let _ = d.screenshot(&dir.join(format!("{name}.png"))).await;
    }
    let _ = d.quit().await;
    let _ = driver.kill().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Polls `check` until it gives a value; fails the test after [`PATIENCE`].
pub async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Browser {
    pub async fn go(&self, path: &str) {
        self.d
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    /// The element, once it is in the page.
    pub async fn el(&self, css: &str) -> Element {
        let what = format!("an element {css}");
        wait_until(&what, || async {
            self.d.find_all(css).await.ok()?.into_iter().next()
        })
        .await
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.d.find_all(css).await.expect("find").is_empty()
    }

    /// Clicks like a person would: the element is scrolled to the middle of the window first,
    /// away from the header and the messages in the corner.
    pub async fn click(&self, css: &str) {
        let e = self.el(css).await;
        self.d
            .execute(
                "arguments[0].scrollIntoView({block: 'center'})",
                vec![e.json()],
            )
            .await
            .expect("scroll");
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.el(css).await;
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    pub async fn text(&self, css: &str) -> String {
        self.el(css).await.text().await.expect("text")
    }

    /// The text `script` returns ("" when it returns anything else).
    pub async fn script_text(&self, script: &str, args: Vec<serde_json::Value>) -> String {
        let v = self.d.execute(script, args).await.expect("script");
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.el(css).await.attr(name).await.expect("attribute")
    }

    /// Waits until htmx has no request, swap or settle under way. New content is visible a
    /// settle delay before htmx wires it up (`htmx-added` goes in the same step), and an action
    /// fired in between is the browser's own: a form submits as a GET of the page.
    pub async fn settled(&self) {
        self.wait_gone(".htmx-added, .htmx-settling, .htmx-swapping, .htmx-request")
            .await;
    }

    /// Waits until the element's text contains `needle`.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let what = format!("{css} to say '{needle}'");
        wait_until(&what, || async {
            let els = self.d.find_all(css).await.ok()?;
            for e in els {
                if let Ok(t) = e.text().await
                    && t.contains(needle)
                {
                    return Some(t);
                }
            }
            None
        })
        .await
    }

    /// Waits until no element matches.
    pub async fn wait_gone(&self, css: &str) {
        let what = format!("{css} to go away");
        wait_until(&what, || async { (!self.exists(css).await).then_some(()) }).await;
    }

    pub async fn wait_url(&self, part: &str) {
        let what = format!("the address to contain {part}");
        wait_until(&what, || async {
            let url = self.d.current_url().await.ok()?;
            url.contains(part).then_some(())
        })
        .await;
    }

    /// Clicks something that loads a new page (a plain form post) and waits for that page.
    pub async fn click_to_load(&self, css: &str) {
        self.d
            .execute("document.documentElement.dataset.old = '1'", vec![])
            .await
            .expect("mark the page");
        self.click(css).await;
        wait_until("the next page", || async {
            let v = self
                .d
                .execute(
                    "return document.readyState === 'complete' && !document.documentElement.dataset.old",
                    vec![],
                )
                .await
                .ok()?;
            (v == true).then_some(())
        })
        .await;
    }

    pub async fn login(&self, email: &str, password: &str) {
        self.go("/login").await;
        self.fill("#f-email", email).await;
        self.fill("#f-password", password).await;
        self.click_to_load("form button[type=submit]").await;
        self.wait_gone("#f-password").await;
    }

    /// The session cookie as the browser holds it (it must hold one).
    pub async fn session_cookie(&self) -> serde_json::Value {
        self.d
            .cookie("costbridge_session")
            .await
            .expect("session cookie")
    }

    pub async fn logout(&self) {
        self.click_to_load(".who button").await;
        self.el("#f-password").await;
    }

    /// Saves the current page as docs/screenshots/NAME.png (the README shows them).
    pub async fn shot(&self, name: &str) {
        let dir = screenshots();
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        self.d
            .screenshot(&dir.join(format!("{name}.png")))
            .await
            .expect("screenshot");
    }
}
