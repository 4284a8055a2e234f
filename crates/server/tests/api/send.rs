use crate::both;
use crate::helpers::{TestApp, perms, strings};
use reqwest::StatusCode;
use serde_json::{Value, json};

both!(
    every_reason_the_button_gives,
    the_whole_state_machine,
    concurrent_sends_make_one_submission,
    renaming_a_parent_modifies_synced_children,
    the_panel_poll_speaks_only_when_the_list_changed
);

async fn every_reason_the_button_gives(app: TestApp) {
    let (_, other) = app
        .post(&app.c("/cost_code_lists"), json!({"name": "Estimating"}))
        .await;
    let other = other["id"].as_i64().unwrap();
    let button = |list: i64, token: String| {
        let app = &app;
        async move {
            app.call(
                "GET",
                &app.c(&format!("/cost_code_lists/{list}/send_to_erp")),
                &token,
                None,
            )
            .await
            .1
        }
    };
    assert_eq!(
        button(other, app.token.clone()).await["reason_code"],
        "no_erp_connection"
    );
    // An import-only ERP owns its codes and says which ERP.
    let list = app.connect("sage_300_cre", "csv").await;
    let b = button(list, app.token.clone()).await;
    assert_eq!(
        (b["enabled"].as_bool(), b["reason_code"].as_str()),
        (Some(false), Some("erp_owns_cost_codes"))
    );
    assert!(
        b["reason"].as_str().unwrap().contains("Sage 300 CRE"),
        "{b}"
    );
    let list = app.connect("xero", "csv").await;
    assert_eq!(
        button(list, app.token.clone()).await["reason_code"],
        "nothing_to_send"
    );
    assert_eq!(
        button(other, app.token.clone()).await["reason_code"],
        "not_erp_list"
    );
    let viewer = app
        .user("viewer@one.example", perms("read_only", "read_only", false))
        .await;
    assert_eq!(
        button(list, viewer.clone()).await["reason_code"],
        "no_permission"
    );
    let (s, b) = app
        .call(
            "POST",
            &app.c(&format!("/cost_code_lists/{list}/send_to_erp")),
            &viewer,
            Some(json!({"list_version": 1})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("no_permission"))
    );
    // Sends the list as a page drawn at `version` would.
    let send = |version: Value| {
        let app = &app;
        async move {
            app.post(
                &app.c(&format!("/cost_code_lists/{list}/send_to_erp")),
                json!({"list_version": version}),
            )
            .await
        }
    };
    // Xero takes at most 30 characters of full code: the long one is listed with its rule.
    let top = app.code(list, "1234567890", "ok", None).await;
    let mid = app.code(list, "1234567890", "ok", top["id"].as_i64()).await;
    let long = app
        .code(list, "1234567890", "too long", mid["id"].as_i64())
        .await;
    let b = button(list, app.token.clone()).await;
    assert_eq!(
        (b["reason_code"].as_str(), b["unsynced_count"].as_i64()),
        (Some("invalid_codes"), Some(3))
    );
    let (s, e) = send(b["list_version"].clone()).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_codes"))
    );
    assert_eq!(
        e["error"]["details"]["items"],
        json!([{"id": long["id"], "full_code": "1234567890-1234567890-1234567890",
        "errors": ["full code is 32 characters; Xero allows at most 30"]}])
    );
    // A caller who may not send (nor read codes) hears only that: not which codes break
    // the rules.
    let approver = app
        .user("approver@one.example", perms("none", "standard", true))
        .await;
    let (s, e) = app
        .call(
            "POST",
            &app.c(&format!("/cost_code_lists/{list}/send_to_erp")),
            &approver,
            Some(json!({"list_version": b["list_version"]})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str(), &e["error"]["details"]),
        (StatusCode::FORBIDDEN, Some("no_permission"), &json!({})),
        "{e}"
    );
    app.delete(&app.c(&format!(
        "/cost_code_lists/{list}/cost_codes/{}",
        long["id"]
    )))
    .await;
    // A stale page: the version the client read is no longer current.
    let b = button(list, app.token.clone()).await;
    assert_eq!(
        (b["enabled"].as_bool(), b["label"].as_str()),
        (Some(true), Some("Send to ERP"))
    );
    app.code(list, "99", "added meanwhile", None).await;
    let (s, e) = send(b["list_version"].clone()).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("stale_page"))
    );
    assert_eq!(
        app.items("ready_to_export").await.len(),
        0,
        "a refused send changes nothing"
    );
    let sent = app.send(list).await;
    assert_eq!(sent["sent_count"], 3);
    assert_eq!(
        button(list, app.token.clone()).await["label"],
        "Re-send to ERP"
    );
    // The send judges the codes as they are when it runs, not as the button last saw them:
    // the button has just judged one valid code, then a too-long code joins it, and a client
    // that learnt the list's new version from the list itself sends without asking the button.
    app.code(list, "77", "ok", None).await;
    let b = button(list, app.token.clone()).await;
    assert_eq!(
        (b["enabled"].as_bool(), b["unsynced_count"].as_i64()),
        (Some(true), Some(1))
    );
    let long = app
        .code(list, "1234567890", "too long again", mid["id"].as_i64())
        .await;
    let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
    let version = lists
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["id"] == list))
        .map(|l| l["version"].clone());
    let (s, e) = send(version.unwrap_or_default()).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_codes")),
        "{e}"
    );
    assert_eq!(e["error"]["details"]["items"][0]["id"], long["id"]);
}

async fn the_whole_state_machine(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let a = app.code(list, "01", "General", None).await;
    let b = app.code(list, "100", "Fees", a["id"].as_i64()).await;
    let (aid, bid) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    let path = |id: i64| app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}"));
    app.send(list).await;
    assert_eq!(app.status_of(list, aid).await, "pending");
    // Pending codes are locked, and can be retrieved by the admin.
    let (s, e) = app.patch(&path(aid), json!({"description": "x"})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("locked"))
    );
    let (s, r) = app
        .post(&format!("{}/retrieve", path(bid)), json!({}))
        .await;
    assert_eq!(
        (s, r["sync_status"].as_str()),
        (StatusCode::OK, Some("new"))
    );
    let (s, _) = app
        .post(&format!("{}/retrieve", path(bid)), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(app.items("ready_to_export").await.len(), 1);
    app.send(list).await;
    // The approver rejects B with a reason the admin sees on the code.
    let approver = app
        .user("acct@one.example", perms("read_only", "standard", true))
        .await;
    let items = app.items("ready_to_export").await;
    let item_b = items.iter().find(|i| i["cost_code_id"] == bid).unwrap()["id"].clone();
    let reject = async |reason: &str| {
        let body = json!({"item_ids": [item_b], "reason": reason});
        let path = app.c("/erp/cost_codes/reject");
        app.call("POST", &path, &approver, Some(body)).await
    };
    let (s, e) = reject(" ").await;
    assert_eq!(
        (s, e["error"]["details"]["fields"]["reason"][0].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("is required"))
    );
    let (s, r) = reject("Use 01-110 instead").await;
    assert_eq!((s, r["rejected_count"].as_i64()), (StatusCode::OK, Some(1)));
    let (_, code_b) = app.get(&path(bid)).await;
    assert_eq!(
        (
            code_b["sync_status"].as_str(),
            code_b["rejection_reason"].as_str()
        ),
        (Some("rejected"), Some("Use 01-110 instead"))
    );
    // Editing a rejected code keeps it rejected (reason visible) until sent again.
    let (_, code_b) = app.patch(&path(bid), json!({"code": "110"})).await;
    assert_eq!(
        (
            code_b["sync_status"].as_str(),
            code_b["rejection_reason"].as_str()
        ),
        (Some("rejected"), Some("Use 01-110 instead"))
    );
    // The approver exports A; the worker confirms it.
    let item_a = app.items("ready_to_export").await[0]["id"].clone();
    let export_a = || {
        let (app, approver, body) = (&app, &approver, json!({"item_ids": [item_a]}));
        async move {
            app.call(
                "POST",
                &app.c("/erp/cost_codes/export"),
                approver,
                Some(body),
            )
            .await
        }
    };
    let (s, e) = export_a().await;
    assert_eq!(
        (s, e["error"]["details"]["items"][0]["errors"][0].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("needs a GL income account (the ERP requires one)")
        )
    );
    // Accepting all (counted, not read) names the same item for the same reason.
    let (s, e) = app
        .call(
            "POST",
            &app.c("/erp/cost_codes/export"),
            &approver,
            Some(json!({})),
        )
        .await;
    let item = &e["error"]["details"]["items"][0];
    assert_eq!(
        (s, &item["id"], item["errors"][0].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            &item_a,
            Some("needs a GL income account (the ERP requires one)")
        ),
        "{e}"
    );
    let (s, _) = app
        .call(
            "PATCH",
            &app.c(&format!("/erp/cost_codes/{item_a}")),
            &approver,
            Some(json!({"gl_income_account": "4000", "gl_expense_account": "5000"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, job) = export_a().await;
    assert_eq!(
        (s, job["item_count"].as_i64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    assert_eq!(app.status_of(list, aid).await, "exporting");
    let (_, st) = app
        .get(&app.c(&format!("/erp/export_jobs/{}", job["export_job_id"])))
        .await;
    assert_eq!(
        (st["status"].as_str(), st["counts"]["exporting"].as_i64()),
        (Some("queued"), Some(1))
    );
    assert_eq!(app.run_worker().await, 1);
    let (_, st) = app
        .get(&app.c(&format!("/erp/export_jobs/{}", job["export_job_id"])))
        .await;
    assert_eq!(
        (st["status"].as_str(), st["counts"]["synced"].as_i64()),
        (Some("done"), Some(1)),
        "{st}"
    );
    let (_, code_a) = app.get(&path(aid)).await;
    assert_eq!(
        (code_a["sync_status"].as_str(), code_a["origin_id"].as_str()),
        (Some("synced"), Some("01"))
    );
    assert!(code_a["last_synced_at"].is_string());
    // Edit → modified with a diff; edit back → synced.
    let (_, m) = app
        .patch(&path(aid), json!({"description": "General Requirements"}))
        .await;
    assert_eq!(m["sync_status"], "modified");
    assert_eq!(
        m["diff"],
        json!({"description": {"from": "General", "to": "General Requirements"}})
    );
    let (_, back) = app
        .patch(&path(aid), json!({"description": "General"}))
        .await;
    assert_eq!(
        (back["sync_status"].as_str(), back["diff"].clone()),
        (Some("synced"), json!({}))
    );
    // The re-send carries the rejected code; the modified item shows its diff.
    app.patch(&path(aid), json!({"active": false})).await;
    assert_eq!(app.send(list).await["sent_count"], 2);
    let items = app.items("ready_to_export").await;
    let modified: Vec<&Value> = items.iter().filter(|i| i["change"] == "modified").collect();
    assert_eq!(
        modified[0]["diff"],
        json!({"active": {"from": true, "to": false}})
    );
    // Every transition is in the audit log, newest first, with its actor.
    let (_, ev) = app
        .get(&app.c(&format!(
            "/audit_events?entity_type=cost_code&entity_id={aid}"
        )))
        .await;
    let actions = strings(&ev, "action");
    assert_eq!(
        actions,
        [
            "cost_code.sent",
            "cost_code.updated",
            "cost_code.updated",
            "cost_code.updated",
            "cost_code.synced",
            "cost_code.exported",
            "cost_code.sent",
            "cost_code.created"
        ]
    );
    assert_eq!(ev[5]["actor"]["email"], "acct@one.example");
    assert_eq!(ev[5]["before"]["sync_status"], "pending");
    assert_eq!(ev[5]["after"]["sync_status"], "exporting");
}

async fn concurrent_sends_make_one_submission(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    for i in 0..30 {
        app.code(list, &format!("{i:02}"), "code", None).await;
    }
    let (_, st) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/send_to_erp")))
        .await;
    let statuses = app
        .posts_at_once(
            &app.c(&format!("/cost_code_lists/{list}/send_to_erp")),
            &json!({"list_version": st["list_version"]}),
            4,
        )
        .await;
    // The losers are told the page is stale or, once the winner took every code, that nothing is left.
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [
            StatusCode::CREATED,
            StatusCode::CONFLICT,
            StatusCode::UNPROCESSABLE_ENTITY
        ]
        .contains(s)),
        "{statuses:?}"
    );
    assert_eq!(app.items("ready_to_export").await.len(), 30);
}

async fn renaming_a_parent_modifies_synced_children(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let a = app.code(list, "01", "General", None).await;
    let b = app.code(list, "100", "Fees", a["id"].as_i64()).await;
    app.send(list).await;
    app.accept_all().await;
    let (_, renamed) = app
        .patch(
            &app.c(&format!("/cost_code_lists/{list}/cost_codes/{}", a["id"])),
            json!({"code": "001"}),
        )
        .await;
    assert_eq!(renamed["sync_status"], "modified");
    let (_, child) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes/{}", b["id"])))
        .await;
    assert_eq!(child["sync_status"], "modified");
    assert_eq!(
        child["diff"],
        json!({"full_code": {"from": "01-100", "to": "001-100"}})
    );
}

/// The Send to ERP panel polls with the version its page shows: an unchanged list costs one
/// cheap read and leaves the panel alone (204); a changed one says the page is stale.
async fn the_panel_poll_speaks_only_when_the_list_changed(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.code(list, "01", "General", None).await;
    let (_, st) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/send_to_erp")))
        .await;
    let cookie = crate::session::sign_in(&app, None).await;
    let poll = |version: i64| {
        let req = app
            .client
            .get(format!("{}/codes/{list}/send?version={version}", app.base))
            .header("cookie", &cookie)
            .header("hx-request", "true");
        async move { req.send().await.unwrap() }
    };
    let v = st["list_version"].as_i64().unwrap();
    assert_eq!(poll(v).await.status(), StatusCode::NO_CONTENT);
    app.code(list, "02", "Site", None).await;
    let res = poll(v).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text().await.unwrap().contains("Refresh"),
        "a changed list makes the page stale"
    );
}
