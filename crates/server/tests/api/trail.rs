//! What an auditor reads: submissions (who sent what, which items, which jobs), the values the
//! ERP last confirmed on each code, retrieved items, and the request id in the log.
use crate::helpers::{TestApp, field_error, paged, perms};
use reqwest::StatusCode;
use serde_json::{Value, json};

crate::both!(
    submissions_say_who_sent_what_and_where_it_went,
    the_audit_log_shows_each_reader_what_their_tools_show,
    a_filter_that_can_select_nothing_says_why,
    the_audit_log_pages_by_key_while_events_are_recorded,
    the_audit_download_holds_every_event_once
);

/// The audit log is read by both tools' readers, but each sees there only what its own pages
/// show: an ERP-queue reader without the Admin tool saw every user's email, rights and
/// sign-in address and every machine client, which the users and clients pages refuse them;
/// and a sign-in's address is for those who manage users.
async fn the_audit_log_shows_each_reader_what_their_tools_show(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.code(list, "01", "General", None).await;
    let approver = app
        .user("approver@one.example", perms("none", "standard", true))
        .await;
    let viewer = app
        .user("viewer@one.example", perms("read_only", "none", false))
        .await;
    app.login("viewer@one.example", "a-long-password").await;
    let log = async |token: &str| {
        let path = app.c("/audit_events?per_page=1000");
        let (s, events) = app.call("GET", &path, token, None).await;
        assert_eq!(s, StatusCode::OK, "{events}");
        events.as_array().unwrap().clone()
    };
    let types = |events: &[Value]| -> std::collections::BTreeSet<String> {
        events
            .iter()
            .map(|e| e["entity_type"].as_str().unwrap().to_owned())
            .collect()
    };
    let addresses = |events: &[Value]| {
        events
            .iter()
            .filter(|e| e["action"] == "user.signed_in")
            .filter(|e| e["after"].get("client").is_some())
            .count()
    };
    let everything = log(&app.token).await;
    assert!(types(&everything).contains("user"), "{everything:?}");
    assert!(addresses(&everything) > 0, "{everything:?}");
    let queue_reader = log(&approver).await;
    assert!(!types(&queue_reader).contains("user"), "{queue_reader:?}");
    assert!(
        types(&queue_reader).contains("cost_code"),
        "{queue_reader:?}"
    );
    let codes_reader = log(&viewer).await;
    assert!(types(&codes_reader).contains("user"));
    assert_eq!(addresses(&codes_reader), 0, "{codes_reader:?}");
}

async fn submissions_say_who_sent_what_and_where_it_went(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let a = app.code(list, "01", "General", None).await;
    let b = app.code(list, "02", "Site", None).await;
    let sent = app.send(list).await;
    let sub = sent["submission_id"].as_i64().unwrap();

    let (s, subs) = app.get(&app.c("/submissions")).await;
    assert_eq!(s, StatusCode::OK, "{subs}");
    assert_eq!(subs[0]["id"].as_i64(), Some(sub));
    assert_eq!(subs[0]["code_count"], 2);
    assert_eq!(subs[0]["sent_by"]["email"], "admin@one.example");
    assert_eq!(subs[0]["item_counts"], json!({"ready": 2}));

    // The admin takes one back: its item is retrieved, and the Retrieved filter shows it.
    let (s, _) = app
        .post(
            &app.c(&format!(
                "/cost_code_lists/{list}/cost_codes/{}/retrieve",
                b["id"]
            )),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let retrieved = app.items("retrieved").await;
    assert_eq!(retrieved.len(), 1);
    assert_eq!(retrieved[0]["full_code"], "02");
    let job = app.accept_all().await;

    let (_, one) = app.get(&app.c(&format!("/submissions/{sub}"))).await;
    assert_eq!(one["item_counts"], json!({"retrieved": 1, "synced": 1}));
    assert_eq!(one["export_job_ids"], json!([job]));
    let (s, items) = app
        .get(&app.c(&format!("/submissions/{sub}/items?per_page=1")))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(items.as_array().map(Vec::len), Some(1));
    assert_eq!(items[0]["full_code"], "01");
    assert_eq!(items[0]["export_status"], "synced");

    // The values the ERP confirmed stay readable on the code while it is edited.
    let (_, edited) = app
        .patch(
            &app.c(&format!("/cost_code_lists/{list}/cost_codes/{}", a["id"])),
            json!({"description": "General conditions"}),
        )
        .await;
    assert_eq!(edited["sync_status"], "modified");
    assert_eq!(
        edited["confirmed"],
        json!({"code": "01", "full_code": "01", "description": "General", "active": true})
    );
    let (_, never) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes/{}", b["id"])))
        .await;
    assert_eq!(never["confirmed"], serde_json::Value::Null);

    // Another company's submissions are not found; neither is one that does not exist.
    let (s, _) = app
        .get(&app.c_of(app.company + 1, &format!("/submissions/{sub}")))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .get(&app.c(&format!("/submissions/{}", sub + 1000)))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// A filter that can select nothing says why: a typo (`action=cost_code.update`) answered an
/// empty list, as if nothing had happened. A type the reader may not see is a permission they
/// lack, said so: the type names are documented, so that shows nothing of the log.
async fn a_filter_that_can_select_nothing_says_why(app: TestApp) {
    let list = app.new_list("Ours").await;
    let code = app.code(list, "01", "General", None).await;
    // `entity_id` alone is the contract's filter: that id, of any type.
    let query = format!("/audit_events?entity_id={}", code["id"]);
    let (s, b) = app.get(&app.c(&query)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let events = b.as_array().unwrap();
    assert!(events.iter().all(|e| e["entity_id"] == code["id"]), "{b}");
    assert!(
        events.iter().any(|e| e["action"] == "cost_code.created"),
        "{b}"
    );
    for (query, field, says) in [
        ("action=cost_code.update", "action", "cost_code.updated"),
        ("action=nothing", "action", "user.signed_in"),
        ("entity_type=costcode", "entity_type", "cost_code_list"),
        (
            "entity_type=user&action=cost_code.created",
            "action",
            "not a user",
        ),
    ] {
        let (s, b) = app.get(&app.c(&format!("/audit_events?{query}"))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {b}");
        assert!(field_error(&b, field).contains(says), "{query}: {b}");
    }
    assert_eq!(
        app.audit_actions("entity_type=cost_code&action=cost_code.created")
            .await,
        ["cost_code.created"]
    );
    let viewer = app
        .user("viewer@one.example", perms("read_only", "none", false))
        .await;
    for query in [
        "entity_type=api_client",
        "action=event_subscription.created",
    ] {
        let path = app.c(&format!("/audit_events?{query}"));
        let (s, b) = app.call("GET", &path, &viewer, None).await;
        assert_eq!(
            (s, b["error"]["details"]["required"].as_str()),
            (StatusCode::FORBIDDEN, Some("admin_tool=admin")),
            "{query}: {b}"
        );
    }
    // The page offers every type its viewer may filter by, and says what a typo gets wrong.
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let page = app.page(&cookie, "/settings/audit").await;
    assert!(
        page.contains(r#"<option value="event_subscription""#),
        "{page}"
    );
    let typo = app
        .page_with(
            "/settings/audit?action=cost_code.update",
            &[(reqwest::header::COOKIE, &cookie)],
        )
        .await;
    assert_eq!(typo.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(typo.text().await.unwrap().contains("cost_code.updated"));
    // An id that is not one is said so, not ignored (which listed every event).
    let not_an_id = app
        .page_with(
            "/settings/audit?entity_id=01-100",
            &[(reqwest::header::COOKIE, &cookie)],
        )
        .await;
    assert_eq!(not_an_id.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        not_an_id
            .text()
            .await
            .unwrap()
            .contains("&#39;01-100&#39; is not an id")
    );
}

/// Newest first, a page by number moved whenever an event was recorded: a client reading the
/// log page by page while people worked got the same rows twice. Without `page`, `rel="next"`
/// asks for the events before the page's last one, and `Total` still counts them all.
async fn the_audit_log_pages_by_key_while_events_are_recorded(app: TestApp) {
    let list = app.new_list("Ours").await;
    for n in 1..=5 {
        app.code(list, &format!("0{n}"), "General", None).await;
    }
    let page = async |path: &str| {
        let (total, next, body) = paged(app.request("GET", path).await).await;
        let ids: Vec<i64> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect();
        (ids, total, next)
    };
    let first = app.c("/audit_events?entity_type=cost_code&per_page=2");
    let (everything, ..) = page(&app.c("/audit_events?entity_type=cost_code")).await;
    assert_eq!(everything.len(), 5);
    let (mut seen, total, mut next) = page(&first).await;
    assert_eq!((seen.len(), total), (2, 5));
    assert!(
        next.as_deref()
            .is_some_and(|n| n.contains(&format!("before_id={}", seen[1]))),
        "{next:?}"
    );
    // Someone works while the client reads: the new event is newer than where it reads.
    app.code(list, "06", "General", None).await;
    let mut totals = Vec::new();
    while let Some(path) = next {
        let (ids, total, more) = page(&path).await;
        seen.extend(ids);
        totals.push(total);
        next = more;
        assert!(totals.len() < 5, "the links never end: {path}");
    }
    assert_eq!(seen, everything, "each event once, newest first");
    assert_eq!(totals, [6, 6], "the total counts every event, new ones too");
    let (s, b) = app
        .get(&app.c(&format!("/audit_events?page=1&before_id={}", everything[0])))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(field_error(&b, "before_id").contains("page"), "{b}");
}

/// The download reads the log a thousand events at a time, by key, and counts it once: a log
/// of more than one such page comes whole, each event once, newest first.
async fn the_audit_download_holds_every_event_once(app: TestApp) {
    let list = app.new_list("Ours").await;
    let rows: Vec<String> = (1..=1200).map(|n| format!("{n:04},Item {n}")).collect();
    app.import(
        list,
        format!("full_code,description\n{}\n", rows.join("\n")),
    )
    .await;
    let (total, ..) = paged(app.request("GET", &app.c("/audit_events?per_page=1")).await).await;
    assert!(total > 1200, "{total}");
    let cookie = crate::session::sign_in(&app, None).await;
    let text = app.page(&cookie, "/settings/audit.csv").await;
    assert!(
        !text.contains("cut this file"),
        "{}",
        &text[text.len() - 300..]
    );
    let ids: Vec<i64> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    // The sign-in above is one event more than the total read before it.
    assert_eq!(ids.len() as i64, total + 1, "{}", &text[..200]);
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "each once, newest first"
    );
}
