use crate::both;
use crate::helpers::{TestApp, field_error, perms};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

both!(
    gl_accounts_and_the_iif_file,
    failures_retry_and_recover,
    parents_go_first,
    only_approvers_act,
    a_crashed_worker_is_resumed,
    a_claim_taken_over_records_nothing,
    a_storage_failure_is_not_an_erp_retry,
    two_workers_do_each_job_once,
    a_big_job_reaches_the_file_whole_and_in_order,
    quickbooks_gets_its_own_character_set,
    the_check_names_an_item_of_another_companys_submission_or_job,
    the_database_refuses_a_missing_code_or_parent,
    a_refused_reject_is_said_in_its_dialog,
    a_refused_gl_pick_is_said_on_its_row,
    a_file_export_says_where_the_codes_went,
    bulk_steps_keep_the_counts,
    numbered_pages_follow_a_held_export,
    short_and_empty_pages_say_the_total,
    the_live_poll_keeps_the_page_being_read,
    an_export_result_moves_the_list_version,
    a_stopping_worker_takes_no_new_job,
    an_unreadable_connection_postpones_the_job,
    a_missing_item_is_not_found_first,
    an_account_gone_from_the_chart_fails_its_rows,
    a_grandchild_stays_out_when_its_parent_fails,
    a_pull_read_before_an_export_does_not_undo_it,
    restarts_use_up_no_retries,
    export_all_exports_what_the_page_showed,
    a_stopping_worker_puts_its_job_back_between_batches,
    a_batch_answered_starts_the_failures_afresh,
);

/// Sets a time column of every export job to long ago (a retry due now, a lease run out).
async fn backdate_jobs(app: &TestApp, column: &str) {
    match &app.app_state.db {
        costbridge_storage::Db::Sqlite(_) => {
            let at = "'2000-01-01 00:00:00.0 +00:00:00'";
            execute(app, &format!("UPDATE export_jobs SET {column} = {at}")).await
        }
        costbridge_storage::Db::Postgres(_) => {
            let at = "'2000-01-01T00:00:00Z'";
            execute(app, &format!("UPDATE export_jobs SET {column} = {at}")).await
        }
    }
}

/// Runs one SQL statement on the test's database, behind the server's back.
pub(crate) async fn execute(app: &TestApp, sql: &str) {
    try_execute(app, sql).await.unwrap();
}

/// The texts one SQL statement selects from the test's database, behind the server's back.
pub(crate) async fn texts(app: &TestApp, sql: &str) -> Vec<String> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &app.app_state.db {
        costbridge_storage::Db::Sqlite(p) => sqlx::query_scalar(sql).fetch_all(p).await,
        costbridge_storage::Db::Postgres(p) => sqlx::query_scalar(sql).fetch_all(p).await,
    }
    .unwrap()
}

async fn try_execute(app: &TestApp, sql: &str) -> Result<(), sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &app.app_state.db {
        costbridge_storage::Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(drop),
        costbridge_storage::Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(drop),
    }
}

async fn gl_accounts_and_the_iif_file(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let a = app.code(list, "01", "General Requirements", None).await;
    app.code(list, "100", "Permits & Fees", a["id"].as_i64())
        .await;
    let (_, accounts) = app.get(&app.c("/erp/gl_accounts")).await;
    assert_eq!(
        accounts[0],
        json!({"id": "4000", "code": "4000", "name": "Construction Income", "kind": "income"})
    );
    app.send(list).await;
    let items = app.items("ready_to_export").await;
    let (s, e) = app
        .patch(
            &app.c(&format!("/erp/cost_codes/{}", items[0]["id"])),
            json!({"gl_income_account": "5000"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_error(&e, "gl_income_account"),
        "'5000' is not one of the ERP's income accounts; it offers 4000",
        "{e}"
    );
    for item in &items {
        let (s, saved) = app
            .patch(
                &app.c(&format!("/erp/cost_codes/{}", item["id"])),
                json!({"gl_income_account": "4000", "gl_expense_account": "5000"}),
            )
            .await;
        assert_eq!(
            (s, saved["gl_expense_account"].as_str()),
            (StatusCode::OK, Some("5000"))
        );
    }
    let (s, job) = app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
    assert_eq!(
        (s, job["item_count"].as_i64()),
        (StatusCode::ACCEPTED, Some(2))
    );
    app.run_worker().await;
    let files: Vec<_> = std::fs::read_dir(app.export_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        files,
        [format!("costbridge-export-{}.iif", job["export_job_id"])]
    );
    let text = std::fs::read_to_string(app.export_dir().join(&files[0])).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines,
        [
            "!INVITEM\tNAME\tINVITEMTYPE\tDESC\tPURCHASEDESC\tACCNT\tCOGSACCNT\tHIDDEN",
            "INVITEM\t01\tSERV\tGeneral Requirements\tGeneral Requirements\tConstruction Income\tJob Costs\tN",
            "INVITEM\t01:01-100\tSERV\tPermits & Fees\tPermits & Fees\tConstruction Income\tJob Costs\tN",
        ]
    );
    let synced = app.items("synced").await;
    assert_eq!(synced.len(), 2);
    assert_eq!(synced[1]["decided_by"]["email"], "admin@one.example");
    // Default accounts fill the rows that have none, and only those.
    let c = app.code(list, "200", "Bonds", a["id"].as_i64()).await;
    app.code(list, "02", "Site", None).await;
    app.send(list).await;
    let item_c = app
        .items("ready_to_export")
        .await
        .into_iter()
        .find(|i| i["cost_code_id"] == c["id"])
        .unwrap();
    app.patch(
        &app.c(&format!("/erp/cost_codes/{}", item_c["id"])),
        json!({"gl_income_account": "4000"}),
    )
    .await;
    let (s, e) = app
        .post(
            &app.c("/erp/cost_codes/export"),
            json!({"gl_income_account": "9999"}),
        )
        .await;
    assert_eq!(
        (
            s,
            e["error"]["details"]["fields"]["gl_income_account"].is_array()
        ),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
    let (s, _) = app
        .post(
            &app.c("/erp/cost_codes/export"),
            json!({"gl_income_account": "4000", "gl_expense_account": "5000"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let exporting = app.items("exporting").await;
    let got: Vec<(&str, &str, Option<&str>)> = exporting
        .iter()
        .map(|i| {
            (
                i["full_code"].as_str().unwrap(),
                i["gl_income_account"].as_str().unwrap(),
                i["gl_expense_account"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("01-200", "4000", Some("5000")),
            ("02", "4000", Some("5000"))
        ]
    );
}

/// Connects the company to a file folder that cannot be created (its parent is a file): every
/// export fails as an ERP out of reach does, retried with backoff.
async fn unwritable_folder(app: &TestApp) {
    let blocker = app.export_dir().join("not-a-folder");
    std::fs::write(&blocker, "x").unwrap();
    let (s, _) = app
        .put(
            &app.c("/erp_connection"),
            json!({"profile": "tryton",
                "connector": {"kind": "file", "directory": blocker.join("exports"), "format": "csv"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

async fn failures_retry_and_recover(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.code(list, "02", "Site", None).await;
    app.send(list).await;
    // The export folder cannot be created (its parent is a file): the job is retried with
    // backoff, then its rows fail with the reason.
    unwritable_folder(&app).await;
    let (_, t) = app.post(&app.c("/erp_connection/test"), json!({})).await;
    assert_eq!(t["ok"], false);
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains("Costbridge cannot write in the export folder"),
        "{t}"
    );
    let (_, job) = app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
    assert_eq!(app.run_worker().await, 1);
    let (_, st) = app
        .get(&app.c(&format!("/erp/export_jobs/{}", job["export_job_id"])))
        .await;
    assert_eq!(
        st["status"], "queued",
        "first failure waits for a retry: {st}"
    );
    assert!(
        st["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot write the export file"),
        "{st}"
    );
    // Make the retry due now instead of sleeping through the backoff.
    backdate_jobs(&app, "run_after").await;
    app.run_worker().await;
    let failed = app.items("failed").await;
    assert_eq!(failed.len(), 2);
    assert!(
        failed[0]["erp_message"]
            .as_str()
            .unwrap()
            .contains("gave up after 2 attempts"),
        "{}",
        failed[0]
    );
    let (_, code) = app
        .get(&app.c(&format!(
            "/cost_code_lists/{list}/cost_codes/{}",
            failed[0]["cost_code_id"]
        )))
        .await;
    assert_eq!(code["sync_status"], "failed");
    assert!(
        code["erp_message"]
            .as_str()
            .unwrap()
            .contains("cannot write"),
        "{code}"
    );
    // Costbridge gave up itself: the code and its item say so, not "the ERP".
    assert_eq!(
        (&code["refused_by"], &failed[0]["refused_by"]),
        (&json!("Costbridge"), &json!("Costbridge"))
    );
    let (s, e) = app
        .patch(
            &app.c(&format!(
                "/cost_code_lists/{list}/cost_codes/{}",
                code["id"]
            )),
            json!({"description": "x"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("locked"))
    );
    // The folder comes back; retry exports the failed rows.
    app.connect("tryton", "csv").await;
    let (s, retry) = app.post(&app.c("/erp/cost_codes/retry"), json!({})).await;
    assert_eq!(
        (s, retry["item_count"].as_i64()),
        (StatusCode::ACCEPTED, Some(2))
    );
    app.run_worker().await;
    assert_eq!(app.items("synced").await.len(), 2);
    assert_eq!(app.items("failed").await.len(), 0);
    // The retry took both items out of the first job into its own, where they synced; the
    // first job still says what it finished with (it said 0 failed once its items moved on,
    // after its export_job.done event had said 2).
    let counts = async |job: &Value| {
        let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
        st["counts"].clone()
    };
    assert_eq!(
        (
            counts(&job["export_job_id"]).await,
            counts(&retry["export_job_id"]).await
        ),
        (
            json!({"synced": 0, "failed": 2, "exporting": 0}),
            json!({"synced": 2, "failed": 0, "exporting": 0})
        )
    );
    assert_eq!(app.violations().await, Vec::<String>::new());
    let (s, e) = app.post(&app.c("/erp/cost_codes/retry"), json!({})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
}

async fn parents_go_first(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    let a = app.code(list, "01", "General", None).await;
    let b = app.code(list, "100", "Fees", a["id"].as_i64()).await;
    app.send(list).await;
    let items = app.items("ready_to_export").await;
    let child = items.iter().find(|i| i["cost_code_id"] == b["id"]).unwrap();
    app.post(
        &app.c("/erp/cost_codes/export"),
        json!({"item_ids": [child["id"]]}),
    )
    .await;
    app.run_worker().await;
    let failed = app.items("failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["erp_message"],
        "parent '01' is pending and not part of this export; send and export the parent first"
    );
    // A check of Costbridge's own, and the pages say so (they said "ERP says" of it).
    assert_eq!(failed[0]["refused_by"], "Costbridge");
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let said = "Costbridge did not export it: parent &#39;01&#39; is pending and not part of \
                this export";
    let tree = app
        .page(&cookie, &format!("/codes/{list}/nodes?parent={}", a["id"]))
        .await;
    assert!(tree.contains(said) && !tree.contains("ERP says"), "{tree}");
    let queue = app.page(&cookie, "/erp?filter=failed").await;
    assert!(queue.contains(said), "{queue}");
    // Rejecting the failed child and exporting the parent leaves the tree consistent.
    let (s, _) = app
        .post(
            &app.c("/erp/cost_codes/reject"),
            json!({"item_ids": [failed[0]["id"]], "reason": "parent first"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
    app.run_worker().await;
    assert_eq!(
        app.status_of(list, a["id"].as_i64().unwrap()).await,
        "synced"
    );
    assert_eq!(
        app.status_of(list, b["id"].as_i64().unwrap()).await,
        "rejected"
    );
    // Deactivating a code the ERP has asks first, saying when the ERP learns of it.
    let top = app.page(&cookie, &format!("/codes?list={list}")).await;
    assert!(
        top.contains(
            "Deactivate 01 General? It stays in the list, marked inactive. The ERP keeps it \
             active until the next Send to ERP is accepted."
        ),
        "{top}"
    );
}

async fn only_approvers_act(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let queue = app.c("/erp/cost_codes");
    let admin_only = app
        .user("admin2@one.example", perms("admin", "read_only", false))
        .await;
    let (s, items) = app.call("GET", &queue, &admin_only, None).await;
    assert_eq!((s, items.as_array().unwrap().len()), (StatusCode::OK, 1));
    for (path, body) in [
        ("/erp/cost_codes/export", json!({})),
        ("/erp/cost_codes/reject", json!({"reason": "no"})),
        ("/erp/cost_codes/retry", json!({})),
    ] {
        let (s, e) = app
            .call("POST", &app.c(path), &admin_only, Some(body))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            e["error"]["details"]["required"],
            "erp_integrations=standard and can_push_to_accounting"
        );
    }
    let nobody = app
        .user("none@one.example", perms("none", "none", false))
        .await;
    let (s, _) = app.call("GET", &queue, &nobody, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(
        app.items("ready_to_export").await.len(),
        1,
        "nothing changed"
    );
}

async fn a_crashed_worker_is_resumed(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let (_, job) = app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
    // A worker claims the job and dies before finishing: its lease (zero here) runs out.
    let claimed = app
        .app_state
        .db
        .claim_export_job(time::Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, job["export_job_id"].as_i64().unwrap());
    assert_eq!(
        app.run_worker().await,
        1,
        "another worker takes the expired lease over"
    );
    let (_, st) = app
        .get(&app.c(&format!("/erp/export_jobs/{}", claimed.id)))
        .await;
    assert_eq!(
        (
            st["status"].as_str(),
            st["attempts"].as_i64(),
            st["counts"]["synced"].as_i64()
        ),
        (Some("done"), Some(2), Some(1))
    );
    let files = std::fs::read_dir(app.export_dir()).unwrap().count();
    assert_eq!(files, 1, "the resumed job rewrote its own file");
}

/// A worker whose lease ran out while it was still busy (a stalled process, clocks apart) and
/// whose job another claim took over records nothing afterwards: not its outcomes, not a retry,
/// not a renewal, not the close. And an outcome recorded twice (a batch redone) is one change:
/// one audit row.
async fn a_claim_taken_over_records_nothing(app: TestApp) {
    use costbridge_storage::jobs::Outcome;
    use time::Duration;
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.code(list, "02", "Site Work", None).await;
    app.send(list).await;
    app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
    let db = &app.app_state.db;
    let stalled = db.claim_export_job(Duration::ZERO).await.unwrap().unwrap();
    let rows = db.job_rows(stalled.id).await.unwrap();
    let current = db
        .claim_export_job(Duration::minutes(1))
        .await
        .unwrap()
        .expect("the run-out lease is taken over");
    assert_eq!(current.id, stalled.id);

    let record = async |claim, outcomes: &[(i64, Outcome)]| {
        db.record_outcomes(claim, &rows, outcomes, None)
            .await
            .unwrap()
    };
    // The stalled claim wakes up and answers for the first code: nothing of it is kept.
    let refused = [(
        rows[0].item_id,
        Outcome::Failed {
            message: "stale".into(),
            by: "Tryton".into(),
        },
    )];
    assert!(
        !db.renew_lease(&stalled, Duration::minutes(1))
            .await
            .unwrap()
    );
    assert!(!record(&stalled, &refused).await);
    assert!(
        !db.retry_job_later(&stalled, "stale", Duration::ZERO, 0)
            .await
            .unwrap()
    );
    let job = app.c(&format!("/erp/export_jobs/{}", current.id));
    let (_, st) = app.get(&job).await;
    assert_eq!(
        (st["status"].as_str(), st["counts"]["exporting"].as_i64()),
        (Some("running"), Some(2)),
        "{st}"
    );

    // The current claim records the first code twice (a batch redone), then the second.
    let synced = |i: usize| {
        [(
            rows[i].item_id,
            Outcome::Synced {
                origin_id: format!("{}", 7 + i),
            },
        )]
    };
    for _ in 0..2 {
        assert!(record(&current, &synced(0)).await);
    }
    assert!(record(&current, &synced(1)).await);
    assert!(!record(&stalled, &refused).await);
    let (_, st) = app.get(&job).await;
    assert_eq!(
        (st["status"].as_str(), st["counts"]["synced"].as_i64()),
        (Some("done"), Some(2)),
        "{st}"
    );
    // A renewal that ran beside the last batch finds the job done by its own claim: not taken.
    assert!(
        db.renew_lease(&current, Duration::minutes(1))
            .await
            .unwrap()
    );
    assert!(
        !db.renew_lease(&stalled, Duration::minutes(1))
            .await
            .unwrap()
    );
    let (_, trail) = app
        .get(&app.c("/audit_events?entity_type=cost_code&action=cost_code.synced"))
        .await;
    assert_eq!(
        trail.as_array().unwrap().len(),
        2,
        "one row a code: {trail}"
    );
    let (_, trail) = app
        .get(&app.c("/audit_events?entity_type=cost_code&action=cost_code.failed"))
        .await;
    assert_eq!(trail, json!([]));

    // A job queued again with nothing left in it (as a late retry could before claims were
    // numbered) is closed by the worker, not claimed again every time its lease runs out.
    execute(
        &app,
        "UPDATE export_jobs SET status = 'queued', finished_at = NULL",
    )
    .await;
    assert_eq!(app.run_worker().await, 1);
    let (_, st) = app.get(&job).await;
    assert_eq!(st["status"], "done", "{st}");
    assert_eq!(app.run_worker().await, 0);
}

/// The database failing while the outcomes are recorded is not the ERP's doing: no ERP retry
/// is scheduled and no row fails for it; the job runs again once its lease runs out.
async fn a_storage_failure_is_not_an_erp_retry(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let (_, job) = app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
    let job = job["export_job_id"].as_i64().unwrap();
    // Recording an outcome writes the audit log; without its table the write fails.
    execute(&app, "ALTER TABLE audit_events RENAME TO audit_events_away").await;
    let step = costbridge_server::worker::run_pending_exports(&app.app_state, &app.worker).await;
    execute(&app, "ALTER TABLE audit_events_away RENAME TO audit_events").await;
    assert!(step.is_err(), "the worker reports the storage failure");
    let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
    assert_eq!(
        (st["status"].as_str(), st["last_error"].as_str()),
        (Some("running"), None),
        "{st}"
    );
    assert_eq!(app.items("exporting").await.len(), 1);
    assert_eq!(app.items("failed").await.len(), 0);
    backdate_jobs(&app, "locked_until").await;
    assert_eq!(app.run_worker().await, 1);
    let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
    assert_eq!(
        (st["status"].as_str(), st["attempts"].as_i64()),
        (Some("done"), Some(2)),
        "{st}"
    );
    assert_eq!(app.items("synced").await.len(), 1);
}

/// Several instances share one queue: two workers racing over the same jobs run each once.
async fn two_workers_do_each_job_once(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    let mut jobs = Vec::new();
    for i in 0..4 {
        app.code(list, &format!("{i:02}"), "code", None).await;
        app.send(list).await;
        let (s, job) = app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
        assert_eq!(s, StatusCode::ACCEPTED);
        jobs.push(job["export_job_id"].as_i64().unwrap());
    }
    let (a, b) = tokio::join!(
        costbridge_server::worker::run_pending_exports(&app.app_state, &app.worker),
        costbridge_server::worker::run_pending_exports(&app.app_state, &app.worker),
    );
    assert_eq!(a.unwrap() + b.unwrap(), 4, "every job ran, none twice");
    for job in jobs {
        let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
        assert_eq!(
            (st["status"].as_str(), st["attempts"].as_i64()),
            (Some("done"), Some(1)),
            "{st}"
        );
    }
    assert_eq!(std::fs::read_dir(app.export_dir()).unwrap().count(), 4);
    assert_eq!(app.items("synced").await.len(), 4);
}

/// A job of thousands of codes reaches the file whole: parents first, each tier in list order,
/// texts and the active flag exactly as imported. (SQLite reads a job's rows packed a thousand
/// to a JSON array, so this job takes three packs there.)
async fn a_big_job_reaches_the_file_whole_and_in_order(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let mut csv = String::from("full_code,description,active\n");
    // (tier, full code, description, active), in the order the file must give them.
    let mut want: Vec<(u32, String, String, bool)> = Vec::new();
    for d in 1..=3 {
        let full = format!("{d:02}");
        want.push((1, full.clone(), format!("Division {d}"), true));
        for s in 1..=30 {
            let full = format!("{d:02}-{s:02}");
            // Texts JSON must escape (quotes, a backslash) and letters beyond ASCII.
            want.push((
                2,
                full,
                format!("Section \"{s}\" \\ Éxcavation – {d}"),
                true,
            ));
            for i in 1..=30 {
                let full = format!("{d:02}-{s:02}-{i:02}");
                want.push((3, full, format!("Item {i} of {s}"), i % 7 != 0));
            }
        }
    }
    for (_, full, desc, active) in &want {
        let desc = desc.replace('"', "\"\"");
        csv.push_str(&format!("{full},\"{desc}\",{active}\n"));
    }
    want.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    app.import(list, csv).await;
    app.send(list).await;
    let job = app.accept_waiting().await;
    assert_eq!(job["item_count"].as_u64(), Some(want.len() as u64));
    app.run_worker().await;
    let file = app
        .export_dir()
        .join(format!("costbridge-export-{}.iif", job["export_job_id"]));
    let bytes = std::fs::read(file).unwrap();
    // Downloaded, it comes in chunks (64 KiB each) and arrives whole.
    assert!(bytes.len() > 2 * 64 * 1024, "{} bytes", bytes.len());
    let res = app
        .request(
            "GET",
            &app.c(&format!("/erp/export_jobs/{}/file", job["export_job_id"])),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), bytes);
    // QuickBooks reads it as Windows-1252.
    let text = windows_1252(&bytes);
    let got: Vec<(String, String, bool)> = text
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').collect();
            let full = cells[1].rsplit(':').next().unwrap().to_owned();
            (full, cells[3].to_owned(), cells[7] == "N")
        })
        .collect();
    let want: Vec<(String, String, bool)> = want
        .into_iter()
        .map(|(_, full, desc, active)| (full, desc, active))
        .collect();
    assert_eq!(got.len(), want.len());
    for (n, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "line {n} of the file");
    }
    let synced = app
        .request(
            "GET",
            &app.c(&format!(
                "/cost_code_lists/{list}/cost_codes?sync_status=synced&per_page=1"
            )),
        )
        .await;
    assert_eq!(synced.headers()["total"], want.len().to_string().as_str());
}

/// An item's submission and export job are not foreign keys on PostgreSQL (each was a trigger
/// call per item sent or accepted): `costbridge check` names an item whose submission or job
/// is missing or another company's, on both databases.
async fn the_check_names_an_item_of_another_companys_submission_or_job(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.code(list, "01", "General Requirements", None).await;
    app.send(list).await;
    let item = app.items("ready_to_export").await[0]["id"]
        .as_i64()
        .unwrap();
    app.accept_waiting().await;
    assert_eq!(app.violations().await, Vec::<String>::new());
    let (two, _) = app.company_two().await;
    let one = app.company;
    execute(
        &app,
        &format!(
            "INSERT INTO submissions (company_id, list_id, sent_by, sent_at, code_count) \
         SELECT {two}, list_id, sent_by, sent_at, 0 FROM submissions WHERE company_id = {one}"
        ),
    )
    .await;
    execute(
        &app,
        &format!(
            "INSERT INTO export_jobs (company_id, created_by, status, run_after, created_at) \
         SELECT {two}, created_by, 'done', run_after, created_at FROM export_jobs \
         WHERE company_id = {one}"
        ),
    )
    .await;
    for (column, of, crossed) in [
        ("submission_id", "submissions", "a submission"),
        ("export_job_id", "export_jobs", "an export job"),
    ] {
        let crossed = format!("queue item {item} names {crossed} that is not its company's");
        let set = |company: i64| {
            format!(
                "UPDATE erp_items SET {column} = (SELECT MAX(id) FROM {of} WHERE company_id = \
                 {company}) WHERE id = {item}"
            )
        };
        execute(&app, &set(two)).await;
        let said = app.violations().await;
        assert!(said.contains(&crossed), "{column}: {said:?}");
        execute(&app, &set(one)).await;
        assert_eq!(
            app.violations().await,
            Vec::<String>::new(),
            "{column} restored"
        );
    }
    // An item left exporting in a finished job is exported and recorded by no worker.
    execute(
        &app,
        &format!("UPDATE export_jobs SET status = 'done' WHERE company_id = {one}"),
    )
    .await;
    let said = app.violations().await;
    let stranded = format!("queue item {item} is exporting in export job");
    assert!(said.iter().any(|s| s.starts_with(&stranded)), "{said:?}");
}

/// A code's parent and an item's code are refused by the database itself when they name no
/// code, on PostgreSQL once per statement rather than by foreign key (migration
/// 202611318_code_references), whatever path wrote them; `costbridge check` stays clean.
async fn the_database_refuses_a_missing_code_or_parent(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let parent = app.code(list, "01", "General Requirements", None).await["id"]
        .as_i64()
        .unwrap();
    let child = app.code(list, "100", "Permits & Fees", Some(parent)).await["id"]
        .as_i64()
        .unwrap();
    app.send(list).await;
    let item = app.items("ready_to_export").await[0]["id"]
        .as_i64()
        .unwrap();
    let missing = 1_000_000_000;
    for sql in [
        format!(
            "INSERT INTO cost_codes (company_id, list_id, parent_id, code, full_code, sort_key, \
             description, tier, created_at, updated_at) SELECT company_id, list_id, {missing}, \
             'X', '01-X', sort_key, description, tier, created_at, updated_at FROM cost_codes \
             WHERE id = {child}"
        ),
        format!("UPDATE cost_codes SET parent_id = {missing} WHERE id = {child}"),
        format!("UPDATE cost_codes SET list_id = {missing} WHERE id = {child}"),
        format!("UPDATE erp_items SET cost_code_id = {missing} WHERE id = {item}"),
        format!(
            "INSERT INTO erp_items (company_id, submission_id, cost_code_id, change, code, \
             full_code, description, active, tier, sort_key, status, sent_by, sent_at) SELECT \
             company_id, submission_id, {missing}, change, code, full_code, description, active, \
             tier, sort_key, 'retrieved', sent_by, sent_at FROM erp_items WHERE id = {item}"
        ),
        // Still a parent, and (the child) still named by a queue item.
        format!("DELETE FROM cost_codes WHERE id = {parent}"),
        format!("DELETE FROM cost_codes WHERE id = {child}"),
    ] {
        let refused = try_execute(&app, &sql).await;
        assert!(refused.is_err(), "the database took: {sql}");
    }
    let (_, codes) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes")))
        .await;
    assert_eq!(
        codes.as_array().map(Vec::len),
        Some(2),
        "nothing was written"
    );
    assert_eq!(app.violations().await, Vec::<String>::new());
    // What no foreign key says: a parent must be in its child's list.
    let other = app
        .created(&app.c("/cost_code_lists"), json!({"name": "Estimating"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let stranger = app.code(other, "09", "Finishes", None).await["id"]
        .as_i64()
        .unwrap();
    execute(
        &app,
        &format!("UPDATE cost_codes SET parent_id = {stranger} WHERE id = {child}"),
    )
    .await;
    assert_eq!(
        app.violations().await,
        vec![format!("code {child} names a parent code in another list")]
    );
}

/// The Reject dialog is modal: a refusal drawn as a toast behind it could be neither read nor
/// dismissed. Rows another approver exported meanwhile are said inside the dialog.
async fn a_refused_reject_is_said_in_its_dialog(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let item = app.items("ready_to_export").await[0]["id"].to_string();
    app.accept_all().await;
    let (cookie, csrf) = app
        .page_session("admin@one.example", "first-admin-password")
        .await;
    let post = |reason: &'static str| {
        let (app, cookie, csrf, item) = (&app, &cookie, &csrf, &item);
        async move {
            let form = [
                ("item_ids", item.as_str()),
                ("reason", reason),
                ("filter", "ready_to_export"),
            ];
            app.htmx_form(cookie, csrf, "/erp/reject", &form).await
        }
    };
    let (s, html) = post("Duplicate of 02").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains(r#"<form id="reject-form""#), "{html}");
    assert!(
        html.contains(r#"id="reject-problem" role="alert""#),
        "{html}"
    );
    assert!(html.contains("synced"), "{html}");
    assert!(
        !html.contains("aria-invalid"),
        "the reason was fine: {html}"
    );
    // A missing reason stays beside its field.
    let (s, html) = post("").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        html.contains(r#"id="reject-error""#) && !html.contains("reject-problem"),
        "{html}"
    );
}

/// A GL account the ERP does not have: the row comes back as stored, the refusal on it. A
/// toast alone left the picker showing the account that was not saved.
async fn a_refused_gl_pick_is_said_on_its_row(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let item = app.items("ready_to_export").await[0]["id"]
        .as_i64()
        .unwrap();
    let (cookie, csrf) = app
        .page_session("admin@one.example", "first-admin-password")
        .await;
    let res = app
        .htmx_post(
            &cookie,
            &csrf,
            &format!("/erp/items/{item}/gl"),
            &[("gl_income_account", "9999")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.headers().get("x-error").is_none(),
        "swapped, not a toast"
    );
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!(r#"<tr id="item-{item}""#)), "{html}");
    assert!(
        html.contains(&format!(r#"id="gl-error-{item}" role="alert""#)),
        "{html}"
    );
    assert!(
        html.contains("9999"),
        "the refusal names the account: {html}"
    );
    assert!(!html.contains(r#"value="9999" selected"#), "{html}");
    assert_eq!(
        app.items("ready_to_export").await[0]["gl_income_account"],
        Value::Null
    );
}

/// The file connector's codes count as synced once the file is written, but no ERP confirmed
/// them: the queue said "added to the ERP" and the job "1 synced", the codes page "synced".
/// They now name the file, and who has the codes once it is imported.
async fn a_file_export_says_where_the_codes_went(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let job = app.accept_all().await;
    let file = format!("costbridge-export-{job}.iif");
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let synced = app.page(&cookie, "/erp?filter=synced").await;
    assert!(synced.contains(&format!("written to {file}")), "{synced}");
    assert!(!synced.contains("added to the ERP"), "{synced}");
    // Nor does the tab, or the table's caption, call them synced alone.
    assert!(synced.contains(">Synced or in file <span"), "{synced}");
    assert!(
        synced.contains("Codes in Synced or in file</caption>"),
        "{synced}"
    );
    // Its state says so too: no ERP confirmed it.
    assert!(synced.contains(">in file</span>"), "{synced}");
    assert!(!synced.contains(">synced</span>"), "{synced}");
    let panel = app
        .page(&cookie, &format!("/erp?filter=synced&job={job}"))
        .await;
    assert!(
        panel.contains(&format!(
            "Export job {job} finished: 1 written to {file}, 0 failed, 0 still exporting. \
             QuickBooks Desktop has them once someone imports {file} into it."
        )),
        "{panel}"
    );
    // The accountant downloads the file from the panel (or the API) to import it.
    assert!(
        panel.contains(&format!(
            r#"<a href="/erp/export_jobs/{job}/file">Download {file}</a> to import it into QuickBooks Desktop."#
        )),
        "{panel}"
    );
    let on_disk = std::fs::read(app.export_dir().join(&file)).unwrap();
    let res = app
        .page_with(
            &format!("/erp/export_jobs/{job}/file"),
            &[(COOKIE, &cookie)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()["content-disposition"],
        format!("attachment; filename=\"{file}\"").as_str()
    );
    assert_eq!(
        res.headers()["content-length"],
        on_disk.len().to_string().as_str()
    );
    assert_eq!(res.bytes().await.unwrap(), on_disk);
    let api_file = app.c(&format!("/erp/export_jobs/{job}/file"));
    let res = app.request("GET", &api_file).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), on_disk);
    let code = &crate::qbwc::codes(&app, list).await[0];
    assert_eq!(code["sync_status"], "synced");
    assert_eq!(code["delivered_to"], file.as_str(), "{code}");
    let codes = app.page(&cookie, &format!("/codes?list={list}")).await;
    assert!(
        codes.contains(&format!(
            r#"<span class="badge synced" title="Written to {file}: the ERP has it once someone imports that file">in file</span>"#
        )),
        "{codes}"
    );
    assert!(!codes.contains(">synced</span>"), "{codes}");
    // The job and its rows keep where they went: the pages said it from the company's current
    // connection, so a switch to CSV files named a file that was never written.
    let (_, status) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
    assert_eq!(
        (&status["delivered_to"], &status["delivered_for"]),
        (&json!(file), &json!("QuickBooks Desktop")),
        "{status}"
    );
    assert_eq!(app.items("synced").await[0]["delivered_to"], file.as_str());
    app.connect("quickbooks_desktop", "csv").await;
    let synced = app.page(&cookie, "/erp?filter=synced").await;
    assert!(synced.contains(&format!("written to {file}")), "{synced}");
    let panel = app
        .page(&cookie, &format!("/erp?filter=synced&job={job}"))
        .await;
    assert!(panel.contains(&format!("1 written to {file}")), "{panel}");
    assert!(
        !panel.contains(".csv") && !synced.contains(".csv"),
        "{panel}"
    );
    // A connection whose ERP confirms each code names the tab Synced; the row still says where
    // it went.
    let (s, b) = app
        .put(
            &app.c("/erp_connection"),
            json!({"profile": "quickbooks_desktop", "connector": {"kind": "qbwc"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let synced = app.page(&cookie, "/erp?filter=synced").await;
    assert!(synced.contains(">Synced <span"), "{synced}");
    assert!(!synced.contains("Synced or in file"), "{synced}");
    assert!(synced.contains(">in file</span>"), "{synced}");
    // That connection writes no files: the download says where to look instead.
    let (s, b) = app.get(&api_file).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(
        b["error"]["message"].as_str().unwrap().contains(&format!(
            "Costbridge cannot find {file} in the folder the ERP connection writes to now"
        )),
        "{b}"
    );
}

/// SQLite holds its once-per-row counting triggers through a step that moves a thousand codes
/// or more and recounts before the commit (storage/src/held.rs); PostgreSQL counts once per
/// statement. After each bulk step — import, send, reject all, send again, accept all, the
/// export's outcomes — the kept counts match the rows and the list's totals say so, and a
/// one-code change afterwards is counted by the triggers again.
async fn bulk_steps_keep_the_counts(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let mut csv = String::from("full_code,description,active\n");
    for i in 0..1_200 {
        csv.push_str(&format!("{i:04},Item {i},true\n"));
    }
    app.import(list, csv).await;
    let totals = || async {
        let mut out = Vec::new();
        for state in ["new", "pending", "rejected", "synced"] {
            let res = app
                .request(
                    "GET",
                    &app.c(&format!(
                        "/cost_code_lists/{list}/cost_codes?sync_status={state}&per_page=1"
                    )),
                )
                .await;
            let n: i64 = res.headers()["total"].to_str().unwrap().parse().unwrap();
            out.push((state, n));
        }
        out
    };
    let only = |state: &'static str, n: i64| {
        ["new", "pending", "rejected", "synced"]
            .map(|s| (s, if s == state { n } else { 0 }))
            .to_vec()
    };
    assert_eq!(app.violations().await, Vec::<String>::new(), "import");
    assert_eq!(totals().await, only("new", 1_200), "import");
    app.send(list).await;
    assert_eq!(app.violations().await, Vec::<String>::new(), "send");
    assert_eq!(totals().await, only("pending", 1_200), "send");
    let (s, _) = app
        .post(
            &app.c("/erp/cost_codes/reject"),
            json!({"reason": "not yet"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(app.violations().await, Vec::<String>::new(), "reject");
    assert_eq!(totals().await, only("rejected", 1_200), "reject");
    // The second send's items supersede the rejected ones.
    app.send(list).await;
    assert_eq!(app.items("rejected").await.len(), 0, "superseded");
    assert_eq!(app.violations().await, Vec::<String>::new(), "send again");
    app.accept_waiting().await;
    assert_eq!(app.violations().await, Vec::<String>::new(), "accept");
    app.run_worker().await;
    assert_eq!(app.violations().await, Vec::<String>::new(), "outcomes");
    assert_eq!(totals().await, only("synced", 1_200), "outcomes");
    app.code(list, "9999", "One more", None).await;
    assert_eq!(app.violations().await, Vec::<String>::new(), "one code");
    let mut want = only("synced", 1_200);
    want[0].1 = 1;
    assert_eq!(totals().await, want, "one code");
}

/// A held step moves the stamp of the marks numbered pages start from (marks.rs) for the states
/// it changes: a page of synced codes taken before an export's outcomes is right after them,
/// though the worker takes no list (so the list's version does not move).
async fn numbered_pages_follow_a_held_export(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let csv = |codes: std::iter::StepBy<std::ops::Range<usize>>| {
        let mut out = String::from("full_code,description,active\n");
        for i in codes {
            out.push_str(&format!("{i:04},Item {i},true\n"));
        }
        out
    };
    // The even codes synced, then the odd ones below 2400 accepted and waiting for the worker.
    app.import(list, csv((0..4_800).step_by(2))).await;
    app.send(list).await;
    app.accept_waiting().await;
    app.run_worker().await;
    app.import(list, csv((1..2_400).step_by(2))).await;
    app.send(list).await;
    app.accept_waiting().await;
    let page_11 = || async {
        let (s, codes) = app
            .get(&app.c(&format!(
                "/cost_code_lists/{list}/cost_codes?sync_status=synced&per_page=100&page=11"
            )))
            .await;
        assert_eq!(s, StatusCode::OK, "{codes}");
        codes
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["full_code"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let want = |from: usize, step: usize| -> Vec<String> {
        (0..100)
            .map(|i| format!("{:04}", from + i * step))
            .collect()
    };
    // The 1,001st synced code of 2,400 even ones, its mark taken now.
    assert_eq!(page_11().await, want(2_000, 2));
    app.run_worker().await;
    assert_eq!(page_11().await, want(1_000, 1), "after the outcomes");
}

/// A page that comes back short holds the last rows, so its total is its offset plus its rows
/// and the count is not run (`Db::total`); an empty page past the end counts. Each says 5.
async fn short_and_empty_pages_say_the_total(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    for i in 1..=5 {
        app.code(list, &format!("0{i}"), "Division", None).await;
    }
    app.send(list).await;
    for (page, rows) in [(1, 2), (2, 2), (3, 1), (4, 0), (9, 0)] {
        let res = app
            .request(
                "GET",
                &app.c(&format!(
                    "/erp/cost_codes?filter=ready_to_export&per_page=2&page={page}"
                )),
            )
            .await;
        let total = res.headers()["total"].to_str().unwrap().to_owned();
        let body: Value = res.json().await.unwrap();
        assert_eq!(
            (body.as_array().unwrap().len(), total.as_str()),
            (rows, "5"),
            "page {page}: {body}"
        );
    }
    let (_, one) = app
        .get(&app.c("/erp/cost_codes?filter=ready_to_export&per_page=100"))
        .await;
    assert_eq!(one.as_array().unwrap().len(), 5);
    // The pages take any page number, as far as an offset holds, and answer an empty page.
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    for path in [
        "/erp?filter=ready_to_export&page=9223372036854775807".to_owned(),
        format!("/codes/{list}/nodes?page=9223372036854775807"),
        "/settings/audit?page=9223372036854775807".to_owned(),
    ] {
        let res = app.page_with(&path, &[(COOKIE, &cookie)]).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

/// While an export runs, the queue polls every two seconds and redraws the tab's rows. The poll
/// drew page 1 under a pager that said "Page 2 of 2", taking page 2 away until the export ended.
async fn the_live_poll_keeps_the_page_being_read(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    for n in 1..=101 {
        app.code(list, &format!("{n:03}"), "Work", None).await;
    }
    app.send(list).await;
    app.accepted(
        &app.c("/erp/cost_codes/export"),
        json!({"gl_income_account": "4000"}),
    )
    .await;
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let page = app.page(&cookie, "/erp?filter=exporting&page=2").await;
    assert!(
        page.contains(r#"hx-get="/erp/live?filter=exporting&#38;page=2""#),
        "{page}"
    );
    let poll = app.page(&cookie, "/erp/live?filter=exporting&page=2").await;
    assert!(poll.contains(">101</strong>"), "{poll}");
    assert!(!poll.contains(">001</strong>"), "{poll}");
    assert!(poll.contains(r#"hx-get="/erp/live?filter=exporting&#38;page=2""#));
}

/// One code sent and accepted into an export job the worker has not run yet: the list and the
/// job.
async fn queued_export(app: &TestApp) -> (i64, i64) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let b = app
        .accepted(
            &app.c("/erp/cost_codes/export"),
            json!({"gl_income_account": "4000"}),
        )
        .await;
    (list, b["export_job_id"].as_i64().expect("job"))
}

/// API.md: a list's `version` "changes whenever any code in the list changes". An export's
/// results (codes to synced or failed) did not move it, so a client polling it missed them.
async fn an_export_result_moves_the_list_version(app: TestApp) {
    let (list, _) = queued_export(&app).await;
    let version = || async {
        let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
        let lists = lists.as_array().cloned().unwrap_or_default();
        let l = lists.iter().find(|l| l["id"] == list).expect("the list");
        l["version"].as_i64().expect("version")
    };
    let before = version().await;
    assert_eq!(app.run_worker().await, 1);
    let code = &crate::qbwc::codes(&app, list).await[0];
    assert_eq!(code["sync_status"], "synced");
    assert!(version().await > before, "the version stayed at {before}");
}

/// SIGTERM with a backlog: the worker drained every due job before it looked at the stop, so
/// the service ran on until its supervisor killed it mid-batch. Stopping, it takes none.
async fn a_stopping_worker_takes_no_new_job(app: TestApp) {
    let (_, job) = queued_export(&app).await;
    let (stop, stopping) = tokio::sync::watch::channel(true);
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        costbridge_server::worker::run(
            app.app_state.clone(),
            app.worker.clone(),
            costbridge_server::retry::Stop::new(stopping),
        ),
    )
    .await
    .expect("the worker stops at once");
    drop(stop);
    let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
    assert_eq!(st["status"], "queued", "{st}");
    // The next instance (here: one step) takes it.
    assert_eq!(app.run_worker().await, 1);
}

/// An instance that cannot read the stored connection (another secrets key, a profile of a
/// newer version) failed every code of the job for good, as if the ERP had refused them. The
/// job now waits, says why, and exports once the installation is put right.
async fn an_unreadable_connection_postpones_the_job(app: TestApp) {
    let (_, job) = queued_export(&app).await;
    execute(
        &app,
        "UPDATE erp_connections SET profile = 'from_a_newer_version'",
    )
    .await;
    assert_eq!(app.run_worker().await, 1);
    let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
    assert_eq!(st["status"], "queued", "{st}");
    assert!(
        st["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("Costbridge cannot read the company's ERP connection"),
        "{st}"
    );
    assert_eq!(st["counts"]["exporting"], 1, "{st}");
    // The API says so as a server's fault (5xx, retried later), not as the client's (it was a
    // 400, which a client takes for its own mistake and stops retrying).
    let (s, b) = app.get(&app.c("/erp/gl_accounts")).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("internal")),
        "{b}"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("from_a_newer_version"),
        "{b}"
    );
    execute(
        &app,
        "UPDATE erp_connections SET profile = 'quickbooks_desktop'",
    )
    .await;
    backdate_jobs(&app, "run_after").await;
    assert_eq!(app.run_worker().await, 1);
    let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
    assert_eq!(
        (&st["status"], &st["counts"]["synced"]),
        (&json!("done"), &json!(1)),
        "{st}"
    );
}

/// API.md: an id that does not exist is a 404. A GL choice on a missing item answered 422
/// (no connection) or 502 (the ERP down): the ERP was asked before the item was looked up.
async fn a_missing_item_is_not_found_first(app: TestApp) {
    let (s, b) = app
        .patch(
            &app.c("/erp/cost_codes/999999"),
            json!({"gl_income_account": "4000"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
}

/// A GL account picked for a row and gone from the ERP's chart by the time it exports (archived
/// in Xero, closed in Tryton, taken off the file connector's list) fails that row, naming the
/// account, and its children in the job, whose parent the ERP would not have. Before, the row
/// went out without the account and was called synced, an IIF line with an empty ACCNT.
async fn an_account_gone_from_the_chart_fails_its_rows(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let a = app.code(list, "01", "General", None).await;
    app.code(list, "100", "Permits", a["id"].as_i64()).await;
    app.code(list, "02", "Site", None).await;
    app.send(list).await;
    for item in app.items("ready_to_export").await {
        if item["full_code"] == "01" {
            app.patched(
                &app.c(&format!("/erp/cost_codes/{}", item["id"])),
                json!({"gl_income_account": "4000"}),
            )
            .await;
        }
    }
    // 4000 leaves the chart; an expense account takes its code (a kind apart is not it).
    let (s, b) = app
        .put(
            &app.c("/erp_connection"),
            json!({"profile": "quickbooks_desktop", "connector": {"kind": "file",
                "directory": app.export_dir(), "format": "iif", "gl_accounts": [
                    {"code": "4100", "name": "Other Income", "kind": "income"},
                    {"code": "4000", "name": "Old Costs", "kind": "expense"}]}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, job) = app
        .post(
            &app.c("/erp/cost_codes/export"),
            json!({"gl_income_account": "4100"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    app.run_worker().await;
    let failed: Vec<(String, String, String)> = app
        .items("failed")
        .await
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
            (s("full_code"), s("erp_message"), s("refused_by"))
        })
        .collect();
    assert_eq!(
        failed,
        [
            (
                "01".into(),
                "GL income account 4000 is not in the ERP connection's chart of accounts any \
                 more (closed, archived or removed since it was picked); pick another account \
                 on this row and retry it"
                    .into(),
                "Costbridge".into()
            ),
            (
                "01-100".into(),
                "parent '01' failed in this export (its GL account is gone); pick another \
                 account for the parent, then retry the parent and this code"
                    .into(),
                "Costbridge".into()
            ),
        ]
    );
    let synced = app.items("synced").await;
    assert_eq!(synced.len(), 1, "{synced:?}");
    assert_eq!(synced[0]["full_code"], "02");
    let file = app
        .export_dir()
        .join(format!("costbridge-export-{}.iif", job["export_job_id"]));
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains("INVITEM\t02\tSERV\tSite\t\tOther Income\t\tN"),
        "{text}"
    );
    assert!(!text.contains("General"), "{text}");
    let (_, st) = app
        .get(&app.c(&format!("/erp/export_jobs/{}", job["export_job_id"])))
        .await;
    assert_eq!(st["status"], "done", "{st}");
    assert_eq!(
        st["counts"],
        json!({"synced": 1, "failed": 2, "exporting": 0})
    );
    // The failed row's picker still shows the account, and why it is not offered.
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let html = app.page(&cookie, "/erp?filter=failed").await;
    assert!(
        html.contains(
            r#"<option value="4000" selected>4000 (saved; no longer in the chart of accounts)</option>"#
        ),
        "{html}"
    );
}

/// The give-up after `max_attempts` (two in the tests) counts the ERP's failures in a row, not
/// claims: a job that two crashed workers had claimed gave up at the ERP's first failure,
/// failing every code left with "gave up after 3 attempts".
async fn restarts_use_up_no_retries(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    unwritable_folder(&app).await;
    let (_, job) = app.post(&app.c("/erp/cost_codes/export"), json!({})).await;
    let job_path = app.c(&format!("/erp/export_jobs/{}", job["export_job_id"]));
    // Two workers claim the job and die (their leases, zero here, run out).
    for _ in 0..2 {
        let claimed = app
            .app_state
            .db
            .claim_export_job(time::Duration::ZERO)
            .await;
        assert!(claimed.unwrap().is_some());
    }
    // The ERP's first failure: the job waits for its retry, nothing failed.
    assert_eq!(app.run_worker().await, 1);
    let (_, st) = app.get(&job_path).await;
    assert_eq!(
        (st["status"].as_str(), st["attempts"].as_i64()),
        (Some("queued"), Some(3)),
        "{st}"
    );
    assert!(app.items("failed").await.is_empty());
    // The operator's gauges: one job retrying, how long it has waited, no code failed yet.
    assert_eq!(
        app.gauge("costbridge_export_jobs_retrying")
            .await
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        app.gauge("costbridge_codes_failed").await.as_deref(),
        Some("0")
    );
    assert!(
        app.gauge("costbridge_export_job_oldest_seconds")
            .await
            .is_some()
    );
    // The second in a row: given up, saying how many times the ERP failed.
    backdate_jobs(&app, "run_after").await;
    app.run_worker().await;
    let failed = app.items("failed").await;
    assert_eq!(failed.len(), 1);
    for (gauge, value) in [
        ("costbridge_export_jobs_retrying", "0"),
        ("costbridge_codes_failed", "1"),
        ("costbridge_export_job_oldest_seconds", "0"),
    ] {
        assert_eq!(app.gauge(gauge).await.as_deref(), Some(value), "{gauge}");
    }
    let message = failed[0]["erp_message"].as_str().unwrap();
    assert!(
        message.ends_with(
            "(Costbridge gave up after 2 attempts). Once the ERP connection works (Company \
             settings → ERP connection → Test connection), retry these codes from Failed to \
             Export"
        ),
        "{message}"
    );
}

/// "Export all" asks about the count the page showed, and exports only while that is still
/// the count: codes sent since (or taken by another approver) would have gone unseen.
async fn export_all_exports_what_the_page_showed(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.code(list, "01", "General", None).await;
    app.send(list).await;
    let (cookie, csrf) = app
        .page_session("admin@one.example", "first-admin-password")
        .await;
    let page = app.page(&cookie, "/erp").await;
    assert!(
        page.contains(r#"hx-vals='{"all": "1", "seen": "1.1"}' hx-confirm="Export all 1 code in Ready to Export into the ERP?"#),
        "{page}"
    );
    assert!(
        page.contains(r#"data-title="Reject all 1 code ready to export""#),
        "{page}"
    );
    // Meanwhile another approver exports 01 and 02 is sent: still one code, not the one shown.
    let first = app.items("ready_to_export").await[0]["id"].clone();
    app.accepted(
        &app.c("/erp/cost_codes/export"),
        json!({"item_ids": [first], "gl_income_account": "4000"}),
    )
    .await;
    app.code(list, "02", "Site", None).await;
    app.send(list).await;
    let all = |seen: &str| {
        [("all", "1"), ("seen", seen), ("default_income", "4000")].map(|(k, v)| (k, v.to_owned()))
    };
    let post = |form: [(&'static str, String); 3]| {
        let (cookie, csrf) = (cookie.clone(), csrf.clone());
        let app = &app;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.htmx_post(&cookie, &csrf, "/erp/export", &form).await
        }
    };
    let res = post(all("1.1")).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let error = res.headers()["x-error"].to_str().unwrap().to_owned();
    assert!(
        error.contains(
            "Nothing was exported: Ready to Export changed since this page was drawn (codes \
             were sent, exported or rejected meanwhile; it holds 1 code now). Reload the page"
        ),
        "{error}"
    );
    assert_eq!(
        app.items("ready_to_export").await.len(),
        1,
        "nothing exported"
    );
    // The page drawn again shows 02 and exports it.
    let page = app.page(&cookie, "/erp").await;
    assert!(page.contains(r#""seen": "1.2""#), "{page}");
    let res = post(all("1.2")).await;
    assert!(res.headers().contains_key("hx-redirect"), "{res:?}");
    assert_eq!(app.items("exporting").await.len(), 2);
}

/// A webhook ERP answering each batch (numbered from 0) with `status`: 200 takes every code.
/// Connected, with 600 codes (two batches) sent and accepted; returns the job's id.
async fn a_two_batch_job(
    app: &TestApp, status: impl Fn(usize) -> u16 + Send + Sync + 'static,
) -> i64 {
    let status = std::sync::Arc::new(status);
    let batches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(batch): axum::Json<Value>| {
            let n = batches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let code = status(n);
            async move {
                let results: Vec<Value> = batch["codes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| json!({"item_id": c["item_id"], "status": "synced", "origin_id": c["full_code"]}))
                    .collect();
                let code = axum::http::StatusCode::from_u16(code).unwrap();
                (code, axum::Json(json!({ "results": results })))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let (s, b) = app
        .put(
            &app.c("/erp_connection"),
            json!({"profile": "quickbooks_desktop", "connector": {"kind": "webhook", "url": url,
                "secret": "whsec_0123456789abcdef", "gl_accounts": [
                    {"code": "4000", "name": "Construction Income", "kind": "income"}]}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let list = b["erp_list_id"].as_i64().unwrap();
    let mut csv = String::from("full_code,description,active\n");
    for i in 0..600 {
        csv.push_str(&format!("{i:03},Item {i},true\n"));
    }
    app.import(list, csv).await;
    app.send(list).await;
    let job = app
        .accepted(
            &app.c("/erp/cost_codes/export"),
            json!({"gl_income_account": "4000"}),
        )
        .await;
    job["export_job_id"].as_i64().unwrap()
}

/// SIGTERM during a large export: the batch in hand is finished and recorded, then the job goes
/// back to the queue, due now and its run given back. Before, the worker went on to the job's
/// end, past the grace a container or systemd gives, and was killed.
async fn a_stopping_worker_puts_its_job_back_between_batches(app: TestApp) {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    // The service is told to stop while the first batch runs.
    let job = a_two_batch_job(&app, move |_| {
        stop.send_replace(true);
        200
    })
    .await;
    let job_path = app.c(&format!("/erp/export_jobs/{job}"));
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        costbridge_server::worker::run(
            app.app_state.clone(),
            app.worker.clone(),
            costbridge_server::retry::Stop::new(stopping),
        ),
    )
    .await
    .expect("the worker stops after the batch in hand");
    let (_, st) = app.get(&job_path).await;
    assert_eq!(
        (
            st["status"].as_str(),
            st["attempts"].as_i64(),
            &st["counts"]
        ),
        (
            Some("queued"),
            Some(0),
            &json!({"synced": 500, "failed": 0, "exporting": 100})
        ),
        "{st}"
    );
    assert!(
        st["last_error"]
            .as_str()
            .unwrap()
            .starts_with("Costbridge was stopped"),
        "{st}"
    );
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let panel = format!("/erp?filter=synced&job={job}");
    let html = app.page(&cookie, &panel).await;
    assert!(
        html.contains("still exporting. Last error: Costbridge was stopped"),
        "{html}"
    );
    // The next instance goes on at once, where it stopped.
    assert_eq!(app.run_worker().await, 1);
    let (_, st) = app.get(&job_path).await;
    assert_eq!(st["status"], "done", "{st}");
    assert_eq!(st["counts"]["synced"], 600, "{st}");
    // Done, the panel no longer says why it once waited.
    let html = app.page(&cookie, &panel).await;
    assert!(
        html.contains("600 synced, 0 failed, 0 still exporting."),
        "{html}"
    );
    assert!(!html.contains("Last error"), "{html}");
}

/// A batch the ERP answers ends its failures in a row, in the same run too: a job one failure
/// short of giving up (two allowed in the tests) whose first batch goes through and whose
/// second fails waits to retry. It gave up, counting the failures from before the batch.
async fn a_batch_answered_starts_the_failures_afresh(app: TestApp) {
    let job = a_two_batch_job(&app, |n| if n == 0 { 200 } else { 503 }).await;
    execute(&app, "UPDATE export_jobs SET erp_failures = 1").await;
    assert_eq!(app.run_worker().await, 1);
    let (_, st) = app.get(&app.c(&format!("/erp/export_jobs/{job}"))).await;
    assert_eq!(
        (st["status"].as_str(), &st["counts"]),
        (
            Some("queued"),
            &json!({"synced": 500, "failed": 0, "exporting": 100})
        ),
        "{st}"
    );
}

/// A code whose parent stays out of an export fails, and so does its own child in the same
/// export: the file got `01:01-100:01-100-20` while `01:01-100` failed, a sub-item whose
/// parent QuickBooks does not have.
async fn a_grandchild_stays_out_when_its_parent_fails(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let a = app.code(list, "01", "General", None).await;
    let b = app.code(list, "100", "Permits", a["id"].as_i64()).await;
    app.code(list, "20", "Fees", b["id"].as_i64()).await;
    app.code(list, "02", "Site", None).await;
    app.send(list).await;
    let ids: Vec<Value> = app
        .items("ready_to_export")
        .await
        .iter()
        .filter(|i| i["full_code"] != "01")
        .map(|i| i["id"].clone())
        .collect();
    let (s, job) = app
        .post(
            &app.c("/erp/cost_codes/export"),
            json!({"item_ids": ids, "gl_income_account": "4000"}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    app.run_worker().await;
    let failed: Vec<(String, String)> = app
        .items("failed")
        .await
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
            (s("full_code"), s("erp_message"))
        })
        .collect();
    assert_eq!(
        failed,
        [
            (
                "01-100".into(),
                "parent '01' is pending and not part of this export; send and export the \
                 parent first"
                    .into()
            ),
            (
                "01-100-20".into(),
                "parent '01-100' failed in this export (see its message); once the parent is \
                 exported, retry this code"
                    .into()
            ),
        ]
    );
    let file = app
        .export_dir()
        .join(format!("costbridge-export-{}.iif", job["export_job_id"]));
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains("Site") && !text.contains("Fees"), "{text}");
    assert_eq!(app.violations().await, Vec::<String>::new());
}

/// Sync from ERP reads the ERP first (seconds, for a big chart), then applies what it read. An
/// export recorded meanwhile made the code synced with its new values, and the pull then wrote
/// the ERP's older ones over them, still calling the code synced. It is a conflict now.
async fn a_pull_read_before_an_export_does_not_undo_it(app: TestApp) {
    use costbridge_storage::pull::RemoteCode;
    let list = app.connect("quickbooks_desktop", "iif").await;
    let code = app.code(list, "01", "New", None).await;
    let id = code["id"].as_i64().unwrap();
    app.send(list).await;
    let read_at = costbridge_storage::now();
    app.post(
        &app.c("/erp/cost_codes/export"),
        json!({"gl_income_account": "4000"}),
    )
    .await;
    app.run_worker().await;
    assert_eq!(app.status_of(list, id).await, "synced");
    let (_, me) = app.get("/api/v1/me").await;
    let pull = |read_at| {
        let old = [RemoteCode {
            origin_id: "01".into(),
            full_code: "01".into(),
            description: "Old".into(),
            active: true,
        }];
        let (db, company, actor) = (app.app_state.db.clone(), app.company, me["id"].as_i64());
        async move {
            db.pull_from_erp(company, list, actor.unwrap(), &old, read_at)
                .await
                .unwrap()
        }
    };
    let s = pull(read_at).await;
    assert_eq!((s.updated, s.conflicts.len()), (0, 1));
    let error = s.conflicts[0].local["error"].as_str().unwrap_or_default();
    assert!(error.contains("while the ERP was being read"), "{error}");
    let (_, now) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}")))
        .await;
    assert_eq!(
        (&now["description"], &now["sync_status"]),
        (&json!("New"), &json!("synced"))
    );
    // Read after the export, the ERP's values are the ERP's: they are taken.
    let s = pull(costbridge_storage::now()).await;
    assert_eq!((s.updated, s.conflicts.len()), (1, 0));
}

/// `bytes` read as Windows-1252, as QuickBooks Desktop reads an IIF file.
pub(crate) fn windows_1252(bytes: &[u8]) -> String {
    let set = costbridge_domain::profile::Charset::Windows1252;
    let table: std::collections::HashMap<u8, char> = (0..0x2200)
        .filter_map(char::from_u32)
        .filter_map(|c| Some((set.byte(c)?, c)))
        .collect();
    bytes.iter().map(|b| table[b]).collect()
}

/// QuickBooks Desktop is not Unicode: an IIF file is read as Windows-1252, so a UTF-8 "Béton –"
/// went in as "BÃ©ton â€“", and what that set lacks it cannot store at all. Such a code is
/// refused at send, naming the characters; one already waiting (sent by an older version)
/// fails at export with its children, and the rest of the file goes in.
async fn quickbooks_gets_its_own_character_set(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let one = app.code(list, "01", "Béton – “phase 1”", None).await;
    let under = app.code(list, "100", "Coffrage", one["id"].as_i64()).await;
    app.code(list, "02", "Électricité", None).await;
    let tick = app.code(list, "03", "Checked ✓", None).await;
    let send = app.c(&format!("/cost_code_lists/{list}/send_to_erp"));
    let (_, st) = app.get(&send).await;
    let (s, e) = app
        .post(&send, json!({"list_version": st["list_version"]}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_codes")),
        "{e}"
    );
    let items = e["error"]["details"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{e}");
    assert_eq!(items[0]["id"], tick["id"]);
    assert_eq!(
        items[0]["errors"][0],
        "description has characters QuickBooks Desktop cannot store (it keeps text in \
         Windows-1252): '✓' (U+2713); replace them"
    );
    app.patched(
        &app.c(&format!(
            "/cost_code_lists/{list}/cost_codes/{}",
            tick["id"]
        )),
        json!({"description": "Checked"}),
    )
    .await;
    app.send(list).await;

    // Waiting since before the rule: 01's snapshot holds a character QuickBooks lacks.
    execute(
        &app,
        "UPDATE erp_items SET description = 'Béton ✓' WHERE full_code = '01'",
    )
    .await;
    let job = app.accept_waiting().await;
    app.run_worker().await;
    let failed = app.items("failed").await;
    let says = |id: &Value| {
        let item = failed.iter().find(|i| &i["cost_code_id"] == id).unwrap();
        item["erp_message"].as_str().unwrap().to_owned()
    };
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert_eq!(
        says(&one["id"]),
        "description has characters QuickBooks Desktop cannot store (it keeps text in \
         Windows-1252): '✓' (U+2713); replace them. To do so, an approver rejects this code on ERP \
         Integrations (a retry fails the same way), then an admin corrects its description and \
         sends it to the ERP again"
    );
    assert!(says(&under["id"]).starts_with("parent '01' failed in this export"));
    let file = app
        .export_dir()
        .join(format!("costbridge-export-{}.iif", job["export_job_id"]));
    let bytes = std::fs::read(file).unwrap();
    let written = b"\t\xC9lectricit\xE9\t";
    assert!(
        bytes.windows(written.len()).any(|w| w == written),
        "{bytes:x?}"
    );
    let text = windows_1252(&bytes);
    let names: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(names, ["02", "03"], "{text}");
}
