use crate::both;
use crate::helpers::{TestApp, field_error};
use reqwest::StatusCode;
use serde_json::json;

both!(import_is_all_or_nothing, import_then_export_round_trips);

async fn import_is_all_or_nothing(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let path = app.c(&format!("/cost_code_lists/{list}/import"));
    let import = async |csv: &[u8]| app.raw("POST", &path, "text/csv", csv.to_vec()).await;
    let bad = "full_code,description,active\n01,General,true\n01-100,Fees,maybe\n01,Again,true\n09-900,Orphan,true\n1-2-3-4-5-6,Deep,true\n02,,true\n";
    let (s, e) = import(bad.as_bytes()).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
        "{e}"
    );
    let rows = e["error"]["details"]["rows"].as_array().unwrap();
    let summary: Vec<(i64, &str)> = rows
        .iter()
        .map(|r| (r["row"].as_i64().unwrap(), r["errors"][0].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            (3, "active must be true or false, not 'maybe'"),
            (4, "duplicate of row 2"),
            (5, "parent '09' is neither in the file nor in the list"),
            (6, "full_code would be tier 6; at most 5 tiers are allowed"),
            (7, "description is required"),
        ]
    );
    let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
    assert_eq!(lists[0]["codes_count"], 0, "nothing was applied");
    let (s, e) = import(b"full_code,description\n01,Caf\xe9\n").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&e, "file").contains("not UTF-8"), "{e}");
    let (_, e) = import(b"code,name\n01,x\n").await;
    assert!(
        field_error(&e, "file").contains("missing the column(s) full_code, description"),
        "{e}"
    );
    let good = "full_code,description,active\n01-100,Fees,true\n01,General,true\n02,Site,false\n";
    let (s, r) = import(good.as_bytes()).await;
    assert_eq!(
        (s, r),
        (
            StatusCode::OK,
            json!({"created": 3, "updated": 0, "unchanged": 0})
        )
    );
    let again = "full_code,description,active\n01-100,Fees and permits,true\n01,General,true\n";
    let (_, r) = import(again.as_bytes()).await;
    assert_eq!(r, json!({"created": 0, "updated": 1, "unchanged": 1}));
    // A pending code refuses changes from a file too, and the whole file is refused.
    app.send(list).await;
    let (s, e) = import(b"full_code,description\n03,New\n01,Changed\n").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["details"]["rows"][0]["row"], 3);
    assert!(
        e["error"]["details"]["rows"][0]["errors"][0]
            .as_str()
            .unwrap()
            .contains("pending"),
        "{e}"
    );
    let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
    assert_eq!(lists[0]["codes_count"], 3, "{lists}");
}

async fn import_then_export_round_trips(app: TestApp) {
    let (_, l) = app
        .post(&app.c("/cost_code_lists"), json!({"name": "Estimating"}))
        .await;
    let list = l["id"].as_i64().unwrap();
    let mut csv = String::from("full_code,description,active\n");
    for d in (1..=40).rev() {
        csv.push_str(&format!("{d},\"Division {d}, general\",true\n"));
        for s in [100, 20, 3] {
            csv.push_str(&format!("{d}-{s},Section {s},{}\n", s != 3));
        }
    }
    let r = app.import(list, csv).await;
    assert_eq!(r["created"].as_i64(), Some(160), "{r}");
    let res = app.export(list).await;
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().take(6).collect();
    assert_eq!(
        lines,
        [
            "full_code,description,active",
            "1,\"Division 1, general\",true",
            "1-3,Section 3,false",
            "1-20,Section 20,true",
            "1-100,Section 100,true",
            "2,\"Division 2, general\",true"
        ]
    );
}
