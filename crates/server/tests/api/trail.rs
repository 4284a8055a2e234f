//! What an auditor reads: submissions (who sent what, which items, which jobs), the values the
//! ERP last confirmed on each code, retrieved items, and the request id in the log.
use crate::helpers::TestApp;
use reqwest::StatusCode;
use serde_json::json;

crate::both!(submissions_say_who_sent_what_and_where_it_went);

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
