//! Formula injection (issue #9, point 3): every CSV the product writes (the list export, the
//! file connector's CSV and IIF, the audit log) guards cells a spreadsheet would run as a formula with a
//! leading `'`, and our own export imports back unchanged.
use crate::both;
use crate::helpers::{TestApp, perms};
use crate::session::sign_in;
use reqwest::StatusCode;
use serde_json::json;

both!(
    the_list_export_guards_formulas_and_imports_back_unchanged,
    the_file_connector_csv_guards_formulas,
    the_iif_file_guards_formulas,
    the_audit_csv_guards_formulas,
);

const HOSTILE: [&str; 6] = [
    "=HYPERLINK(\"http://evil.example\",\"open\")",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "- dash first, truly",
    "'=already quoted",
];

/// No cell of `text` starts with a formula trigger.
fn no_formula_cells(text: &str) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?} in\n{text}"
            );
        }
    }
}

async fn export_text(app: &TestApp, list: i64) -> String {
    let res = app.export(list).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

async fn the_list_export_guards_formulas_and_imports_back_unchanged(app: TestApp) {
    let (_, l) = app
        .post(&app.c("/cost_code_lists"), json!({"name": "Estimating"}))
        .await;
    let list = l["id"].as_i64().unwrap();
    for (i, d) in HOSTILE.iter().enumerate() {
        app.code(list, &format!("{}", i + 1), d, None).await;
    }
    let text = export_text(&app, list).await;
    no_formula_cells(&text);
    assert!(text.contains("\"'=HYPERLINK("), "{text}");
    assert!(text.contains("\n3,'-2+3,true"), "{text}");
    assert!(text.contains("\n6,''=already quoted,true"), "{text}");
    // The same file, imported into a new list, gives back the same descriptions.
    let (_, l) = app
        .post(&app.c("/cost_code_lists"), json!({"name": "Copy"}))
        .await;
    let copy = l["id"].as_i64().unwrap();
    let (s, r) = app
        .raw(
            "POST",
            &app.c(&format!("/cost_code_lists/{copy}/import")),
            "text/csv",
            text.clone().into_bytes(),
        )
        .await;
    assert_eq!((s, r["created"].as_i64()), (StatusCode::OK, Some(6)), "{r}");
    let (_, codes) = app
        .get(&app.c(&format!("/cost_code_lists/{copy}/cost_codes")))
        .await;
    let mut got: Vec<(String, String)> = codes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["full_code"].as_str().unwrap().to_owned(),
                c["description"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("{}", i + 1), (*d).to_owned()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(export_text(&app, copy).await, text);
}

/// Codes `01`, `02`, … with these descriptions, sent and exported through the file connector
/// for `profile` in `format`; the file's text.
async fn exported_file(
    app: &TestApp, profile: &str, format: &str, descriptions: &[&str],
) -> String {
    let list = app.connect(profile, format).await;
    for (i, d) in descriptions.iter().enumerate() {
        app.code(list, &format!("{:02}", i + 1), d, None).await;
    }
    app.send(list).await;
    app.accept_all().await;
    let file = std::fs::read_dir(app.export_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == format))
        .expect("an exported file");
    std::fs::read_to_string(file).unwrap()
}

async fn the_file_connector_csv_guards_formulas(app: TestApp) {
    let text = exported_file(&app, "tryton", "csv", &["=1+2", "@SUM(A1)"]).await;
    no_formula_cells(&text);
    assert!(
        text.contains(",'=1+2,") && text.contains(",'@SUM(A1),"),
        "{text}"
    );
}

/// IIF is tab-separated text that people open in a spreadsheet before importing it.
async fn the_iif_file_guards_formulas(app: TestApp) {
    let hostile = [
        "=HYPERLINK(\"http://evil.example\")",
        "@SUM(A1)",
        "- dash first",
    ];
    let text = exported_file(&app, "quickbooks_desktop", "iif", &hostile).await;
    for cell in text.lines().flat_map(|l| l.split('\t')) {
        assert!(
            !cell.starts_with(['=', '+', '-', '@']),
            "{cell:?} in\n{text}"
        );
    }
    assert!(
        text.contains("\t'=HYPERLINK(\"http://evil.example\")\t")
            && text.contains("\t'@SUM(A1)\t")
            && text.contains("\t'- dash first\t"),
        "{text}"
    );
}

async fn the_audit_csv_guards_formulas(app: TestApp) {
    // An email may start with a formula character; it is the actor column of the audit log.
    let token = app
        .user("=1+2@one.example", perms("admin", "none", false))
        .await;
    let (s, _) = app
        .call(
            "POST",
            &app.c("/cost_code_lists"),
            &token,
            Some(json!({"name": "-2+3"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let cookie = sign_in(&app, None).await;
    let text = app.page(&cookie, "/settings/audit.csv").await;
    no_formula_cells(&text);
    assert!(text.contains(",'=1+2@one.example,"), "{text}");
}
