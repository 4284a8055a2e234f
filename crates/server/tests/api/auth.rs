use crate::both;
use crate::helpers::{TestApp, field_error, perms};
use reqwest::StatusCode;
use serde_json::json;

both!(
    tokens_sign_in_and_revoke,
    users_and_the_grant_rule,
    other_companies_are_invisible,
    login_is_rate_limited,
    the_last_full_admin_keeps_their_rights,
    the_bearer_scheme_is_any_case_and_a_401_says_how
);

/// A company keeps someone who is an Admin-tool admin holding Push to accounting: without one
/// nobody could grant the privilege or make an admin again, and no command recovers it.
async fn the_last_full_admin_keeps_their_rights(app: TestApp) {
    let (_, me) = app.get("/api/v1/me").await;
    let me = me["id"].as_i64().unwrap();
    let lower = json!({"permissions": {"admin_tool": "read_only", "erp_integrations": "admin",
        "can_push_to_accounting": true}});
    let (s, b) = app
        .patch(&app.c(&format!("/users/{me}")), lower.clone())
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is the company's last admin who holds Push to accounting"),
        "{b}"
    );
    let (_, still) = app.get("/api/v1/me").await;
    assert_eq!(still["permissions"], perms("admin", "admin", true));
    // With a second one, either may step down, and the other is then the last.
    let (s, other) = app
        .post(
            &app.c("/users"),
            json!({"email": "second@one.example", "name": "Second",
            "password": "a-long-password", "permissions": perms("admin", "none", true)}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    // The second signs in with a password the first chose, so could be signed in as by them:
    // the first steps down once the second has a password of their own.
    let second = app.login("second@one.example", "a-long-password").await;
    let (s, b) = app
        .call(
            "PATCH",
            &app.c(&format!("/users/{}", other["id"])),
            &second,
            Some(
                json!({"password": "seconds-own-password", "current_password": "a-long-password"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app.patch(&app.c(&format!("/users/{me}")), lower).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app
        .call(
            "PATCH",
            &app.c(&format!("/users/{}", other["id"])),
            &second,
            Some(json!({"permissions": perms("admin", "none", false)})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
}

async fn tokens_sign_in_and_revoke(app: TestApp) {
    let (s, b) = app.sign_in("admin@one.example", "wrong-password").await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let token = app.login("admin@one.example", "first-admin-password").await;
    assert!(token.starts_with("cb_"));
    let (s, me) = app.call("GET", "/api/v1/me", &token, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["email"], "admin@one.example");
    assert_eq!(me["permissions"], perms("admin", "admin", true));
    assert!(me.get("password_hash").is_none());
    let (s, _) = app
        .call("DELETE", "/api/v1/tokens/current", &token, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.call("GET", "/api/v1/me", &token, None).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    // Tokens are stored hashed: the plain token appears nowhere in the database.
    let (s, _) = app.call("GET", "/api/v1/me", "cb_not-a-token", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

async fn users_and_the_grant_rule(app: TestApp) {
    // An admin without the privilege manages users but cannot hand out the approver privilege.
    let plain_admin = app
        .user("plain@one.example", perms("admin", "standard", false))
        .await;
    let (s, b) = app
        .call("POST", &app.c("/users"), &plain_admin, Some(json!({"email": "acct@one.example", "name": "Acct", "password": "a-long-password",
            "permissions": {"admin_tool": "none", "erp_integrations": "standard", "can_push_to_accounting": true}})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(
        b["error"]["details"]["required"],
        "admin_tool=admin and can_push_to_accounting"
    );
    let (s, created) = app
        .call("POST", &app.c("/users"), &plain_admin, Some(json!({"email": "acct@one.example", "name": "Acct", "password": "a-long-password",
            "permissions": {"admin_tool": "none", "erp_integrations": "standard", "can_push_to_accounting": false}})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert!(created.get("password").is_none() && created.get("password_hash").is_none());
    let uid = created["id"].as_i64().unwrap();
    let grant = json!({"permissions": {"admin_tool": "none", "erp_integrations": "standard", "can_push_to_accounting": true}});
    let (s, _) = app
        .call(
            "PATCH",
            &app.c(&format!("/users/{uid}")),
            &plain_admin,
            Some(grant.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The plain admin chose Acct's password, so a full admin's grant waits until Acct has
    // chosen their own (account::a_password_someone_else_chose_holds_back_a_grant_they_lack).
    let (s, b) = app
        .patch(&app.c(&format!("/users/{uid}")), grant.clone())
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let acct = app.login("acct@one.example", "a-long-password").await;
    let (s, b) = app
        .call(
            "PATCH",
            &app.c(&format!("/users/{uid}")),
            &acct,
            Some(json!({"password": "accts-own-password", "current_password": "a-long-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, u) = app.patch(&app.c(&format!("/users/{uid}")), grant).await;
    assert_eq!(
        (s, u["permissions"]["can_push_to_accounting"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    // Duplicate email, bad email and a short password name their field.
    let bad = |email: &str, pw: &str| {
        json!({"email": email, "name": "X", "password": pw,
        "permissions": {"admin_tool": "none", "erp_integrations": "none", "can_push_to_accounting": false}})
    };
    let (s, b) = app
        .post(&app.c("/users"), bad("acct@one.example", "a-long-password"))
        .await;
    assert_eq!(
        (s, b["error"]["details"]["fields"]["email"].is_array()),
        (StatusCode::UNPROCESSABLE_ENTITY, true),
        "{b}"
    );
    let (_, b) = app
        .post(&app.c("/users"), bad("not-an-email", "a-long-password"))
        .await;
    assert!(b["error"]["details"]["fields"]["email"].is_array(), "{b}");
    let (_, b) = app
        .post(&app.c("/users"), bad("ok@one.example", "short"))
        .await;
    assert!(
        b["error"]["details"]["fields"]["password"].is_array(),
        "{b}"
    );
    let (_, list) = app.get(&app.c("/users")).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    // The audit log saw the grant.
    let (_, ev) = app
        .get(&app.c(&format!(
            "/audit_events?entity_type=user&entity_id={uid}&action=user.updated"
        )))
        .await;
    assert_eq!(
        ev[0]["after"]["permissions"]["can_push_to_accounting"], true,
        "{ev}"
    );
}

async fn other_companies_are_invisible(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let code = app.code(list, "01", "General", None).await;
    let (two, _) = app
        .two_builders("boss@two.example", "Other", "other-password")
        .await;
    let token = app.login("boss@two.example", "other-password").await;
    for path in [
        app.c("/cost_code_lists"),
        app.c(&format!(
            "/cost_code_lists/{list}/cost_codes/{}",
            code["id"]
        )),
        app.c("/erp/cost_codes"),
        app.c("/audit_events"),
        app.c("/users"),
    ] {
        let (s, b) = app.call("GET", &path, &token, None).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    // Even inside its own company, another company's list id is not found.
    let (s, _) = app
        .call(
            "GET",
            &format!("/api/v1/companies/{two}/cost_code_lists/{list}/cost_codes"),
            &token,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/companies/{two}/cost_code_lists"),
            &token,
            Some(json!({"name": "Mine"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let mine = b["id"].as_i64().unwrap();
    // A parent from the other company is refused by name.
    let (s, b) = app
        .call(
            "POST",
            &format!("/api/v1/companies/{two}/cost_code_lists/{mine}/cost_codes"),
            &token,
            Some(json!({"code": "100", "description": "x", "parent_id": code["id"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&b, "parent_id").contains("names no code"),
        "{b}"
    );
}

async fn login_is_rate_limited(app: TestApp) {
    let mut last = StatusCode::OK;
    for _ in 0..11 {
        let (s, _) = app.sign_in("admin@one.example", "nope-nope-nope").await;
        last = s;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    let res = app
        .client
        .post(format!("{}/api/v1/tokens", app.base))
        .json(&json!({"email": "admin@one.example", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("retry-after").is_some());
}

/// RFC 7235: a scheme is named in any case, so `bearer <token>` is a token (it was a 401); and
/// a 401 says how to authenticate, and (RFC 6750) whether the token sent was the trouble.
async fn the_bearer_scheme_is_any_case_and_a_401_says_how(app: TestApp) {
    let me = format!("{}/api/v1/me", app.base);
    let get = async |authorization: Option<String>| {
        let mut req = app.client.get(&me);
        if let Some(value) = authorization {
            req = req.header("authorization", value);
        }
        let res = req.send().await.expect("request");
        let challenge = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status(), challenge)
    };
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (s, _) = get(Some(format!("{scheme} {}", app.token))).await;
        assert_eq!(s, StatusCode::OK, "{scheme}");
    }
    assert_eq!(
        get(None).await,
        (StatusCode::UNAUTHORIZED, Some("Bearer".to_owned()))
    );
    assert_eq!(
        get(Some("bearer not-a-token".to_owned())).await,
        (
            StatusCode::UNAUTHORIZED,
            Some(r#"Bearer error="invalid_token""#.to_owned())
        )
    );
}
