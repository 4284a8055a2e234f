//! Account takeover and stale credentials (issue #9, points 1 and 2): changing another user's
//! password or permissions needs every permission they hold, an admin hands out one-time reset
//! links instead of typing passwords, one's own password needs the current one, and a new
//! password ends every other session and API token of the account.
use crate::both;
use crate::helpers::{TestApp, call_at, perms};
use crate::session::{no_redirects, sign_in_as};
use costbridge_server::config::MailSettings;
use costbridge_server::mail::deliver_pending;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

both!(
    another_users_credentials_need_their_permissions,
    own_password_needs_the_current_one,
    a_reset_link_without_mail_is_shown_once_and_works_once,
    a_reset_link_is_emailed_when_mail_is_on,
    the_reset_page_sets_the_password,
    a_new_password_ends_every_other_session_and_token,
    a_user_without_rights_reads_only_themself,
    a_refused_user_change_keeps_the_form_and_says_the_rule,
    a_new_user_with_three_mistakes_hears_of_all_three,
    a_reset_link_holds_only_while_its_rule_does,
    a_password_someone_else_chose_holds_back_a_grant_they_lack,
    a_sign_in_that_raced_a_new_password_or_secret_keeps_nothing,
    a_demoted_admin_keeps_no_password_they_chose,
);

const PW: &str = "a-long-password";

async fn user_id(app: &TestApp, token: &str) -> i64 {
    let (_, me) = app.call("GET", "/api/v1/me", token, None).await;
    me["id"].as_i64().expect("id")
}

async fn can_sign_in(app: &TestApp, email: &str, password: &str) -> bool {
    app.sign_in(email, password).await.0 == StatusCode::CREATED
}

async fn me_with_cookie(app: &TestApp, cookie: &str) -> StatusCode {
    no_redirects()
        .get(format!("{}/api/v1/me", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("me")
        .status()
}

fn required(b: &Value) -> &str {
    b["error"]["details"]["required"].as_str().unwrap_or("")
}

async fn another_users_credentials_need_their_permissions(app: TestApp) {
    // An admin without Push to accounting and below ERP admin: the attacker of the issue.
    let plain = app
        .user("plain@one.example", perms("admin", "standard", false))
        .await;
    let approver_token = app
        .user("approver@one.example", perms("none", "standard", true))
        .await;
    let approver = user_id(&app, &approver_token).await;
    let founder = user_id(&app, &app.token).await;
    let patch = |uid: i64, body: Value| {
        let plain = plain.clone();
        let path = app.c(&format!("/users/{uid}"));
        let app = &app;
        async move { app.call("PATCH", &path, &plain, Some(body)).await }
    };
    let (s, b) = patch(approver, json!({"password": "taken-over-password"})).await;
    assert_eq!(
        (s, required(&b)),
        (StatusCode::FORBIDDEN, "can_push_to_accounting"),
        "{b}"
    );
    let (s, b) = patch(founder, json!({"password": "taken-over-password"})).await;
    assert_eq!(
        (s, required(&b)),
        (StatusCode::FORBIDDEN, "erp_integrations=admin"),
        "{b}"
    );
    // Demoting the approver is a change of their permissions too.
    let (s, b) = patch(
        approver,
        json!({"permissions": {"admin_tool": "none", "erp_integrations": "none", "can_push_to_accounting": true}}),
    )
    .await;
    assert_eq!(
        (s, required(&b)),
        (StatusCode::FORBIDDEN, "can_push_to_accounting")
    );
    let (s, b) = app
        .call(
            "POST",
            &app.c(&format!("/users/{approver}/password_reset")),
            &plain,
            None,
        )
        .await;
    assert_eq!(
        (s, required(&b)),
        (StatusCode::FORBIDDEN, "can_push_to_accounting")
    );
    // Sending the approver's permissions unchanged with a new name (as the page's form does)
    // is not a change of permissions.
    let (s, b) = patch(
        approver,
        json!({"name": "Renamed", "permissions": {"admin_tool": "none", "erp_integrations": "standard", "can_push_to_accounting": true}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Nothing changed: the takeover password does not sign in, the old ones still do.
    assert!(!can_sign_in(&app, "approver@one.example", "taken-over-password").await);
    assert!(!can_sign_in(&app, "admin@one.example", "taken-over-password").await);
    assert!(can_sign_in(&app, "approver@one.example", PW).await);
    let (_, list) = app.get(&app.c("/users")).await;
    let a = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == approver)
        .unwrap();
    assert_eq!(a["permissions"]["erp_integrations"], "standard");
    // Nor does the plain admin hand out a level they lack: not to themselves, not to a new
    // user whose password they choose.
    let me = user_id(&app, &plain).await;
    let raised = json!({"admin_tool": "admin", "erp_integrations": "admin", "can_push_to_accounting": false});
    let (s, b) = patch(me, json!({ "permissions": raised })).await;
    assert_eq!(
        (s, required(&b)),
        (StatusCode::FORBIDDEN, "erp_integrations=admin"),
        "{b}"
    );
    let (s, b) = app
        .call(
            "POST",
            &app.c("/users"),
            &plain,
            Some(
                json!({"name": "Puppet", "email": "puppet@one.example", "password": PW,
                "permissions": raised}),
            ),
        )
        .await;
    assert_eq!(
        (s, required(&b)),
        (StatusCode::FORBIDDEN, "erp_integrations=admin"),
        "{b}"
    );
    assert!(!can_sign_in(&app, "puppet@one.example", PW).await);
    // The plain admin still manages whom they cover, and the founder (who holds everything)
    // may still set a password through `PATCH …/users/{uid}`.
    let staff_token = app
        .user("staff@one.example", perms("standard", "read_only", false))
        .await;
    let staff = user_id(&app, &staff_token).await;
    let (s, b) = patch(staff, json!({"password": "set-by-plain-admin"})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(can_sign_in(&app, "staff@one.example", "set-by-plain-admin").await);
    app.patched(
        &app.c(&format!("/users/{approver}")),
        json!({"password": "set-by-the-founder"}),
    )
    .await;
    assert!(can_sign_in(&app, "approver@one.example", "set-by-the-founder").await);
}

async fn own_password_needs_the_current_one(app: TestApp) {
    let token = app
        .user("me@one.example", perms("read_only", "none", false))
        .await;
    let me = app.c(&format!("/users/{}", user_id(&app, &token).await));
    let (s, b) = app
        .call(
            "PATCH",
            &me,
            &token,
            Some(json!({"password": "my-new-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["details"]["fields"]["current_password"].is_array(),
        "{b}"
    );
    let (s, b) = change_password(&app, &me, &token, "not-my-password", "my-new-password").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(!can_sign_in(&app, "me@one.example", "my-new-password").await);
    let (s, b) = change_password(&app, &me, &token, PW, "my-new-password").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(can_sign_in(&app, "me@one.example", "my-new-password").await);
    assert!(!can_sign_in(&app, "me@one.example", PW).await);
    // The founder changing their own password gives the current one as well.
    let founder = app.c(&format!("/users/{}", user_id(&app, &app.token).await));
    let (s, _) = app
        .patch(&founder, json!({"password": "founder-new-password"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Guessing the current password with the token is throttled like signing in: past a few
    // wrong guesses even the right one waits, and each wrong one is in the audit log.
    let hash = async || {
        app.app_state
            .db
            .users_for_login("me@one.example")
            .await
            .unwrap()[0]
            .1
            .clone()
    };
    let before = hash().await;
    let mut said = Vec::new();
    for _ in 0..8 {
        let (s, _) = change_password(&app, &me, &token, "a-guess-at-it", "taken-over-pass").await;
        said.push(s);
    }
    assert_eq!(
        (said.first(), said.last()),
        (
            Some(&StatusCode::UNPROCESSABLE_ENTITY),
            Some(&StatusCode::TOO_MANY_REQUESTS)
        ),
        "{said:?}"
    );
    let (s, b) = change_password(&app, &me, &token, "my-new-password", "taken-over-pass").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert_eq!(hash().await, before, "nothing changed");
    let uid = user_id(&app, &token).await;
    let actions = app
        .audit_actions(&format!("entity_type=user&entity_id={uid}"))
        .await;
    assert!(
        actions.iter().any(|a| a == "user.current_password_refused"),
        "{actions:?}"
    );
}

async fn issue_reset(app: &TestApp, uid: i64) -> Value {
    app.created(&app.c(&format!("/users/{uid}/password_reset")), json!(null))
        .await
}

fn token_of(link: &str) -> String {
    link.split_once("token=")
        .expect("token in link")
        .1
        .to_owned()
}

async fn reset(app: &TestApp, token: &str, password: &str) -> (StatusCode, Value) {
    app.call(
        "POST",
        "/api/v1/password_reset",
        "",
        Some(json!({"token": token, "password": password})),
    )
    .await
}

async fn a_reset_link_without_mail_is_shown_once_and_works_once(app: TestApp) {
    let old_token = app
        .user("forgot@one.example", perms("standard", "none", false))
        .await;
    let uid = user_id(&app, &old_token).await;
    let b = issue_reset(&app, uid).await;
    assert_eq!(b["emailed"], false, "{b}");
    let link = b["reset_url"]
        .as_str()
        .expect("link shown when mail is off");
    assert!(
        link.starts_with("http://127.0.0.1:8080/reset-password?token=cb_"),
        "{link}"
    );
    assert!(b["expires_at"].is_string());
    // A second link replaces the first.
    let first = token_of(link);
    let second = token_of(issue_reset(&app, uid).await["reset_url"].as_str().unwrap());
    let (s, b) = reset(&app, &first, "never-this-password").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(b["error"]["details"]["fields"]["token"].is_array(), "{b}");
    // The link is judged before the password (whose hash costs a core): a made-up token with
    // a password that would pass is refused for its token alone, as is one with a short one.
    for password in ["a-fine-new-password", "short"] {
        let (s, b) = reset(&app, "cb_made_up", password).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            b["error"]["details"]["fields"],
            json!({"token": ["is not a valid reset link: it is unknown, used or expired"]}),
            "{b}"
        );
    }
    let (s, b) = reset(&app, &second, "short").await;
    assert!(
        b["error"]["details"]["fields"]["password"].is_array(),
        "{s} {b}"
    );
    let (s, b) = reset(&app, &second, "chosen-by-the-user").await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert!(can_sign_in(&app, "forgot@one.example", "chosen-by-the-user").await);
    assert!(!can_sign_in(&app, "forgot@one.example", PW).await);
    // Once only.
    let (s, _) = reset(&app, &second, "another-password-1").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // The token the user had before the reset no longer works.
    let (s, _) = app.call("GET", "/api/v1/me", &old_token, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // An expired link is refused.
    let third = token_of(issue_reset(&app, uid).await["reset_url"].as_str().unwrap());
    expire_resets(&app).await;
    let (s, _) = reset(&app, &third, "too-late-password").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // The audit log tells who issued what and what happened.
    let actions = app
        .audit_actions(&format!("entity_type=user&entity_id={uid}"))
        .await;
    for a in [
        "user.password_reset_issued",
        "user.password_reset",
        "user.credentials_revoked",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

async fn expire_resets(app: &TestApp) {
    let past = costbridge_storage::now() - time::Duration::minutes(1);
    match &app.app_state.db {
        costbridge_storage::Db::Sqlite(p) => {
            sqlx::query("UPDATE password_resets SET expires_at = $1")
                .bind(past)
                .execute(p)
                .await
                .unwrap();
        }
        costbridge_storage::Db::Postgres(p) => {
            sqlx::query("UPDATE password_resets SET expires_at = $1")
                .bind(past)
                .execute(p)
                .await
                .unwrap();
        }
    }
}

async fn a_reset_link_is_emailed_when_mail_is_on(app: TestApp) {
    let (smtp, mut mail) = crate::smtp::mailroom("UTC").await;
    mail.timeout_seconds = MailSettings::default().timeout_seconds;
    let (base, stop) = app.second_instance(|s| s.mail = mail.clone()).await;
    let token = app
        .user("mailed@one.example", perms("none", "read_only", false))
        .await;
    let uid = user_id(&app, &token).await;
    let reset_path = app.c(&format!("/users/{uid}/password_reset"));
    let (s, b) = call_at(&app.client, &base, "POST", &reset_path, &app.token, None).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (b["emailed"].as_bool(), &b["reset_url"]),
        (Some(true), &Value::Null),
        "{b}"
    );
    let report = deliver_pending(&app.app_state.db, &mail, costbridge_storage::now())
        .await
        .unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let mails = smtp.take();
    assert_eq!(mails[0].to(), "mailed@one.example");
    let body = &mails[0].text;
    let start = body
        .find("https://costbridge.example/reset-password?token=")
        .expect("link in the email");
    let token: String = body[start..]
        .split_once("token=")
        .unwrap()
        .1
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    // Sent, the email keeps no copy of the link a reader of the database could use.
    let kept = crate::queue::texts(
        &app,
        "SELECT payload || COALESCE(text_body, '') || COALESCE(html_body, '') FROM outbox \
         WHERE kind = 'password_reset'",
    )
    .await;
    assert!(kept.len() == 1 && !kept[0].contains(&token), "{kept:?}");
    let (s, b) = reset(&app, &token, "from-the-email-link").await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    assert!(can_sign_in(&app, "mailed@one.example", "from-the-email-link").await);
    let _ = stop.send(());
}

async fn the_reset_page_sets_the_password(app: TestApp) {
    let token = app
        .user("page@one.example", perms("read_only", "none", false))
        .await;
    let uid = user_id(&app, &token).await;
    // The admin's button on the users page shows the link when mail is off.
    let cookie = sign_in_as(&app, "admin@one.example", "first-admin-password", None).await;
    let html = no_redirects()
        .post(format!("{}/settings/users/{uid}/reset", app.base))
        .header(COOKIE, &cookie)
        .header("origin", &app.base)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html.find("/reset-password?token=").expect("link shown") + 22;
    let reset_token: String = html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let page = no_redirects()
        .get(format!("{}/reset-password?token={reset_token}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("page@one.example"));
    let set = async |pw: &str| {
        let form = [("token", reset_token.as_str()), ("password", pw)];
        app.post_form("/reset-password", &[], &form).await
    };
    let short = set("short").await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        short
            .text()
            .await
            .unwrap()
            .contains("at least 10 characters")
    );
    let done = set("set-on-the-page").await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("reset-done"));
    let again = set("set-on-the-page-2").await;
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.text().await.unwrap().contains("reset-invalid"));
    sign_in_as(&app, "page@one.example", "set-on-the-page", None).await;
}

/// The user at `me` changes their own password from `current` to `new`.
async fn change_password(
    app: &TestApp, me: &str, token: &str, current: &str, new: &str,
) -> (StatusCode, Value) {
    let body = json!({"password": new, "current_password": current});
    app.call("PATCH", me, token, Some(body)).await
}

async fn a_new_password_ends_every_other_session_and_token(app: TestApp) {
    let current = app
        .user("moving@one.example", perms("read_only", "none", false))
        .await;
    let other_token = app.login("moving@one.example", PW).await;
    let cookie = sign_in_as(&app, "moving@one.example", PW, None).await;
    assert_eq!(me_with_cookie(&app, &cookie).await, StatusCode::OK);
    let uid = user_id(&app, &current).await;
    let me = app.c(&format!("/users/{uid}"));
    let (s, b) = change_password(&app, &me, &current, PW, "moved-password").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // The caller's own token stays; every other token and session ends.
    let (s, _) = app.call("GET", "/api/v1/me", &current, None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.call("GET", "/api/v1/me", &other_token, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        me_with_cookie(&app, &cookie).await,
        StatusCode::UNAUTHORIZED
    );
    // A password set by an admin ends all of them, the user's current one included.
    let (s, _) = app
        .patch(&me, json!({"password": "admin-set-password"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app.call("GET", "/api/v1/me", &current, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, ev) = app
        .get(&app.c(&format!(
            "/audit_events?entity_type=user&entity_id={uid}&action=user.credentials_revoked"
        )))
        .await;
    let ev = ev.as_array().expect("events");
    assert_eq!(ev.len(), 2, "{ev:?}");
    // Newest first: the admin's change revoked the one token left, the own change kept it.
    assert_eq!(ev[0]["after"]["api_tokens"], 1, "{ev:?}");
    assert_eq!(ev[0]["after"]["kept_current"], false);
    assert_eq!(
        (
            ev[1]["after"]["api_tokens"].as_i64(),
            ev[1]["after"]["sessions"].as_i64()
        ),
        (Some(1), Some(1)),
        "{ev:?}"
    );
    assert_eq!(ev[1]["after"]["reason"], "password_changed");
}

/// The users page needs admin_tool=read_only; one user's row (`/settings/users/{id}`, what the
/// page's Cancel fetches) needed nothing, so a user with no rights read everyone's email and
/// permissions one id at a time.
async fn a_user_without_rights_reads_only_themself(app: TestApp) {
    let nobody = app
        .user("nobody@one.example", perms("none", "none", false))
        .await;
    let (_, cookie) = app.session("nobody@one.example", PW).await;
    let row = |uid: i64| {
        let (app, cookie) = (&app, &cookie);
        async move {
            let res = app
                .page_with(&format!("/settings/users/{uid}"), &[(COOKIE, cookie)])
                .await;
            (res.status(), res.text().await.unwrap())
        }
    };
    let s = app
        .page_with("/settings/users", &[(COOKIE, &cookie)])
        .await
        .status();
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, html) = row(user_id(&app, &app.token).await).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{html}");
    assert!(!html.contains("admin@one.example"), "{html}");
    let (s, html) = row(user_id(&app, &nobody).await).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("nobody@one.example"), "{html}");
}

/// A refused change of a person comes back as it was sent, and says whose rule refused it:
/// the form showed the stored values again, and "You do not have permission for this".
async fn a_refused_user_change_keeps_the_form_and_says_the_rule(app: TestApp) {
    let approver_token = app
        .user("approver@one.example", perms("none", "standard", true))
        .await;
    let approver = user_id(&app, &approver_token).await;
    app.user("plain@one.example", perms("admin", "none", false))
        .await;
    let update = |who: (&'static str, &'static str), form: [(&'static str, &'static str); 4]| {
        let app = &app;
        async move {
            let (cookie, csrf) = app.page_session(who.0, who.1).await;
            let path = format!("/settings/users/{approver}");
            app.htmx_form(&cookie, &csrf, &path, &form).await
        }
    };
    let (s, html) = update(
        ("plain@one.example", PW),
        [
            ("name", "Parker P."),
            ("admin_tool", "none"),
            ("erp_integrations", "read_only"),
            ("push_current", "true"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        html.contains(
            "Costbridge refused: changing Test User needs an admin who holds every permission \
             Test User holds, and you lack ERP Integrations: standard."
        ),
        "{html}"
    );
    assert!(
        html.contains(r#"value="Parker P.""#),
        "the name as sent: {html}"
    );
    let (s, html) = update(
        ("admin@one.example", "first-admin-password"),
        [
            ("name", ""),
            ("admin_tool", "none"),
            ("erp_integrations", "standard"),
            ("push_current", "true"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("is required"), "{html}");
    assert!(
        !html.contains(r#"value="Test User""#),
        "not the stored name: {html}"
    );
}

/// Adding a user named only the first bad field: fix it, send again, hear of the next.
async fn a_new_user_with_three_mistakes_hears_of_all_three(app: TestApp) {
    let (s, b) = app
        .post(
            &app.c("/users"),
            json!({"email": "not-an-email", "name": " ", "password": "short",
                "permissions": perms("none", "none", false)}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    for field in ["email", "name", "password"] {
        crate::helpers::field_error(&b, field);
    }
    let (_, list) = app.get(&app.c("/users")).await;
    assert!(
        !list.to_string().contains("not-an-email"),
        "nothing was created: {list}"
    );
}

/// The account-change rule a reset link was issued under must still hold when it is used: a
/// plain admin's link for a user who is granted Push to accounting before it is used would
/// otherwise let that admin set the new approver's password and export as them.
async fn a_reset_link_holds_only_while_its_rule_does(app: TestApp) {
    let plain = app
        .user("plain@one.example", perms("admin", "standard", false))
        .await;
    let issue = |uid: i64| {
        let (app, plain) = (&app, plain.clone());
        async move {
            let path = app.c(&format!("/users/{uid}/password_reset"));
            let (s, b) = app.call("POST", &path, &plain, None).await;
            assert_eq!(s, StatusCode::CREATED, "{b}");
            token_of(b["reset_url"].as_str().expect("link"))
        }
    };
    let refused = |b: &Value| b["error"]["details"]["fields"]["token"][0].to_string();
    // Granted Push to accounting after the link was sent: the grant ends the link.
    let user = app
        .user(
            "soon-approver@one.example",
            perms("none", "standard", false),
        )
        .await;
    let user = user_id(&app, &user).await;
    let link = issue(user).await;
    app.patched(
        &app.c(&format!("/users/{user}")),
        json!({"permissions": {"admin_tool": "none", "erp_integrations": "standard", "can_push_to_accounting": true}}),
    )
    .await;
    let (s, b) = reset(&app, &link, "taken-over-password").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(!can_sign_in(&app, "soon-approver@one.example", "taken-over-password").await);
    assert!(can_sign_in(&app, "soon-approver@one.example", PW).await);
    // Granted behind the API's back (the link survives): the rule is checked again on use.
    let other = app
        .user("other@one.example", perms("none", "standard", false))
        .await;
    let other = user_id(&app, &other).await;
    let link = issue(other).await;
    crate::queue::execute(
        &app,
        &format!("UPDATE users SET can_push_to_accounting = TRUE WHERE id = {other}"),
    )
    .await;
    let (s, b) = reset(&app, &link, "taken-over-password").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(refused(&b).contains("needs can_push_to_accounting"), "{b}");
    assert!(!can_sign_in(&app, "other@one.example", "taken-over-password").await);
    // The issuer no longer manages users: their links stop working.
    let staff = app
        .user("staff@one.example", perms("standard", "none", false))
        .await;
    let staff = user_id(&app, &staff).await;
    let link = issue(staff).await;
    let issuer = user_id(&app, &plain).await;
    app.patched(
        &app.c(&format!("/users/{issuer}")),
        json!({"permissions": {"admin_tool": "standard", "erp_integrations": "standard", "can_push_to_accounting": false}}),
    )
    .await;
    let (s, b) = reset(&app, &link, "taken-over-password").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(refused(&b).contains("needs admin_tool=admin"), "{b}");
    // A link whose rule still holds works as before.
    let link = token_of(
        issue_reset(&app, staff).await["reset_url"]
            .as_str()
            .unwrap(),
    );
    let (s, b) = reset(&app, &link, "chosen-by-staff-1").await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
}

/// Whoever chose a user's password can sign in as them. A plain admin (no Push to accounting)
/// who created a user knew their password; once a full admin granted that user Push to
/// accounting, the plain admin could sign in as an approver and export. The grant now waits
/// until the user has changed their own password.
async fn a_password_someone_else_chose_holds_back_a_grant_they_lack(app: TestApp) {
    let plain = app
        .user("plain@one.example", perms("admin", "standard", false))
        .await;
    let (s, b) = app
        .call(
            "POST",
            &app.c("/users"),
            &plain,
            Some(json!({"email": "new@one.example", "name": "Nia New", "password": "chosen-by-plain",
                "permissions": {"admin_tool": "none", "erp_integrations": "standard", "can_push_to_accounting": false}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let uid = b["id"].as_i64().unwrap();
    let user = app.c(&format!("/users/{uid}"));
    let approver = json!({"permissions": {"admin_tool": "none", "erp_integrations": "standard",
        "can_push_to_accounting": true}});
    let (s, b) = app.patch(&user, approver.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let message = b["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Nia New still signs in with a password Test User chose")
            && message.contains("can_push_to_accounting"),
        "{b}"
    );
    // Taking rights away never waits on it.
    let (s, b) = app
        .patch(
            &user,
            json!({"permissions": {"admin_tool": "none", "erp_integrations": "read_only", "can_push_to_accounting": false}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Nothing else changed; the plain admin's password still signs in, as a non-approver.
    let token = app.login("new@one.example", "chosen-by-plain").await;
    let (_, me) = app.call("GET", "/api/v1/me", &token, None).await;
    assert_eq!(me["permissions"]["can_push_to_accounting"], false, "{me}");
    // Once the user has chosen their own password, the grant goes through.
    let (s, b) = change_password(&app, &user, &token, "chosen-by-plain", "nias-own-password").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app.patch(&user, approver).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A user the founder (who holds everything) created is granted at once.
    let other = app
        .user("other@one.example", perms("none", "standard", false))
        .await;
    let other = user_id(&app, &other).await;
    app.patched(
        &app.c(&format!("/users/{other}")),
        json!({"permissions": {"admin_tool": "none", "erp_integrations": "standard", "can_push_to_accounting": true}}),
    )
    .await;
}

/// A sign-in checks the password, then stores its token or session; a password change (which
/// ends every credential) committed in between left the new one alive for good. It is now
/// stored only while the password is still the one checked; the same for a machine client's
/// token and its secret, rotated meanwhile.
async fn a_sign_in_that_raced_a_new_password_or_secret_keeps_nothing(app: TestApp) {
    let db = &app.app_state.db;
    let hash = costbridge_server::password::hash_token;
    let current = app
        .user("racer@one.example", perms("read_only", "none", false))
        .await;
    let checked = async || db.users_for_login("racer@one.example").await.unwrap()[0].clone();
    let (user, old) = checked().await;
    let me = app.c(&format!("/users/{}", user.id));
    let (s, b) = change_password(&app, &me, &current, PW, "raced-password").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let stored = db
        .insert_token(user.id, &hash("cb_raced"), Some(&old))
        .await
        .unwrap();
    let session = db
        .create_session(
            &hash("raced"),
            user.id,
            "csrf",
            time::Duration::hours(1),
            Some(&old),
        )
        .await
        .unwrap();
    assert_eq!((stored, session), (false, false));
    let (s, _) = app.call("GET", "/api/v1/me", "cb_raced", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Checked against the password the user has, both are stored.
    let (_, new) = checked().await;
    assert!(
        db.insert_token(user.id, &hash("cb_fresh"), Some(&new))
            .await
            .unwrap()
    );
    let (s, _) = app.call("GET", "/api/v1/me", "cb_fresh", None).await;
    assert_eq!(s, StatusCode::OK);
    // A machine client rotated while its secret was checked.
    let (id, client_id, secret) = crate::clients::make_client(
        &app,
        "Racer",
        json!({"admin_tool": "read_only",
            "erp_integrations": "none", "can_push_to_accounting": false}),
    )
    .await;
    let client = db.client_secret(&client_id).await.unwrap().unwrap();
    let (s, _) = app
        .post(&app.c(&format!("/api_clients/{id}/rotate")), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let expires = costbridge_storage::now() + time::Duration::minutes(5);
    let stored = db
        .insert_client_token(
            client.user_id,
            &hash("cb_raced_client"),
            expires,
            &hash(&secret),
        )
        .await
        .unwrap();
    assert!(!stored);
    let (s, _) = app.call("GET", "/api/v1/me", "cb_raced_client", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// An admin who chose someone's password (creating them with it) could sign in as them: lowered
/// below that person's rights, they kept them all that way. The demotion waits until the person
/// has changed their own password.
async fn a_demoted_admin_keeps_no_password_they_chose(app: TestApp) {
    let full = perms("admin", "admin", true);
    let second = app.user("second@one.example", full.clone()).await;
    let second_id = user_id(&app, &second).await;
    let (s, b) = app
        .call(
            "POST",
            &app.c("/users"),
            &second,
            Some(
                json!({"name": "Ann Approver", "email": "ann@one.example", "password": PW,
                "permissions": perms("none", "standard", true)}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let demote = json!({"permissions": perms("read_only", "none", false)});
    let path = app.c(&format!("/users/{second_id}"));
    let (s, e) = app.patch(&path, demote.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Ann Approver still signs in with a password"),
        "{message}"
    );
    // Once Ann chose her own, nothing holds the demotion back.
    let ann = app.login("ann@one.example", PW).await;
    let me = app.c(&format!("/users/{}", user_id(&app, &ann).await));
    let (s, b) = change_password(&app, &me, &ann, PW, "anns-own-password").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = app.patch(&path, demote).await;
    assert_eq!(s, StatusCode::OK, "{b}");
}
