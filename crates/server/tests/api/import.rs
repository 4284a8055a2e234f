use crate::both;
use crate::helpers::{TestApp, field_error};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

both!(
    import_is_all_or_nothing,
    import_then_export_round_trips,
    an_empty_or_missing_active_keeps_a_code_switched_off,
    the_export_opens_in_excel_and_imports_back_unchanged,
    codes_a_spreadsheet_took_for_numbers_are_refused_by_name,
    files_as_spreadsheets_save_them_import,
);

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

/// Excel opens `01` as the number 1: a list exported, edited in Excel and imported back came
/// in as new codes `1`, `1-100` beside `01`, `01-100`. Each such row is refused, naming the
/// list's code it stands for; a new code that looks like none goes in once they are fixed
/// (`A1` beside `A01` too: a spreadsheet keeps a cell with a letter as text).
async fn codes_a_spreadsheet_took_for_numbers_are_refused_by_name(app: TestApp) {
    let list = app.new_list("Estimating").await;
    app.import(
        list,
        "full_code,description\n01,General\n01-100,Fees\nA01,Alpha\n".into(),
    )
    .await;
    let path = app.c(&format!("/cost_code_lists/{list}/import"));
    let mangled = "full_code,description\n1,General\n1-100,Fees\n02,Site Work\n";
    let (s, e) = app
        .raw("POST", &path, "text/csv", mangled.as_bytes().to_vec())
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let rows: Vec<(i64, &str)> = e["error"]["details"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["row"].as_i64().unwrap(), r["errors"][0].as_str().unwrap()))
        .collect();
    assert_eq!(rows.len(), 2, "{e}");
    assert_eq!(rows[0].0, 2);
    assert!(
        rows[0]
            .1
            .starts_with("full_code '1' is the list's '01' with other leading zeros"),
        "{e}"
    );
    assert!(rows[1].1.contains("write it '01-100'"), "{e}");
    let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
    assert_eq!(lists[0]["codes_count"], 3, "nothing was applied");
    let fixed = app
        .import(
            list,
            "full_code,description\n01,General\n02,Site Work\nA1,Alpha one\n".into(),
        )
        .await;
    assert_eq!(fixed["created"], 2, "{fixed}");
    // Codes Excel took for dates come back as dates: each row says so, and nothing applies
    // (`4-Mar` was refused only by chance before, as a child of a missing '4'; `3/30/2000` was
    // created as a new top-tier code).
    let dated = "full_code,description\n4-Mar,Section 4 of 3\n3/30/2000,Finishes\n03,Concrete\n";
    let (s, e) = app
        .raw("POST", &path, "text/csv", dated.as_bytes().to_vec())
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let said: Vec<&str> = e["error"]["details"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["errors"][0].as_str().unwrap())
        .collect();
    assert_eq!(said.len(), 2, "{e}");
    for (said, code) in said.iter().zip(["4-Mar", "3/30/2000"]) {
        assert!(
            said.starts_with(&format!(
                "full_code '{code}' looks like a date a spreadsheet made of a code"
            )),
            "{said}"
        );
    }
    let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
    assert_eq!(lists[0]["codes_count"], 5, "nothing was applied");
}

/// A code as the API has it, by full code.
async fn code_of(app: &TestApp, list: i64, full: &str) -> Value {
    let (_, codes) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes?per_page=100")))
        .await;
    codes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["full_code"] == full)
        .unwrap_or_else(|| panic!("no {full} in {codes}"))
        .clone()
}

/// A deactivated code came back on from a file that did not say `active`, and was sent again.
async fn an_empty_or_missing_active_keeps_a_code_switched_off(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.import(
        list,
        "full_code,description,active\n02,Existing Conditions,true\n".into(),
    )
    .await;
    app.send(list).await;
    app.accept_all().await;
    let id = code_of(&app, list, "02").await["id"].clone();
    app.patched(
        &app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}")),
        json!({"active": false}),
    )
    .await;
    app.send(list).await;
    app.accept_all().await;
    for file in [
        "full_code,description\n02,Existing Conditions\n03,Concrete\n",
        "full_code,description,active\n02,Existing Conditions,\n03,Concrete, \n04,Masonry,\n",
    ] {
        let r = app.import(list, file.into()).await;
        assert_eq!(r["updated"], 0, "{file:?} -> {r}");
        let code = code_of(&app, list, "02").await;
        assert_eq!(
            (&code["active"], &code["sync_status"]),
            (&json!(false), &json!("synced")),
            "{file:?} -> {code}"
        );
    }
    // A new code without a value is active.
    for full in ["03", "04"] {
        assert_eq!(code_of(&app, list, full).await["active"], true, "{full}");
    }
    // Said explicitly, it still switches the code on.
    let r = app
        .import(
            list,
            "full_code,description,active\n02,Existing Conditions,yes\n".into(),
        )
        .await;
    assert_eq!(r["updated"], 1, "{r}");
    assert_eq!(code_of(&app, list, "02").await["sync_status"], "modified");
}

/// Excel on Windows read the export without a BOM as its code page (`BÃ©ton armÃ©`): the
/// pages' downloads carry one. The API's and the CLI's export, which programs read, do not
/// (a client's first column would be `\u{feff}full_code`).
async fn the_export_opens_in_excel_and_imports_back_unchanged(app: TestApp) {
    let list = app.new_list("Estimating").await;
    let file = "full_code,description,active\n03,Béton armé,true\n03-100,\"Coffrage, bois\",false\n\
                03-200,'-2+3 Überzug,true\n";
    let r = app.import(list, file.into()).await;
    assert_eq!(r["created"], 3, "{r}");
    let api = app.export(list).await.bytes().await.unwrap();
    assert!(
        api.starts_with(b"full_code,description,active\n"),
        "{api:?}"
    );
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let exported = app
        .page_with(&format!("/codes/{list}/export.csv"), &[(COOKIE, &cookie)])
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(exported[..3], *"\u{feff}".as_bytes());
    assert_eq!(exported[3..], api[..]);
    assert!(
        String::from_utf8_lossy(&exported).contains("\n03,Béton armé,true\n"),
        "{exported:?}"
    );
    let (s, r) = app
        .raw(
            "POST",
            &app.c(&format!("/cost_code_lists/{list}/import")),
            "text/csv",
            exported.to_vec(),
        )
        .await;
    assert_eq!(
        (s, r),
        (
            StatusCode::OK,
            json!({"created": 0, "updated": 0, "unchanged": 3})
        )
    );
    // The audit log's download too.
    let audit = app
        .page_with("/settings/audit.csv", &[(COOKIE, &cookie)])
        .await
        .bytes()
        .await
        .unwrap();
    assert!(audit.starts_with("\u{feff}id,at,".as_bytes()), "{audit:?}");
}

/// European Excel separates with `;`, "Text (Tab delimited)" with tabs, "Macintosh Comma
/// Separated" ends lines with CR alone, and Excel leaves rows of commas below the data.
async fn files_as_spreadsheets_save_them_import(app: TestApp) {
    let list = app.new_list("Estimating").await;
    let path = app.c(&format!("/cost_code_lists/{list}/import"));
    let import = async |csv: &str| {
        app.raw("POST", &path, "text/csv", csv.as_bytes().to_vec())
            .await
    };
    let rows_said = |e: &Value| -> Vec<(i64, String)> {
        e["error"]["details"]["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("{e}"))
            .iter()
            .map(|r| {
                (
                    r["row"].as_i64().unwrap(),
                    r["errors"][0].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (s, e) =
        import("full_code,description,active\r01,General,true\r02,Site,true\r03,Concrete,maybe\r")
            .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        rows_said(&e),
        [(4, "active must be true or false, not 'maybe'".to_owned())]
    );
    let (s, e) = import("full_code,description,active\n01,\"General\nRequirements\",true\n").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(
        rows_said(&e),
        [(
            2,
            "description contains a line break; replace it with a space".to_owned()
        )]
    );
    let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
    assert_eq!(lists[0]["codes_count"], 0, "nothing was applied: {lists}");

    let (s, r) = import("\u{feff}full_code;description;active\r\n01;Général, divers;true\r\n01-100;Frais;false\r\n;;\r\n;;\r\n").await;
    assert_eq!(
        (s, r),
        (
            StatusCode::OK,
            json!({"created": 2, "updated": 0, "unchanged": 0})
        )
    );
    assert_eq!(
        code_of(&app, list, "01").await["description"],
        "Général, divers"
    );
    let (s, r) =
        import("full_code\tdescription\tactive\n01\tGénéral, divers\ttrue\n02\tSite\ttrue\n\t\t\n")
            .await;
    assert_eq!(
        (s, r),
        (
            StatusCode::OK,
            json!({"created": 1, "updated": 0, "unchanged": 1})
        )
    );
    let (s, r) = import("full_code,description,active\r02,Site work,true\r,,\r").await;
    assert_eq!(
        (s, r),
        (
            StatusCode::OK,
            json!({"created": 0, "updated": 1, "unchanged": 0})
        )
    );
}
