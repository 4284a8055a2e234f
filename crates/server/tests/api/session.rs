//! The browser session: sign-in through the web form, the cookie on the JSON API (which takes
//! a token or the cookie, docs/api.md), its CSRF rule for unsafe methods, rotation and sign-out.
use crate::both;
use crate::helpers::{ADMIN_LOGIN, TestApp};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::json;

both!(
    cookie_works_on_the_api_with_csrf,
    sign_in_rotates_and_sign_out_ends_the_session,
    sign_in_errors_and_cross_site_posts,
    pages_need_a_session,
    signing_in_again_goes_back_to_the_page,
);

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Signs in through the form and returns the session cookie (`name=value`).
pub(crate) async fn sign_in(app: &TestApp, old: Option<&str>) -> String {
    sign_in_as(app, "admin@one.example", "first-admin-password", old).await
}

/// Signs `email` in through the form and returns the session cookie (`name=value`).
pub(crate) async fn sign_in_as(
    app: &TestApp, email: &str, password: &str, old: Option<&str>,
) -> String {
    let headers: Vec<_> = old.map(|c| (COOKIE, c)).into_iter().collect();
    let res = app
        .post_form(
            "/login",
            &headers,
            &[("email", email), ("password", password)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set = res.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    set.split(';').next().expect("name=value").to_owned()
}

/// The CSRF token a page hands to its htmx requests.
pub(crate) async fn csrf_of(app: &TestApp, cookie: &str) -> String {
    let html = app.page(cookie, "/codes").await;
    let start = html
        .find("\"X-CSRF-Token\": \"")
        .expect("token on the page")
        + 17;
    html[start..start + 67].to_owned()
}

async fn cookie_works_on_the_api_with_csrf(app: TestApp) {
    let cookie = sign_in(&app, None).await;
    let c = no_redirects();
    let me = app.page_with("/api/v1/me", &[(COOKIE, &cookie)]).await;
    assert_eq!(me.status(), StatusCode::OK);
    let lists = app.c("/cost_code_lists");
    let post = |extra: Option<(&'static str, String)>, name: &str| {
        let mut r = c
            .post(format!("{}{lists}", app.base))
            .header(COOKIE, &cookie)
            .json(&json!({"name": name}));
        if let Some((h, v)) = extra {
            r = r.header(h, v);
        }
        r.send()
    };
    // A cookie alone does not write: a forged cross-site request carries it too.
    let bare = post(None, "Bare").await.unwrap();
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = bare.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf_failed");
    let wrong = post(Some(("x-csrf-token", "cb_wrong".into())), "Wrong")
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let evil = post(Some(("origin", "http://evil.example".into())), "Evil")
        .await
        .unwrap();
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    let csrf = csrf_of(&app, &cookie).await;
    let ok = post(Some(("x-csrf-token", csrf)), "With token")
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let same = post(Some(("origin", app.base.clone())), "Same origin")
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::CREATED);
    // Bearer calls are unaffected by the CSRF rule.
    let (s, _) = app.post(&lists, json!({"name": "By token"})).await;
    assert_eq!(s, StatusCode::CREATED);
    // A bad bearer token is 401 even beside a good cookie.
    let mixed = c
        .get(format!("{}/api/v1/me", app.base))
        .header(COOKIE, &cookie)
        .bearer_auth("cb_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(mixed.status(), StatusCode::UNAUTHORIZED);
}

async fn sign_in_rotates_and_sign_out_ends_the_session(app: TestApp) {
    let first = sign_in(&app, None).await;
    let second = sign_in(&app, Some(&first)).await;
    assert_ne!(first, second);
    let me = async |cookie: String| {
        let res = app.page_with("/api/v1/me", &[(COOKIE, &cookie)]).await;
        res.status()
    };
    assert_eq!(
        me(first.clone()).await,
        StatusCode::UNAUTHORIZED,
        "the old id is gone"
    );
    assert_eq!(me(second.clone()).await, StatusCode::OK);
    // DELETE /tokens/current with the cookie ends the session.
    let csrf = csrf_of(&app, &second).await;
    let res = no_redirects()
        .delete(format!("{}/api/v1/tokens/current", app.base))
        .header(COOKIE, &second)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(second.clone()).await, StatusCode::UNAUTHORIZED);
    // And the form's sign-out clears the cookie.
    let third = sign_in(&app, None).await;
    let out = no_redirects()
        .post(format!("{}/logout", app.base))
        .header(COOKIE, &third)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(me(third).await, StatusCode::UNAUTHORIZED);
}

/// The sign-in form posted as the first admin with `password`, and `next` when given.
async fn post_sign_in(app: &TestApp, password: &str, next: Option<&str>) -> reqwest::Response {
    let mut form = vec![("email", "admin@one.example"), ("password", password)];
    form.extend(next.map(|n| ("next", n)));
    app.post_form("/login", &[], &form).await
}

async fn sign_in_errors_and_cross_site_posts(app: TestApp) {
    let wrong = post_sign_in(&app, "nope-nope-nope", None).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("The email or password is wrong.")
    );
    let forged = app
        .post_form("/login", &[(ORIGIN, "http://evil.example")], &ADMIN_LOGIN)
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // The company exists, so setup is closed.
    let setup = app
        .post_form(
            "/setup",
            &[],
            &[
                ("company", "Second"),
                ("name", "X"),
                ("email", "x@two.example"),
                ("password", "a-long-password"),
            ],
        )
        .await;
    assert_eq!(setup.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.app_state.db.companies_count().await.unwrap(), 1);
}

async fn pages_need_a_session(app: TestApp) {
    let c = no_redirects();
    let res = c.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/login");
    // Each page asks to come back to it after the sign-in.
    for path in ["/codes", "/erp", "/settings/users", "/settings/audit"] {
        let res = c.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        let back = format!("/login?next=%2F{}", &path[1..].replace('/', "%2F"));
        assert_eq!(res.headers()[LOCATION], back.as_str(), "{path}");
    }
    // An htmx request is told to navigate instead of getting a page to swap in.
    let res = c
        .get(format!("{}/codes/1/nodes", app.base))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["hx-redirect"], "/login");
    // Assets are served by the binary with long cache lifetimes.
    let page = app.page_with("/login", &[]).await.text().await.unwrap();
    let css = page
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/static/app."))
        .expect("css link");
    let css = format!("/static/app.{}", &css[..css.find('"').unwrap()]);
    let res = c.get(format!("{}{css}", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("immutable")
    );
    let htmx = c
        .get(format!("{}/static/htmx-2.0.11.min.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(htmx.status(), StatusCode::OK);
}

/// A session that ended sends the person to sign in and then back to the page they were on,
/// not to the start page. Only a path on this site is followed: `next` comes from the request,
/// and anything else would make the sign-in page an open redirect.
async fn signing_in_again_goes_back_to_the_page(app: TestApp) {
    let c = no_redirects();
    let location = |res: &reqwest::Response, header: &str| {
        res.headers()
            .get(header)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    // A page load: the page itself, query and all.
    let res = c
        .get(format!("{}/codes?list=1&q=01", app.base))
        .header(COOKIE, "costbridge_session=ended")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res, "location"),
        "/login?next=%2Fcodes%3Flist%3D1%26q%3D01"
    );
    // An action posted with a session that ended, with these headers added.
    let toggle = |headers: Vec<(&'static str, String)>| {
        let mut req = c
            .post(format!("{}/codes/1/2/active", app.base))
            .header("sec-fetch-site", "same-origin")
            .form(&[("active", "false")]);
        for (name, value) in headers {
            req = req.header(name, value);
        }
        req.send()
    };
    // An htmx action (a POST that answers nothing to a GET): the page it was sent from.
    let res = toggle(vec![
        ("hx-request", "true".into()),
        (
            "hx-current-url",
            format!("{}/erp?filter=failed#queue", app.base),
        ),
    ])
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        location(&res, "hx-redirect"),
        "/login?next=%2Ferp%3Ffilter%3Dfailed"
    );
    // A form posted without htmx has no page to go back to.
    let res = toggle(Vec::new()).await.unwrap();
    assert_eq!(location(&res, "location"), "/login");

    // The sign-in page keeps `next` in its form, also after a wrong password.
    let page = app
        .page_with("/login?next=%2Ferp%3Ffilter%3Dfailed", &[])
        .await
        .text()
        .await
        .unwrap();
    let field = r#"<input type="hidden" name="next" value="/erp?filter=failed">"#;
    assert!(page.contains(field), "{page}");
    let wrong = post_sign_in(&app, "nope-nope-nope", Some("/erp?filter=failed")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let page = wrong.text().await.unwrap();
    assert!(
        page.contains("The email or password is wrong.") && page.contains(field),
        "{page}"
    );
    let signed_in = |next: &'static str| {
        let app = &app;
        async move {
            let res = post_sign_in(app, "first-admin-password", Some(next)).await;
            assert_eq!(res.status(), StatusCode::SEE_OTHER, "{next}");
            location(&res, "location")
        }
    };
    assert_eq!(signed_in("/erp?filter=failed").await, "/erp?filter=failed");
    // Anywhere else is the start page.
    for elsewhere in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/codes\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
        "/login",
    ] {
        assert_eq!(signed_in(elsewhere).await, "/", "{elsewhere:?}");
    }
    let page = app
        .page_with("/login?next=%2F%2Fevil.example", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains(r#"name="next""#), "{page}");
}
