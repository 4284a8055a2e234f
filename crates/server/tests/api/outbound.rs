//! What connectors may reach (issue #9, points 4 to 6): no credentials in a URL, and never shown.
use crate::both;
use crate::helpers::TestApp;
use reqwest::StatusCode;
use serde_json::json;

both!(a_url_with_credentials_is_refused_and_never_shown);

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
