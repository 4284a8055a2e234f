//! Machine clients (issue #13, point 4): made by an admin within the admin's own permissions,
//! secret shown once and stored hashed, tokens from `POST /oauth/token` (RFC 6749
//! client_credentials) that act like personal tokens and are audited under the client's name;
//! rotating or revoking cuts access at once.
use crate::both;
use crate::helpers::{TestApp, perms, send_at};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

both!(
    a_client_acts_under_its_own_name,
    a_clients_send_is_named_for_the_client,
    a_client_never_holds_more_than_its_admin,
    rotating_and_revoking_cut_access,
    the_token_endpoint_answers_as_rfc_6749_says,
    wrong_secrets_are_throttled,
    expired_tokens_stop_working,
    an_admin_keeps_the_rights_of_a_client_whose_secret_they_hold,
);

/// Whoever was shown a client's secret (creating or rotating it) can act as the client, so
/// their rights may not be lowered below the client's until it is rotated by someone else or
/// revoked. Before, a demoted admin's Push to accounting lived on in the client they made.
async fn an_admin_keeps_the_rights_of_a_client_whose_secret_they_hold(app: TestApp) {
    let alice = app
        .user("alice@one.example", perms("admin", "admin", true))
        .await;
    let (s, b) = app
        .call(
            "POST",
            &app.c("/api_clients"),
            &alice,
            Some(json!({"name": "Alice's sync", "permissions": perms("none", "admin", true)})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let client = b["id"].as_i64().unwrap();
    let (_, me) = app.call("GET", "/api/v1/me", &alice, None).await;
    let user = app.c(&format!("/users/{}", me["id"]));
    let demote = json!({"permissions": perms("read_only", "read_only", false)});
    let (s, b) = app.patch(&user, demote.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("was shown the secret of the API client 'Alice's sync'")
            && message.contains("holds erp_integrations=admin"),
        "{message}"
    );
    let (_, still) = app.call("GET", "/api/v1/me", &alice, None).await;
    assert_eq!(still["permissions"], perms("admin", "admin", true));
    // Lowering only what the client does not hold is not held back.
    let (s, b) = app
        .patch(
            &user,
            json!({"permissions": perms("standard", "admin", true)}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Once a full admin has rotated it, the secret Alice saw is dead: she may be demoted.
    let rotate = app.c(&format!("/api_clients/{client}/rotate"));
    let (s, b) = app.post(&rotate, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app.patch(&user, demote).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A rotation Alice asked for before her demotion, written after it: the write reads her
    // rights again and refuses (a request checked under her old rights).
    let alice_id = me["id"].as_i64().unwrap();
    let late = app
        .app_state
        .db
        .rotate_client(app.company, alice_id, client, "late-secret-hash")
        .await;
    assert!(
        matches!(&late, Err(costbridge_storage::StoreError::Conflict(m)) if m.contains("no longer holds")),
        "{:?}",
        late.map(|c| c.name)
    );
}

/// Creates a client as the first admin: `(id, client_id, client_secret)`.
pub async fn make_client(app: &TestApp, name: &str, permissions: Value) -> (i64, String, String) {
    let b = app
        .created(
            &app.c("/api_clients"),
            json!({"name": name, "permissions": permissions}),
        )
        .await;
    let text = |k: &str| b[k].as_str().expect(k).to_owned();
    (
        b["id"].as_i64().expect("id"),
        text("client_id"),
        text("client_secret"),
    )
}

/// `POST /oauth/token` with this form, and HTTP Basic when `basic` is given.
pub async fn token_call(
    app: &TestApp, basic: Option<(&str, &str)>, form: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut req = app
        .client
        .post(format!("{}/oauth/token", app.base))
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.expect("request");
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

/// A token for the client, by HTTP Basic.
pub async fn client_token(app: &TestApp, id: &str, secret: &str) -> String {
    let (s, h, b) = token_call(
        app,
        Some((id, secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(b["token_type"], "Bearer");
    b["access_token"].as_str().expect("token").to_owned()
}

const CODES_ADMIN: &str =
    r#"{"admin_tool": "admin", "erp_integrations": "none", "can_push_to_accounting": false}"#;

/// The stored row of an API client (it must exist).
async fn client_row(app: &TestApp, client_id: &str) -> costbridge_storage::clients::ClientSecret {
    app.app_state
        .db
        .client_secret(client_id)
        .await
        .unwrap()
        .expect("client row")
}

fn codes_admin() -> Value {
    serde_json::from_str(CODES_ADMIN).unwrap()
}

async fn a_client_acts_under_its_own_name(app: TestApp) {
    let (id, client_id, secret) = make_client(&app, "ERP sync", codes_admin()).await;

    // The secret is stored as its SHA-256 only, and never shown again.
    let stored = client_row(&app, &client_id).await;
    assert_eq!(
        stored.secret_hash,
        hex::encode(Sha256::digest(secret.as_bytes()))
    );
    let (s, list) = app.get(&app.c("/api_clients")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["name"], "ERP sync");
    assert!(list[0].get("client_secret").is_none(), "{list}");
    assert!(!list.to_string().contains(&secret));

    // HTTP Basic and form fields both authenticate the client.
    let token = client_token(&app, &client_id, &secret).await;
    let (s, _, b) = token_call(
        &app,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["expires_in"], 15 * 60);

    // The token works like a personal token, with the client's permissions.
    let (s, list) = app
        .call(
            "POST",
            &app.c("/cost_code_lists"),
            &token,
            Some(json!({"name": "Budget codes"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{list}");
    let (s, b) = app
        .call("GET", &app.c("/erp/cost_codes"), &token, None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");

    // The audit log names it as a client, apart from people.
    let (_, events) = app
        .get(&app.c("/audit_events?entity_type=cost_code_list"))
        .await;
    let actor = &events[0]["actor"];
    assert_eq!(actor["kind"], "api_client", "{events}");
    assert_eq!(actor["name"], "ERP sync");
    assert_eq!(actor["email"], Value::Null);
    let (_, made) = app
        .get(&app.c("/audit_events?entity_type=api_client"))
        .await;
    assert_eq!(made[0]["action"], "api_client.created");
    assert_eq!(made[0]["actor"]["kind"], "user");
    assert_eq!(made[0]["actor"]["email"], "admin@one.example");
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let page = app.page(&cookie, "/settings/audit").await;
    assert!(
        page.contains("API client \u{201c}ERP sync\u{201d}"),
        "{page}"
    );

    // A client is no user: not listed, not changeable as one, cannot sign in.
    let (_, users) = app.get(&app.c("/users")).await;
    assert_eq!(users.as_array().map(Vec::len), Some(1), "{users}");
    let (_, me) = app.call("GET", "/api/v1/me", &token, None).await;
    let (s, _) = app
        .patch(
            &app.c(&format!("/users/{}", me["id"])),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.sign_in(me["email"].as_str().unwrap(), &secret).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// What a client sends shows in the queue and the submissions under the name its admin gave
/// it, never as the internal address of the row it acts through.
async fn a_clients_send_is_named_for_the_client(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    let (_, client_id, secret) = make_client(&app, "Estimating sync", codes_admin()).await;
    let token = client_token(&app, &client_id, &secret).await;
    let list_path = app.c(&format!("/cost_code_lists/{list}"));
    let (s, b) = app
        .call(
            "POST",
            &format!("{list_path}/cost_codes"),
            &token,
            Some(json!({"code": "01", "description": "General"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    send_at(&app.client, &app.base, &token, &list_path).await;

    let item = &app.items("ready_to_export").await[0];
    assert_eq!(item["sent_by"]["kind"], "api_client", "{item}");
    assert_eq!(item["sent_by"]["name"], "Estimating sync");
    let (_, subs) = app.get(&app.c("/submissions")).await;
    assert_eq!(subs[0]["sent_by"]["kind"], "api_client", "{subs}");
    assert_eq!(subs[0]["sent_by"]["name"], "Estimating sync");

    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let page = app.page(&cookie, "/erp?filter=ready_to_export").await;
    assert!(
        page.contains("API client \u{201c}Estimating sync\u{201d}"),
        "{page}"
    );
    assert!(!page.contains(".invalid"), "{page}");

    // The approver who decides is a person, named by email.
    app.accept_all().await;
    let done = &app.items("synced").await[0];
    assert_eq!(done["id"], item["id"]);
    assert_eq!(done["decided_by"]["kind"], "user", "{done}");
    assert_eq!(done["decided_by"]["email"], "admin@one.example");
}

async fn a_client_never_holds_more_than_its_admin(app: TestApp) {
    let limited = app
        .user("limited@one.example", perms("admin", "standard", false))
        .await;
    let create = |perms: Value| {
        let body = json!({"name": "Sync", "permissions": perms});
        let (app, limited) = (&app, &limited);
        async move {
            app.call("POST", &app.c("/api_clients"), limited, Some(body))
                .await
        }
    };
    let (s, b) = create(perms("admin", "admin", false)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["details"]["required"], "erp_integrations=admin");
    let (s, b) = create(perms("none", "standard", true)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = create(perms("admin", "standard", false)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // Nor takes the secret of a client that holds more: a new secret would be its rights.
    let (pusher, pusher_id, _) = make_client(&app, "Pusher", perms("none", "admin", true)).await;
    let rotate = app.c(&format!("/api_clients/{pusher}/rotate"));
    let (s, b) = app.call("POST", &rotate, &limited, Some(json!({}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["details"]["required"], "erp_integrations=admin");
    assert!(!b.to_string().contains("cbs_"), "{b}");
    let (s, b) = app.call("POST", &rotate, &app.token, Some(json!({}))).await;
    assert_eq!(s, StatusCode::OK, "an admin holding its rights may: {b}");
    assert_eq!(b["client_id"], pusher_id.as_str());

    // Only user managers see or make clients; a bad name is named.
    let reader = app
        .user("reader@one.example", perms("read_only", "admin", false))
        .await;
    let (s, _) = app.call("GET", &app.c("/api_clients"), &reader, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = app
        .post(
            &app.c("/api_clients"),
            json!({"name": " ", "permissions": codes_admin()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["details"]["fields"]["name"].is_array(), "{b}");
    // Another company's clients are not found.
    let (s, _) = app.get(&app.c_of(app.company + 1, "/api_clients")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn rotating_and_revoking_cut_access(app: TestApp) {
    let (id, client_id, old_secret) = make_client(&app, "ERP sync", codes_admin()).await;
    let old_token = client_token(&app, &client_id, &old_secret).await;
    let (s, rotated) = app
        .post(&app.c(&format!("/api_clients/{id}/rotate")), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(secret, old_secret);
    assert_eq!(rotated["client_id"], client_id.as_str());

    let (s, _) = app.call("GET", "/api/v1/me", &old_token, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the old secret's tokens end");
    let (s, h, b) = token_call(
        &app,
        Some((&client_id, &old_secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    assert_eq!(b["error"], "invalid_client");
    assert!(h.contains_key("www-authenticate"));
    let token = client_token(&app, &client_id, &secret).await;
    let (s, _) = app.call("GET", "/api/v1/me", &token, None).await;
    assert_eq!(s, StatusCode::OK);

    let (s, revoked) = app.delete(&app.c(&format!("/api_clients/{id}"))).await;
    assert_eq!(s, StatusCode::OK, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (s, _) = app.call("GET", "/api/v1/me", &token, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _, b) = token_call(
        &app,
        Some((&client_id, &secret)),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (s, b) = app
        .post(&app.c(&format!("/api_clients/{id}/rotate")), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let actions = app.audit_actions("entity_type=api_client").await;
    assert_eq!(
        actions,
        [
            "api_client.revoked",
            "api_client.rotated",
            "api_client.created"
        ]
    );
}

async fn the_token_endpoint_answers_as_rfc_6749_says(app: TestApp) {
    let (_, client_id, secret) = make_client(&app, "ERP sync", codes_admin()).await;
    let grant = ("grant_type", "client_credentials");
    // (HTTP Basic, form, status, RFC 6749 error)
    type Case<'a> = (
        Option<(&'a str, &'a str)>,
        Vec<(&'a str, &'a str)>,
        StatusCode,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            Some((&client_id, &secret)),
            vec![],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            Some((&client_id, &secret)),
            vec![("grant_type", "password")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            Some((&client_id, &secret)),
            vec![grant, ("scope", "codes:write")],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            Some((&client_id, &secret)),
            vec![grant, ("client_id", &client_id), ("client_secret", &secret)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            None,
            vec![grant, ("client_id", &client_id)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            None,
            vec![grant],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Some(("cbc_unknown", &secret)),
            vec![grant],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            Some((&client_id, &secret)),
            vec![grant, grant],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (basic, form, status, error) in cases {
        let (s, h, b) = token_call(&app, basic, &form).await;
        assert_eq!(
            (s, b["error"].as_str()),
            (status, Some(error)),
            "{form:?}: {b}"
        );
        assert!(b["error_description"].is_string(), "{b}");
        assert_eq!(h["cache-control"], "no-store");
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(h["www-authenticate"], "Basic realm=\"costbridge\"");
        }
    }
    // JSON is not what RFC 6749 sends.
    let res = app
        .client
        .post(format!("{}/oauth/token", app.base))
        .basic_auth(&client_id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

async fn wrong_secrets_are_throttled(app: TestApp) {
    let (_, client_id, secret) = make_client(&app, "ERP sync", codes_admin()).await;
    let grant = [("grant_type", "client_credentials")];
    for _ in 0..5 {
        let (s, _, _) = token_call(&app, Some((&client_id, "cbs_guess")), &grant).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // Locked: even the right secret waits, and says for how long.
    let (s, h, b) = token_call(&app, Some((&client_id, &secret)), &grant).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert_eq!(b["error"], "temporarily_unavailable");
    assert!(h.contains_key("retry-after"));
}

async fn expired_tokens_stop_working(app: TestApp) {
    let (_, client_id, secret) = make_client(&app, "ERP sync", codes_admin()).await;
    let user = client_row(&app, &client_id).await.user_id;
    let token = "cb_expired-token-of-the-test";
    let past = costbridge_storage::now() - time::Duration::seconds(1);
    let hash = costbridge_server::password::hash_token;
    let stored = app
        .app_state
        .db
        .insert_client_token(user, &hash(token), past, &hash(&secret))
        .await
        .unwrap();
    assert!(stored);
    let (s, _) = app.call("GET", "/api/v1/me", token, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
