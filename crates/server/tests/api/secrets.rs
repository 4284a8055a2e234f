//! Connector secrets at rest (issue #9, point 9): encrypted in the row, still used for the
//! webhook's signature, a wrong or missing key stops the start, and a rotation makes the old key
//! unneeded.
use crate::both;
use crate::helpers::{SECRETS_KEY, TestApp, perms};
use crate::idempotency::post_with_key;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use costbridge_erp::MASK;
use costbridge_server::App;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

const SECRET: &str = "whsec_at_rest_0123456789abcdef";

/// A webhook receiver that checks each request's signature with `SECRET` (as a customer's
/// endpoint does) and answers every code synced; it records how many requests it verified.
struct Receiver {
    url: String,
    verified: Mutex<Vec<String>>,
}

async fn hook(
    State(r): State<Arc<Receiver>>, headers: HeaderMap, raw: Bytes,
) -> axum::response::Response {
    let signature = headers
        .get("x-costbridge-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(why) = costbridge_erp::webhook::verify(SECRET, signature, &raw, now) {
        return (StatusCode::UNAUTHORIZED, why).into_response();
    }
    let body: Value = serde_json::from_slice(&raw).unwrap_or_default();
    r.verified
        .lock()
        .unwrap()
        .push(body["event"].as_str().unwrap_or_default().to_owned());
    let results: Vec<Value> = body["codes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|c| json!({"item_id": c["item_id"], "status": "synced", "origin_id": format!("ERP-{}", c["item_id"])}))
        .collect();
    axum::Json(json!({ "results": results })).into_response()
}

async fn receiver() -> Arc<Receiver> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = Arc::new(Receiver {
        url: format!("http://{}/hook", listener.local_addr().unwrap()),
        verified: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    r
}

/// The `erp_connections.connector` text of the test's company, as stored.
async fn stored_row(app: &TestApp) -> String {
    let rows = app.app_state.db.erp_connectors().await.unwrap();
    let (_, text) = rows.into_iter().find(|(c, _)| *c == app.company).unwrap();
    text
}

async fn connect_webhook(app: &TestApp, url: &str, secret: &str) -> Value {
    let (s, b) = app
        .put(
            &app.c("/erp_connection"),
            json!({"profile": "quickbooks_desktop", "connector": {"kind": "webhook",
                "url": url, "secret": secret,
                "gl_accounts": [{"code": "4000", "name": "Income", "kind": "income"}]}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// `POST …/erp_connection/test` on the server at `base`; its answer.
async fn connection_works(base: &str, app: &TestApp) -> Value {
    let (s, b) = app.test_connection_at(base).await;
    assert_eq!(s, StatusCode::OK);
    b
}

both!(secrets_are_encrypted_in_the_row_and_still_sign_the_export);
async fn secrets_are_encrypted_in_the_row_and_still_sign_the_export(app: TestApp) {
    let erp = receiver().await;
    let conn = connect_webhook(&app, &erp.url, SECRET).await;
    assert_eq!(conn["connector"]["secret"], MASK);
    let row = stored_row(&app).await;
    assert!(!row.contains(SECRET), "{row}");
    let sealed: Value = serde_json::from_str(&row).unwrap();
    assert!(
        sealed["secret"].as_str().unwrap().starts_with("enc:v1:"),
        "{row}"
    );
    assert_eq!(
        sealed["url"],
        erp.url.as_str(),
        "only secrets are encrypted"
    );

    // The receiver checks the signature made with the decrypted secret.
    let t = connection_works(&app.base, &app).await;
    assert_eq!(t["ok"], true, "{t}");
    let list = conn["erp_list_id"].as_i64().unwrap();
    let code = app.code(list, "01", "Sitework", None).await;
    app.send(list).await;
    app.accept_all().await;
    let id = code["id"].as_i64().unwrap();
    assert_eq!(app.status_of(list, id).await, "synced");
    assert_eq!(*erp.verified.lock().unwrap(), ["ping", "cost_codes.export"]);

    // Saved again with the secret sent back masked: still the same secret, freshly encrypted.
    connect_webhook(&app, &erp.url, MASK).await;
    let again = stored_row(&app).await;
    assert!(!again.contains(SECRET) && again != row, "{again}");
    assert_eq!(connection_works(&app.base, &app).await["ok"], true);
}

both!(a_secret_stored_in_clear_is_read_and_encrypted_on_the_next_save);
async fn a_secret_stored_in_clear_is_read_and_encrypted_on_the_next_save(app: TestApp) {
    let erp = receiver().await;
    let clear = json!({"kind": "webhook", "url": erp.url, "secret": SECRET, "gl_accounts": []});
    let admin = app.app_state.db.users(app.company).await.unwrap()[0].id;
    app.app_state
        .db
        .put_erp_connection(app.company, admin, "quickbooks_desktop", &clear, &clear)
        .await
        .unwrap();
    assert!(stored_row(&app).await.contains(SECRET));
    assert_eq!(connection_works(&app.base, &app).await["ok"], true);
    connect_webhook(&app, &erp.url, MASK).await;
    assert!(!stored_row(&app).await.contains(SECRET));
    assert_eq!(connection_works(&app.base, &app).await["ok"], true);
}

both!(a_wrong_or_missing_key_refuses_to_start);
async fn a_wrong_or_missing_key_refuses_to_start(app: TestApp) {
    let erp = receiver().await;
    connect_webhook(&app, &erp.url, SECRET).await;
    let mut wrong = app.instance_settings();
    wrong.secrets.key = Some("d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktISE=".into());
    let e = App::build(wrong).await.err().expect("a wrong key refuses");
    let e = e.to_string();
    assert!(
        e.contains("cannot be read") && e.contains("[secrets] key_file"),
        "{e}"
    );
    let mut none = app.instance_settings();
    none.secrets.key = None;
    let e = App::build(none).await.err().expect("no key refuses");
    let e = e.to_string();
    assert!(e.contains("[secrets] key_file"), "{e}");
    if app.database_url.starts_with("sqlite") {
        assert!(e.contains("holds encrypted connector secrets"), "{e}");
        // Refusing created no key file that a later start would take.
        let dir = app.database_url.trim_start_matches("sqlite://");
        let dir = std::path::Path::new(dir).parent().unwrap();
        assert!(!dir.join("costbridge-secrets.key").exists());
    } else {
        assert!(e.contains("PostgreSQL needs"), "{e}");
    }
}

both!(rotation_makes_the_old_key_unneeded);
async fn rotation_makes_the_old_key_unneeded(app: TestApp) {
    let erp = receiver().await;
    connect_webhook(&app, &erp.url, SECRET).await;
    let before = stored_row(&app).await;
    // A kept idempotent answer (sealed with the same key) is re-sealed too.
    let clients = app.c("/api_clients");
    let made = json!({"name": "Sync", "permissions": perms("none", "standard", false)});
    let (s, _, first) = post_with_key(&app, &app.base, &app.token, &clients, "k", &made).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let dir = tempfile::tempdir().unwrap();
    let new_key = dir.path().join("new.key");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_costbridge"))
        .args(["secrets", "rotate", "--new-key-file"])
        .arg(&new_key)
        .args(["--database-url", &app.database_url])
        .env("COSTBRIDGE__SECRETS__KEY", SECRETS_KEY)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("1 connection(s) re-encrypted"), "{said}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let after = stored_row(&app).await;
    assert!(after != before && !after.contains(SECRET), "{after}");

    // The old key no longer starts a server; the new one does, and the secret still signs.
    let e = App::build(app.instance_settings())
        .await
        .err()
        .expect("old key");
    assert!(e.to_string().contains("cannot be read"), "{e}");
    let (base, _stop) = app
        .second_instance(|s| {
            s.secrets.key = None;
            s.secrets.key_file = Some(new_key.clone());
        })
        .await;
    let t = connection_works(&base, &app).await;
    assert_eq!(t["ok"], true, "{t}");
    let (s, h, again) = post_with_key(&app, &base, &app.token, &clients, "k", &made).await;
    assert_eq!(
        (s, &h["idempotent-replayed"]),
        (StatusCode::CREATED, &"true".parse().unwrap())
    );
    assert_eq!(again, first);
}

/// The demo's path: SQLite, no key configured, an empty database.
#[tokio::test]
async fn without_a_key_sqlite_creates_one_next_to_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = costbridge_server::Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.database_url = format!("sqlite://{}", dir.path().join("demo.db").display());
    settings.worker.enabled = false;
    let app = App::build(settings.clone()).await.unwrap();
    let key_file = dir.path().join("costbridge-secrets.key");
    assert!(key_file.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let id = app.state.cipher.id().to_owned();
    app.state.db.close().await;
    drop(app);
    // The next start takes the same key.
    let again = App::build(settings).await.unwrap();
    assert_eq!(again.state.cipher.id(), id);
}
