//! Event subscriptions under attack (issue #13, point 5): internal addresses refused when saved
//! and when sent, the signing secret sealed at rest and never in a response, a page or a log
//! line, every query scoped to the caller's company, the pages' forms under CSRF.
use crate::both;
use crate::events::{Receiver, SECRET, deliver, log, now, subscribe};
use crate::helpers::{ADMIN_LOGIN, Backend, TestApp, error_message, field_error, perms};
use costbridge_domain::events::EventType;
use costbridge_server::App;
use costbridge_server::secrets::Cipher;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, ORIGIN};
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything this test binary logs at debug level, from the first call on.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("costbridge=debug,tower_http=debug,info")
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn internal_addresses_are_refused_when_saved_and_sent(app: TestApp) {
    for (url, says) in [
        (
            "http://127.0.0.1:9/events",
            "127.0.0.1 is a loopback address",
        ),
        ("http://169.254.169.254/latest", "link-local (or metadata)"),
        ("http://localhost:9/events", "localhost resolves to"),
    ] {
        let (s, b) = app
            .post(
                &app.c("/event_subscriptions"),
                json!({"url": url, "secret": SECRET, "event_types": ["cost_code.created"]}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {b}");
        let message = field_error(&b, "url");
        assert!(message.contains(says), "{url}: {b}");
        assert!(message.contains("[outbound] allow_private"), "{b}");
    }
    let (_, subs) = app.get(&app.c("/event_subscriptions")).await;
    assert_eq!(subs, json!([]), "nothing saved");

    // Saved when the policy allowed it (or by an older version): the sending refuses it.
    let (_, me) = app.get("/api/v1/me").await;
    let sealed = app.app_state.cipher.seal(SECRET);
    let sub = app
        .app_state
        .db
        .create_event_subscription(
            app.company,
            me["id"].as_i64().unwrap(),
            "http://127.0.0.1:9/events",
            &sealed,
            &[EventType::CodeCreated],
        )
        .await
        .unwrap();
    let list = app.new_list("Own").await;
    app.code(list, "01", "General", None).await;
    assert_eq!(deliver(&app, now()).await.retried, 1);
    let entry = &log(&app, &json!({ "id": sub })).await[0];
    let error = entry["last_error"].as_str().unwrap();
    assert!(
        error.contains("may not be reached: 127.0.0.1 is a loopback address"),
        "{entry}"
    );
    assert_eq!(entry["last_status"], Value::Null);
}

async fn bad_input_is_named_and_saves_nothing(app: TestApp) {
    let (s, b) = app
        .post(
            &app.c("/event_subscriptions"),
            json!({"url": "ftp://x.example/", "secret": "short", "event_types": ["cost_code.exploded"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let details = &b["error"]["details"]["fields"];
    assert_eq!(details["url"][0], "must be an http:// or https:// address");
    assert_eq!(details["secret"][0], "must be at least 16 characters");
    let types = details["event_types"][0].as_str().unwrap();
    assert!(
        types.starts_with(
            "'cost_code.exploded' is not an event type; choose from cost_code.created"
        ),
        "{types}"
    );
    let (s, b) = app
        .post(
            &app.c("/event_subscriptions"),
            json!({"url": "https://hooks.example/", "secret": "********", "event_types": []}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(field_error(&b, "event_types").starts_with("choose at least one"));
    assert!(
        b["error"]["details"]["fields"]["secret"].is_array(),
        "the mask is no secret: {b}"
    );
    let (_, subs) = app.get(&app.c("/event_subscriptions")).await;
    assert_eq!(subs, json!([]));
}

async fn subscriptions_belong_to_their_company_and_its_admins(app: TestApp) {
    let receiver = Receiver::start().await;
    let sub = subscribe(&app, &receiver.url, &["cost_code.created"]).await;
    let list = app.new_list("Own").await;
    app.code(list, "01", "General", None).await;
    let event = log(&app, &sub).await[0]["id"].clone();

    let (two, zed) = app.company_two().await;
    let id = &sub["id"];
    for path in [
        format!("/api/v1/companies/{two}/event_subscriptions/{id}"),
        format!("/api/v1/companies/{two}/event_subscriptions/{id}/deliveries"),
        format!("/api/v1/companies/{}/event_subscriptions/{id}", app.company),
        format!("/api/v1/companies/{}/event_subscriptions", app.company),
    ] {
        let (s, b) = app.call("GET", &path, &zed, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {b}");
    }
    let subs = format!("/api/v1/companies/{two}/event_subscriptions");
    let redeliver = format!("{subs}/{id}/deliveries/{event}/redeliver");
    let (s, b) = app.call("POST", &redeliver, &zed, Some(json!({}))).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (s, b) = app
        .call("DELETE", &format!("{subs}/{id}"), &zed, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    let (_, theirs) = app.call("GET", &subs, &zed, None).await;
    assert_eq!(theirs, json!([]));

    // Someone who is not an Admin-tool admin may not read or add them.
    let approver = app
        .user("amy@one.example", perms("read_only", "admin", true))
        .await;
    let ours = app.c("/event_subscriptions");
    let (s, b) = app.call("GET", &ours, &approver, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(error_message(&b).contains("admin_tool=admin"), "{b}");

    // Deleting takes its events along; another company's codes never made any.
    let (s, _) = app
        .delete(&app.c(&format!("/event_subscriptions/{id}")))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .get(&app.c(&format!("/event_subscriptions/{id}/deliveries")))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        app.audit_actions("entity_type=event_subscription").await,
        ["event_subscription.deleted", "event_subscription.created"]
    );
    // The audit log, which read-only users read, keeps the address's host, not its path (where
    // many hook services put their credential).
    let (_, audit) = app
        .get(&app.c("/audit_events?entity_type=event_subscription"))
        .await;
    let host = receiver.url.trim_end_matches("/events");
    assert_eq!(audit[0]["before"]["url"], format!("{host}/…"), "{audit}");
    assert!(!audit.to_string().contains("/events"), "{audit}");
}

async fn the_secret_is_sealed_and_never_shown(app: TestApp) {
    let logs = captured_logs();
    let receiver = Receiver::start().await;
    let sub = subscribe(&app, &receiver.url, &["cost_code.created"]).await;
    let list = app.new_list("Own").await;
    app.code(list, "01", "General", None).await;
    assert_eq!(
        deliver(&app, now()).await.delivered,
        1,
        "signed with the secret"
    );

    let stored = app.app_state.db.event_subscription_secrets().await.unwrap();
    assert!(stored[0].2.starts_with("enc:v1:"), "sealed at rest");
    assert!(!stored[0].2.contains(SECRET));

    let mut seen = Vec::new();
    for path in [
        app.c("/event_subscriptions"),
        app.c(&format!("/event_subscriptions/{}", sub["id"])),
        app.c(&format!("/event_subscriptions/{}/deliveries", sub["id"])),
        app.c("/audit_events?per_page=1000"),
    ] {
        let (s, b) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        seen.push(b.to_string());
    }
    let (_, cookie) = app.session(ADMIN_LOGIN[0].1, ADMIN_LOGIN[1].1).await;
    for path in [
        "/settings/events".to_owned(),
        format!("/settings/events/{}", sub["id"]),
    ] {
        let page = app.page_with(&path, &[(COOKIE, &cookie)]).await;
        assert_eq!(page.status(), StatusCode::OK);
        let text = page.text().await.unwrap();
        assert!(text.contains("********"), "{path} shows the mask");
        seen.push(text);
    }
    // A refused form does not send the typed secret back either.
    let refused = app
        .post_form(
            "/settings/events",
            &[(COOKIE, &cookie), (ORIGIN, &app.base)],
            &[("url", "ftp://x.example/"), ("secret", SECRET)],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("must be an http:// or https:// address"),
        "{text}"
    );
    seen.push(text);
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        logged.contains("event batch delivered"),
        "the logs are captured"
    );
    seen.push(logged);
    for text in &seen {
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
    }
}

async fn rotation_reseals_the_secret_and_a_wrong_key_refuses_to_start(app: TestApp) {
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &["cost_code.created"]).await;
    let old = app.app_state.cipher.clone();
    let new = Cipher::new(&[9; 32]);
    costbridge_server::secrets::rotate(&app.app_state.db, &old, &new)
        .await
        .unwrap();
    let stored = app.app_state.db.event_subscription_secrets().await.unwrap();
    assert_eq!(new.open(&stored[0].2).unwrap(), SECRET);
    assert!(old.open(&stored[0].2).is_err());
    // A server with the old key no longer starts, and says which secret it cannot read.
    let e = App::build(app.instance_settings())
        .await
        .err()
        .expect("the old key refuses");
    let e = e.to_string();
    assert!(
        e.contains("event subscription") && e.contains("[secrets] key_file"),
        "{e}"
    );
}

async fn the_pages_add_a_subscription_and_redeliver_under_csrf(app: TestApp) {
    let receiver = Receiver::start().await;
    let (client, cookie) = app.session(ADMIN_LOGIN[0].1, ADMIN_LOGIN[1].1).await;
    let post = |path: String, form: Vec<(&'static str, String)>, origin: bool| {
        let mut req = client
            .post(format!("{}{path}", app.base))
            .header(COOKIE, &cookie)
            .form(&form);
        if origin {
            req = req.header(ORIGIN, &app.base);
        }
        req.send()
    };
    let form = vec![
        ("url", receiver.url.clone()),
        ("secret", SECRET.to_owned()),
        ("event_types", "cost_code.created".to_owned()),
        ("event_types", "cost_code.updated".to_owned()),
    ];
    let forged = post("/settings/events".into(), form.clone(), false)
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "no CSRF proof");
    let added = post("/settings/events".into(), form, true).await.unwrap();
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let (_, subs) = app.get(&app.c("/event_subscriptions")).await;
    assert_eq!(subs.as_array().unwrap().len(), 1, "{subs}");
    assert_eq!(
        subs[0]["event_types"],
        json!(["cost_code.created", "cost_code.updated"])
    );
    let id = subs[0]["id"].clone();

    let list = app.new_list("Own").await;
    app.code(list, "01", "General", None).await;
    deliver(&app, now()).await;
    let event = log(&app, &subs[0]).await[0]["id"].clone();
    let page = app.page(&cookie, &format!("/settings/events/{id}")).await;
    assert!(page.contains(&format!("id=\"event-{event}\"")), "{page}");
    assert!(
        page.contains("delivered") && page.contains("HTTP 200: thanks"),
        "{page}"
    );
    assert!(page.contains("Redeliver"), "{page}");

    let path = format!("/settings/events/{id}/deliveries/{event}/redeliver");
    let forged = post(path.clone(), vec![], false).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let done = post(path, vec![], true).await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(deliver(&app, now()).await.delivered, 1);
    let ids: Vec<Value> = receiver.events().iter().map(|e| e["id"].clone()).collect();
    assert_eq!(
        ids,
        [event.clone(), event],
        "the same event twice: the subscriber dedupes"
    );
}

both!(
    bad_input_is_named_and_saves_nothing,
    subscriptions_belong_to_their_company_and_its_admins,
    the_secret_is_sealed_and_never_shown,
    rotation_reseals_the_secret_and_a_wrong_key_refuses_to_start,
    the_pages_add_a_subscription_and_redeliver_under_csrf,
);

/// The default outbound policy (the other tests allow loopback, where their receivers listen).
mod strict {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some(app) =
            TestApp::spawn_with(Backend::Sqlite, |s| s.outbound.allow_private = false).await
        {
            internal_addresses_are_refused_when_saved_and_sent(app).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(app) =
            TestApp::spawn_with(Backend::Postgres, |s| s.outbound.allow_private = false).await
        {
            internal_addresses_are_refused_when_saved_and_sent(app).await
        }
    }
}
