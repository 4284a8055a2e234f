//! What connectors may reach (issue #9, points 4 to 6): no credentials in a URL, and never shown;
//! no internal address unless the operator allows it; each company's files in its own folder.
use crate::both;
use crate::helpers::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

both!(
    a_url_with_credentials_is_refused_and_never_shown,
    the_default_policy_refuses_internal_addresses,
    a_company_writes_files_only_in_its_own_folder,
    a_readers_connection_shows_addresses_by_host,
);

/// A hook's address may carry its credential in its path (automation services' catch hooks).
/// Admins, who may change the connection, see it whole; a read-only user and the audit log
/// (open to them) see its scheme and host.
async fn a_readers_connection_shows_addresses_by_host(app: TestApp) {
    let url = "https://hooks.example/catch/123/s3cr3t-path";
    let (s, b) = app
        .put(
            &app.c("/erp_connection"),
            json!({"profile": "quickbooks_desktop", "connector": {"kind": "webhook", "url": url,
                "secret": "whsec_0123456789abcdef"}}),
        )
        .await;
    assert_eq!(
        (s, b["connector"]["url"].as_str()),
        (StatusCode::OK, Some(url))
    );
    let (_, whole) = app.get(&app.c("/erp_connection")).await;
    assert_eq!(whole["connector"]["url"], url);
    let reader = app
        .user(
            "reader@one.example",
            crate::helpers::perms("read_only", "read_only", false),
        )
        .await;
    let (s, read) = app
        .call("GET", &app.c("/erp_connection"), &reader, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{read}");
    assert_eq!(read["connector"]["url"], "https://hooks.example/…");
    // The company's audit log as the reader reads it, as one text.
    let log = async || {
        let path = app.c("/audit_events?entity_type=company&per_page=100");
        app.call("GET", &path, &reader, None).await.1.to_string()
    };
    let read = log().await;
    assert!(read.contains("https://hooks.example/…"), "{read}");
    assert!(!read.contains("s3cr3t"), "{read}");
    // A row written before addresses were cut (its URL whole) is cut as it is read.
    crate::queue::execute(
        &app,
        &format!(
            "INSERT INTO audit_events (company_id, at, actor_id, action, entity_type, \
             entity_id, before, after) SELECT company_id, at, NULL, 'erp_connection.saved', \
             'company', company_id, NULL, '{{\"profile\": \"quickbooks_desktop\", \
             \"connector\": {{\"kind\": \"webhook\", \"url\": \
             \"https://old.example/hooks/legacy-s3cr3t\"}}}}' FROM audit_events WHERE \
             company_id = {} ORDER BY id DESC LIMIT 1",
            app.company
        ),
    )
    .await;
    let read = log().await;
    assert!(read.contains("https://old.example/…"), "{read}");
    assert!(!read.contains("legacy-s3cr3t"), "{read}");
    // Nor does a failed test (approvers may run it), nor an export's error, name the path.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/catch/123/s3cr3t-path");
    let (s, b) = app
        .put(
            &app.c("/erp_connection"),
            json!({"profile": "quickbooks_desktop", "connector": {"kind": "webhook", "url": url,
                "secret": "whsec_0123456789abcdef"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let t = failed_test(&app, &app.base, &format!("http://127.0.0.1:{port}/…")).await;
    assert!(!t.to_string().contains("s3cr3t"), "{t}");
}

/// Tests the saved connection on the server at `base` (the test's or a second instance): it
/// must fail, its message saying `needle`. Returns the answer.
async fn failed_test(app: &TestApp, base: &str, needle: &str) -> Value {
    let (_, t) = app.test_connection_at(base).await;
    assert_eq!(t["ok"], false, "{t}");
    let message = t["message"].as_str().unwrap();
    assert!(message.contains(needle), "{t}");
    t
}

async fn a_url_with_credentials_is_refused_and_never_shown(app: TestApp) {
    for connector in [
        json!({"kind": "tryton", "url": "http://admin:hunter22@erp.example:8000/",
            "database": "costs", "username": "admin", "password": "pw"}),
        json!({"kind": "webhook", "url": "https://hook:hunter22@erp.example/hook",
            "secret": "whsec_0123456789abcdef"}),
    ] {
        let (s, b) = app
            .put(
                &app.c("/erp_connection"),
                json!({"profile": "quickbooks_desktop", "connector": connector}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(
            b["error"]["details"]["fields"]["connector.url"],
            json!(["must not contain a user name or password; use the username/password fields"]),
            "{b}"
        );
        assert!(!b.to_string().contains("hunter22"), "{b}");
    }
    let (s, _) = app.get(&app.c("/erp_connection")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing was saved");

    // A connection stored before the rule: its user-info is never shown. Nothing listens on a
    // port just released, so the test fails and names the address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stored = json!({"kind": "webhook", "url": format!("http://hook:hunter22@127.0.0.1:{port}/hook"),
        "secret": "whsec_0123456789abcdef", "gl_accounts": []});
    app.store_connection("quickbooks_desktop", &stored).await;
    let (s, b) = app.get(&app.c("/erp_connection")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b["connector"]["url"],
        format!("http://127.0.0.1:{port}/hook")
    );
    let t = failed_test(&app, &app.base, &format!("127.0.0.1:{port}")).await;
    for shown in [b.to_string(), t.to_string()] {
        assert!(!shown.contains("hunter22"), "{shown}");
    }
    // A hook that authenticates by its query keeps it through the admin's read and save (the
    // form sends the address back as shown), while a failed test's message hides its value.
    let url = format!("http://127.0.0.1:{port}/hook?sig=s3cr3t");
    let path = app.c("/erp_connection");
    let put = |connector: Value| {
        app.put(
            &path,
            json!({"profile": "quickbooks_desktop", "connector": connector}),
        )
    };
    let (s, b) =
        put(json!({"kind": "webhook", "url": url, "secret": "whsec_0123456789abcdef"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, read) = app.get(&app.c("/erp_connection")).await;
    assert_eq!(read["connector"]["url"], url, "{read}");
    let (s, b) = put(read["connector"].clone()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, again) = app.get(&app.c("/erp_connection")).await;
    assert_eq!(again["connector"]["url"], url, "{again}");
    let t = failed_test(&app, &app.base, &format!("127.0.0.1:{port}")).await;
    assert!(!t.to_string().contains("s3cr3t"), "{t}");
}

async fn the_default_policy_refuses_internal_addresses(app: TestApp) {
    // The test harness allows internal addresses; a second server on the same database runs
    // with the default policy.
    let (base, _stop) = app
        .second_instance(|s| s.outbound = Default::default())
        .await;
    for (url, refusal) in [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
        ("http://10.0.0.5/hook", "10.0.0.5 is a private address"),
        (
            "http://169.254.169.254/latest",
            "169.254.169.254 is a link-local (or metadata) address",
        ),
    ] {
        let connector = json!({"profile": "quickbooks_desktop", "connector": {"kind": "webhook",
            "url": url, "secret": "whsec_0123456789abcdef"}});
        let (s, b) = app.put(&app.c("/erp_connection"), connector).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let t = failed_test(&app, &base, refusal).await;
        let message = t["message"].as_str().unwrap();
        assert!(
            message.contains("[outbound] allow_private = true"),
            "the message names the setting: {message}"
        );
    }
}

async fn a_company_writes_files_only_in_its_own_folder(app: TestApp) {
    let root = app.exports.path();
    let other = root.join("company-999");
    std::fs::create_dir_all(&other).unwrap();
    std::os::unix::fs::symlink(&other, app.export_dir().join("link")).unwrap();
    let path = app.c("/erp_connection");
    let put = |directory: serde_json::Value| {
        app.put(
            &path,
            json!({"profile": "quickbooks_desktop",
                "connector": {"kind": "file", "directory": directory, "format": "iif"}}),
        )
    };
    for bad in [
        json!("../company-999"),
        json!("a/../../company-999"),
        json!(other),
        json!("/tmp"),
        json!("link"),
        json!("link/deeper"),
    ] {
        let (s, b) = put(bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {b}");
        assert_eq!(
            b["error"]["details"]["fields"]["connector.directory"],
            json!([
                "must be a folder inside the company's export folder (a relative path without '..')"
            ]),
            "{bad}: {b}"
        );
    }
    let (s, _) = app.get(&app.c("/erp_connection")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing was saved");

    // `.` is the company's folder itself (the demo's setting).
    let (s, b) = put(json!(".")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    std::fs::remove_file(app.export_dir().join("link")).unwrap();
    std::fs::remove_dir(app.export_dir()).unwrap();
    let (_, t) = app.post(&app.c("/erp_connection/test"), json!({})).await;
    assert_eq!(t["ok"], true, "{t}");
    std::os::unix::fs::symlink(&other, app.export_dir().join("link")).unwrap();

    // A relative folder is inside the company's folder; the test creates it there and only there.
    let (s, b) = put(json!("iif/new")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, t) = app.post(&app.c("/erp_connection/test"), json!({})).await;
    assert_eq!(t["ok"], true, "{t}");
    assert!(app.export_dir().join("iif/new").is_dir());
    let mut top: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        [format!("company-{}", app.company), "company-999".into()]
    );
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);

    // A symlink out made after the settings were saved is refused when used.
    std::fs::remove_dir_all(app.export_dir().join("iif")).unwrap();
    std::os::unix::fs::symlink(&other, app.export_dir().join("iif")).unwrap();
    failed_test(&app, &app.base, "inside the company's export folder").await;
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 0);
}
