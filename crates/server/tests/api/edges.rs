use crate::both;
use crate::helpers::{TestApp, field_error, strings};
use reqwest::StatusCode;
use serde_json::json;

both!(health_metrics_and_docs, profiles_and_connections);

/// With PostgreSQL out of reach, `/healthz` says so and `/metrics` answers -1, in time for a
/// probe and a scrape (10 s by default). Each waited 10 s for a connection (the pool's wait),
/// `/metrics` once per gauge, one after another: a minute in all. The database is reached
/// through a relay that is cut the way a network partition cuts it: the connections held drop,
/// and new ones are taken and never answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_answer_in_time_without_the_database() {
    let relay = Relay::start().await;
    let to = relay.addr;
    let Some(app) = TestApp::spawn_with(crate::helpers::Backend::Postgres, |s| {
        let url = &s.server.database_url;
        let (head, rest) = url.split_once('@').unwrap();
        let (server, db) = rest.split_once('/').unwrap();
        *relay.upstream.lock().unwrap() = server.to_owned();
        s.server.database_url = format!("{head}@{to}/{db}");
    })
    .await
    else {
        return;
    };
    let (s, _) = app.call("GET", "/healthz", "", None).await;
    assert_eq!(s, StatusCode::OK);
    relay.cut();
    let started = std::time::Instant::now();
    let (s, b) = app.call("GET", "/healthz", "", None).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unavailable"})
        )
    );
    let (s, text) = app.call("GET", "/metrics", "", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = text.as_str().unwrap().to_owned();
    assert!(text.contains("costbridge_export_jobs_open -1"), "{text}");
    assert!(text.contains("costbridge_events_failed -1"), "{text}");
    // Both together within one scrape's default timeout, which one old wait alone filled.
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(9), "{took:?}");
}

/// A TCP relay to PostgreSQL that can be cut like a network partition.
struct Relay {
    addr: std::net::SocketAddr,
    upstream: std::sync::Arc<std::sync::Mutex<String>>,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start() -> Relay {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            upstream: Default::default(),
            cut: Default::default(),
            links: Default::default(),
        };
        let (upstream, cut, links) = (
            relay.upstream.clone(),
            relay.cut.clone(),
            relay.links.clone(),
        );
        tokio::spawn(async move {
            // Connections taken after the cut: held open, never answered.
            let mut silent = Vec::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                if cut.load(Ordering::SeqCst) {
                    silent.push(inbound);
                    continue;
                }
                let to = upstream.lock().unwrap().clone();
                links.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                }));
            }
        });
        relay
    }

    /// Drops every relayed connection; later ones are taken and never answered.
    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

async fn health_metrics_and_docs(app: TestApp) {
    let (s, b) = app.call("GET", "/healthz", "", None).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    app.get(&app.c("/cost_code_lists")).await;
    let (_, text) = app.call("GET", "/metrics", "", None).await;
    let text = text.as_str().unwrap().to_owned();
    assert!(
        text.contains("route=\"/api/v1/companies/{cid}/cost_code_lists\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains(&format!("/companies/{}/", app.company)),
        "raw paths never become labels"
    );
    let (s, doc) = app.call("GET", "/api/v1/openapi.json", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    // Every documented operation is routed: with a bad token it answers 401, never 404/405.
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 28, "{}", paths.len());
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let concrete: Vec<String> = path
                .split('/')
                .map(|seg| match seg {
                    "{cid}" => app.company.to_string(),
                    s if s.starts_with('{') => "1".into(),
                    s => s.into(),
                })
                .collect();
            let concrete = concrete.join("/");
            let (s, _) = app
                .call(&method.to_uppercase(), &concrete, "cb_bad", Some(json!({})))
                .await;
            assert!(
                s != StatusCode::NOT_FOUND && s != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} -> {s}"
            );
        }
    }
    let (s, page) = app.call("GET", "/api/docs", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.as_str()
            .unwrap()
            .contains("/api/v1/companies/{cid}/erp/cost_codes/export")
    );
    let (s, b) = app.call("GET", "/api/v1/nope", "", None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

async fn profiles_and_connections(app: TestApp) {
    let (_, profiles) = app.get("/api/v1/erp_profiles").await;
    let ids = strings(&profiles, "id");
    let order = "tryton quickbooks_desktop xero sage_300_cre viewpoint_vista viewpoint_spectrum \
                 sage_intacct cmic acumatica";
    assert_eq!(ids, order.split_whitespace().collect::<Vec<_>>());
    assert_eq!(profiles[1]["rules"]["max_full_code_length"], 96);
    let (s, _) = app.get(&app.c("/erp_connection")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, e) = app.put(&app.c("/erp_connection"), json!({"profile": "sap", "connector": {"kind": "file", "directory": "x", "format": "iif"}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&e, "profile").contains("unknown profile 'sap'"),
        "{e}"
    );
    let (s, e) = app.put(&app.c("/erp_connection"), json!({"profile": "xero", "connector": {"kind": "file", "directory": "x", "format": "pdf"}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // An IIF file is QuickBooks Desktop's: under Xero's rules it broke QuickBooks' own.
    let (s, e) = app.put(&app.c("/erp_connection"), json!({"profile": "xero", "connector": {"kind": "file", "directory": "x", "format": "iif"}})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(
        field_error(&e, "connector.format").contains("with the Xero profile choose csv"),
        "{e}"
    );
    let list = app.connect("quickbooks_desktop", "iif").await;
    let again = app.connect("xero", "csv").await;
    assert_eq!(list, again, "one ERP list per company");
    let (_, c) = app.get(&app.c("/erp_connection")).await;
    assert_eq!(
        c["capabilities"],
        json!({"create_cost_codes": true, "income_account_required": false})
    );
    assert_eq!(c["connector"]["kind"], "file");
    let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
    assert_eq!(
        lists
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["is_erp_list"] == true)
            .count(),
        1
    );
    let (_, t) = app.post(&app.c("/erp_connection/test"), json!({})).await;
    assert_eq!(t["ok"], true, "{t}");
    let (s, e) = app
        .post(&app.c("/erp/cost_codes/sync_from_erp"), json!({}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_supported"))
    );
    // A connection stored before that rule, IIF under Xero's profile, exports nothing.
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let stored = json!({"kind": "file", "directory": ".", "format": "iif", "gl_accounts": []});
    app.store_connection("xero", &stored).await;
    let (s, e) = app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let said = e["error"]["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("writes IIF files, QuickBooks Desktop's, under the Xero profile"),
        "{said}"
    );
    assert_eq!(
        app.items("ready_to_export").await.len(),
        1,
        "nothing exported"
    );
}
