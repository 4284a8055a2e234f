//! The smaller holes of issue #9 (point 8): every `/api` error is the JSON error body, invented
//! methods do not make metric series, every page has the CSP, the cookie is `Secure` behind
//! https, creating a user does not reveal an email's account in another company, and
//! `/metrics` may need a bearer token.
use crate::helpers::{ADMIN_LOGIN, Backend, TestApp, field_error};
use crate::session::no_redirects;
use crate::{both, per_backend};
use reqwest::StatusCode;
use reqwest::header::{ALLOW, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST, SET_COOKIE};
use serde_json::{Value, json};

both!(
    api_errors_are_json,
    invented_methods_share_one_metric_series,
    docs_and_unsubscribe_have_the_csp,
    the_cookie_is_secure_behind_https,
    emails_are_scoped_per_company,
    metrics_may_need_a_bearer_token,
);

async fn metrics_may_need_a_bearer_token(app: TestApp) {
    let (base, _stop) = app
        .second_instance(|s| s.server.metrics_token = Some("scrape-token-0123456789".into()))
        .await;
    let get = |token: Option<&'static str>| {
        let mut req = app.client.get(format!("{base}/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap() }
    };
    for token in [None, Some("scrape-token-012345678"), Some("wrong")] {
        let res = get(token).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        // RFC 6750: a token sent and refused is named as the trouble.
        let challenge = match token {
            None => "Bearer",
            Some(_) => r#"Bearer error="invalid_token""#,
        };
        assert_eq!(res.headers()["www-authenticate"], challenge, "{token:?}");
        let b: Value = res.json().await.unwrap();
        assert_eq!(b["error"]["code"], "unauthorized", "{b}");
        // The operator's setting, not the API's sign-in.
        let said = b["error"]["message"].as_str().unwrap();
        assert!(said.contains("[server] metrics_token"), "{b}");
        assert!(!said.contains("sign in"), "{b}");
    }
    let res = get(Some("scrape-token-0123456789")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("costbridge_export_jobs_open")
    );
    // Without the setting (the first server) it stays open, as before.
    let (s, _) = app.call("GET", "/metrics", "", None).await;
    assert_eq!(s, StatusCode::OK);
}

async fn api_errors_are_json(app: TestApp) {
    for path in [
        "/api/v1/companies/abc/cost_code_lists".to_owned(),
        "/api/v1/companies/99999999999999999999/cost_code_lists".to_owned(),
        app.c("/cost_code_lists/1.5/cost_codes"),
    ] {
        let res = app.request("GET", &path).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(res.headers()[CONTENT_TYPE], "application/json", "{path}");
        let b: Value = res.json().await.unwrap();
        assert_eq!(b["error"]["code"], "bad_request", "{path}: {b}");
        assert!(b["error"]["message"].as_str().unwrap().len() > 5, "{b}");
    }
    let res = app.request("DELETE", "/api/v1/me").await;
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(res.headers()[ALLOW].to_str().unwrap().contains("GET"));
    let b: Value = res.json().await.unwrap();
    assert_eq!(b["error"]["code"], "method_not_allowed", "{b}");
}

async fn invented_methods_share_one_metric_series(app: TestApp) {
    for m in ["BREW", "WHEN", "ZAP"] {
        app.call(m, "/api/v1/me", &app.token, None).await;
    }
    let (_, text) = app.call("GET", "/metrics", "", None).await;
    let text = text.as_str().unwrap();
    for m in ["BREW", "WHEN", "ZAP"] {
        assert!(!text.contains(m), "{m} in\n{text}");
    }
    assert!(
        text.contains(
            "costbridge_http_requests_total{method=\"other\",route=\"/api/v1/me\",status=\"405\"} 3"
        ),
        "{text}"
    );
}

async fn docs_and_unsubscribe_have_the_csp(app: TestApp) {
    let csp_of = |path: &'static str| {
        let url = format!("{}{path}", app.base);
        async move {
            no_redirects()
                .get(url)
                .send()
                .await
                .unwrap()
                .headers()
                .get(CONTENT_SECURITY_POLICY)
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    let pages = csp_of("/login").await.expect("the pages' CSP");
    assert!(pages.contains("default-src 'self'"), "{pages}");
    assert_eq!(csp_of("/api/docs").await.as_ref(), Some(&pages));
    assert_eq!(
        csp_of("/unsubscribe/digest/1/00").await.as_ref(),
        Some(&pages)
    );
}

async fn the_cookie_is_secure_behind_https(app: TestApp) {
    let cookie_from = |base: String| async move {
        let res = no_redirects()
            .post(format!("{base}/login"))
            .form(&ADMIN_LOGIN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        res.headers()[SET_COOKIE].to_str().unwrap().to_owned()
    };
    assert!(!cookie_from(app.base.clone()).await.contains("Secure"));
    let (base, stop) = app
        .second_instance(|s| s.mail.base_url = "https://costbridge.example".into())
        .await;
    let cookie = cookie_from(base.clone()).await;
    assert!(cookie.contains("; Secure"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let out = no_redirects()
        .post(format!("{base}/logout"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    let _ = stop.send(());
}

async fn emails_are_scoped_per_company(app: TestApp) {
    let (two, _) = app
        .two_builders("boss@two.example", "Boss", "second-company-pw")
        .await;
    let boss = app.login("boss@two.example", "second-company-pw").await;
    let users = format!("/api/v1/companies/{two}/users");
    let new_user = |email: &str| {
        let body = json!({"email": email, "name": "Someone", "password": "company-two-password",
            "permissions": {"admin_tool": "read_only", "erp_integrations": "none", "can_push_to_accounting": false}});
        app.call("POST", &users, &boss, Some(body))
    };
    // An address with an account in company one is simply a new user of company two.
    let (s, b) = new_user("Admin@One.example").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Within a company an address is taken whatever its case.
    let (s, b) = new_user("admin@one.EXAMPLE").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&b, "email").contains("this company"), "{b}");
    // Each password opens its own company's account.
    let mine = app.login("admin@one.example", "first-admin-password").await;
    let (_, me) = app.call("GET", "/api/v1/me", &mine, None).await;
    assert_eq!(me["company_id"], app.company);
    let theirs = app.login("admin@one.example", "company-two-password").await;
    let (_, me) = app.call("GET", "/api/v1/me", &theirs, None).await;
    assert_eq!(me["company_id"], two);
}

per_backend!(
    setup_needs_the_logged_code:
        setup_needs_the_logged_code_sqlite,
        setup_needs_the_logged_code_postgres
);

/// Whoever reaches an empty server first must not take it: a page at a name rebound to it
/// (DNS rebinding), anyone through a proxy on the server's machine (which passes requests on
/// from a loopback address, under the configured host, with no forwarding header by default).
/// Setup needs the code the server logged at start, however it is reached.
async fn setup_needs_the_logged_code(backend: Backend) {
    let Some(app) = TestApp::empty(backend).await else {
        return;
    };
    let setup = async |host: &str, code: &str| {
        let form = [
            ("company", "Rebound"),
            ("name", "Mallory"),
            ("email", "m@evil.example"),
            ("password", "a-long-password"),
            ("setup_code", code),
        ];
        app.post_form("/setup", &[(HOST, host)], &form).await
    };
    let port = app.base.rsplit(':').next().unwrap();
    let proxied = format!("127.0.0.1:{port}");
    let rebound = format!("rebind.evil.example:{port}");
    for host in [&proxied, &rebound] {
        let page = app
            .page_with("/", &[(HOST, host)])
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("name=\"setup_code\""), "{page}");
        for code in ["", "not-the-code"] {
            let res = setup(host, code).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{host} {code:?}");
            assert!(res.text().await.unwrap().contains("setup code"));
            assert_eq!(app.app_state.db.companies_count().await.unwrap(), 0);
        }
    }
    let code = app
        .app_state
        .first_run
        .code
        .clone()
        .expect("a code on an empty database");
    let res = setup(&rebound, &format!(" {code} ")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.app_state.db.companies_count().await.unwrap(), 1);
}
