//! What connectors may reach (issue #9, points 4 to 6): no credentials in a URL, and never shown;
//! no internal address unless the operator allows it.
use crate::both;
use crate::helpers::TestApp;
use reqwest::StatusCode;
use serde_json::json;

both!(
    a_url_with_credentials_is_refused_and_never_shown,
    the_default_policy_refuses_internal_addresses,
);

async fn a_url_with_credentials_is_refused_and_never_shown(app: TestApp) {
    for connector in [
        json!({"kind": "tryton", "url": "http://admin:hunter22@erp.example:8000/",
            "database": "costs", "username": "admin", "password": "pw"}),
        json!({"kind": "webhook", "url": "https://hook:hunter22@erp.example/hook",
            "secret": "whsec_0123456789abcdef"}),
    ] {
        let (s, b) = app
            .call(
                "PUT",
                &app.c("/erp_connection"),
                &app.token,
                Some(json!({"profile": "quickbooks_desktop", "connector": connector})),
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
    let (_, me) = app.get("/api/v1/me").await;
    let stored = json!({"kind": "webhook", "url": format!("http://hook:hunter22@127.0.0.1:{port}/hook"),
        "secret": "whsec_0123456789abcdef", "gl_accounts": []});
    app.app_state
        .db
        .put_erp_connection(
            app.company,
            me["id"].as_i64().unwrap(),
            "quickbooks_desktop",
            &stored,
            &json!({}),
        )
        .await
        .unwrap();
    let (s, b) = app.get(&app.c("/erp_connection")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b["connector"]["url"],
        format!("http://127.0.0.1:{port}/hook")
    );
    let (_, t) = app.post(&app.c("/erp_connection/test"), json!({})).await;
    assert_eq!(t["ok"], false, "{t}");
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{t}"
    );
    for shown in [b.to_string(), t.to_string()] {
        assert!(!shown.contains("hunter22"), "{shown}");
    }
}

async fn the_default_policy_refuses_internal_addresses(app: TestApp) {
    // The test harness allows internal addresses; a second server on the same database runs
    // with the default settings.
    let (base, _stop) = app.second_instance(|_| {}).await;
    let http = reqwest::Client::new();
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
        let (s, b) = app
            .call(
                "PUT",
                &app.c("/erp_connection"),
                &app.token,
                Some(connector),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let t: serde_json::Value = http
            .post(format!("{base}{}", app.c("/erp_connection/test")))
            .bearer_auth(&app.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(t["ok"], false, "{t}");
        let message = t["message"].as_str().unwrap();
        assert!(message.contains(refusal), "{message}");
        assert!(
            message.contains("[outbound] allow_private = true"),
            "the message names the setting: {message}"
        );
    }
}
