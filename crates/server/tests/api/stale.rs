//! The stale-page check refuses a send only when what it would send changed since the page was
//! drawn, and then says which codes changed.
use crate::helpers::TestApp;
use reqwest::StatusCode;
use serde_json::json;

crate::both!(only_changes_to_what_a_send_takes_make_a_page_stale);

async fn only_changes_to_what_a_send_takes_make_a_page_stale(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let general = app.code(list, "01", "General", None).await;
    app.code(list, "02", "Site", None).await;
    app.send(list).await;
    app.accept_all().await;
    let path = app.c(&format!("/cost_code_lists/{list}/send_to_erp"));
    let edit = async |id: &serde_json::Value, body: serde_json::Value| {
        app.patch(
            &app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}")),
            body,
        )
        .await
    };
    let (s, _) = edit(&general["id"], json!({"description": "General conditions"})).await;
    assert_eq!(s, StatusCode::OK);
    let (_, seen) = app.get(&path).await;
    assert_eq!(seen["unsynced_count"], 1);

    // What leaves the unsynced codes as they were: the same value again on a synced code
    // (which writes nothing, not even a new list version), and a write to another list.
    let (_, codes) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes?q=02")))
        .await;
    let (s, _) = edit(&codes[0]["id"], json!({"description": "Site"})).await;
    assert_eq!(s, StatusCode::OK);
    let other = app
        .created(&app.c("/cost_code_lists"), json!({"name": "Estimating"}))
        .await;
    app.code(other["id"].as_i64().unwrap(), "99", "Elsewhere", None)
        .await;
    let (_, now) = app.get(&path).await;
    assert_eq!(now["list_version"], seen["list_version"]);
    let sent = app
        .created(&path, json!({"list_version": seen["list_version"]}))
        .await;
    assert_eq!(sent["sent_count"], 1);

    // A new code and an edit to a waiting one do change what a send takes: refused, named.
    let (_, seen) = app.get(&path).await;
    app.code(list, "03", "Fees", None).await;
    let (s, e) = app
        .post(&path, json!({"list_version": seen["list_version"]}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("stale_page"))
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("1 code changed (03)"), "{message}");
    assert_eq!(app.items("ready_to_export").await.len(), 1, "nothing sent");
}
