//! The Tryton connector against a real Tryton 8.2 (SQLite): each test starts its own throw-away
//! server with `scripts/tryton/instance` (a copy of the prepared template database: company,
//! chart of accounts, analytic root COSTCODES) and stops it when done. The checks read Tryton's
//! state back over plain JSON-RPC, independently of the connector.
//!
//! The benchmark `bench_export_vs_direct_rpc` is ignored by default:
//! `cargo test -p costbridge-erp --test tryton -- --ignored --nocapture bench_export_vs_direct_rpc`
use costbridge_erp::tryton::{BATCH, Tryton};
use costbridge_erp::{
    Connector, ConnectorError, Env, ExportContext, ExportLine, GlAccount, GlKind, LineResult,
    Outbound, Previous, TrytonSettings,
};

/// The test's Tryton listens on loopback, which the default outbound policy refuses.
fn local() -> Env {
    Env {
        outbound: Outbound::new(true, &[]).unwrap(),
        ..Env::default()
    }
}
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Harness

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running Tryton server of its own, stopped (and its folder removed) on drop.
struct Instance {
    dir: tempfile::TempDir,
    settings: TrytonSettings,
    pid: u32,
}

impl Instance {
    fn start() -> Instance {
        let dir = tempfile::Builder::new()
            .prefix("costbridge-tryton-")
            .tempdir()
            .expect("temp dir");
        let (settings, pid) = launch(dir.path(), false);
        Instance { dir, settings, pid }
    }

    /// Starts the server again on the same database (a new port, so new settings).
    fn restart(&mut self) {
        let (settings, pid) = launch(self.dir.path(), true);
        self.settings = settings;
        self.pid = pid;
    }

    fn stop(&self) {
        let _ = Command::new(repo().join("scripts/tryton/stop"))
            .arg(self.dir.path())
            .output();
    }

    /// SIGKILL, as a crash: no chance to finish the request in flight.
    fn kill_hard(&self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
                .unwrap_or_default()
                .contains(") Z")
        {
            assert!(Instant::now() < deadline, "trytond did not die");
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = std::fs::remove_file(self.dir.path().join("pid"));
    }

    fn tryton(&self) -> Tryton {
        Tryton::new(&self.settings, &local())
    }

    /// Exports these lines, asserting every one synced; the origin id per item.
    async fn export_synced(&self, lines: &[ExportLine<'_>]) -> HashMap<i64, String> {
        synced(&self.tryton().export(&ctx(), &lines).await.unwrap())
    }

    async fn direct(&self) -> Direct {
        Direct::login(&self.settings).await
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
}

fn launch(dir: &std::path::Path, reuse: bool) -> (TrytonSettings, u32) {
    let mut cmd = Command::new(repo().join("scripts/tryton/instance"));
    if reuse {
        cmd.arg("--reuse");
    }
    let out = cmd
        .arg(dir)
        .env("TRYTOND_SESSION__MAX_ATTEMPT", "100")
        .output()
        .expect("run scripts/tryton/instance");
    assert!(
        out.status.success(),
        "scripts/tryton/instance failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(line.trim()).expect("instance prints one JSON line");
    let settings = TrytonSettings {
        url: v["url"].as_str().unwrap().to_owned(),
        database: v["database"].as_str().unwrap().to_owned(),
        username: v["username"].as_str().unwrap().to_owned(),
        password: v["password"].as_str().unwrap().into(),
    };
    (settings, v["pid"].as_u64().unwrap() as u32)
}

/// One JSON-RPC request, with the session's header once signed in.
async fn rpc(http: &reqwest::Client, url: &str, auth: Option<&str>, body: Value) -> Value {
    let mut req = http.post(url).json(&body);
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    req.send().await.unwrap().json().await.unwrap()
}

/// Plain JSON-RPC, to check and change Tryton's state behind the connector's back.
struct Direct {
    http: reqwest::Client,
    url: String,
    auth: String,
}

impl Direct {
    async fn login(s: &TrytonSettings) -> Direct {
        let http = reqwest::Client::new();
        let url = format!("{}{}/rpc/", s.url, s.database);
        let login = json!({"id": 1, "method": "common.db.login",
            "params": [s.username, {"password": s.password.expose()}, "en"]});
        let v = rpc(&http, &url, None, login).await;
        let uid = v["result"][0].as_i64().expect("login");
        let token = v["result"][1].as_str().unwrap();
        let auth = format!(
            "Session {}",
            b64(format!("{}:{uid}:{token}", s.username).as_bytes())
        );
        Direct { http, url, auth }
    }

    async fn try_call(&self, method: &str, params: Value) -> Result<Value, Value> {
        let body = json!({"id": 1, "method": method, "params": params});
        let v = rpc(&self.http, &self.url, Some(&self.auth), body).await;
        match v.get("error") {
            Some(e) if !e.is_null() => Err(e.clone()),
            _ => Ok(v["result"].clone()),
        }
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// search_read with company context and inactive records included.
    async fn find(&self, model: &str, domain: Value, fields: &[&str]) -> Vec<Value> {
        let v = self
            .call(
                &format!("model.{model}.search_read"),
                json!([domain, 0, null, [["id", "ASC"]], fields, {"company": 1, "active_test": false}]),
            )
            .await;
        v.as_array().unwrap().clone()
    }

    async fn by_code(&self, model: &str, code: &str, fields: &[&str]) -> Vec<Value> {
        self.find(model, json!([["code", "=", code]]), fields).await
    }

    /// The product categories exports made, named `Costbridge <income> | <expense>`.
    async fn categories(&self, fields: &[&str]) -> Vec<Value> {
        let domain = json!([["name", "like", "Costbridge%"]]);
        self.find("product.category", domain, fields).await
    }

    async fn count(&self, model: &str, domain: Value) -> i64 {
        self.call(
            &format!("model.{model}.search_count"),
            json!([domain, 0, null, {"company": 1, "active_test": false}]),
        )
        .await
        .as_i64()
        .unwrap()
    }

    async fn write(&self, model: &str, ids: &[i64], vals: Value) {
        self.call(
            &format!("model.{model}.write"),
            json!([ids, vals, {"company": 1}]),
        )
        .await;
    }

    /// The analytic accounts by code (every code must be unique), with parent code and type.
    async fn accounts(&self) -> HashMap<String, Value> {
        let all = self
            .find(
                "analytic_account.account",
                json!([["root.code", "=", "COSTCODES"]]),
                &[
                    "code",
                    "name",
                    "type",
                    "parent.code",
                    "root",
                    "active",
                    "state",
                ],
            )
            .await;
        let mut out = HashMap::new();
        for a in all {
            let code = a["code"].as_str().unwrap().to_owned();
            assert!(
                out.insert(code.clone(), a).is_none(),
                "two accounts with code {code}"
            );
        }
        out
    }
}

fn b64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                T[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn truthy(v: &Value) -> bool {
    v.as_bool().unwrap_or_else(|| v.as_i64() == Some(1))
}

fn ctx() -> ExportContext {
    ExportContext {
        job_id: 1,
        delimiter: '-',
        max_description: None,
    }
}

/// A new code (never synced). The parent is what is left of the full code before its last `-`.
fn line<'a>(item_id: i64, full_code: &'a str, description: &'a str) -> ExportLine<'a> {
    let (parent, code) = match full_code.rsplit_once('-') {
        Some((p, c)) => (Some(p), c),
        None => (None, full_code),
    };
    ExportLine {
        item_id,
        code,
        full_code,
        description,
        active: true,
        parent_full_code: parent,
        origin_id: None,
        previous: None,
        income: None,
        expense: None,
    }
}

/// An update of a synced code: its origin id and what Tryton confirmed last time.
fn update<'a>(
    synced: &ExportLine<'a>, origin_id: &'a str, full_code: &'a str, description: &'a str,
) -> ExportLine<'a> {
    let mut l = line(synced.item_id, full_code, description);
    l.origin_id = Some(origin_id);
    l.previous = Some(Previous {
        code: synced.code,
        full_code: synced.full_code,
        description: synced.description,
        active: synced.active,
    });
    l
}

/// New codes from `(full code, description)` rows, their item ids counting up from `first_id`.
fn new_lines<S: AsRef<str>>(first_id: i64, rows: &[(S, S)]) -> Vec<ExportLine<'_>> {
    (first_id..)
        .zip(rows)
        .map(|(item_id, (full_code, description))| {
            line(item_id, full_code.as_ref(), description.as_ref())
        })
        .collect()
}

/// `n` flat codes `0000`, `0001`, … as `(full code, description)` rows for [`new_lines`].
fn numbered(n: i64) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("{i:04}"), format!("Code {i}")))
        .collect()
}

fn tree() -> Vec<ExportLine<'static>> {
    new_lines(
        1,
        &[
            ("03", "Concrete"),
            ("03-10", "Concrete Forming"),
            ("03-10-100", "Forms"),
            ("03-10-200", "Form Accessories"),
            ("03-20", "Concrete Reinforcing"),
            ("05", "Metals"),
        ],
    )
}

/// The origin id per item, asserting every line synced.
fn synced(results: &[(i64, LineResult)]) -> HashMap<i64, String> {
    results
        .iter()
        .map(|(id, r)| match r {
            LineResult::Synced { origin_id } => (*id, origin_id.clone()),
            LineResult::Failed { message } => panic!("item {id} failed: {message}"),
        })
        .collect()
}

fn failure(results: &[(i64, LineResult)], item: i64) -> String {
    match results.iter().find(|(id, _)| *id == item) {
        Some((_, LineResult::Failed { message })) => message.clone(),
        other => panic!("item {item} should have failed: {other:?}"),
    }
}

fn gl(code: &str, name: &str, kind: GlKind) -> GlAccount {
    GlAccount {
        code: code.into(),
        name: name.into(),
        kind,
    }
}

// ---------------------------------------------------------------------------------------------
// Connection test

#[tokio::test]
async fn test_connection_ok() {
    let t = Instance::start();
    let (ok, message) = t.tryton().test().await;
    assert!(ok, "{message}");
    assert_eq!(message, "Connected to Tryton database 'costs' as admin.");
}

#[tokio::test]
async fn test_connection_wrong_password_and_database() {
    let t = Instance::start();
    let mut s = t.settings.clone();
    s.password = "not-the-password".into();
    let (ok, message) = Tryton::new(&s, &local()).test().await;
    assert!(!ok);
    assert!(
        message.contains("Wrong username or password") && !message.contains("not-the-password"),
        "{message}"
    );

    let mut s = t.settings.clone();
    s.database = "nosuchdb".into();
    let (ok, message) = Tryton::new(&s, &local()).test().await;
    assert!(!ok);
    assert!(
        message.contains("no database 'nosuchdb'") && message.contains("costs"),
        "{message}"
    );

    let mut s = t.settings.clone();
    s.url = format!("{}not-tryton/", t.settings.url);
    let (ok, message) = Tryton::new(&s, &local()).test().await;
    assert!(!ok);
    assert!(message.contains("not like a Tryton server"), "{message}");

    // The same wrong password on an operation is an Unavailable error, with the same words.
    let mut s = t.settings.clone();
    s.password = "wrong".into();
    match Tryton::new(&s, &local()).read_codes().await {
        Err(ConnectorError::Unavailable(m)) => {
            assert!(m.contains("Wrong username or password"), "{m}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn test_connection_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = TrytonSettings {
        url: format!("http://127.0.0.1:{port}/"),
        database: "costs".into(),
        username: "admin".into(),
        password: "x".into(),
    };
    let (ok, message) = Tryton::new(&s, &local()).test().await;
    assert!(!ok);
    assert!(
        message.contains("Cannot reach") && message.contains(&format!("127.0.0.1:{port}")),
        "{message}"
    );
    match Tryton::new(&s, &local()).gl_accounts().await {
        Err(ConnectorError::Unavailable(m)) => assert!(m.contains("Cannot reach"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// GL accounts

#[tokio::test]
async fn gl_accounts_lists_open_income_and_expense_accounts() {
    let t = Instance::start();
    let accounts = t.tryton().gl_accounts().await.unwrap();
    assert!(accounts.contains(&gl("4.1.2", "Services", GlKind::Income)));
    assert!(accounts.contains(&gl("4.2.1", "Products", GlKind::Income)));
    assert!(accounts.contains(&gl("5.1.3", "Services", GlKind::Expense)));
    assert!(accounts.contains(&gl("5.2.1", "Cost Of Sales", GlKind::Expense)));
    let income: Vec<&str> = accounts
        .iter()
        .filter(|a| a.kind == GlKind::Income)
        .map(|a| a.code.as_str())
        .collect();
    let expense: Vec<&str> = accounts
        .iter()
        .filter(|a| a.kind == GlKind::Expense)
        .map(|a| a.code.as_str())
        .collect();
    assert_eq!(
        income,
        [
            "4.1.1", "4.1.2", "4.2.1", "4.2.2", "4.3.1", "4.3.2", "4.3.3"
        ]
    );
    assert_eq!(expense, ["2.2.1", "5.1.1", "5.1.3", "5.2.1", "5.2.3"]);
    // The closed revenue parent 4.1.0 is not offered.
    assert!(!accounts.iter().any(|a| a.code == "4.1.0"));
}

// ---------------------------------------------------------------------------------------------
// Export

#[tokio::test]
async fn export_creates_a_three_tier_tree() {
    let t = Instance::start();
    let lines = tree();
    let ctx = ExportContext {
        max_description: Some(12),
        ..ctx()
    };
    let results = t.tryton().export(&ctx, &lines).await.unwrap();
    assert_eq!(
        results.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6],
        "one result per line, in order"
    );
    let ids = synced(&results);
    let d = t.direct().await;
    let acc = d.accounts().await;
    assert_eq!(acc.len(), 6);
    let expect = [
        ("03", "view", "COSTCODES", "Concrete"),
        ("03-10", "view", "03", "Concrete For"),
        ("03-10-100", "normal", "03-10", "Forms"),
        ("03-10-200", "normal", "03-10", "Form Accesso"),
        ("03-20", "normal", "03", "Concrete Rei"),
        ("05", "normal", "COSTCODES", "Metals"),
    ];
    for (i, (code, kind, parent, name)) in expect.into_iter().enumerate() {
        let a = &acc[code];
        assert_eq!(a["type"], kind, "{code}");
        assert_eq!(a["parent."]["code"], parent, "{code}");
        assert_eq!(a["name"], name, "{code} (cut to 12 characters)");
        assert_eq!(a["root"], 1, "{code}");
        assert!(truthy(&a["active"]));
        assert_eq!(a["state"], "opened");
        assert_eq!(ids[&(i as i64 + 1)], a["id"].to_string(), "{code}");
    }
}

#[tokio::test]
async fn export_twice_creates_each_code_once() {
    let t = Instance::start();
    let lines = tree();
    let first = t.export_synced(&lines).await;
    // The same job again, as after a crash before the results were recorded: no origin ids.
    let second = t.export_synced(&lines).await;
    assert_eq!(first, second, "the same accounts are found again");
    let d = t.direct().await;
    for l in &lines {
        let n = d
            .count(
                "analytic_account.account",
                json!([["code", "=", l.full_code]]),
            )
            .await;
        assert_eq!(n, 1, "code {}", l.full_code);
    }
    // Also when the root was missing: it is created once, then reused.
    assert_eq!(
        d.count(
            "analytic_account.account",
            json!([["code", "=", "COSTCODES"]])
        )
        .await,
        1
    );
}

#[tokio::test]
async fn export_creates_the_root_when_missing() {
    let t = Instance::start();
    let d = t.direct().await;
    d.write("analytic_account.account", &[1], json!({"code": "OTHER"}))
        .await;
    let ids = t.export_synced(&[line(1, "01", "General")]).await;
    let roots = d
        .by_code("analytic_account.account", "COSTCODES", &["type", "name"])
        .await;
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0]["type"], "root");
    assert_eq!(roots[0]["name"], "Cost codes");
    let acc = d
        .by_code("analytic_account.account", "01", &["root", "parent"])
        .await;
    assert_eq!(acc[0]["root"], roots[0]["id"]);
    assert_eq!(acc[0]["parent"], roots[0]["id"]);
    assert_eq!(ids[&1], acc[0]["id"].to_string());
}

#[tokio::test]
async fn update_writes_the_new_name_and_moves_the_parent() {
    let t = Instance::start();
    let lines = tree();
    let ids = t.export_synced(&lines).await;
    // 03-10-100 "Forms" moves under 05 and is renamed; 03-20 only gets a new name.
    let moved = update(&lines[2], &ids[&3], "05-100", "Forms and shoring");
    let renamed = update(&lines[4], &ids[&5], "03-20", "Reinforcing steel");
    let results = t.tryton().export(&ctx(), &[moved, renamed]).await.unwrap();
    let again = synced(&results);
    assert_eq!(again[&3], ids[&3], "same account, not a new one");
    assert_eq!(again[&5], ids[&5]);
    let acc = t.direct().await.accounts().await;
    assert_eq!(acc.len(), 6);
    let a = &acc["05-100"];
    assert_eq!(a["id"].to_string(), ids[&3]);
    assert_eq!(a["name"], "Forms and shoring");
    assert_eq!(a["parent."]["code"], "05");
    assert_eq!(acc["05"]["type"], "view", "05 now has a child");
    assert!(!acc.contains_key("03-10-100"));
    assert_eq!(acc["03-20"]["name"], "Reinforcing steel");

    // Renaming a division renames the full codes of its descendants: one batch, parents first.
    let reinforcing = update(&lines[4], &ids[&5], "03-20", "Reinforcing steel");
    let renamed = [
        update(&lines[0], &ids[&1], "04", "Concrete"),
        update(&lines[1], &ids[&2], "04-10", "Concrete Forming"),
        update(&lines[3], &ids[&4], "04-10-200", "Form Accessories"),
        update(&reinforcing, &ids[&5], "04-20", "Reinforcing steel"),
    ];
    let again = t.export_synced(&renamed).await;
    for id in [1, 2, 4, 5] {
        assert_eq!(again[&id], ids[&id]);
    }
    let acc = t.direct().await.accounts().await;
    let mut codes: Vec<&str> = acc.keys().map(String::as_str).collect();
    codes.sort();
    assert_eq!(codes, ["04", "04-10", "04-10-200", "04-20", "05", "05-100"]);
    assert_eq!(acc["04-10-200"]["parent."]["code"], "04-10");
    assert_eq!(acc["04-20"]["parent."]["code"], "04");
    assert_eq!(acc["04"]["type"], "view");
}

#[tokio::test]
async fn conflict_fails_the_line_and_keeps_trytons_value() {
    let t = Instance::start();
    let lines = tree();
    let ids = t.export_synced(&lines).await;
    let d = t.direct().await;
    let forms: i64 = ids[&3].parse().unwrap();
    d.write(
        "analytic_account.account",
        &[forms],
        json!({"name": "Formwork (edited in Tryton)"}),
    )
    .await;
    let results = t
        .tryton()
        .export(
            &ctx(),
            &[
                update(&lines[2], &ids[&3], "03-10-100", "Forms, new name"),
                update(&lines[5], &ids[&6], "05", "Metals and steel"),
            ],
        )
        .await
        .unwrap();
    let m = failure(&results, 3);
    assert!(m.starts_with("conflict:"), "{m}");
    assert!(
        m.contains("Formwork (edited in Tryton)"),
        "shows Tryton's side: {m}"
    );
    assert!(
        m.contains("'Forms'"),
        "shows Costbridge's last confirmed side: {m}"
    );
    assert!(
        matches!(&results[1].1, LineResult::Synced { origin_id } if *origin_id == ids[&6]),
        "the other line goes through: {:?}",
        results[1]
    );
    let acc = d.accounts().await;
    assert_eq!(acc["03-10-100"]["name"], "Formwork (edited in Tryton)");
    assert_eq!(acc["05"]["name"], "Metals and steel");

    // When Tryton already holds the new values, that is no conflict.
    let results = t
        .tryton()
        .export(
            &ctx(),
            &[update(
                &lines[2],
                &ids[&3],
                "03-10-100",
                "Formwork (edited in Tryton)",
            )],
        )
        .await
        .unwrap();
    assert_eq!(synced(&results)[&3], ids[&3]);
}

#[tokio::test]
async fn deactivation_and_edits_of_inactive_accounts() {
    let t = Instance::start();
    let lines = tree();
    let ids = t.export_synced(&lines).await;
    let d = t.direct().await;

    // Deactivate 03-20.
    let mut off = update(&lines[4], &ids[&5], "03-20", "Concrete Reinforcing");
    off.active = false;
    t.export_synced(std::slice::from_ref(&off)).await;
    let acc = d.accounts().await;
    assert!(!truthy(&acc["03-20"]["active"]));
    let visible = d
        .call(
            "model.analytic_account.account.search_count",
            json!([[["code", "=", "03-20"]], 0, null, {"company": 1}]),
        )
        .await;
    assert_eq!(visible, 0, "hidden from normal searches");

    // Rename it while it stays inactive (Tryton keeps inactive records read-only).
    let mut renamed = update(&off, &ids[&5], "03-20", "Rebar (retired)");
    renamed.active = false;
    t.export_synced(std::slice::from_ref(&renamed)).await;
    let acc = d.accounts().await;
    assert_eq!(acc["03-20"]["name"], "Rebar (retired)");
    assert!(!truthy(&acc["03-20"]["active"]));

    // A refused edit of an inactive account leaves it as it was: inactive, with its old name.
    let mut refused = update(&renamed, &ids[&5], "03-20", "");
    refused.active = false;
    let results = t.tryton().export(&ctx(), &[refused]).await.unwrap();
    assert!(failure(&results, 5).contains("\"Name\""), "{results:?}");
    let acc = d.accounts().await;
    assert_eq!(acc["03-20"]["name"], "Rebar (retired)");
    assert!(!truthy(&acc["03-20"]["active"]));

    // Reactivate it with a new name in the same export.
    let back = update(&renamed, &ids[&5], "03-20", "Rebar");
    t.export_synced(&[back]).await;
    let acc = d.accounts().await;
    assert_eq!(acc["03-20"]["name"], "Rebar");
    assert!(truthy(&acc["03-20"]["active"]));

    // A new code exported as inactive is created, then deactivated.
    let mut new_off = line(7, "05-900", "Obsolete");
    new_off.active = false;
    t.export_synced(&[new_off]).await;
    let acc = d.accounts().await;
    assert!(!truthy(&acc["05-900"]["active"]));
    assert_eq!(acc["05"]["type"], "view");
}

#[tokio::test]
async fn products_carry_gl_accounts_through_one_category_per_pair() {
    let t = Instance::start();
    let services_in = gl("4.1.2", "Services", GlKind::Income);
    let services_out = gl("5.1.3", "Services", GlKind::Expense);
    let goods_in = gl("4.2.2", "Services", GlKind::Income);
    let mut lines = tree();
    lines[2].income = Some(&services_in);
    lines[2].expense = Some(&services_out);
    lines[3].income = Some(&services_in);
    lines[3].expense = Some(&services_out);
    lines[4].income = Some(&goods_in);
    let ids = t.export_synced(&lines).await;
    let d = t.direct().await;

    let cats = d
        .categories(&["name", "accounting", "account_revenue", "account_expense"])
        .await;
    assert_eq!(cats.len(), 2, "{cats:?}");
    let pair = cats
        .iter()
        .find(|c| c["name"] == "Costbridge 4.1.2 | 5.1.3")
        .expect("category for 4.1.2 | 5.1.3");
    assert!(truthy(&pair["accounting"]));
    assert_eq!(pair["account_revenue"], 100);
    assert_eq!(pair["account_expense"], 108);
    let single = cats
        .iter()
        .find(|c| c["name"] == "Costbridge 4.2.2 | -")
        .expect("category for 4.2.2 alone");
    assert_eq!(single["account_revenue"], 102);
    assert_eq!(single["account_expense"], Value::Null);

    let templates = d
        .find(
            "product.template",
            json!([]),
            &["code", "name", "type", "account_category", "products"],
        )
        .await;
    let by_code: HashMap<&str, &Value> = templates
        .iter()
        .map(|t| (t["code"].as_str().unwrap(), t))
        .collect();
    assert_eq!(
        by_code.len(),
        3,
        "only codes with GL accounts: {templates:?}"
    );
    assert_eq!(by_code["03-10-100"]["account_category"], pair["id"]);
    assert_eq!(by_code["03-10-200"]["account_category"], pair["id"]);
    assert_eq!(by_code["03-20"]["account_category"], single["id"]);
    for t in by_code.values() {
        assert_eq!(t["type"], "service");
        assert_eq!(t["products"].as_array().unwrap().len(), 1, "one variant");
    }
    assert_eq!(by_code["03-10-100"]["name"], "Forms");

    // Another code with the same pair reuses the category; an update renames the product and
    // an exported-again code does not get a second product.
    let mut extra = line(7, "05-100", "Steel erection");
    extra.income = Some(&services_in);
    extra.expense = Some(&services_out);
    let mut renamed = update(&lines[2], &ids[&3], "03-10-100", "Forms (rented)");
    let cost_of_sales = gl("5.2.1", "Cost Of Sales", GlKind::Expense);
    renamed.income = Some(&services_in);
    renamed.expense = Some(&cost_of_sales);
    let results = t
        .tryton()
        .export(&ctx(), &[extra, renamed, lines[3]])
        .await
        .unwrap();
    synced(&results);
    let cats = d.categories(&["name"]).await;
    let names: HashSet<&str> = cats.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        HashSet::from([
            "Costbridge 4.1.2 | 5.1.3",
            "Costbridge 4.2.2 | -",
            "Costbridge 4.1.2 | 5.2.1"
        ])
    );
    let templates = d
        .find(
            "product.template",
            json!([]),
            &[
                "code",
                "name",
                "account_category",
                "account_category.account_expense",
            ],
        )
        .await;
    assert_eq!(templates.len(), 4, "{templates:?}");
    let by_code: HashMap<&str, &Value> = templates
        .iter()
        .map(|t| (t["code"].as_str().unwrap(), t))
        .collect();
    assert_eq!(by_code["05-100"]["account_category"], pair["id"]);
    assert_eq!(by_code["03-10-100"]["name"], "Forms (rented)");
    assert_eq!(
        by_code["03-10-100"]["account_category."]["account_expense"],
        112
    );
    assert_eq!(
        d.count("product.product", json!([["code", "=", "03-10-200"]]))
            .await,
        1
    );

    // A GL account that Tryton does not have fails that line only.
    let mut bad = line(8, "05-200", "Bolts");
    let nowhere = gl("9.9.9", "Nowhere", GlKind::Income);
    bad.income = Some(&nowhere);
    let results = t
        .tryton()
        .export(&ctx(), &[bad, line(9, "05-300", "Welding")])
        .await
        .unwrap();
    let m = failure(&results, 8);
    assert!(m.contains("9.9.9"), "{m}");
    assert!(matches!(results[1].1, LineResult::Synced { .. }));

    // Deactivating a code deactivates its product and the variant (whose code would otherwise
    // stay taken); reactivating it with a new name brings both back.
    let mut off = update(&lines[3], &ids[&4], "03-10-200", "Form Accessories");
    off.active = false;
    off.income = Some(&services_in);
    off.expense = Some(&services_out);
    t.export_synced(std::slice::from_ref(&off)).await;
    assert_eq!(
        product_state(&d, "03-10-200").await,
        (false, false, "Form Accessories".to_owned())
    );
    let mut on = update(&off, &ids[&4], "03-10-200", "Form ties");
    on.income = Some(&services_in);
    on.expense = Some(&services_out);
    t.export_synced(&[on]).await;
    assert_eq!(
        product_state(&d, "03-10-200").await,
        (true, true, "Form ties".to_owned())
    );
}

/// (template active, variant active, template name) of the product with this code.
async fn product_state(d: &Direct, code: &str) -> (bool, bool, String) {
    let tmpl = d
        .by_code("product.template", code, &["active", "name"])
        .await;
    let variants = d.by_code("product.product", code, &["active"]).await;
    assert_eq!((tmpl.len(), variants.len()), (1, 1));
    (
        truthy(&tmpl[0]["active"]),
        truthy(&variants[0]["active"]),
        tmpl[0]["name"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_lost_session_logs_in_again() {
    let t = Instance::start();
    t.export_synced(&[line(1, "01", "General")]).await;
    // Writing a user's password makes Tryton drop every session of that user: the connector's
    // cached session now gets HTTP 401.
    let d = t.direct().await;
    d.write("res.user", &[1], json!({"password": "admin-secret"}))
        .await;
    t.export_synced(&[line(2, "02", "Site work")]).await;
    assert_eq!(t.tryton().read_codes().await.unwrap().len(), 2);

    // With a changed password the new login fails, and the error says why.
    let d = t.direct().await;
    d.write("res.user", &[1], json!({"password": "changed-secret-1"}))
        .await;
    match t.tryton().read_codes().await {
        Err(ConnectorError::Unavailable(m)) => {
            assert!(m.contains("Wrong username or password"), "{m}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn one_bad_row_fails_only_itself() {
    let t = Instance::start();
    let lines = tree();
    let ids = t.export_synced(&lines).await;
    // A parent that exists nowhere, a row Tryton refuses (empty name: found by Tryton, not by
    // the connector), and good rows around them.
    let batch = new_lines(
        10,
        &[
            ("07", "Thermal"),
            ("07-10", "Dampproofing"),
            ("99-10", "Orphan"),
            ("07-20", ""),
            ("07-30", "Flashing"),
            ("07-40", "Roofing"),
        ],
    );
    let results = t.tryton().export(&ctx(), &batch).await.unwrap();
    let orphan = failure(&results, 12);
    assert!(orphan.contains("'99'"), "{orphan}");
    let empty = failure(&results, 13);
    assert!(
        empty.contains("A value is required for field \"Name\"") && empty.contains("hint:"),
        "{empty}"
    );
    for id in [10, 11, 14, 15] {
        assert!(
            matches!(
                results.iter().find(|(i, _)| *i == id),
                Some((_, LineResult::Synced { .. }))
            ),
            "item {id}: {results:?}"
        );
    }
    let acc = t.direct().await.accounts().await;
    for code in ["07", "07-10", "07-30", "07-40"] {
        assert!(acc.contains_key(code), "{code}");
    }
    assert!(!acc.contains_key("07-20") && !acc.contains_key("99-10"));

    // A refused write (moving 03 under its own child) fails alone; the other update is stored.
    let cycle = update(&lines[0], &ids[&1], "03", "Concrete");
    let mut cycle = cycle;
    cycle.parent_full_code = Some("03-10");
    let rename = update(&lines[5], &ids[&6], "05", "Metals (all)");
    let results = t.tryton().export(&ctx(), &[cycle, rename]).await.unwrap();
    let m = failure(&results, 1);
    assert!(m.contains("Recursion") && m.contains("hint:"), "{m}");
    assert!(matches!(results[1].1, LineResult::Synced { .. }));
    let acc = t.direct().await.accounts().await;
    assert_eq!(acc["03"]["parent."]["code"], "COSTCODES");
    assert_eq!(acc["05"]["name"], "Metals (all)");
}

#[tokio::test]
async fn duplicate_codes_in_tryton_fail_the_line() {
    let t = Instance::start();
    let d = t.direct().await;
    d.call(
        "model.analytic_account.account.create",
        json!([[
            {"name": "One", "code": "08", "type": "normal", "root": 1, "parent": 1},
            {"name": "Two", "code": "08", "type": "normal", "root": 1, "parent": 1},
        ], {"company": 1}]),
    )
    .await;
    let results = t
        .tryton()
        .export(
            &ctx(),
            &[line(1, "08", "Openings"), line(2, "09", "Finishes")],
        )
        .await
        .unwrap();
    let m = failure(&results, 1);
    assert!(
        m.contains("2 analytic accounts") && m.contains("'08'"),
        "{m}"
    );
    assert!(matches!(results[1].1, LineResult::Synced { .. }));
    assert_eq!(
        d.count("analytic_account.account", json!([["code", "=", "08"]]))
            .await,
        2,
        "nothing written to the duplicates"
    );
}

#[tokio::test]
async fn read_codes_returns_the_tree() {
    let t = Instance::start();
    let lines = tree();
    let ids = t.export_synced(&lines).await;
    let mut off = update(&lines[5], &ids[&6], "05", "Metals");
    off.active = false;
    t.export_synced(&[off]).await;
    let codes = t.tryton().read_codes().await.unwrap();
    let got: HashSet<(String, String, String, bool)> = codes
        .into_iter()
        .map(|c| (c.origin_id, c.full_code, c.description, c.active))
        .collect();
    let want: HashSet<(String, String, String, bool)> = lines
        .iter()
        .map(|l| {
            (
                ids[&l.item_id].clone(),
                l.full_code.to_owned(),
                l.description.to_owned(),
                l.full_code != "05",
            )
        })
        .collect();
    assert_eq!(got, want, "every account but the root, inactive ones too");
}

#[tokio::test]
async fn tryton_stopped_midway_is_unavailable_and_the_retry_creates_nothing_twice() {
    let mut t = Instance::start();
    let codes = numbered(3000);
    let d = t.direct().await;
    let tryton = t.tryton();
    let export = tokio::spawn(async move { tryton.export(&ctx(), &new_lines(1, &codes)).await });
    // Kill the server as soon as the first create call (1,000 accounts) is committed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = d
            .count("analytic_account.account", json!([["root", "=", 1]]))
            .await;
        if n > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the export never created anything"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.kill_hard();
    match export.await.unwrap() {
        Err(ConnectorError::Unavailable(m)) => {
            assert!(m.contains(&t.settings.url), "names the server: {m}")
        }
        other => panic!("expected Unavailable, got {:?}", other.map(|r| r.len())),
    }
    match t.tryton().read_codes().await {
        Err(ConnectorError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }

    // The worker retries the whole batch once Tryton is back: each code exists exactly once.
    t.restart();
    let ids = t.export_synced(&new_lines(1, &numbered(3000))).await;
    assert_eq!(ids.values().collect::<HashSet<_>>().len(), 3000);
    let d = t.direct().await;
    assert_eq!(
        d.count("analytic_account.account", json!([["root", "=", 1]]))
            .await,
        3000
    );
}

// ---------------------------------------------------------------------------------------------
// Benchmark

/// `n` codes in three tiers (divisions of 9 sections of 10 codes), parents first, as
/// `(full code, description)` rows for [`new_lines`].
fn bench_codes(prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(n);
    let mut d = 0;
    while out.len() < n {
        let div = format!("{prefix}{d:03}");
        out.push((div.clone(), format!("Division {div}")));
        for s in 1..=9 {
            if out.len() >= n {
                break;
            }
            let sec = format!("{div}-{s:02}");
            out.push((sec.clone(), format!("Section {sec}")));
            for c in 1..=10 {
                if out.len() >= n {
                    break;
                }
                let code = format!("{sec}-{c:03}");
                out.push((code.clone(), format!("Cost code {code}")));
            }
        }
        d += 1;
    }
    out
}

async fn connector_run(t: &Instance, lines: &[ExportLine<'_>]) -> Duration {
    let started = Instant::now();
    for batch in lines.chunks(BATCH) {
        // As the worker does: one connector call per batch, a new connector each time.
        let results = Tryton::new(&t.settings, &local())
            .export(&ctx(), &batch)
            .await
            .unwrap();
        synced(&results);
    }
    started.elapsed()
}

async fn direct_run(d: &Direct, lines: &[ExportLine<'_>]) -> Duration {
    let started = Instant::now();
    for batch in lines.chunks(1000) {
        let vals: Vec<Value> = batch
            .iter()
            .map(|l| {
                json!({"name": l.description, "code": l.full_code, "type": "normal",
                "root": 1, "parent": 1, "state": "opened"})
            })
            .collect();
        let ids = d
            .call(
                "model.analytic_account.account.create",
                json!([vals, {"company": 1}]),
            )
            .await;
        assert_eq!(ids.as_array().unwrap().len(), batch.len());
    }
    started.elapsed()
}

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_export_vs_direct_rpc() {
    // Two fresh servers of the same kind: the connector exports into one, plain `create` calls
    // of 1,000 (flat under the root: the floor) go to the other. The runs alternate, one at a
    // time, so both sides see the same machine load and the same database sizes.
    let c = Instance::start();
    let r = Instance::start();
    let login = Instant::now();
    c.tryton().read_codes().await.unwrap(); // logs in; the session is reused by later calls
    let login = login.elapsed();
    let d = r.direct().await;

    let secs = |d: Duration| d.as_secs_f64();
    let rounds = |n: usize, count: usize, tag: &'static str| {
        let c = &c;
        let d = &d;
        async move {
            let (mut ct, mut dt) = (Vec::new(), Vec::new());
            for round in 0..count {
                let codes = bench_codes(&format!("{tag}{round}"), n);
                let lines = new_lines(1, &codes);
                let (a, b) = if round % 2 == 0 {
                    let a = connector_run(c, &lines).await;
                    (a, direct_run(d, &lines).await)
                } else {
                    let b = direct_run(d, &lines).await;
                    (connector_run(c, &lines).await, b)
                };
                println!(
                    "{n:>6} lines, round {round}: connector {:.3} s, direct {:.3} s, ratio {:.2}x",
                    secs(a),
                    secs(b),
                    secs(a) / secs(b)
                );
                ct.push(a);
                dt.push(b);
            }
            (ct, dt)
        }
    };
    let (c1, d1) = rounds(1000, 3, "A").await;
    let (c10, d10) = rounds(10_000, 2, "B").await;
    let again = connector_run(&c, &new_lines(1, &bench_codes("A0", 1000))).await; // all exist: lookups only

    let total = |v: &[Duration]| v.iter().map(|d| d.as_secs_f64()).sum::<f64>();
    let median = |v: &[Duration]| {
        let mut s: Vec<f64> = v.iter().map(|d| d.as_secs_f64()).collect();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let cd = c.direct().await;
    let root_count = json!([["root", "=", 1]]);
    assert_eq!(
        cd.count("analytic_account.account", root_count.clone())
            .await,
        d.count("analytic_account.account", root_count).await,
        "both sides hold the same accounts"
    );
    println!("connector login (once, excluded): {:.3} s", secs(login));
    println!(
        " 1,000 lines (median of 3): connector {:.3} s, direct create {:.3} s, ratio {:.2}x",
        median(&c1),
        median(&d1),
        median(&c1) / median(&d1)
    );
    println!(
        "10,000 lines (mean of 2):   connector {:.3} s, direct create {:.3} s, ratio {:.2}x",
        total(&c10) / 2.0,
        total(&d10) / 2.0,
        total(&c10) / total(&d10)
    );
    println!(
        " 1,000 lines exported again (all exist, nothing to write): connector {:.3} s",
        secs(again)
    );
}
