//! Exports into a real Tryton ERP started by the test (scripts/tryton/instance), including a
//! server killed with SIGKILL in the middle of an export.
use crate::both;
use crate::helpers::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

both!(tryton_end_to_end);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A throwaway Tryton server on a free port, stopped when dropped.
pub struct Tryton {
    pub url: String,
    dir: tempfile::TempDir,
}

impl Tryton {
    pub fn start() -> Tryton {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(repo().join("scripts/tryton/instance"))
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/tryton/instance");
        assert!(out.status.success(), "Tryton did not start");
        let info: Value = serde_json::from_slice(&out.stdout).expect("instance prints JSON");
        Tryton {
            url: info["url"].as_str().expect("url").to_owned(),
            dir,
        }
    }

    pub fn connector(&self) -> Value {
        json!({"kind": "tryton", "url": self.url, "database": "costs", "username": "admin", "password": "admin-secret"})
    }

    /// One JSON-RPC call as the admin (a fresh session each time: tests call this rarely).
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        let c = reqwest::Client::new();
        let url = format!("{}costs/rpc/", self.url);
        let login: Value = c.post(&url).json(&json!({"id": 1, "method": "common.db.login", "params": ["admin", {"password": "admin-secret"}, "en"]}))
            .send().await.expect("login").json().await.expect("login json");
        let (uid, token) = (
            login["result"][0].clone(),
            login["result"][1].as_str().expect("session").to_owned(),
        );
        let auth = format!("Session {}", base64(&format!("admin:{uid}:{token}")));
        let res: Value = c
            .post(&url)
            .header("Authorization", auth)
            .json(&json!({"id": 2, "method": method, "params": params}))
            .send()
            .await
            .expect("rpc")
            .json()
            .await
            .expect("rpc json");
        assert!(
            res.get("error").is_none_or(Value::is_null),
            "{method}: {res}"
        );
        res["result"].clone()
    }

    /// Analytic account codes under the cost code root, with how often each occurs.
    pub async fn codes(&self) -> Vec<(String, String, bool)> {
        let rows = self.rpc("model.analytic_account.account.search_read",
            json!([[["type", "!=", "root"]], 0, null, [["code", "ASC"]], ["code", "name", "active"], {"company": 1, "active_test": false}])).await;
        rows.as_array()
            .expect("rows")
            .iter()
            .map(|r| {
                (
                    r["code"].as_str().unwrap_or("").to_owned(),
                    r["name"].as_str().unwrap_or("").to_owned(),
                    r["active"].as_bool().unwrap_or(r["active"] == 1),
                )
            })
            .collect()
    }
}

impl Drop for Tryton {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/tryton/stop"))
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            out.push(if i <= c.len() {
                T[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

async fn tryton_end_to_end(app: TestApp) {
    let erp = Tryton::start();
    let (s, conn) = app
        .put(
            &app.c("/erp_connection"),
            json!({"profile": "tryton", "connector": erp.connector()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{conn}");
    assert_eq!(conn["connector"]["password"], "********");
    let list = conn["erp_list_id"].as_i64().unwrap();
    let (_, t) = app.post(&app.c("/erp_connection/test"), json!({})).await;
    assert_eq!(t["ok"], true, "{t}");
    let (s, accounts) = app.get(&app.c("/erp/gl_accounts")).await;
    assert_eq!(s, StatusCode::OK, "{accounts}");
    let income = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "income")
        .expect("a revenue account")["code"]
        .clone();
    assert!(
        accounts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "expense")
    );
    let a = app.code(list, "01", "General Requirements", None).await;
    let b = app.code(list, "100", "Permits", a["id"].as_i64()).await;
    app.code(list, "02", "Site Work", None).await;
    app.send(list).await;
    let (s, _) = app
        .post(
            &app.c("/erp/cost_codes/export"),
            json!({"gl_income_account": income}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    app.run_worker().await;
    assert_eq!(
        app.items("synced").await.len(),
        3,
        "{:?}",
        app.items("failed").await
    );
    // Tryton confirmed each code: none is only "in file".
    let (_, ours) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes")))
        .await;
    assert!(
        ours.as_array()
            .unwrap()
            .iter()
            .all(|c| c["sync_status"] == "synced" && c["delivered_to"].is_null()),
        "{ours}"
    );
    let codes = erp.codes().await;
    let names: Vec<(&str, &str)> = codes
        .iter()
        .map(|(c, n, _)| (c.as_str(), n.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("01", "General Requirements"),
            ("01-100", "Permits"),
            ("02", "Site Work")
        ]
    );
    // A change flows as an update of the same record.
    app.patch(
        &app.c(&format!("/cost_code_lists/{list}/cost_codes/{}", b["id"])),
        json!({"description": "Permits and Fees"}),
    )
    .await;
    app.send(list).await;
    app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
    app.run_worker().await;
    let codes = erp.codes().await;
    assert_eq!(codes.len(), 3);
    assert_eq!(codes[1].1, "Permits and Fees");
    // Sync from ERP: a code created in Tryton arrives synced; an unchanged tree reports unchanged.
    let root = erp
        .rpc(
            "model.analytic_account.account.search",
            json!([[["code", "=", "COSTCODES"]], 0, 1, null, {"company": 1}]),
        )
        .await[0]
        .clone();
    erp.rpc("model.analytic_account.account.create",
        json!([[{"name": "Concrete", "code": "03", "type": "normal", "root": root, "parent": root, "state": "opened"}], {"company": 1}])).await;
    // As if 02 had gone out in a file before the company connected Tryton: the ERP has it
    // exactly, so the pull confirms it quietly (no update, no audit row, no event).
    crate::queue::execute(
        &app,
        "UPDATE cost_codes SET delivered_to = 'costbridge-export-1.iif' WHERE full_code = '02'",
    )
    .await;
    let (s, pulled) = app
        .post(&app.c("/erp/cost_codes/sync_from_erp"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{pulled}");
    assert_eq!(
        (
            pulled["created"].as_i64(),
            pulled["updated"].as_i64(),
            pulled["unchanged"].as_i64(),
            pulled["conflicts"].clone()
        ),
        (Some(1), Some(0), Some(3), json!([]))
    );
    let (_, two) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes?q=Site")))
        .await;
    assert_eq!(two[0]["delivered_to"], Value::Null, "{two}");
    let (_, found) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes?q=concrete")))
        .await;
    assert_eq!(
        (
            found[0]["full_code"].as_str(),
            found[0]["sync_status"].as_str()
        ),
        (Some("03"), Some("synced"))
    );
    // The same pull from the ERP Integrations page's button.
    erp.rpc("model.analytic_account.account.create",
        json!([[{"name": "Masonry", "code": "04", "type": "normal", "root": root, "parent": root, "state": "opened"}], {"company": 1}])).await;
    let cookie = crate::session::sign_in(&app, None).await;
    let csrf = crate::session::csrf_of(&app, &cookie).await;
    let page = app.page(&cookie, "/erp").await;
    assert!(
        page.contains("Sync from ERP"),
        "the approver sees the button"
    );
    let res = app.htmx_post(&cookie, &csrf, "/erp/sync", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let fragment = res.text().await.unwrap();
    assert!(
        fragment.contains("From the ERP: 1 created, 0 updated, 4 unchanged."),
        "{fragment}"
    );
}

/// The real binary, on a SQLite file, with a short export lease so a restart resumes quickly.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) base: String,
}

/// The binary outlives the test otherwise: the restarted server of each killed-server test was
/// left running after the suite.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A company and its first admin on the database `db`, made by the binary's `bootstrap`:
    /// `{"company_id", "user_id", "token"}`.
    pub(crate) fn bootstrap(db: &str) -> Value {
        Server::bootstrap_with(db, &[])
    }

    /// [`Server::bootstrap`] with these extra environment variables.
    pub(crate) fn bootstrap_with(db: &str, env: &[(&str, &str)]) -> Value {
        let boot = Command::new(env!("CARGO_BIN_EXE_costbridge"))
            .args([
                "bootstrap",
                "--company",
                "Crash Co",
                "--email",
                "crash@example.com",
                "--password",
                "crash-password",
                "--database-url",
                db,
            ])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            boot.status.success(),
            "{}",
            String::from_utf8_lossy(&boot.stderr)
        );
        serde_json::from_slice(&boot.stdout).unwrap()
    }

    /// Imports `csv` into `list` of `company` and sends it to the ERP, as the admin would
    /// (reading the button's list version first); each step must succeed.
    pub(crate) async fn import_and_send(&self, company: i64, token: &str, list: i64, csv: String) {
        let list_path = format!("/api/v1/companies/{company}/cost_code_lists/{list}");
        crate::helpers::import_and_send(&self.base, token, &list_path, csv).await;
    }

    /// A call to `path` under `/api/v1/companies/<company>` on this server.
    async fn company_call(
        &self, token: &str, company: i64, method: &str, path: &str, body: Value,
    ) -> (StatusCode, Value) {
        let path = format!("/api/v1/companies/{company}{path}");
        crate::helpers::call_at(
            &reqwest::Client::new(),
            &self.base,
            method,
            &path,
            token,
            Some(body),
        )
        .await
    }

    /// Saves the company's ERP connection (`{"profile", "connector"}`); returns its ERP list.
    pub(crate) async fn connect(&self, token: &str, company: i64, connection: Value) -> i64 {
        let (s, b) = self
            .company_call(token, company, "PUT", "/erp_connection", connection)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["erp_list_id"].as_i64().expect("connection saved")
    }

    /// Exports the company's ready codes with `body`; returns the export job's path.
    pub(crate) async fn export(&self, token: &str, company: i64, body: Value) -> String {
        let (s, job) = self
            .company_call(token, company, "POST", "/erp/cost_codes/export", body)
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{job}");
        format!(
            "/api/v1/companies/{company}/erp/export_jobs/{}",
            job["export_job_id"]
        )
    }

    /// An export job as this server answers for it, or `None` while it cannot answer.
    pub(crate) async fn job(&self, token: &str, job_path: &str) -> Option<Value> {
        reqwest::Client::new()
            .get(format!("{}{job_path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// Waits for the export job to be done (a resumed job may take minutes), every one of its
    /// `n` codes synced; returns the job.
    pub(crate) async fn all_synced(&self, token: &str, job_path: &str, n: usize) -> Value {
        let done = wait_for(
            "the resumed job to finish",
            Duration::from_secs(300),
            async || {
                let st = self.job(token, job_path).await?;
                (st["status"] == "done").then_some(st)
            },
        )
        .await;
        assert_eq!(
            done["counts"],
            json!({"synced": n, "failed": 0, "exporting": 0}),
            "{done}"
        );
        done
    }

    pub(crate) fn start(db: &str) -> Server {
        Server::start_with(db, &[])
    }

    /// `costbridge serve` on `db` with these extra environment variables.
    pub(crate) fn start_with(db: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_costbridge"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", db])
            .envs(env.iter().copied())
            .env("COSTBRIDGE__WORKER__LEASE_SECONDS", "2")
            .env("COSTBRIDGE__WORKER__BACKOFF_SECONDS", "1")
            // Tryton runs on loopback, which the default outbound policy refuses.
            .env("COSTBRIDGE__OUTBOUND__ALLOW_PRIVATE", "true")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start costbridge");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server printed its address")
                .expect("line");
            if let Some(addr) = line.strip_prefix("costbridge listening on ") {
                break addr.trim().to_owned();
            }
        };
        Server { child, base }
    }
}

pub(crate) async fn wait_for<T>(
    what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_export_loses_and_duplicates_nothing() {
    const N: usize = 5000;
    let erp = Tryton::start();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    let ids = Server::bootstrap(&db);
    let token = ids["token"].as_str().unwrap().to_owned();
    let mut server = Server::start(&db);
    let company = ids["company_id"].as_i64().unwrap();
    let list = server
        .connect(
            &token,
            company,
            json!({"profile": "tryton", "connector": erp.connector()}),
        )
        .await;
    server
        .import_and_send(company, &token, list, crate::helpers::divisions_csv(N))
        .await;
    let job_path = server.export(&token, company, json!({})).await;
    // Kill it once some batches are in Tryton and others are not.
    wait_for("the first batches", Duration::from_secs(120), async || {
        (server.job(&token, &job_path).await?["counts"]["synced"].as_i64()? > 0).then_some(())
    })
    .await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let server = Server::start(&db);
    let done = server.all_synced(&token, &job_path, N).await;
    assert!(
        done["attempts"].as_i64().unwrap() >= 2,
        "the job was resumed: {done}"
    );
    let codes = erp.codes().await;
    let mut unique: Vec<&str> = codes.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(unique.len(), N, "one analytic account per code");
    unique.dedup();
    assert_eq!(unique.len(), N, "no code twice in Tryton");
    let res = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/companies/{company}/cost_code_lists/{list}/cost_codes?sync_status=synced&per_page=1",
            server.base,
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["total"], N.to_string().as_str());
}
