//! Several clients work one company at once — creating, editing, reverting, importing, sending,
//! picking GL accounts, exporting, rejecting, retrying, retrieving, running the worker — for a
//! while (`COSTBRIDGE_LOAD_SECS`, default 60), on two instances when the database is
//! PostgreSQL. Then: no request failed with a 5xx, the stored data holds every invariant
//! (`Db::integrity_violations`), and every acknowledged edit is in the final state.
//! Latencies are printed (`--nocapture`), not asserted: speed is measured by benchmarks.
use crate::helpers::TestApp;
use costbridge_server::config::WorkerSettings;
use costbridge_server::state::AppState;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 8;
const DIVISIONS: usize = 20;
const SECTIONS: usize = 10;

crate::both!(concurrent_clients_keep_every_invariant);

/// A small deterministic generator: each client's run is reproducible from its seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What every client saw: per action, each answer's status and latency; per full code, the
/// description of the last acknowledged write (each code is written by one client only).
#[derive(Default)]
struct Log {
    answers: BTreeMap<&'static str, Vec<(StatusCode, Duration)>>,
    /// Per action, how often each refusal (status and error code) came back.
    refusals: BTreeMap<&'static str, BTreeMap<String, usize>>,
    server_errors: Vec<String>,
    acked: HashMap<String, String>,
}

struct Client {
    idx: usize,
    base: String,
    http: reqwest::Client,
    token: String,
    prefix: String,
    list: i64,
    state: AppState,
    worker: WorkerSettings,
    log: Arc<Mutex<Log>>,
}

impl Client {
    async fn call(
        &self, action: &'static str, method: &str, path: &str, body: Option<Value>,
        csv: Option<String>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(
                method.parse().expect("method"),
                format!("{}{}{path}", self.base, self.prefix),
            )
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(c) = csv {
            req = req.header("content-type", "text/csv").body(c);
        }
        let started = Instant::now();
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        let took = started.elapsed();
        let mut log = self.log.lock().unwrap();
        log.answers.entry(action).or_default().push((status, took));
        if status.is_server_error() {
            log.server_errors
                .push(format!("{action} {method} {path}: {status} {text}"));
        }
        if status.is_client_error() {
            let code = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|b| b["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            *log.refusals
                .entry(action)
                .or_default()
                .entry(format!("{} {code}", status.as_u16()))
                .or_default() += 1;
        }
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn ack(&self, full_code: &str, description: &str) {
        self.log
            .lock()
            .unwrap()
            .acked
            .insert(full_code.to_owned(), description.to_owned());
    }

    fn codes_path(&self) -> String {
        format!("/cost_code_lists/{}/cost_codes", self.list)
    }

    /// The client's own codes (`full_code` ends in its marker) in one random state filter.
    async fn own_codes(&self, rng: &mut Rng, status: Option<&str>) -> Vec<Value> {
        let filter = status
            .map(|s| format!("&sync_status={s}"))
            .unwrap_or_default();
        let q = format!("{}?q=x{}&per_page=100{filter}", self.codes_path(), self.idx);
        let (_, b) = self.call("list", "GET", &q, None, None).await;
        let mut own: Vec<Value> = b
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| {
                c["description"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(&format!("x{} ", self.idx)))
            })
            .collect();
        if own.len() > 8 {
            let start = rng.below(own.len() - 8);
            own = own.split_off(start);
            own.truncate(8);
        }
        own
    }

    async fn ready_items(&self, filter: &str) -> Vec<i64> {
        let (_, b) = self
            .call(
                "list",
                "GET",
                &format!("/erp/cost_codes?filter={filter}&per_page=50"),
                None,
                None,
            )
            .await;
        b.as_array()
            .map(|a| a.iter().filter_map(|i| i["id"].as_i64()).collect())
            .unwrap_or_default()
    }

    async fn step(&self, rng: &mut Rng, n: usize) {
        let marker = format!("x{} {n}", self.idx);
        match rng.below(12) {
            0 | 1 => {
                let division = format!("{:02}", rng.below(DIVISIONS) + 1);
                let (_, parents) = self
                    .call(
                        "list",
                        "GET",
                        &format!("{}?q={division}&per_page=1", self.codes_path()),
                        None,
                        None,
                    )
                    .await;
                let Some(parent) = parents[0]["id"].as_i64() else {
                    return;
                };
                let code = format!("{}{n}", self.idx + 1);
                let (s, b) = self
                    .call(
                        "create",
                        "POST",
                        &self.codes_path(),
                        Some(json!({"code": code, "description": marker, "parent_id": parent})),
                        None,
                    )
                    .await;
                if s == StatusCode::CREATED {
                    self.ack(b["full_code"].as_str().unwrap(), &marker);
                }
            }
            2 | 3 => {
                // Edit one of this client's codes, or put back what it had before (a revert
                // makes a modified code synced again).
                let own = self.own_codes(rng, None).await;
                if own.is_empty() {
                    return;
                }
                let c = &own[rng.below(own.len())];
                let description = match c["diff"]["description"]["from"].as_str() {
                    Some(confirmed) if rng.below(2) == 0 => confirmed.to_owned(),
                    _ => marker,
                };
                let (s, b) = self
                    .call(
                        "edit",
                        "PATCH",
                        &format!("{}/{}", self.codes_path(), c["id"]),
                        Some(json!({"description": description})),
                        None,
                    )
                    .await;
                if s == StatusCode::OK {
                    self.ack(b["full_code"].as_str().unwrap(), &description);
                }
            }
            4 => {
                let division = rng.below(DIVISIONS) + 1;
                let section = 100 + rng.below(SECTIONS);
                let full = format!("{division:02}-{section}-{}{n}", self.idx + 1);
                let csv = format!("full_code,description,active\n{full},{marker},true\n");
                let (s, _) = self
                    .call(
                        "import",
                        "POST",
                        &format!("/cost_code_lists/{}/import", self.list),
                        None,
                        Some(csv),
                    )
                    .await;
                if s == StatusCode::OK {
                    self.ack(&full, &marker);
                }
            }
            5 => {
                // As a person would: read the button, press it; told the page is stale, look
                // again and press again (a few times).
                let path = format!("/cost_code_lists/{}/send_to_erp", self.list);
                for _ in 0..5 {
                    let (_, st) = self.call("status", "GET", &path, None, None).await;
                    let (s, _) = self
                        .call(
                            "send",
                            "POST",
                            &path,
                            Some(json!({"list_version": st["list_version"]})),
                            None,
                        )
                        .await;
                    if s != StatusCode::CONFLICT {
                        break;
                    }
                }
            }
            6 => {
                let ids = self.ready_items("ready_to_export").await;
                if let Some(id) = ids.get(rng.below(ids.len().max(1))) {
                    self.call(
                        "set_gl",
                        "PATCH",
                        &format!("/erp/cost_codes/{id}"),
                        Some(json!({"gl_income_account": "4000"})),
                        None,
                    )
                    .await;
                }
            }
            7 => {
                // Some picks, or everything: a pick without its pending parent fails the child.
                let ids = self.ready_items("ready_to_export").await;
                let body = if rng.below(3) == 0 || ids.is_empty() {
                    json!({"gl_income_account": "4000"})
                } else {
                    let k = 1 + rng.below(ids.len().min(5));
                    let start = rng.below(ids.len() + 1 - k);
                    json!({"item_ids": &ids[start..start + k], "gl_income_account": "4000"})
                };
                self.call("export", "POST", "/erp/cost_codes/export", Some(body), None)
                    .await;
            }
            8 => {
                let ids = self.ready_items("ready_to_export").await;
                if !ids.is_empty() {
                    let k = 1 + rng.below(ids.len().min(3));
                    let start = rng.below(ids.len() + 1 - k);
                    self.call(
                        "reject",
                        "POST",
                        "/erp/cost_codes/reject",
                        Some(json!({"item_ids": &ids[start..start + k], "reason": "not in this budget"})),
                        None,
                    )
                    .await;
                }
            }
            9 => {
                self.call(
                    "retry",
                    "POST",
                    "/erp/cost_codes/retry",
                    Some(json!({"gl_income_account": "4000"})),
                    None,
                )
                .await;
            }
            10 => {
                let own = self.own_codes(rng, Some("pending")).await;
                if let Some(c) = own.first() {
                    self.call(
                        "retrieve",
                        "POST",
                        &format!("{}/{}/retrieve", self.codes_path(), c["id"]),
                        None,
                        None,
                    )
                    .await;
                }
            }
            _ => {
                let started = Instant::now();
                costbridge_server::worker::run_pending_exports(&self.state, &self.worker)
                    .await
                    .expect("worker step");
                let mut log = self.log.lock().unwrap();
                log.answers
                    .entry("worker")
                    .or_default()
                    .push((StatusCode::OK, started.elapsed()));
            }
        }
    }
}

/// The seed: `DIVISIONS` divisions of `SECTIONS` sections, each section owned by one client
/// (its description carries the client's marker), all synced once so edits make them modified.
async fn seed(app: &TestApp, list: i64) {
    let mut csv = String::from("full_code,description,active\n");
    for d in 1..=DIVISIONS {
        csv.push_str(&format!("{d:02},Division {d},true\n"));
        for s in 0..SECTIONS {
            let owner = (d * SECTIONS + s) % CLIENTS;
            csv.push_str(&format!("{d:02}-{},x{owner} seed,true\n", 100 + s));
        }
    }
    app.import(list, csv).await;
    app.send(list).await;
    app.accept_waiting().await;
    app.run_worker().await;
}

fn p(latencies: &mut [Duration], q: f64) -> Duration {
    latencies.sort_unstable();
    latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)]
}

async fn concurrent_clients_keep_every_invariant(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    seed(&app, list).await;
    // On PostgreSQL a second instance shares the database: clients alternate between them.
    let mut instances = vec![(app.base.clone(), app.app_state.clone())];
    let _second = if app.database_url.starts_with("postgres") {
        let second = costbridge_server::App::build(app.instance_settings())
            .await
            .expect("second instance");
        instances.push((format!("http://{}", second.addr), second.state.clone()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(second.run(
            async move {
                let _ = stopped.await;
            },
            std::future::pending(),
        ));
        Some(stop)
    } else {
        None
    };
    let secs = std::env::var("COSTBRIDGE_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let until = Instant::now() + Duration::from_secs(secs);
    let log = Arc::new(Mutex::new(Log::default()));
    let mut handles = Vec::new();
    for idx in 0..CLIENTS {
        let (base, state) = instances[idx % instances.len()].clone();
        let client = Client {
            idx,
            base,
            http: app.client.clone(),
            token: app.token.clone(),
            prefix: app.c(""),
            list,
            state,
            worker: app.worker.clone(),
            log: log.clone(),
        };
        handles.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((idx as u64 + 1) * 0x1000_0001));
            let mut n = 0;
            while Instant::now() < until {
                client.step(&mut rng, n).await;
                n += 1;
            }
        }));
    }
    for h in handles {
        h.await.expect("client");
    }
    // Let every queued job finish, as a worker would.
    for _ in 0..100 {
        if app.run_worker().await == 0 {
            break;
        }
    }

    let log = std::mem::take(&mut *log.lock().unwrap());
    let mut report = String::new();
    let mut total = 0;
    for (action, answers) in &log.answers {
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        for (s, _) in answers {
            *statuses.entry(s.as_u16()).or_default() += 1;
        }
        let mut l: Vec<Duration> = answers.iter().map(|a| a.1).collect();
        total += l.len();
        report.push_str(&format!(
            "{action:>9}: {:>6} calls, p50 {:>6.1} ms, p99 {:>7.1} ms, {statuses:?} {:?}\n",
            l.len(),
            p(&mut l, 0.5).as_secs_f64() * 1e3,
            p(&mut l, 0.99).as_secs_f64() * 1e3,
            log.refusals.get(action).cloned().unwrap_or_default(),
        ));
    }
    println!(
        "{} over {secs} s, {} instance(s), {CLIENTS} clients, {total} calls\n{report}",
        app.database_url.split(':').next().unwrap_or("?"),
        instances.len()
    );
    assert!(
        log.server_errors.is_empty(),
        "{} server errors, first: {:?}",
        log.server_errors.len(),
        log.server_errors.first()
    );
    let violations = app.violations().await;
    assert!(violations.is_empty(), "{violations:#?}");
    let stored: HashMap<String, String> = app
        .app_state
        .db
        .export_codes(app.company, list)
        .await
        .expect("codes")
        .into_iter()
        .map(|(full, description, _)| (full, description))
        .collect();
    let lost: Vec<String> = log
        .acked
        .iter()
        .filter(|(full, d)| stored.get(*full) != Some(*d))
        .map(|(full, d)| format!("{full}: acknowledged {d:?}, stored {:?}", stored.get(full)))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost: {lost:#?}",
        lost.len()
    );
    assert!(
        log.answers
            .get("send")
            .is_some_and(|a| a.iter().any(|(s, _)| *s == StatusCode::CREATED)),
        "no send went through: the load never reached the queue"
    );
}
