//! What the emails say (issue #14): who refused a failed code (Costbridge or the ERP by name),
//! codes grouped under each refusal, what each reader may do about it, and the daily summary's
//! wording, its leaving out an approver's own sends, and times in the company's time zone.
//! Against the real SMTP server of `smtp.rs` and a webhook ERP on 127.0.0.1 that refuses.
use crate::both;
use crate::helpers::{TestApp, perms};
use crate::smtp::{BASE, Mail, SmtpServer};
use axum::Json;
use costbridge_server::config::MailSettings;
use costbridge_server::mail::{deliver_pending, run_daily_summary};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, ORIGIN};
use serde_json::{Value, json};
use time::macros::{format_description, offset};
use time::{Duration, OffsetDateTime};

both!(
    a_failure_says_who_refused_and_what_the_reader_can_do,
    the_daily_summary_in_the_company_zone
);

const PASSWORD: &str = "a-long-password";

/// The email's text must contain `needle`.
fn says(m: &Mail, needle: &str) {
    assert!(m.text.contains(needle), "{needle:?} in {}", m.text);
}

async fn mailroom() -> (SmtpServer, MailSettings) {
    // The digest hour's zone is the operator's; what emails show is the company's.
    crate::smtp::mailroom("+04:00").await
}

async fn deliver(app: &TestApp, mail: &MailSettings, smtp: &SmtpServer) -> Vec<Mail> {
    deliver_pending(&app.app_state.db, mail, OffsetDateTime::now_utc())
        .await
        .expect("delivery");
    smtp.take()
}

/// A person of One Builders besides its first admin (Ada, an approver too); their token.
async fn person(app: &TestApp, email: &str, name: &str, permissions: Value) -> String {
    app.created(
        &app.c("/users"),
        json!({"email": email, "name": name, "password": PASSWORD, "permissions": permissions}),
    )
    .await;
    app.login(email, PASSWORD).await
}

/// Sam sends codes (Admin-tool admin) but has no rights in ERP Integrations.
async fn sam(app: &TestApp) -> String {
    person(
        app,
        "sam@one.example",
        "Sam Sender",
        perms("admin", "none", false),
    )
    .await
}

async fn send_as(app: &TestApp, token: &str, list: i64) {
    let list_path = app.c(&format!("/cost_code_lists/{list}"));
    crate::helpers::send_at(&app.client, &app.base, token, &list_path).await;
}

async fn export(app: &TestApp, full_codes: &[&str]) {
    let ids: Vec<Value> = app
        .items("ready_to_export")
        .await
        .into_iter()
        .filter(|i| full_codes.contains(&i["full_code"].as_str().unwrap()))
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(ids.len(), full_codes.len());
    app.accepted(&app.c("/erp/cost_codes/export"), json!({ "item_ids": ids }))
        .await;
    app.run_worker().await;
}

/// An ERP behind the webhook connector that refuses every code with one message.
async fn refusing_erp() -> String {
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(|Json(batch): Json<Value>| async move {
            let results: Vec<Value> = batch["codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| json!({"item_id": c["item_id"], "status": "failed", "message": "GL account 4000 is closed"}))
                .collect();
            Json(json!({ "results": results }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    url
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

async fn a_failure_says_who_refused_and_what_the_reader_can_do(app: TestApp) {
    let (smtp, mail) = mailroom().await;
    let sam = sam(&app).await;
    let url = refusing_erp().await;
    let (s, conn) = app
        .put(
            &app.c("/erp_connection"),
            json!({"profile": "tryton", "connector": {"kind": "webhook", "url": url,
                "secret": "whsec_0123456789abcdef",
                "gl_accounts": [{"code": "4000", "name": "Income", "kind": "income"}]}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{conn}");
    let list = conn["erp_list_id"].as_i64().unwrap();
    let general = app.code(list, "01", "General", None).await["id"].as_i64();
    app.code(list, "100", "Permits", general).await;
    app.code(list, "200", "Fees", general).await;
    app.code(list, "02", "Site Work", None).await;
    app.code(list, "03", "Concrete", None).await;
    send_as(&app, &sam, list).await;
    deliver(&app, &mail, &smtp).await;

    // Two children without their parent (Costbridge refuses them) and two codes the ERP
    // refuses with one message.
    export(&app, &["01-100", "01-200", "02", "03"]).await;
    let got = deliver(&app, &mail, &smtp).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.to(), "sam@one.example");
    let parent =
        "parent '01' is pending and not part of this export; send and export the parent first";
    for needle in [
        "4 cost codes that you sent to ERP Integrations did not export".to_owned(),
        format!("Costbridge did not export 2 cost codes: {parent}"),
        "Webhook refused 2 cost codes: GL account 4000 is closed".to_owned(),
        "  01-100  Permits".to_owned(),
        "  01-200  Fees".to_owned(),
        "  02  Site Work".to_owned(),
        "  03  Concrete".to_owned(),
        // Sam cannot retry or reject: he is told who can, and where his codes are.
        "An accounting approver of One Builders retries or rejects them".to_owned(),
        format!("{BASE}/codes?status=failed"),
    ] {
        says(m, &needle);
    }
    assert_eq!(count(&m.text, "parent '01'"), 1, "{}", m.text);
    assert_eq!(count(&m.text, "GL account 4000 is closed"), 1, "{}", m.text);
    assert!(!m.text.contains("ERP: "), "{}", m.text);
    assert!(!m.text.contains("/erp?filter=failed"), "{}", m.text);
    assert!(
        m.html
            .contains("<strong>Webhook refused 2 cost codes:</strong> GL account 4000 is closed"),
        "{}",
        m.html
    );

    // Ada approves too: her own failed codes come with the way to retry them.
    let top = app.code(list, "04", "Masonry", None).await["id"].as_i64();
    app.code(list, "100", "Brick", top).await;
    send_as(&app, &app.token, list).await;
    export(&app, &["04-100"]).await;
    let got = deliver(&app, &mail, &smtp).await;
    let m = got
        .iter()
        .find(|m| m.to() == "admin@one.example" && m.subject().contains("failed"))
        .expect("Ada's failure email");
    for needle in [
        "Costbridge did not export 1 cost code: parent '04'".to_owned(),
        "Once the cause is fixed, retry them from Failed to Export".to_owned(),
        format!("{BASE}/erp?filter=failed"),
        format!("{BASE}/codes?status=failed"),
    ] {
        says(m, &needle);
    }
    assert!(!m.text.contains("An accounting approver of"), "{}", m.text);
}

async fn the_daily_summary_in_the_company_zone(app: TestApp) {
    let (smtp, mail) = mailroom().await;
    let sam = sam(&app).await;
    person(
        &app,
        "amy@one.example",
        "Amy Approver",
        perms("none", "standard", true),
    )
    .await;

    // The company's zone is set on the Users page: a name the tz database has, nothing else.
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let set = async |zone: &str| {
        let headers = [(COOKIE, cookie.as_str()), (ORIGIN, app.base.as_str())];
        app.post_form(
            "/settings/company/time_zone",
            &headers,
            &[("time_zone", zone)],
        )
        .await
    };
    for bad in ["Mars/Olympus", "+05:30", "Asia/Kolkata\nBcc: x"] {
        let r = set(bad).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(r.text().await.unwrap().contains("is not a time zone name"));
    }
    let r = set("asia/kolkata").await;
    assert_eq!(r.status(), StatusCode::OK);
    let said = r.text().await.unwrap();
    assert!(said.contains("shown in Asia/Kolkata"), "{said}");
    assert!(said.contains(" IST)"), "{said}");

    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.code(list, "02", "Site Work", None).await;
    send_as(&app, &app.token, list).await;
    app.code(list, "03", "Concrete", None).await;
    send_as(&app, &sam, list).await;
    deliver(&app, &mail, &smtp).await;

    // 08:00 at +04:00 tomorrow: the operator's digest hour, whatever the company's zone.
    let tomorrow = OffsetDateTime::now_utc().to_offset(offset!(+4)).date() + Duration::days(1);
    let eight = tomorrow
        .with_hms(8, 0, 0)
        .unwrap()
        .assume_offset(offset!(+4));
    let queued = run_daily_summary(&app.app_state.db, &mail, eight)
        .await
        .unwrap();
    assert_eq!(queued, 2, "Ada (for Sam's code) and Amy");
    deliver_pending(&app.app_state.db, &mail, eight)
        .await
        .unwrap();
    let got = smtp.take();
    let to = |who: &str| got.iter().find(|m| m.to() == who).unwrap();
    let ada = to("admin@one.example");
    says(ada, "1 cost code of One Builders waits in Ready to Export.");
    says(ada, "Sent by Sam Sender (sam@one.example): 1 cost code.");
    assert!(
        !ada.text.contains("admin@one.example"),
        "her own sends are not summarised for her: {}",
        ada.text
    );
    let amy = to("amy@one.example");
    says(amy, "3 cost codes of One Builders wait in Ready to Export.");
    says(
        amy,
        "): 2 cost codes; Sam Sender (sam@one.example): 1 cost code.",
    );
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let oldest = app
        .items("ready_to_export")
        .await
        .iter()
        .map(|i| OffsetDateTime::parse(i["sent_at"].as_str().unwrap(), rfc3339).unwrap())
        .min()
        .unwrap()
        .to_offset(offset!(+5:30))
        .format(format_description!(
            "[day padding:none] [month repr:short] [year] [hour]:[minute]"
        ))
        .unwrap();
    let since = format!("The oldest has waited since {oldest} IST.");
    says(amy, &since);
    assert!(!amy.text.contains("+04:00") && !amy.text.contains(&tomorrow.to_string()));
    says(
        amy,
        "sends this summary to the approvers of One Builders every day",
    );

    // The audit log's CSV says the zone in every time: ISO 8601 with the offset.
    let csv = app.page(&cookie, "/settings/audit.csv").await;
    let row = csv.lines().nth(1).expect("an event");
    let at = row.split(',').nth(1).unwrap();
    assert!(at.ends_with("+05:30"), "{row}");
}
