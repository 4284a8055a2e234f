//! The `costbridge` commands, run as a newcomer or a script would run them.
use std::process::Command;

fn costbridge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_costbridge"))
        .args(args)
        .output()
        .expect("run costbridge")
}

#[test]
fn bootstrap_import_export_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());
    let out = costbridge(&[
        "bootstrap",
        "--company",
        "Cli Co",
        "--email",
        "cli@example.com",
        "--password",
        "cli-password-1",
        "--database-url",
        &db,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (ids["company_id"].as_i64(), ids["user_id"].as_i64()),
        (Some(1), Some(1))
    );
    assert!(ids["token"].as_str().unwrap().starts_with("cb_"));
    let again = costbridge(&[
        "bootstrap",
        "--company",
        "Cli Co",
        "--email",
        "other@example.com",
        "--password",
        "cli-password-1",
        "--database-url",
        &db,
    ]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A list to import into, made over the API of the same database.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let list = rt.block_on(async {
        let db = costbridge_storage::Db::connect(&db).await.unwrap();
        db.create_list(1, 1, "Estimating").await.unwrap().id
    });
    let csv = dir.path().join("codes.csv");
    std::fs::write(
        &csv,
        "full_code,description,active\n01,General,true\n01-100,Fees,true\n",
    )
    .unwrap();
    let (company, list) = ("1".to_owned(), list.to_string());
    let out = costbridge(&[
        "import",
        "--company",
        &company,
        "--list",
        &list,
        "--file",
        csv.to_str().unwrap(),
        "--database-url",
        &db,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"created":2,"updated":0,"unchanged":0}"#
    );
    std::fs::write(&csv, "full_code,description,active\n02-100,Orphan,true\n").unwrap();
    let out = costbridge(&[
        "import",
        "--company",
        &company,
        "--list",
        &list,
        "--file",
        csv.to_str().unwrap(),
        "--database-url",
        &db,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("parent '02' is neither in the file nor in the list")
    );
    let out = costbridge(&[
        "export",
        "--company",
        &company,
        "--list",
        &list,
        "--database-url",
        &db,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "full_code,description,active\n01,General,true\n01-100,Fees,true\n"
    );

    let out = costbridge(&["default-config"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("[worker]"));
    let out = costbridge(&["migrate", "--database-url", &db]);
    assert!(out.status.success());
}
