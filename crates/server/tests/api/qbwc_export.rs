//! Exports through the QuickBooks Web Connector (harness in `qbwc.rs`): rounds, QuickBooks'
//! refusals, conflicts, sessions cut off or killed, two companies at once, Sync from ERP.
use crate::both;
use crate::helpers::TestApp;
use crate::qbwc::{WebConnector, codes, connect, first_session, import, send_and_export};
use crate::qbwc_standin::QuickBooksStandIn;
use reqwest::StatusCode;
use serde_json::{Value, json};

both!(
    a_500_code_export_goes_over_several_rounds,
    quickbooks_errors_fail_their_code_alone,
    a_stale_edit_sequence_fails_then_shows_the_conflict,
    a_session_cut_off_resumes_without_creating_twice,
    two_companies_web_connectors_at_once,
    sync_from_erp_waits_for_the_next_run,
    codes_exported_as_iif_move_to_the_web_connector,
);

async fn a_500_code_export_goes_over_several_rounds(app: TestApp) {
    let (list, qbwc) = connect(&app, &app.token, app.company).await;
    let mut qb = QuickBooksStandIn::new();
    first_session(&qbwc, &mut qb).await;
    import(&app, list, 500).await;
    let job = send_and_export(&app, list, "Construction Income", Some("Job Materials")).await;
    let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
    assert_eq!(st["status"], "queued", "waits for the Web Connector: {st}");
    let (_, q) = app.get(&app.c("/erp_connection/qbwc")).await;
    assert_eq!(q["waiting_codes"], 500);

    let s = qbwc.session(&mut qb).await;
    // Accounts, then per 100 codes a query round and a write round.
    assert_eq!(s.rounds, 11, "{s:?}");
    assert!(s.percentages.windows(2).all(|w| w[0] <= w[1]), "{s:?}");
    assert_eq!(s.percentages.last(), Some(&100));
    assert!(s.percentages.iter().any(|p| *p > 0 && *p < 100), "{s:?}");
    assert!(s.close.starts_with("Costbridge: done."), "{}", s.close);
    let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
    assert_eq!(st["status"], "done", "{st}");
    assert_eq!(
        st["counts"],
        json!({"synced": 500, "failed": 0, "exporting": 0})
    );
    // One service item per code, tiers as sub-items, accounts on SalesAndPurchase, ListID kept.
    assert_eq!(qb.items.len(), 500);
    let sub = qb
        .by_full_name("01:01-001")
        .expect("a sub-item under its division");
    assert_eq!(
        (
            sub.description.as_str(),
            sub.income.as_deref(),
            sub.expense.as_deref()
        ),
        (
            "Code 01-001",
            Some("Construction Income"),
            Some("Job Materials")
        )
    );
    for c in codes(&app, list).await {
        assert_eq!(c["sync_status"], "synced", "{c}");
        let item = &qb.items[c["origin_id"].as_str().unwrap()];
        assert_eq!(
            qb.full_name(item).rsplit(':').next(),
            c["full_code"].as_str()
        );
    }
    let ev = app.audit_actions("action=cost_code.synced").await;
    assert_eq!(ev.iter().filter(|a| *a == "cost_code.synced").count(), 500);
}

async fn quickbooks_errors_fail_their_code_alone(app: TestApp) {
    let (list, qbwc) = connect(&app, &app.token, app.company).await;
    let mut qb = QuickBooksStandIn::new();
    first_session(&qbwc, &mut qb).await;
    import(&app, list, 4).await; // 01, 01-001, 01-002, 01-003
    // 01-002 is a customer's name in QuickBooks; the expense account is gone by the next run.
    qb.other_names.push("01:01-002".into());
    send_and_export(&app, list, "Construction Income", None).await;
    let s = qbwc.session(&mut qb).await;
    assert_eq!(s.percentages.last(), Some(&100), "{s:?}");
    let failed = app.items("failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let m = failed[0]["erp_message"].as_str().unwrap();
    assert_eq!(failed[0]["full_code"], "01-002");
    assert!(m.starts_with("QuickBooks refused '01-002' (status 3100): The name \"01:01-002\" of the list element is already in use."), "{m}");
    assert_eq!(
        failed[0]["refused_by"], "QuickBooks Desktop",
        "the ERP refused it, by name"
    );
    assert_eq!(app.items("synced").await.len(), 3);

    // A bad account reference (3140): the account was removed in QuickBooks after the chart was read.
    app.code(
        list,
        "004",
        "Formwork",
        Some(
            codes(&app, list)
                .await
                .iter()
                .find(|c| c["full_code"] == "01")
                .unwrap()["id"]
                .as_i64()
                .unwrap(),
        ),
    )
    .await;
    send_and_export(&app, list, "Service Income", None).await;
    qb.accounts.retain(|(n, _, _)| n != "Service Income");
    let s = qbwc.session(&mut qb).await;
    assert_eq!(s.percentages.last(), Some(&100), "{s:?}");
    let failed = app.items("failed").await;
    let f = failed
        .iter()
        .find(|i| i["full_code"] == "01-004")
        .expect("01-004 failed");
    assert!(
        f["erp_message"].as_str().unwrap().contains(
            "(status 3140): There is an invalid reference to QuickBooks Account \"Service Income\""
        ),
        "{f}"
    );
    // The failed codes' sender is told by email, as with any ERP.
    let ev = app.audit_actions("entity_type=cost_code").await;
    assert!(ev.iter().any(|a| a == "cost_code.failed"), "{ev:?}");
}

async fn a_stale_edit_sequence_fails_then_shows_the_conflict(app: TestApp) {
    let (list, qbwc) = connect(&app, &app.token, app.company).await;
    let mut qb = QuickBooksStandIn::new();
    first_session(&qbwc, &mut qb).await;
    import(&app, list, 2).await; // 01, 01-001
    send_and_export(&app, list, "Construction Income", None).await;
    qbwc.session(&mut qb).await;
    assert_eq!(app.items("synced").await.len(), 2);
    let all = codes(&app, list).await;
    let child = all.iter().find(|c| c["full_code"] == "01-001").unwrap();
    let id = child["id"].as_i64().unwrap();
    let origin = child["origin_id"].as_str().unwrap().to_owned();
    app.patched(
        &app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}")),
        json!({"description": "Concrete work"}),
    )
    .await;
    send_and_export(&app, list, "Construction Income", None).await;
    // Someone edits the item in QuickBooks between Costbridge's query and its modification.
    let s = qbwc
        .session_with(&mut qb, None, |qb, _, request| {
            if request.contains("<ItemServiceModRq") {
                qb.edit("01:01-001", "Edited in QuickBooks");
            }
        })
        .await;
    assert_eq!(s.percentages.last(), Some(&100), "{s:?}");
    let failed = app.items("failed").await;
    assert_eq!(failed.len(), 1);
    let m = failed[0]["erp_message"].as_str().unwrap();
    assert!(
        m.contains("(status 3200): The provided edit sequence"),
        "{m}"
    );
    assert_eq!(
        qb.items[&origin].description, "Edited in QuickBooks",
        "never overwritten"
    );
    // Retried: now Costbridge sees the newer EditSequence and shows both sides.
    app.accepted(&app.c("/erp/cost_codes/retry"), json!({}))
        .await;
    qbwc.session(&mut qb).await;
    let failed = app.items("failed").await;
    let m = failed[0]["erp_message"].as_str().unwrap();
    assert!(
        m.starts_with("conflict: the service item was changed in QuickBooks"),
        "{m}"
    );
    assert!(
        m.contains("QuickBooks has: '01:01-001', description 'Edited in QuickBooks'")
            && m.contains("Costbridge last confirmed: '01:01-001', description 'Code 01-001'"),
        "{m}"
    );
    assert_eq!(qb.items[&origin].description, "Edited in QuickBooks");
    assert_eq!(qb.items.len(), 2);
    // Someone changes it back in QuickBooks (a newer EditSequence, the confirmed values): the
    // retried export goes through.
    qb.edit("01:01-001", "Code 01-001");
    app.accepted(&app.c("/erp/cost_codes/retry"), json!({}))
        .await;
    qbwc.session(&mut qb).await;
    assert!(app.items("failed").await.is_empty());
    assert_eq!(qb.items[&origin].description, "Concrete work");
}

async fn a_session_cut_off_resumes_without_creating_twice(app: TestApp) {
    let (list, qbwc) = connect(&app, &app.token, app.company).await;
    let mut qb = QuickBooksStandIn::new();
    first_session(&qbwc, &mut qb).await;
    import(&app, list, 150).await;
    send_and_export(&app, list, "Construction Income", None).await;
    // Round 1 reads accounts, 2 queries the first 100 codes, 3 adds them: its answer is lost.
    let s = qbwc.session_with(&mut qb, Some(3), |_, _, _| {}).await;
    assert_eq!(s.rounds, 3);
    assert_eq!(qb.items.len(), 100, "QuickBooks made them");
    assert_eq!(app.items("synced").await.len(), 0, "Costbridge never heard");
    let (_, st) = app.get(&app.c("/erp_connection/qbwc")).await;
    assert_eq!(st["waiting_codes"], 150);
    // The next session asks again, takes what QuickBooks made, and adds the rest.
    let s = qbwc.session(&mut qb).await;
    assert_eq!(s.percentages.last(), Some(&100), "{s:?}");
    assert_eq!(qb.items.len(), 150, "nothing twice");
    assert_eq!(app.items("synced").await.len(), 150);
    let adds: usize = qb
        .requests
        .iter()
        .map(|r| r.matches("<ItemServiceAddRq").count())
        .sum();
    assert_eq!(adds, 150, "no add was repeated");
}

async fn two_companies_web_connectors_at_once(app: TestApp) {
    let (two, admin) = app
        .two_builders("admin@two.example", "Bo", "second-admin-password")
        .await;
    let token2 = app.token_for(admin).await;
    let (list1, qbwc1) = connect(&app, &app.token, app.company).await;
    let (list2, qbwc2) = connect(&app, &token2, two).await;
    assert_ne!(qbwc1.user, qbwc2.user);
    let (mut qb1, mut qb2) = (QuickBooksStandIn::new(), QuickBooksStandIn::new());
    first_session(&qbwc1, &mut qb1).await;
    first_session(&qbwc2, &mut qb2).await;
    import(&app, list1, 120).await;
    send_and_export(&app, list1, "Construction Income", None).await;
    let c2 = |p: &str| format!("/api/v1/companies/{two}{p}");
    let mut csv = String::from("full_code,description,active\n");
    for d in 50..80 {
        csv.push_str(&format!("{d},Division {d},true\n"));
    }
    crate::helpers::import_and_send(
        &app.base,
        &token2,
        &c2(&format!("/cost_code_lists/{list2}")),
        csv,
    )
    .await;
    let (s, b) = app
        .call(
            "POST",
            &c2("/erp/cost_codes/export"),
            &token2,
            Some(json!({"gl_income_account": "Service Income"})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    // Another company's password is not this one's.
    let wrong = WebConnector::new(&app.base, &qbwc1.user, &qbwc2.password);
    assert_eq!(wrong.authenticate(&qbwc2.password).await.1, "nvu");
    let (s1, s2) = tokio::join!(qbwc1.session(&mut qb1), qbwc2.session(&mut qb2));
    assert_eq!(
        (s1.percentages.last(), s2.percentages.last()),
        (Some(&100), Some(&100)),
        "{s1:?} {s2:?}"
    );
    assert_eq!((qb1.items.len(), qb2.items.len()), (120, 30));
    assert!(qb2.by_full_name("50").is_some() && qb1.by_full_name("50").is_none());
    assert!(
        qb2.items
            .values()
            .all(|i| i.income.as_deref() == Some("Service Income"))
    );
}

/// `costbridge serve` killed with SIGKILL in the middle of Web Connector sessions, twice:
/// after QuickBooks did a round's work and before its answer reached Costbridge. The next
/// sessions finish the export with every code in QuickBooks exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_session_loses_and_duplicates_nothing() {
    use crate::tryton::Server;
    use std::process::Command;
    const N: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("qbwc-crash.db").display());
    let ids = Server::bootstrap(&db);
    let token = ids["token"].as_str().unwrap().to_owned();
    let c = |p: &str| format!("/api/v1/companies/{}{p}", ids["company_id"]);
    let mut server = Server::start(&db);
    let client = reqwest::Client::new();
    let call = async |server: &Server, method: &str, path: &str, body: Option<Value>| {
        crate::helpers::call_at(&client, &server.base, method, &c(path), &token, body).await
    };
    let (s, conn) = call(
        &server,
        "PUT",
        "/erp_connection",
        Some(json!({"profile": "quickbooks_desktop", "connector": {"kind": "qbwc"}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{conn}");
    let list = conn["erp_list_id"].as_i64().unwrap();
    let (s, p) = call(&server, "POST", "/erp_connection/qbwc/password", None).await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let (user, password) = (
        p["user_name"].as_str().unwrap().to_owned(),
        p["password"].as_str().unwrap().to_owned(),
    );
    let mut qb = QuickBooksStandIn::new();
    let s = WebConnector::new(&server.base, &user, &password)
        .session(&mut qb)
        .await;
    assert_eq!(s.percentages, [100]);
    let company = ids["company_id"].as_i64().unwrap();
    server
        .import_and_send(company, &token, list, crate::helpers::divisions_csv(N))
        .await;
    let (s, job) = call(
        &server,
        "POST",
        "/erp/cost_codes/export",
        Some(json!({"gl_income_account": "Construction Income"})),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    // Round 1 reads accounts, 2 queries codes 1-100, 3 adds them: killed before the answer.
    // Again in the next session, one round further in (codes 101-200 added, answer lost).
    for (rounds, in_quickbooks) in [(3, 100), (5, 200)] {
        let s = WebConnector::new(&server.base, &user, &password)
            .session_with(&mut qb, Some(rounds), |_, _, _| {})
            .await;
        assert_eq!(s.rounds, rounds);
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        assert_eq!(qb.items.len(), in_quickbooks);
        server = Server::start(&db);
    }
    let s = WebConnector::new(&server.base, &user, &password)
        .session(&mut qb)
        .await;
    assert_eq!(s.percentages.last(), Some(&100), "{s:?}");
    let (_, done) = call(
        &server,
        "GET",
        &format!("/erp/export_jobs/{}", job["export_job_id"]),
        None,
    )
    .await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(
        done["counts"],
        json!({"synced": N, "failed": 0, "exporting": 0}),
        "{done}"
    );
    assert_eq!(qb.items.len(), N, "every code once in QuickBooks");
    let adds: usize = qb
        .requests
        .iter()
        .map(|r| r.matches("<ItemServiceAddRq").count())
        .sum();
    assert_eq!(adds, N, "no add was sent twice");
    let mut names: Vec<String> = qb.items.values().map(|i| qb.full_name(i)).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), N);
    // The check command agrees: no invariant broken.
    let check = Command::new(env!("CARGO_BIN_EXE_costbridge"))
        .args(["check", "--database-url", &db])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

async fn sync_from_erp_waits_for_the_next_run(app: TestApp) {
    let (list, qbwc) = connect(&app, &app.token, app.company).await;
    let mut qb = QuickBooksStandIn::new();
    first_session(&qbwc, &mut qb).await;
    let division = qb.add_by_hand("03", None, "Concrete");
    let child = qb.add_by_hand("03-100", Some("03"), "Formwork");
    let b = app
        .accepted(&app.c("/erp/cost_codes/sync_from_erp"), json!({}))
        .await;
    assert_eq!(b["requested"], true);
    assert!(b["message"].as_str().unwrap().contains("next run"), "{b}");
    let (_, st) = app.get(&app.c("/erp_connection/qbwc")).await;
    assert_eq!(st["sync_requested"], true);
    let s = qbwc.session(&mut qb).await;
    assert_eq!(
        (s.auth.as_str(), s.rounds, s.percentages.as_slice()),
        ("", 1, &[100][..]),
        "{s:?}"
    );
    assert!(
        qb.requests
            .last()
            .unwrap()
            .contains("<ItemServiceQueryRq requestID=\"pull\"><ActiveStatus>All</ActiveStatus>")
    );
    let (_, st) = app.get(&app.c("/erp_connection/qbwc")).await;
    assert_eq!(
        (
            st["sync_requested"].as_bool(),
            st["last_sync"]["created"].as_i64()
        ),
        (Some(false), Some(2)),
        "{st}"
    );
    let all = codes(&app, list).await;
    let by = |f: &str| all.iter().find(|c| c["full_code"] == f).unwrap().clone();
    assert_eq!(
        (
            by("03")["origin_id"].as_str(),
            by("03")["sync_status"].as_str()
        ),
        (Some(division.as_str()), Some("synced"))
    );
    assert_eq!(
        (
            by("03-100")["origin_id"].as_str(),
            by("03-100")["description"].as_str()
        ),
        (Some(child.as_str()), Some("Formwork"))
    );
    // Nothing asked any more: nothing to do.
    assert_eq!(qbwc.session(&mut qb).await.auth, "none");
    // A pulled code edited here goes back as a modification of QuickBooks' item.
    let id = by("03-100")["id"].as_i64().unwrap();
    app.patched(
        &app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}")),
        json!({"description": "Formwork and shoring"}),
    )
    .await;
    send_and_export(&app, list, "Construction Income", None).await;
    qbwc.session(&mut qb).await;
    assert_eq!(app.items("synced").await.len(), 1);
    assert_eq!(
        (qb.items.len(), qb.items[&child].description.as_str()),
        (2, "Formwork and shoring")
    );
}

async fn codes_exported_as_iif_move_to_the_web_connector(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    import(&app, list, 2).await; // 01, 01-001
    app.send(list).await;
    app.accept_all().await;
    assert_eq!(
        app.items("synced").await.len(),
        2,
        "written to the IIF file"
    );
    // Someone imported only 01 by hand; 01-001 never reached QuickBooks.
    let mut qb = QuickBooksStandIn::new();
    let division = qb.add_by_hand("01", None, "Code 01");
    let (_, qbwc) = connect(&app, &app.token, app.company).await;
    first_session(&qbwc, &mut qb).await;
    for c in codes(&app, list).await {
        let id = c["id"].as_i64().unwrap();
        app.patched(
            &app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}")),
            json!({"description": format!("{} (revised)", c["description"].as_str().unwrap())}),
        )
        .await;
    }
    send_and_export(&app, list, "Construction Income", None).await;
    let s = qbwc.session(&mut qb).await;
    assert_eq!(s.percentages.last(), Some(&100), "{s:?}");
    assert!(
        app.items("failed").await.is_empty(),
        "{:?}",
        app.items("failed").await
    );
    assert_eq!(qb.items.len(), 2);
    assert_eq!(
        qb.items[&division].description, "Code 01 (revised)",
        "modified, not added again"
    );
    let child = qb.by_full_name("01:01-001").expect("added under 01");
    let all = codes(&app, list).await;
    let origin = |f: &str| {
        all.iter().find(|c| c["full_code"] == f).unwrap()["origin_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        (origin("01"), origin("01-001")),
        (division.clone(), child.list_id.clone()),
        "the keys are now QuickBooks' ListIDs"
    );
}
