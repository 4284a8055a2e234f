//! Email notifications (docs/rules.md §6) against a real SMTP server on 127.0.0.1:0: who gets
//! which email and what it says, the daily summary's hour, opt-out and once-a-day rule (also
//! across a restart and a second instance), retries when the server refuses, and the `notify`
//! commands.
//! Delivery and the summary are driven with an explicit clock; nothing sleeps.
use crate::both;
use crate::helpers::{TestApp, perms};
use crate::smtp::{BASE, Mail, SmtpServer};
use costbridge_server::App;
use costbridge_server::config::MailSettings;
use costbridge_server::mail::{DeliveryReport, deliver_pending, run_daily_summary};
use costbridge_storage::Db;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::macros::offset;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time};

both!(
    immediate_emails_reach_the_right_people,
    a_big_send_is_one_email,
    the_daily_summary_comes_once_a_day,
    no_summary_when_the_waiting_codes_were_rejected,
    delivery_is_retried_until_the_server_accepts,
    an_email_is_due_the_microsecond_after_its_time,
    a_late_mailer_undoes_no_sent_email,
    the_notify_commands
);

const READY_LINK: &str = "https://costbridge.example/erp?filter=ready_to_export";

async fn mailroom() -> (SmtpServer, MailSettings) {
    let (smtp, mut settings) = crate::smtp::mailroom("+01:00").await;
    settings.max_attempts = 3;
    settings.backoff_seconds = 60;
    (smtp, settings)
}

/// `h:m` local time (+01:00, as configured) on the day `days` after today: always in the
/// future, so everything queued by the test is due by then.
fn at(days: i64, h: u8, m: u8) -> OffsetDateTime {
    let today: Date = costbridge_storage::now().to_offset(offset!(+1)).date();
    PrimitiveDateTime::new(
        today + Duration::days(days),
        Time::from_hms(h, m, 0).unwrap(),
    )
    .assume_offset(offset!(+1))
    .to_offset(time::UtcOffset::UTC)
}

fn now() -> OffsetDateTime {
    costbridge_storage::now()
}

async fn deliver(db: &Db, mail: &MailSettings, at: OffsetDateTime) -> DeliveryReport {
    deliver_pending(db, mail, at).await.expect("delivery")
}

async fn summary(db: &Db, mail: &MailSettings, at: OffsetDateTime) -> u64 {
    run_daily_summary(db, mail, at)
        .await
        .expect("daily summary")
}

/// Delivers what is due now, which must be one email, to Sam, with this subject; returns it.
async fn mail_to_sam(db: &Db, mail: &MailSettings, smtp: &SmtpServer, subject: &str) -> Mail {
    deliver(db, mail, now()).await;
    let mut got = smtp.take();
    assert_eq!(recipients(&got), ["sam@one.example"]);
    let m = got.remove(0);
    assert_eq!(m.subject(), subject);
    m
}

fn recipients(mails: &[Mail]) -> Vec<&str> {
    mails.iter().map(Mail::to).collect()
}

fn to<'a>(mails: &'a [Mail], who: &str) -> &'a Mail {
    mails
        .iter()
        .find(|m| m.to() == who)
        .unwrap_or_else(|| panic!("no email to {who}"))
}

/// The people of One Builders besides its first admin (Ada, admin everywhere, an approver too).
struct Team {
    /// Sam sends codes: Admin-tool admin, no rights on ERP Integrations.
    sam: String,
    /// Amy approves.
    amy: String,
    amy_id: i64,
}

async fn person(app: &TestApp, email: &str, name: &str, permissions: Value) -> (i64, String) {
    let b = app.created(&app.c("/users"), json!({"email": email, "name": name, "password": "a-long-password", "permissions": permissions})).await;
    (
        b["id"].as_i64().expect("id"),
        app.login(email, "a-long-password").await,
    )
}

async fn team(app: &TestApp) -> Team {
    let (sender, approver) = (
        perms("admin", "none", false),
        perms("none", "standard", true),
    );
    let (_, sam) = person(app, "sam@one.example", "Sam Sender", sender).await;
    let (amy_id, amy) = person(app, "amy@one.example", "Amy Approver", approver).await;
    // Abe approves too but wants no daily summary; Vic may look but not approve.
    let abe_rights = perms("read_only", "admin", true);
    let (abe, _) = person(app, "abe@one.example", "Abe Approver", abe_rights).await;
    let vic_rights = perms("read_only", "standard", false);
    person(app, "vic@one.example", "Vic Viewer", vic_rights).await;
    app.patched(
        &app.c(&format!("/users/{abe}")),
        json!({"digest_emails": false}),
    )
    .await;
    Team { sam, amy, amy_id }
}

/// Two Builders, another company on the same server: Zed (admin everywhere) sent one code that
/// waits; Zoe approves there.
async fn other_company(app: &TestApp) {
    let (company, zed) = app.company_two().await;
    let c = |p: &str| format!("/api/v1/companies/{company}{p}");
    let (s, b) = app
        .call("POST", &c("/users"), &zed, Some(json!({"email": "zoe@two.example", "name": "Zoe Two", "password": "a-long-password",
            "permissions": {"admin_tool": "none", "erp_integrations": "standard", "can_push_to_accounting": true}})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, conn) = app
        .call(
            "PUT",
            &c("/erp_connection"),
            &zed,
            Some(json!({"profile": "tryton",
            "connector": {"kind": "file", "directory": "two", "format": "csv"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{conn}");
    let list = conn["erp_list_id"].as_i64().unwrap();
    let (s, b) = app
        .call(
            "POST",
            &c(&format!("/cost_code_lists/{list}/cost_codes")),
            &zed,
            Some(json!({"code": "09", "description": "Finishes"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    send_as(
        app,
        &zed,
        &c(&format!("/cost_code_lists/{list}/send_to_erp")),
    )
    .await;
}

async fn send_as(app: &TestApp, token: &str, path: &str) {
    let (_, st) = app.call("GET", path, token, None).await;
    let (s, b) = app
        .call(
            "POST",
            path,
            token,
            Some(json!({"list_version": st["list_version"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b} (button said {st})");
}

fn send_path(app: &TestApp, list: i64) -> String {
    app.c(&format!("/cost_code_lists/{list}/send_to_erp"))
}

async fn reject(app: &TestApp, token: &str, body: Value) {
    let (s, b) = app
        .call("POST", &app.c("/erp/cost_codes/reject"), token, Some(body))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

/// The ready item of a cost code.
async fn item_of(app: &TestApp, code: &Value) -> Value {
    app.items("ready_to_export")
        .await
        .into_iter()
        .find(|i| i["cost_code_id"] == code["id"])
        .expect("a ready item")["id"]
        .clone()
}

async fn immediate_emails_reach_the_right_people(app: TestApp) {
    let (smtp, mail) = mailroom().await;
    let db = &app.app_state.db;
    let t = team(&app).await;
    other_company(&app).await;
    deliver(db, &mail, now()).await;
    assert_eq!(
        recipients(&smtp.take()),
        ["zoe@two.example"],
        "Two Builders' send reaches only its own approver (Zed sent it himself)"
    );

    let list = app.connect("tryton", "csv").await;
    let a = app.code(list, "01", "General Requirements", None).await;
    let b = app
        .code(list, "100", "Permits & Fees", a["id"].as_i64())
        .await;
    let c = app.code(list, "02", "Site Work", None).await;
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    let report = deliver(db, &mail, now()).await;
    assert_eq!((report.sent, report.retried, report.failed), (3, 0, 0));
    let got = smtp.take();
    assert_eq!(
        recipients(&got),
        ["abe@one.example", "admin@one.example", "amy@one.example"],
        "every approver of One Builders, opted out of the summary or not; not Sam, Vic or Two Builders"
    );
    let m = to(&got, "amy@one.example");
    assert_eq!(
        m.subject(),
        "[Costbridge] One Builders: 3 cost codes ready to export, sent by Sam Sender"
    );
    assert_eq!(m.envelope_from, "costbridge@one.example");
    assert_eq!(
        m.header("From"),
        Some("Costbridge <costbridge@one.example>")
    );
    assert_eq!(m.header("To"), Some("amy@one.example"));
    assert!(m.header("Date").is_some_and(|d| d.contains(" +0000")));
    assert!(
        m.header("Message-ID")
            .is_some_and(|id| id.starts_with("<costbridge.") && id.ends_with("@one.example>"))
    );
    assert_eq!(m.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(m.header("List-Unsubscribe"), None);
    for needle in [
        "Sam Sender (sam@one.example) sent 3 cost codes of One Builders to ERP Integrations",
        "01-100  Permits & Fees",
        "02      Site Work",
        READY_LINK,
    ] {
        assert!(m.text.contains(needle), "{needle:?} in {}", m.text);
    }
    assert!(m.html.contains("Permits &amp; Fees"), "{}", m.html);
    assert!(m.html.contains(&format!("href=\"{READY_LINK}\"")));
    let ids: std::collections::HashSet<_> = got
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "each email has its own Message-ID");

    // Amy rejects 01 and 02: Sam hears it once, with the reason and those codes.
    let (item_a, item_b, item_c) = (
        item_of(&app, &a).await,
        item_of(&app, &b).await,
        item_of(&app, &c).await,
    );
    reject(
        &app,
        &t.amy,
        json!({"item_ids": [item_a, item_c], "reason": "Use the 2026 GL structure"}),
    )
    .await;
    let m = mail_to_sam(db, &mail, &smtp, "[Costbridge] One Builders: 2 cost codes rejected by Amy Approver: Use the 2026 GL structure").await;
    for needle in [
        "Amy Approver (amy@one.example) rejected 2 cost codes that you sent",
        "Reason: Use the 2026 GL structure",
        "01  General Requirements",
        "02  Site Work",
        "https://costbridge.example/codes?status=rejected",
    ] {
        assert!(m.text.contains(needle), "{needle:?} in {}", m.text);
    }
    assert!(!m.text.contains("01-100"));

    // Amy exports 01-100 alone; its parent was just rejected, so the export fails it. Sam hears
    // it once, with what the export said.
    let (s, e) = app
        .call(
            "POST",
            &app.c("/erp/cost_codes/export"),
            &t.amy,
            Some(json!({"item_ids": [item_b]})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{e}");
    app.run_worker().await;
    let m = mail_to_sam(
        db,
        &mail,
        &smtp,
        "[Costbridge] One Builders: 1 cost code failed to export",
    )
    .await;
    let failed = app.items("failed").await;
    let message = failed[0]["erp_message"].as_str().unwrap();
    assert!(message.contains("parent '01'"), "{message}");
    assert!(m.text.contains("01-100  Permits & Fees"), "{}", m.text);
    // Costbridge refused it itself (its parent was not in the export), not the ERP.
    assert!(
        m.text
            .contains(&format!("Costbridge did not export 1 cost code: {message}")),
        "{}",
        m.text
    );
    assert!(!m.text.contains("ERP: "), "{}", m.text);
    assert!(
        m.html.contains(
            "<strong>Costbridge did not export 1 cost code:</strong> parent &#39;01&#39;"
        ),
        "{}",
        m.html
    );
    assert!(
        m.text
            .contains("https://costbridge.example/codes?status=failed")
    );

    // Sam sends again: the two rejected codes go back, and the approvers are told so.
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    deliver(db, &mail, now()).await;
    let got = smtp.take();
    assert_eq!(
        recipients(&got),
        ["abe@one.example", "admin@one.example", "amy@one.example"]
    );
    let m = to(&got, "abe@one.example");
    assert_eq!(
        m.subject(),
        "[Costbridge] One Builders: 2 cost codes re-sent for export, sent by Sam Sender"
    );
    assert!(
        m.text
            .contains("2 of them had been rejected before and were sent again."),
        "{}",
        m.text
    );

    // Ada is an approver too, but is not told of her own send.
    app.code(list, "03", "Concrete", None).await;
    app.send(list).await;
    deliver(db, &mail, now()).await;
    assert_eq!(
        recipients(&smtp.take()),
        ["abe@one.example", "amy@one.example"]
    );
    assert_eq!(deliver(db, &mail, now()).await, DeliveryReport::default());
    assert!(smtp.take().is_empty(), "each email is sent once");
}

async fn a_big_send_is_one_email(app: TestApp) {
    let (smtp, mail) = mailroom().await;
    let db = &app.app_state.db;
    let t = team(&app).await;
    let list = app.connect("tryton", "csv").await;
    let mut csv = String::from("full_code,description,active\n");
    for d in 10..50 {
        csv.push_str(&format!("{d},Division {d},true\n"));
        for s in 1..50 {
            csv.push_str(&format!("{d}-{s},Section {s},true\n"));
        }
    }
    let r = app.import(list, csv).await;
    assert_eq!(r["created"].as_i64(), Some(2000), "{r}");
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    deliver(db, &mail, now()).await;
    let got = smtp.take();
    assert_eq!(
        recipients(&got),
        ["abe@one.example", "admin@one.example", "amy@one.example"],
        "one email per approver for the whole send"
    );
    let m = &got[0];
    assert_eq!(
        m.subject(),
        "[Costbridge] One Builders: 2,000 cost codes ready to export, sent by Sam Sender"
    );
    assert!(m.text.contains("… and 1,950 more."), "{}", m.text);
    assert!(m.text.contains("10-1 "), "codes in list order: {}", m.text);

    reject(&app, &t.amy, json!({"reason": "Wrong division numbering"})).await;
    let m = mail_to_sam(db, &mail, &smtp, "[Costbridge] One Builders: 2,000 cost codes rejected by Amy Approver: Wrong division numbering").await;
    assert!(m.text.contains("… and 1,950 more."));
}

async fn the_daily_summary_comes_once_a_day(app: TestApp) {
    let (smtp, mail) = mailroom().await;
    let db = &app.app_state.db;
    let t = team(&app).await;
    other_company(&app).await;
    let list = app.connect("tryton", "csv").await;
    for (code, name) in [("01", "General"), ("02", "Site Work"), ("03", "Concrete")] {
        app.code(list, code, name, None).await;
    }
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    deliver(db, &mail, now()).await;
    smtp.take();

    assert_eq!(summary(db, &mail, at(1, 7, 59)).await, 0, "not before 8:00");
    assert_eq!(
        summary(db, &mail, at(1, 8, 0)).await,
        3,
        "Ada and Amy, and Zoe; Abe opted out, and Zed sent Two Builders' only waiting code himself"
    );
    assert_eq!(deliver(db, &mail, at(1, 8, 0)).await.sent, 3);
    let got = smtp.take();
    assert_eq!(
        recipients(&got),
        ["admin@one.example", "amy@one.example", "zoe@two.example"]
    );
    let m = to(&got, "amy@one.example");
    assert_eq!(
        m.subject(),
        "[Costbridge] One Builders: 3 cost codes waiting in Ready to Export (daily summary)"
    );
    let sent_at = app.items("ready_to_export").await[0]["sent_at"]
        .as_str()
        .unwrap()
        .to_owned();
    // In the company's zone (the server's, as it set none), named; not the digest hour's offset.
    let oldest =
        OffsetDateTime::parse(&sent_at, &time::format_description::well_known::Rfc3339).unwrap();
    for needle in [
        "3 cost codes of One Builders wait in Ready to Export.".to_owned(),
        format!(
            "The oldest has waited since {}.",
            costbridge_server::zone::Zone::server().show(oldest)
        ),
        "Sent by Sam Sender (sam@one.example): 3 cost codes.".to_owned(),
        READY_LINK.to_owned(),
    ] {
        assert!(m.text.contains(&needle), "{needle:?} in {}", m.text);
    }
    let unsubscribe = m
        .header("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .trim_matches(['<', '>'])
        .to_owned();
    assert!(
        unsubscribe.starts_with(&format!("{BASE}/unsubscribe/digest/{}/", t.amy_id)),
        "{unsubscribe}"
    );
    assert_eq!(
        m.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        m.text
            .contains(&format!("Stop these summaries: {unsubscribe}"))
    );
    let zoe = to(&got, "zoe@two.example");
    assert_eq!(
        zoe.subject(),
        "[Costbridge] Two Builders: 1 cost code waiting in Ready to Export (daily summary)"
    );
    assert!(
        zoe.text
            .contains("Sent by Zed Two (zed@two.example): 1 cost code.")
    );
    assert!(
        zoe.text
            .contains("every day while codes someone else sent wait"),
        "{}",
        zoe.text
    );
    assert!(!zoe.text.contains("One Builders") && !zoe.text.contains("sam@"));

    // Later that day nobody gets a second one: not from this server, not after a restart, not
    // from a second instance on the same database.
    assert_eq!(summary(db, &mail, at(1, 9, 30)).await, 0);
    let mut settings = app.instance_settings();
    settings.mail = mail.clone();
    let second = App::build(settings).await.expect("second instance");
    assert_eq!(summary(&second.state.db, &mail, at(1, 23, 59)).await, 0);
    assert_eq!(
        deliver(&second.state.db, &mail, at(1, 23, 59)).await,
        DeliveryReport::default()
    );
    assert!(smtp.take().is_empty());

    // The next day the codes still wait, so the summary comes again.
    assert_eq!(summary(&second.state.db, &mail, at(2, 8, 5)).await, 3);
    assert_eq!(deliver(db, &mail, at(2, 8, 5)).await.sent, 3);
    smtp.take();

    // One click stops it for Amy. Opening the link only asks; a forged link does nothing.
    let link = unsubscribe.replace(BASE, &app.base);
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<form method=\"post\">")
    );
    let forged = format!(
        "{}{}",
        &link[..link.len() - 1],
        if link.ends_with('0') { "1" } else { "0" }
    );
    let other = link.replace(&format!("/{}/", t.amy_id), "/1/");
    for bad in [forged, other] {
        let r = app.client.post(&bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    let (_, users) = app.get(&app.c("/users")).await;
    let amy = |users: &Value| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == "amy@one.example")
            .unwrap()["digest_emails"]
            .clone()
    };
    assert_eq!(amy(&users), true);
    let r = app
        .client
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, users) = app.get(&app.c("/users")).await;
    assert_eq!(amy(&users), false);
    assert_eq!(summary(db, &mail, at(3, 8, 0)).await, 2);
    deliver(db, &mail, at(3, 8, 0)).await;
    assert_eq!(
        recipients(&smtp.take()),
        ["admin@one.example", "zoe@two.example"]
    );
}

async fn no_summary_when_the_waiting_codes_were_rejected(app: TestApp) {
    let (smtp, mail) = mailroom().await;
    let db = &app.app_state.db;
    let t = team(&app).await;
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.code(list, "02", "Site Work", None).await;
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    reject(&app, &t.amy, json!({"reason": "Not this year"})).await;
    assert_eq!(summary(db, &mail, at(1, 9, 0)).await, 0);
    deliver(db, &mail, at(1, 9, 0)).await;
    let got = smtp.take();
    assert_eq!(got.len(), 4, "three 'sent' emails and one 'rejected'");
    assert!(got.iter().all(|m| !m.subject().contains("daily summary")));

    // Queued while codes waited, then the codes were rejected before it went out: it is dropped.
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    deliver(db, &mail, now()).await;
    smtp.take();
    assert_eq!(summary(db, &mail, at(2, 9, 0)).await, 2, "Ada and Amy");
    reject(&app, &t.amy, json!({"reason": "Still not this year"})).await;
    let report = deliver(db, &mail, at(2, 9, 0)).await;
    assert_eq!((report.sent, report.cancelled), (1, 2), "{report:?}");
    let got = smtp.take();
    assert_eq!(recipients(&got), ["sam@one.example"]);
    assert!(got[0].subject().contains("rejected"));
    let rows = db.outbox_rows(100).await.unwrap();
    let summaries: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "daily_summary")
        .map(|r| r.status.as_str())
        .collect();
    assert_eq!(summaries, ["cancelled", "cancelled"]);
}

async fn delivery_is_retried_until_the_server_accepts(app: TestApp) {
    let (smtp, mut mail) = mailroom().await;
    mail.max_attempts = 2;
    let db = &app.app_state.db;
    let t = team(&app).await;
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    smtp.refuse(Some("451 4.3.0 Mailbox busy, try again later"));
    // The workflow never waits on mail: the send succeeds whatever the server says.
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    let t0 = now();
    let r = deliver(db, &mail, t0).await;
    assert_eq!((r.sent, r.retried), (0, 3));
    assert!(smtp.take().is_empty());
    let rows = db.outbox_rows(100).await.unwrap();
    assert!(
        rows.iter().all(|r| r.status.as_str() == "pending"
            && r.attempts == 1
            && r.last_error.as_deref().is_some_and(|e| e.contains("451"))),
        "{rows:?}"
    );
    assert_eq!(
        deliver(db, &mail, t0 + Duration::seconds(30)).await,
        DeliveryReport::default(),
        "not before the backoff"
    );
    smtp.refuse(None);
    let r = deliver(db, &mail, t0 + Duration::seconds(61)).await;
    assert_eq!((r.sent, r.retried), (3, 0));
    assert_eq!(
        recipients(&smtp.take()),
        ["abe@one.example", "admin@one.example", "amy@one.example"]
    );
    assert_eq!(
        deliver(db, &mail, t0 + Duration::hours(2)).await,
        DeliveryReport::default()
    );
    assert!(smtp.take().is_empty(), "sent once");

    // A permanent refusal is retried up to max_attempts, then the message is marked failed.
    smtp.refuse(Some("550 5.7.1 Relaying denied"));
    reject(&app, &t.amy, json!({"reason": "No"})).await;
    assert_eq!(deliver(db, &mail, t0 + Duration::hours(2)).await.retried, 1);
    assert_eq!(deliver(db, &mail, t0 + Duration::hours(3)).await.failed, 1);
    let row = db.outbox_rows(1).await.unwrap().remove(0);
    assert_eq!(
        (row.kind.as_str(), row.status.as_str(), row.attempts),
        ("codes_rejected", "failed", 2)
    );
    let error = row.last_error.unwrap();
    assert!(
        error.contains("550") && error.contains("gave up after 2 attempts"),
        "{error}"
    );
    assert_eq!(
        app.gauge("costbridge_emails_failed").await.as_deref(),
        Some("1")
    );
    smtp.refuse(None);
    assert_eq!(
        deliver(db, &mail, t0 + Duration::hours(5)).await,
        DeliveryReport::default()
    );

    // A server that is down costs one attempt per round; the other emails wait untouched.
    drop(smtp);
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    let r = deliver(db, &mail, t0 + Duration::hours(6)).await;
    assert_eq!((r.sent, r.retried), (0, 1));
    let mut attempts: Vec<i64> = db
        .outbox_rows(3)
        .await
        .unwrap()
        .iter()
        .map(|r| r.attempts)
        .collect();
    attempts.sort();
    assert_eq!(attempts, [0, 0, 1]);

    // Without an SMTP host nothing is sent and the emails stay in the outbox.
    let off = MailSettings {
        host: None,
        ..mail.clone()
    };
    assert_eq!(
        deliver(db, &off, t0 + Duration::hours(7)).await,
        DeliveryReport::default()
    );
    assert_eq!(
        db.outbox_count(costbridge_domain::queue::MailStatus::Pending)
            .await
            .unwrap(),
        3
    );
}

/// Due times compare as times on both backends. SQLite keeps times as text, and once stored
/// them without the fraction's trailing zeros: an email due at `…:00Z` was not due at
/// `…:00.000001Z` (`Z` sorts after `.`), and `notify daily-summary` sent one of its two emails.
async fn an_email_is_due_the_microsecond_after_its_time(app: TestApp) {
    let t = team(&app).await;
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    let db = &app.app_state.db;
    let whole_second = now().replace_nanosecond(0).unwrap() + Duration::hours(1);
    let mut due = 0;
    while let Some(m) = db.claim_mail(now(), Duration::seconds(1)).await.unwrap() {
        db.mail_retry_at(&m, "due again later", whole_second)
            .await
            .unwrap();
        due += 1;
    }
    assert!(due >= 1, "the send queued no email");
    let micro = Duration::microseconds(1);
    let early = db
        .claim_mail(whole_second - micro, Duration::seconds(1))
        .await;
    assert!(early.unwrap().is_none(), "claimed before its time");
    for n in 0..due {
        let on_time = db
            .claim_mail(whole_second + micro, Duration::seconds(1))
            .await;
        assert!(on_time.unwrap().is_some(), "email {n} of {due} is not due");
    }
}

/// A mailer whose lease ran out while its SMTP server was slow does not undo what the mailer
/// that took the email over recorded (a sent email stays sent, not failed or due again), nor
/// release that one's lease while it sends.
async fn a_late_mailer_undoes_no_sent_email(app: TestApp) {
    use costbridge_domain::queue::MailStatus;
    let t = team(&app).await;
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    let db = &app.app_state.db;
    let late = db.claim_mail(now(), Duration::ZERO).await.unwrap().unwrap();
    let current = db
        .claim_mail(now(), Duration::minutes(1))
        .await
        .unwrap()
        .expect("the run-out lease is taken over");
    assert_eq!(current.id, late.id);
    // While the second sends, the late one's refusal neither closes it nor releases its lease.
    db.mail_closed(&late, MailStatus::Failed, "late")
        .await
        .unwrap();
    db.mail_retry_at(&late, "late", now()).await.unwrap();
    // (The send queued an email for each approver: the others are due, this one is not.)
    while let Some(other) = db.claim_mail(now(), Duration::minutes(1)).await.unwrap() {
        assert_ne!(other.id, late.id, "a third mailer took the email");
    }
    db.mail_sent(current.id, now()).await.unwrap();
    db.mail_closed(&late, MailStatus::Failed, "late")
        .await
        .unwrap();
    db.mail_retry_at(&late, "late", now()).await.unwrap();
    let rows = db.outbox_rows(100).await.unwrap();
    let row = rows.iter().find(|r| r.id == late.id).unwrap();
    assert_eq!(
        (row.status, row.last_error.as_deref()),
        (MailStatus::Sent, None)
    );
}

async fn the_notify_commands(app: TestApp) {
    let (smtp, mail) = mailroom().await;
    let t = team(&app).await;
    let run = |args: &'static [&'static str], with_host: bool| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_costbridge"));
        cmd.args(args)
            .env("COSTBRIDGE_DATABASE_URL", &app.database_url)
            .env("COSTBRIDGE__MAIL__PORT", smtp.port.to_string())
            .env("COSTBRIDGE__MAIL__TLS", "none")
            .env(
                "COSTBRIDGE__MAIL__FROM",
                "Costbridge <costbridge@one.example>",
            )
            .env("COSTBRIDGE__MAIL__PASSWORD", "123456");
        if with_host {
            cmd.env("COSTBRIDGE__MAIL__HOST", "127.0.0.1");
        }
        async move { cmd.output().await.expect("run costbridge") }
    };
    let out = run(&["notify", "test", "--to", "ops@one.example"], true).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("test message sent to ops@one.example"),
        "{stdout}"
    );
    let got = smtp.take();
    assert_eq!(recipients(&got), ["ops@one.example"]);
    assert_eq!(got[0].subject(), "[Costbridge] Test message");

    let out = run(&["notify", "test", "--to", "ops@one.example"], false).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mail is not configured"));

    // Codes wait: `notify daily-summary` queues and delivers today's summary, whatever the hour,
    // and a second run the same day adds nothing.
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    send_as(&app, &t.sam, &send_path(&app, list)).await;
    deliver(&app.app_state.db, &mail, now()).await;
    smtp.take();
    let out = run(&["notify", "daily-summary"], true).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["queued"], 2, "{report}");
    assert_eq!(report["delivery"]["sent"], 2, "{report}");
    let got = smtp.take();
    assert_eq!(recipients(&got), ["admin@one.example", "amy@one.example"]);
    assert!(got[0].subject().ends_with("(daily summary)"));
    let out = run(&["notify", "daily-summary"], true).await;
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (
            report["queued"].as_i64(),
            report["delivery"]["sent"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert!(smtp.take().is_empty());
}
