//! The web pages at size: a 10,000-code list opens a tier at a time.
use crate::both;
use crate::helpers::{Backend, TestApp};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, REFERER};
use std::time::{Duration, Instant};

both!(
    another_companys_tree_is_not_found,
    a_link_cannot_write_the_pages_notice,
    a_refused_code_form_keeps_its_place,
    the_code_form_drops_the_spaces_a_phone_adds,
    the_csv_downloads_send_an_ended_session_to_sign_in,
    an_erp_that_does_not_answer_is_said_above_the_queue,
    a_connection_error_is_shown_on_the_chosen_connector_only,
    a_refused_gl_account_is_named_by_its_line,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_codes_open_a_tier_at_a_time() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let list = app.new_list("Big").await;
    let mut csv = String::from("full_code,description,active\n");
    for top in 1..=150 {
        csv.push_str(&format!("{top:03},Division {top},true\n"));
        for child in 1..=66 {
            csv.push_str(&format!("{top:03}-{child:03},Item {child} of {top},true\n"));
        }
    }
    let b = app.import(list, csv).await;
    assert_eq!(b["created"], 150 * 67);

    let (c, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let get = |path: String| {
        let (c, cookie) = (c.clone(), cookie.clone());
        async move {
            let start = Instant::now();
            let res = c.get(path).header(COOKIE, cookie).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body = res.text().await.unwrap();
            (body, start.elapsed())
        }
    };
    let (page, took) = get(format!("{}/codes?list={list}", app.base)).await;
    // The top tier's first page only: 100 rows, not 10,050.
    assert_eq!(page.matches("<li id=\"node-").count(), 100);
    assert!(page.contains("Show more (100 of 150 shown)"), "paged");
    assert!(took < Duration::from_secs(3), "the page took {took:?}");
    let (kids, took) = get(format!("{}/codes/{list}/nodes?parent=1", app.base)).await;
    assert_eq!(kids.matches("<li id=\"node-").count(), 66);
    assert!(took < Duration::from_secs(2), "a tier took {took:?}");
    let (found, _) = get(format!(
        "{}/codes/{list}/nodes?q=Item%2066%20of%20150",
        app.base
    ))
    .await;
    assert_eq!(found.matches("<li id=\"node-").count(), 1);
}

/// A list's tree, and each branch of it, answer only to the list's own company: another
/// company's admin is told it is not found and sees none of its codes, while an empty branch of
/// one's own list is an empty answer.
async fn another_companys_tree_is_not_found(app: TestApp) {
    let list = app.new_list("Ours").await;
    app.import(
        list,
        "full_code,description,active\n01,Secret division,true\n01-100,Secret item,true\n".into(),
    )
    .await;
    let (_, codes) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes")))
        .await;
    let leaf = codes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["full_code"] == "01-100")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let base = app.base.clone();
    let get = |cookie: String, path: String| {
        let url = format!("{base}{path}");
        async move {
            let res = reqwest::Client::new()
                .get(url)
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let (_, ours) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let (status, branch) = get(ours.clone(), format!("/codes/{list}/nodes?parent={leaf}")).await;
    assert_eq!(status, StatusCode::OK, "{branch}");
    assert_eq!(branch.matches("<li id=\"node-").count(), 0);
    let (status, tree) = get(ours, format!("/codes/{list}/nodes")).await;
    assert_eq!(
        (status, tree.matches("<li id=\"node-").count()),
        (StatusCode::OK, 1)
    );

    let (zed, password) = ("zed@two.example", "second-admin-password");
    app.two_builders(zed, "Zed Two", password).await;
    let (_, theirs) = app.session(zed, password).await;
    for path in [
        format!("/codes/{list}/nodes"),
        format!("/codes/{list}/nodes?parent=1"),
    ] {
        let (status, body) = get(theirs.clone(), path.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(!body.contains("Secret"), "{path}: {body}");
    }
}

/// The import's notice came from the link's own text (`/codes?imported=…`): anyone could send
/// a colleague a link that shows their words as Costbridge's. The link now carries counts only.
async fn a_link_cannot_write_the_pages_notice(app: TestApp) {
    let list = app.new_list("Ours").await;
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let crafted = "Your+session+expired%3B+call+555-0100";
    let html = app
        .page(&cookie, &format!("/codes?list={list}&imported={crafted}"))
        .await;
    assert!(
        !html.contains("555-0100") && !html.contains("Import applied"),
        "{html}"
    );
    let html = app
        .page(&cookie, &format!("/codes?list={list}&imported=2,1,0"))
        .await;
    assert!(
        html.contains("Import applied: 2 created, 1 updated, 0 unchanged."),
        "{html}"
    );
    // The users page's "Added …" names only a person of the list.
    let html = app
        .page(&cookie, &format!("/settings/users?added={crafted}"))
        .await;
    assert!(!html.contains("555-0100"), "{html}");
    let html = app
        .page(&cookie, "/settings/users?added=admin%40one.example")
        .await;
    assert!(html.contains("Added admin@one.example."), "{html}");
}

/// A refused form comes back as it was: "New code under 01" (it lost its parent), and a move
/// under the code's own child said once, at the Under field (it said it twice, the second time
/// with a duplicate id, and marked the Code field).
async fn a_refused_code_form_keeps_its_place(app: TestApp) {
    let list = app.new_list("Ours").await;
    app.import(
        list,
        "full_code,description,active\n01,General,true\n01-100,Fees,true\n".into(),
    )
    .await;
    let (_, codes) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes")))
        .await;
    let id = |full: &str| {
        codes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["full_code"] == full)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let top = id("01");
    let (cookie, csrf) = app
        .page_session("admin@one.example", "first-admin-password")
        .await;
    let parent = top.to_string();
    let (s, html) = app
        .htmx_form(
            &cookie,
            &csrf,
            &format!("/codes/{list}/new"),
            &[
                ("code", "100"),
                ("description", "Again"),
                ("parent_id", &parent),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("New code under 01</label>"), "{html}");
    let (s, html) = app
        .htmx_form(
            &cookie,
            &csrf,
            &format!("/codes/{list}/{top}/edit"),
            &[
                ("code", "01"),
                ("description", "General"),
                ("parent", "01-100"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    let error_id = format!("id=\"parent-e{top}-error\"");
    assert_eq!(html.matches(&error_id).count(), 1, "{html}");
    let code_input = html
        .split("<input")
        .find(|i| i.contains("name=\"code\""))
        .unwrap();
    assert!(!code_input.contains("aria-invalid"), "{code_input}");
}

/// A phone keyboard ends a word with a space the person cannot see; the form refused it as
/// "has leading or trailing spaces".
/// The codes page's and the audit log's CSV links are page routes: signed in, a file; once the
/// session has ended, the sign-in page, not the API's error saved as `cost-codes-1.csv` (or the
/// sign-in page saved as `audit-log.csv`, as the `download` attribute did).
async fn the_csv_downloads_send_an_ended_session_to_sign_in(app: TestApp) {
    let list = app.new_list("Ours").await;
    app.code(list, "01", "General", None).await;
    let (cookie, _) = app
        .page_session("admin@one.example", "first-admin-password")
        .await;
    let page = app.page(&cookie, &format!("/codes?list={list}")).await;
    let link = format!("/codes/{list}/export.csv");
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    assert!(!page.contains(" download"), "{page}");
    for path in [link.as_str(), "/settings/audit.csv"] {
        let res = app.page_with(path, &[(COOKIE, &cookie)]).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(
            res.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;"),
            "{path}"
        );
        let body = res.text().await.unwrap();
        assert!(body.starts_with('\u{feff}'), "{path}: {body}");
        let res = app.page_with(path, &[]).await;
        assert!(res.status().is_redirection(), "{path}: {}", res.status());
        assert_eq!(res.headers()["location"], "/login", "{path}");
        // Signing in comes back to the page with the link, not to the file (which would
        // download and leave the person on the sign-in page); never to another site's page.
        let from = format!("{}/codes?list={list}", app.base);
        let res = app.page_with(path, &[(REFERER, &from)]).await;
        let back = format!("/login?next=%2Fcodes%3Flist%3D{list}");
        assert_eq!(res.headers()["location"], back.as_str(), "{path}");
        let res = app
            .page_with(path, &[(REFERER, "http://evil.example/codes?list=1")])
            .await;
        assert_eq!(res.headers()["location"], "/login", "{path}");
    }
}

async fn the_code_form_drops_the_spaces_a_phone_adds(app: TestApp) {
    let list = app.new_list("Ours").await;
    let (cookie, csrf) = app
        .page_session("admin@one.example", "first-admin-password")
        .await;
    let form = app.page(&cookie, &format!("/codes/{list}/new")).await;
    let code_input = form
        .split("<input")
        .find(|i| i.contains("name=\"code\""))
        .unwrap();
    assert!(
        code_input.contains("autocapitalize=\"off\" autocorrect=\"off\" spellcheck=\"false\""),
        "{code_input}"
    );
    let (s, html) = app
        .htmx_form(
            &cookie,
            &csrf,
            &format!("/codes/{list}/new"),
            &[("code", " 05 "), ("description", "Masonry ")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let (_, codes) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes")))
        .await;
    assert_eq!(
        (&codes[0]["full_code"], &codes[0]["description"]),
        (&serde_json::json!("05"), &serde_json::json!("Masonry")),
        "{codes}"
    );
    let id = codes[0]["id"].as_i64().unwrap();
    let (s, html) = app
        .htmx_form(
            &cookie,
            &csrf,
            &format!("/codes/{list}/{id}/edit"),
            &[
                ("code", "05 "),
                ("description", " Masonry, brick "),
                ("parent", ""),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let (_, code) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}")))
        .await;
    assert_eq!(
        (&code["code"], &code["description"]),
        (
            &serde_json::json!("05"),
            &serde_json::json!("Masonry, brick")
        ),
        "{code}"
    );
}

/// With Tryton down, the queue's GL pickers offered only "None" and nothing said why.
async fn an_erp_that_does_not_answer_is_said_above_the_queue(app: TestApp) {
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A code waits with its income account saved while the ERP could still be read.
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let item = &app.items("ready_to_export").await[0];
    app.patched(
        &app.c(&format!("/erp/cost_codes/{}", item["id"])),
        serde_json::json!({"gl_income_account": "4000"}),
    )
    .await;
    let (s, b) = app
        .put(
            &app.c("/erp_connection"),
            serde_json::json!({"profile": "tryton", "connector": {"kind": "tryton",
                "url": format!("http://127.0.0.1:{port}/"), "database": "costs",
                "username": "admin", "password": "admin-secret"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let html = app.page(&cookie, "/erp").await;
    assert!(
        html.contains(
            "Costbridge could not read the GL accounts from the ERP, so the pickers offer none. \
             The ERP did not answer as expected: Cannot reach the Tryton server at"
        ),
        "{html}"
    );
    assert!(html.contains("Test connection"), "{html}");
    // The saved account still shows as chosen, not as "None".
    assert!(
        html.contains(
            r#"<option value="4000" selected>4000 (saved; the chart of accounts could not be read)</option>"#
        ),
        "{html}"
    );
    // The table's caption names the tab as people read it, not its key.
    assert!(
        html.contains(">Codes in Ready to Export</caption>"),
        "{html}"
    );
}

/// The ERP connection form saved from the settings page by the company's first admin.
async fn save_connection(app: &TestApp, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let (cookie, csrf) = app
        .page_session("admin@one.example", "first-admin-password")
        .await;
    app.htmx_form(&cookie, &csrf, "/settings/erp", fields).await
}

/// Every connector's fields share the API's error names (`connector.gl_accounts`): the hidden
/// File fieldset was marked too, and the focus went to it.
async fn a_connection_error_is_shown_on_the_chosen_connector_only(app: TestApp) {
    let (s, html) = save_connection(
        &app,
        &[
            ("profile", "tryton"),
            ("kind", "webhook"),
            ("webhook.url", "https://erp.example/hook"),
            ("webhook.secret", "whsec_0123456789abcdef"),
            ("webhook.gl_accounts", "4100,Service,revenue"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let marked: Vec<&str> = html
        .split(" id=\"erp-")
        .skip(1)
        .filter(|tag| tag.split('>').next().unwrap().contains("aria-invalid"))
        .map(|tag| tag.split('"').next().unwrap())
        .collect();
    assert_eq!(marked, ["webhook-gl_accounts"], "{html}");
    // The typed secret is not sent back, and the form says to type it again.
    assert!(!html.contains("whsec_0123456789abcdef"), "{html}");
    assert!(
        html.contains(
            "Type the signing secret again: Costbridge does not send a secret you typed back"
        ),
        "{html}"
    );
}

/// The connector refuses a GL account by its place (`connector.gl_accounts[1]`), which no input
/// of the form has: the form came back with no message at all. It is said beside the box, by
/// the line a person typed it on.
async fn a_refused_gl_account_is_named_by_its_line(app: TestApp) {
    let (s, html) = save_connection(
        &app,
        &[
            ("profile", "quickbooks_desktop"),
            ("kind", "file"),
            ("file.directory", "."),
            ("file.format", "iif"),
            (
                "file.gl_accounts",
                "4000,Construction Income,income\n\n4000,Job Costs,expense\n5000,,expense",
            ),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let error = html
        .split("id=\"erp-file-gl_accounts-error\">")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("no message beside the accounts: {html}"));
    assert_eq!(
        error,
        "line 3: duplicate account code &#39;4000&#39;; line 4: code and name are required"
    );
}

/// The browser's import with the operator's limit at 2,000 bytes: a file over it is said in
/// the preview (it was a bare "payload too large"), and a file under it that URL-encoding
/// makes 2.6 times longer applies (its apply was refused after its preview had passed).
#[tokio::test]
async fn the_browsers_import_holds_files_to_the_limit_and_says_so() {
    let Some(app) =
        TestApp::spawn_with(Backend::Sqlite, |s| s.server.max_import_bytes = 2000).await
    else {
        return;
    };
    let list = app.new_list("Ours").await;
    let (cookie, csrf) = app
        .page_session("admin@one.example", "first-admin-password")
        .await;
    let preview = |csv: String| {
        let (app, cookie, csrf) = (&app, &cookie, &csrf);
        async move {
            let body = format!(
                "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"codes.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n\
                 --b0undary--\r\n"
            );
            let res = app
                .client
                .post(format!("{}/codes/{list}/import/preview", app.base))
                .header(COOKIE, cookie.as_str())
                .header("x-csrf-token", csrf.as_str())
                .header("hx-request", "true")
                .header("content-type", "multipart/form-data; boundary=b0undary")
                .body(body)
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let mut big = String::from("full_code,description,active\n");
    for n in 0..100 {
        big.push_str(&format!("{n:02},Division number {n},true\n"));
    }
    assert!(big.len() > 2000);
    // Applied without its preview (under the form's own, larger limit): refused in a sentence.
    let res = app
        .htmx_post(
            &cookie,
            &csrf,
            &format!("/codes/{list}/import"),
            &[("csv", &big)],
        )
        .await;
    let said = format!("{:?} {}", res.headers().clone(), res.text().await.unwrap());
    assert!(
        said.contains("Costbridge takes CSV files of up to 1 KB"),
        "{said}"
    );
    assert!(!said.contains("File Costbridge"), "{said}");
    let (s, html) = preview(big).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("Costbridge takes CSV files of up to 1 KB, and this one is larger."),
        "{html}"
    );
    // Cyrillic names: 1,900 bytes as a file, about 5,000 as the apply form's field.
    let mut cyrillic = String::from("full_code,description,active\n");
    let mut n = 0;
    while cyrillic.len() < 1850 {
        cyrillic.push_str(&format!("{n:02},Строительные работы {n},true\n"));
        n += 1;
    }
    let (s, html) = preview(cyrillic.clone()).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains(&format!("Preview: {n} to create")), "{html}");
    let (status, html) = app
        .htmx_form(
            &cookie,
            &csrf,
            &format!("/codes/{list}/import"),
            &[("csv", &cyrillic)],
        )
        .await;
    assert!(status.is_success(), "{status}: {html}");
    let (_, codes) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes?per_page=1")))
        .await;
    assert_eq!(codes[0]["description"], "Строительные работы 0");
}
