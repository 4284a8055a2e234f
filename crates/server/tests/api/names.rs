//! Company and person names (issue #14): one check at every entry point, so a line break that
//! would reach email subjects is refused by the API and the setup page as by `bootstrap`
//! (tests/api/cli.rs), naming the field and creating nothing.
use crate::helpers::{Backend, TestApp, field_error};
use crate::{both, per_backend};
use reqwest::StatusCode;
use serde_json::json;

both!(the_api_refuses_line_breaks_in_names);

async fn the_api_refuses_line_breaks_in_names(app: TestApp) {
    let (s, b) = app
        .post(
            &app.c("/users"),
            json!({"email": "ann@one.example", "name": "Ann\nBcc: x@evil.example",
                "password": "a-long-password",
                "permissions": {"admin_tool": "none", "erp_integrations": "none", "can_push_to_accounting": false}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(
        b["error"]["details"]["fields"]["name"],
        json!(["contains a line break; replace it with a space"]),
        "{b}"
    );
    // An email takes no space: the advice is to remove it.
    let (s, b) = app
        .post(
            &app.c("/users"),
            json!({"email": "ann@one.example\nBcc: x@evil.example", "name": "Ann",
                "password": "a-long-password",
                "permissions": {"admin_tool": "none", "erp_integrations": "none", "can_push_to_accounting": false}}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(
        b["error"]["details"]["fields"]["email"],
        json!(["contains a line break; remove it"]),
        "{b}"
    );
    let (_, users) = app.get(&app.c("/users")).await;
    assert_eq!(users.as_array().unwrap().len(), 1, "nothing was created");
    let me = users[0]["id"].as_i64().unwrap();
    let (s, b) = app
        .patch(
            &app.c(&format!("/users/{me}")),
            json!({"name": "Ada\r\nAdmin"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(field_error(&b, "name").contains("a line break"), "{b}");
}

per_backend!(the_setup_page_refuses_line_breaks_in_names: the_setup_page_refuses_line_breaks_in_names_sqlite, the_setup_page_refuses_line_breaks_in_names_postgres);

async fn the_setup_page_refuses_line_breaks_in_names(backend: Backend) {
    let Some(app) = TestApp::empty(backend).await else {
        return;
    };
    let code = app.app_state.first_run.code.clone().unwrap();
    let res = app
        .post_form(
            "/setup",
            &[],
            &[
                ("company", "Acme\nBuilders"),
                ("name", "Ann\tLee"),
                ("email", "ann@acme.example"),
                ("password", "a-long-password"),
                ("setup_code", &code),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("contains a line break; replace it with a space"),
        "{page}"
    );
    assert!(
        page.contains("contains a tab; replace it with a space"),
        "{page}"
    );
    assert_eq!(app.app_state.db.companies_count().await.unwrap(), 0);
}
