//! What a new company trips over (issue #14): which list is the ERP list when connecting, and
//! later; the queue's tabs following each code's current state; a folder that cannot take the
//! export file, said as a sentence.
use crate::both;
use crate::helpers::{ADMIN_LOGIN, TestApp, field_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

both!(
    connecting_takes_the_typed_list,
    the_erp_list_is_chosen_and_moves_only_while_unsent,
    tabs_follow_the_current_state,
    a_folder_in_the_way_is_a_sentence,
    pages_show_what_applies
);

fn file_connector(app: &TestApp) -> Value {
    json!({"kind": "file", "directory": app.export_dir(), "format": "iif",
        "gl_accounts": [{"code": "4000", "name": "Construction Income", "kind": "income"}]})
}

async fn erp_list_of(app: &TestApp) -> Vec<(i64, bool)> {
    let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
    lists
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["id"].as_i64().unwrap(), l["is_erp_list"] == true))
        .collect()
}

/// Saves a file connection choosing `list` as the ERP list (`null`: no choice).
async fn connect_with(app: &TestApp, list: Value) -> (StatusCode, Value) {
    let body = json!({"profile": "quickbooks_desktop", "connector": file_connector(app),
        "erp_list_id": list});
    app.put(&app.c("/erp_connection"), body).await
}

/// Makes `list` the ERP list of a connected company.
async fn move_erp_list(app: &TestApp, list: i64) -> (StatusCode, Value) {
    let body = json!({ "erp_list_id": list });
    app.put(&app.c("/erp_connection/erp_list"), body).await
}

/// The admin made a list and typed codes before connecting: connecting with that list makes
/// it the ERP list (no second, empty one), and its codes can be sent.
async fn connecting_takes_the_typed_list(app: TestApp) {
    let list = app.new_list("Estimating").await;
    app.code(list, "01", "General Requirements", None).await;
    let (s, b) = connect_with(&app, json!(list)).await;
    assert_eq!(
        (s, b["erp_list_id"].as_i64()),
        (StatusCode::OK, Some(list)),
        "{b}"
    );
    assert_eq!(erp_list_of(&app).await, [(list, true)]);
    let sent = app.send(list).await;
    assert_eq!(sent["sent_count"], 1, "{sent}");
}

async fn the_erp_list_is_chosen_and_moves_only_while_unsent(app: TestApp) {
    let a = app.new_list("Estimating").await;
    let b = app.new_list("Field").await;
    // Chosen when connecting.
    let (s, conn) = connect_with(&app, json!(b)).await;
    assert_eq!(
        (s, conn["erp_list_id"].as_i64()),
        (StatusCode::OK, Some(b)),
        "{conn}"
    );
    assert_eq!(erp_list_of(&app).await, [(a, false), (b, true)]);
    // A list that is not the company's is refused at the field, changing nothing.
    let (s, e) = connect_with(&app, json!(9999)).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(
        field_error(&e, "erp_list_id").contains("no cost code list 9999"),
        "{e}"
    );
    assert_eq!(erp_list_of(&app).await, [(a, false), (b, true)]);
    // Moved later, while nothing was sent from the current ERP list.
    let (s, conn) = move_erp_list(&app, a).await;
    assert_eq!(
        (s, conn["erp_list_id"].as_i64()),
        (StatusCode::OK, Some(a)),
        "{conn}"
    );
    assert_eq!(erp_list_of(&app).await, [(a, true), (b, false)]);
    assert!(
        app.audit_actions("action=cost_code_list.made_erp_list")
            .await
            .len()
            >= 2
    );
    // Once the ERP list was sent it stays the ERP list, and the refusal says what to do.
    app.code(a, "01", "General Requirements", None).await;
    app.send(a).await;
    let (s, e) = move_erp_list(&app, b).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let said = field_error(&e, "erp_list_id");
    assert!(said.contains("'Estimating' stays the ERP list"), "{said}");
    assert!(said.contains("import the file there"), "{said}");
    assert_eq!(erp_list_of(&app).await, [(a, true), (b, false)]);
    // Saving the connection again without a choice keeps the ERP list.
    let (s, conn) = connect_with(&app, Value::Null).await;
    assert_eq!(
        (s, conn["erp_list_id"].as_i64()),
        (StatusCode::OK, Some(a)),
        "{conn}"
    );
}

/// A code rejected, then re-sent and synced, counts as synced only; its synced row is not
/// also listed (and counted) under Rejected.
async fn tabs_follow_the_current_state(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.code(list, "01", "General Requirements", None).await;
    app.send(list).await;
    let (s, b) = app
        .post(
            &app.c("/erp/cost_codes/reject"),
            json!({"reason": "Use the long description"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, counts) = app.get(&app.c("/erp/cost_codes/counts")).await;
    assert_eq!(counts["rejected"], 1, "{counts}");
    app.send(list).await;
    app.accept_all().await;
    let (_, counts) = app.get(&app.c("/erp/cost_codes/counts")).await;
    assert_eq!(
        (counts["rejected"].as_i64(), counts["synced"].as_i64()),
        (Some(0), Some(1)),
        "{counts}"
    );
    assert!(app.items("rejected").await.is_empty());
    assert_eq!(app.items("synced").await.len(), 1);
    // A filter's page gives the same total as its tab.
    for (filter, total) in [("rejected", "0"), ("synced", "1"), ("ready_to_export", "0")] {
        let res = app
            .request("GET", &app.c(&format!("/erp/cost_codes?filter={filter}")))
            .await;
        assert_eq!(res.headers()["total"].to_str().unwrap(), total, "{filter}");
    }
}

/// "Is a directory (os error 21)" becomes a sentence that says who refused and what to do.
async fn a_folder_in_the_way_is_a_sentence(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.code(list, "01", "General Requirements", None).await;
    app.send(list).await;
    let job = app.accept_waiting().await;
    let id = job["export_job_id"].as_i64().unwrap();
    std::fs::create_dir(app.export_dir().join(format!("costbridge-export-{id}.iif"))).unwrap();
    app.run_worker().await;
    let (_, status) = app.get(&app.c(&format!("/erp/export_jobs/{id}"))).await;
    let said = status["last_error"].as_str().unwrap_or_default();
    assert!(
        said.starts_with(&format!(
            "Costbridge cannot write the export file costbridge-export-{id}.iif in "
        )),
        "{status}"
    );
    assert!(said.contains("remove or rename that folder"), "{said}");
    assert!(!said.contains("os error"), "{said}");
}

/// The pages offer and say what applies to the person and the code: levels in words, the
/// daily summary only for approvers, no Delete on a code the ERP has had.
async fn pages_show_what_applies(app: TestApp) {
    app.user(
        "viewer@one.example",
        json!({"admin_tool": "read_only", "erp_integrations": "read_only",
            "can_push_to_accounting": false}),
    )
    .await;
    let list = app.connect("quickbooks_desktop", "iif").await;
    let synced = app.code(list, "01", "General Requirements", None).await;
    app.send(list).await;
    app.accept_all().await;
    let fresh = app.code(list, "02", "Existing Conditions", None).await;
    let (client, cookie) = app.session(ADMIN_LOGIN[0].1, ADMIN_LOGIN[1].1).await;
    let page = |path: &str| {
        let (client, cookie, url) = (
            client.clone(),
            cookie.clone(),
            format!("{}{path}", app.base),
        );
        async move {
            let res = client
                .get(url)
                .header(reqwest::header::COOKIE, cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            res.text().await.unwrap()
        }
    };
    let users = page("/settings/users").await;
    let viewer = &users[users.find("viewer@one.example").unwrap()..];
    let viewer = &viewer[..viewer.find("</tr>").unwrap()];
    assert!(viewer.contains("<td>Read-only</td>"), "{viewer}");
    assert!(!viewer.contains("read_only"), "{viewer}");
    assert!(viewer.contains("only for approvers"), "{viewer}");
    let codes = page(&format!("/codes?list={list}")).await;
    let (a, b) = (&synced["id"], &fresh["id"]);
    assert!(
        codes.contains(&format!("/codes/{list}/{a}/active")),
        "{codes}"
    );
    assert!(
        !codes.contains(&format!("/codes/{list}/{a}/delete")),
        "{codes}"
    );
    assert!(
        codes.contains(&format!("/codes/{list}/{b}/delete")),
        "{codes}"
    );
}
