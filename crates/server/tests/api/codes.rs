use crate::both;
use crate::event_receiver::Receiver;
use crate::events::{log, subscribe};
use crate::helpers::{TestApp, error_message, field_error, paged, perms, strings};
use reqwest::StatusCode;
use serde_json::{Value, json};

both!(
    tiered_codes_in_natural_order,
    bad_code_input_changes_nothing,
    moves_renames_and_cycles,
    delete_versus_deactivate,
    racing_duplicates_make_one_code,
    pages_follow_keys_and_totals_follow_changes,
    a_next_link_keeps_its_place_when_its_code_is_renamed_or_deleted,
    deep_pages_by_number_follow_every_change,
    searches_follow_every_change,
    a_page_reads_every_field_as_the_code_does,
    empty_query_values_ask_for_nothing,
    lists_and_users_are_paged_like_every_list,
    a_page_number_beside_a_key_is_refused,
    a_patch_that_changes_nothing_writes_nothing,
    a_null_that_cannot_clear_is_refused_by_name,
);

/// A list page (read in bulk, packed into one JSON value on SQLite) says exactly what reading
/// each code alone says, for codes in every kind of state: synced (confirmed values, sync
/// time), modified after a sync, rejected (the reason) and never sent, inactive and active.
async fn a_page_reads_every_field_as_the_code_does(app: TestApp) {
    let list = app.connect("tryton", "csv").await;
    let div = app
        .code(list, "01", "General \"quoted\" \u{e9}", None)
        .await;
    let pid = div["id"].as_i64();
    let kept = app.code(list, "100", "Kept", pid).await;
    let refused = app.code(list, "20", "Refused", pid).await;
    app.send(list).await;
    let items = app.items("ready_to_export").await;
    let item_of = |code: &Value| {
        items
            .iter()
            .find(|i| i["cost_code_id"] == code["id"])
            .expect("item")["id"]
            .clone()
    };
    let (s, b) = app
        .post(
            &app.c("/erp/cost_codes/reject"),
            json!({"item_ids": [item_of(&refused)], "reason": "Use 01-200"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.accept_all().await;
    let path = |id: &Value| app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}"));
    app.patched(
        &path(&kept["id"]),
        json!({"description": "Kept, renamed", "active": false}),
    )
    .await;
    app.code(list, "02", "Never sent", None).await;

    let (s, page) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes?per_page=100")))
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(strings(&page, "full_code"), ["01", "01-20", "01-100", "02"]);
    assert_eq!(
        strings(&page, "sync_status"),
        ["synced", "rejected", "modified", "new"]
    );
    for code in page.as_array().expect("codes") {
        let (_, alone) = app.get(&path(&code["id"])).await;
        assert_eq!(code, &alone);
    }
}

async fn tiered_codes_in_natural_order(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let div = app.code(list, "01", "General Requirements", None).await;
    let pid = div["id"].as_i64();
    for c in ["100", "20", "3"] {
        app.code(list, c, &format!("Section {c}"), pid).await;
    }
    app.code(list, "10", "Specialties", None).await;
    let sub = app.code(list, "2", "Existing", None).await;
    let (s, deep) = app
        .post(
            &app.c(&format!("/cost_code_lists/{list}/cost_codes")),
            json!({"code": "A", "description": "d", "parent_id": sub["id"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        (
            deep["full_code"].as_str(),
            deep["tier"].as_i64(),
            deep["sync_status"].as_str()
        ),
        (Some("2-A"), Some(2), Some("new"))
    );
    let (s, page) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes")))
        .await;
    assert_eq!(s, StatusCode::OK);
    let order = strings(&page, "full_code");
    assert_eq!(order, ["01", "01-3", "01-20", "01-100", "2", "2-A", "10"]);
    // Search and state filter.
    let (_, found) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes?q=section%202")))
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let (_, none) = app
        .get(&app.c(&format!(
            "/cost_code_lists/{list}/cost_codes?sync_status=synced"
        )))
        .await;
    assert_eq!(none, json!([]));
    // Paging headers.
    let res = app
        .request(
            "GET",
            &app.c(&format!(
                "/cost_code_lists/{list}/cost_codes?per_page=2&page=2"
            )),
        )
        .await;
    assert_eq!(res.headers()["total"], "7");
    assert_eq!(res.headers()["per-page"], "2");
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("page=3>; rel=\"next\"")
            && link.contains("page=1>; rel=\"prev\"")
            && link.contains("page=4>; rel=\"last\""),
        "{link}"
    );
    let (s, b) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes?per_page=1001")))
        .await;
    assert_eq!(
        (s, field_error(&b, "per_page").contains("1000")),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
    // Five tiers and no more.
    let mut parent = pid;
    for tier in 2..=5 {
        parent = app.code(list, &format!("T{tier}"), "deep", parent).await["id"].as_i64();
    }
    let (s, b) = app
        .post(
            &app.c(&format!("/cost_code_lists/{list}/cost_codes")),
            json!({"code": "T6", "description": "too deep", "parent_id": parent}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&b, "parent_id").contains("tier 6"), "{b}");
}

async fn bad_code_input_changes_nothing(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let codes = app.c(&format!("/cost_code_lists/{list}/cost_codes"));
    app.code(list, "01", "General", None).await;
    let (_, before) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/send_to_erp")))
        .await;
    let cases: Vec<(Value, StatusCode, &str, &str)> = vec![
        (
            json!({"code": "", "description": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
            "required",
        ),
        (
            json!({"code": "01", "description": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "description",
            "required",
        ),
        (
            json!({"code": "0\u{1}1", "description": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
            "control character (U+0001); remove it",
        ),
        (
            json!({"code": "02", "description": "a\tb"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "description",
            "contains a tab; replace it with a space",
        ),
        (
            json!({"code": "9".repeat(41), "description": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
            "longer than 40",
        ),
        (
            json!({"code": "02", "description": "x".repeat(501)}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "description",
            "longer than 500",
        ),
        (
            json!({"code": "1-2", "description": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
            "delimiter",
        ),
        (
            json!({"code": "01", "description": "again"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code",
            "already exists",
        ),
        (
            json!({"code": "05", "description": "x", "parent_id": 999_999}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "parent_id",
            "names no code (id 999999)",
        ),
    ];
    for (body, status, field, needle) in cases {
        let (s, b) = app.post(&codes, body.clone()).await;
        assert_eq!(s, status, "{body} -> {b}");
        assert_eq!(b["error"]["code"], "validation_failed");
        assert!(field_error(&b, field).contains(needle), "{body} -> {b}");
    }
    // The message says who refused and every field's problem, not the first one only.
    let (_, b) = app
        .post(&codes, json!({"code": "", "description": ""}))
        .await;
    let message = b["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Costbridge refused the request: code ")
            && message.contains("; description ")
            && message.ends_with("Correct the field(s) in details.fields and send it again."),
        "{b}"
    );
    let (s, b) = app.get(&app.c("/cost_code_lists/999999")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Costbridge has no such resource in the caller's company"),
        "{b}"
    );
    for (body, needle) in [
        ("{\"code\": \"01\", ", "malformed JSON"),
        ("{\"code\": 1, \"description\": \"x\"}", "invalid type"),
        (
            "{\"code\": \"07\", \"description\": \"x\", \"colour\": \"red\"}",
            "unknown field `colour`",
        ),
    ] {
        let (s, b) = app
            .raw("POST", &codes, "application/json", body.as_bytes().to_vec())
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{body}"
        );
        assert!(
            b["error"]["message"].as_str().unwrap().contains(needle),
            "{body} -> {b}"
        );
    }
    let (s, b) = app
        .raw(
            "POST",
            &codes,
            "application/json",
            format!(
                "{{\"code\": \"x\", \"description\": \"{}\"}}",
                "y".repeat(70_000)
            )
            .into_bytes(),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    // A parent from another list of the same company.
    let (_, other) = app
        .post(&app.c("/cost_code_lists"), json!({"name": "Estimating"}))
        .await;
    let foreign = app
        .code(other["id"].as_i64().unwrap(), "X", "other list", None)
        .await;
    let (_, b) = app
        .post(
            &codes,
            json!({"code": "08", "description": "x", "parent_id": foreign["id"]}),
        )
        .await;
    assert!(field_error(&b, "parent_id").contains("another list"), "{b}");
    // Nothing above changed the list.
    let (_, after) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/send_to_erp")))
        .await;
    assert_eq!(before["list_version"], after["list_version"]);
    assert_eq!(after["unsynced_count"], 1);
}

async fn moves_renames_and_cycles(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let a = app.code(list, "01", "A", None).await;
    let b = app.code(list, "100", "B", a["id"].as_i64()).await;
    let c = app.code(list, "10", "C", b["id"].as_i64()).await;
    let d = app.code(list, "02", "D", None).await;
    let path = |id: &Value| app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}"));
    // A cycle: moving a code under its own descendant.
    let (s, e) = app
        .patch(&path(&a["id"]), json!({"parent_id": c["id"]}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&e, "parent_id").contains("cycle"), "{e}");
    let (_, e) = app
        .patch(&path(&a["id"]), json!({"parent_id": a["id"]}))
        .await;
    assert!(field_error(&e, "parent_id").contains("own parent"), "{e}");
    // Moving B under D carries C along.
    let (s, moved) = app
        .patch(&path(&b["id"]), json!({"parent_id": d["id"]}))
        .await;
    assert_eq!(
        (s, moved["full_code"].as_str()),
        (StatusCode::OK, Some("02-100"))
    );
    let (_, c2) = app.get(&path(&c["id"])).await;
    assert_eq!(c2["full_code"], "02-100-10");
    // Renaming D into a clash with A is refused.
    let (s, e) = app.patch(&path(&d["id"]), json!({"code": "01"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&e, "code").contains("already exists"), "{e}");
    let (s, renamed) = app
        .patch(
            &path(&d["id"]),
            json!({"code": "03", "description": "Concrete"}),
        )
        .await;
    assert_eq!(
        (s, renamed["full_code"].as_str()),
        (StatusCode::OK, Some("03"))
    );
    let (_, c3) = app.get(&path(&c["id"])).await;
    assert_eq!(c3["full_code"], "03-100-10");
    // Moving to the top tier with an explicit null.
    let (_, top) = app.patch(&path(&b["id"]), json!({"parent_id": null})).await;
    assert_eq!(
        (top["full_code"].as_str(), top["tier"].as_i64()),
        (Some("100"), Some(1))
    );
}

async fn delete_versus_deactivate(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let a = app.code(list, "01", "A", None).await;
    let child = app.code(list, "100", "child", a["id"].as_i64()).await;
    let gone = app.code(list, "02", "to delete", None).await;
    let path = |id: &Value| app.c(&format!("/cost_code_lists/{list}/cost_codes/{id}"));
    let (s, _) = app.delete(&path(&gone["id"])).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.get(&path(&gone["id"])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = app.delete(&path(&a["id"])).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{b}"
    );
    // A pending code says what would let it go (it said "retrieve it first or deactivate it",
    // and deactivating a pending code is refused too).
    app.send(list).await;
    let (s, b) = app.delete(&path(&a["id"])).await;
    assert_eq!(
        (s, error_message(&b)),
        (
            StatusCode::CONFLICT,
            "'01' cannot be deleted: it is pending in the ERP Integrations queue; Retrieve it \
             first, then delete it"
        )
    );
    // Once synced a code can only be deactivated, which is itself a change to sync.
    app.accept_all().await;
    let (s, b) = app.delete(&path(&child["id"])).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(error_message(&b).contains("deactivate"), "{b}");
    let (s, off) = app
        .patch(&path(&child["id"]), json!({"active": false}))
        .await;
    assert_eq!(
        (s, off["sync_status"].as_str()),
        (StatusCode::OK, Some("modified"))
    );
    assert_eq!(off["diff"]["active"], json!({"from": true, "to": false}));
    // A standard Admin-tool user may toggle active, nothing else.
    let std = app
        .user("std@one.example", perms("standard", "none", false))
        .await;
    let (s, _) = app
        .call(
            "PATCH",
            &path(&child["id"]),
            &std,
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = app
        .call(
            "PATCH",
            &path(&child["id"]),
            &std,
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(
        (s, b["error"]["details"]["required"].as_str()),
        (StatusCode::FORBIDDEN, Some("admin_tool=admin"))
    );
    assert_eq!(
        app.status_of(list, child["id"].as_i64().unwrap()).await,
        "synced"
    );
}

async fn racing_duplicates_make_one_code(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let path = app.c(&format!("/cost_code_lists/{list}/cost_codes"));
    let body = json!({"code": "77", "description": "race"});
    let results = app.posts_at_once(&path, &body, 8).await;
    assert_eq!(
        results
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{results:?}"
    );
    assert!(
        results
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::UNPROCESSABLE_ENTITY),
        "{results:?}"
    );
    let (_, all) = app.get(&path).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
}

/// A two-tier list: `divisions` codes `01`, `02`, … each with `sections` codes under it.
fn divisions_csv(divisions: u32, sections: u32) -> String {
    let mut csv = String::from("full_code,description\n");
    for d in 1..=divisions {
        csv.push_str(&format!("{d:02},Division {d}\n"));
        for s in 1..=sections {
            csv.push_str(&format!("{d:02}-{s},Section {s} of {d}\n"));
        }
    }
    csv
}

/// One page of codes: their full codes, the `Total` header and the `rel="next"` link.
async fn page_of(app: &TestApp, path: &str) -> (Vec<String>, i64, Option<String>) {
    let (total, next, body) = paged(app.request("GET", path).await).await;
    let codes = body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["full_code"].as_str().unwrap().to_owned())
        .collect();
    (codes, total, next)
}

/// Every page reached through `rel="next"` from `path`, and the totals each page gave.
async fn walk(app: &TestApp, path: &str) -> (Vec<String>, Vec<i64>) {
    let (mut all, mut totals, mut next) = (Vec::new(), Vec::new(), Some(path.to_owned()));
    while let Some(path) = next {
        let (codes, total, more) = page_of(app, &path).await;
        all.extend(codes);
        totals.push(total);
        next = more;
        assert!(totals.len() < 20, "the links never end: {path}");
    }
    (all, totals)
}

async fn pages_follow_keys_and_totals_follow_changes(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.import(list, divisions_csv(5, 4)).await;
    let codes = app.c(&format!("/cost_code_lists/{list}/cost_codes"));
    let (everything, _, none) = page_of(&app, &format!("{codes}?per_page=1000")).await;
    assert_eq!((everything.len(), none), (25, None));
    // Without a page number, `next` pages by key: three pages of 10, 10 and 5, in list order,
    // each with the whole total.
    let (walked, totals) = walk(&app, &format!("{codes}?per_page=10")).await;
    assert_eq!((&walked, totals), (&everything, vec![25, 25, 25]));
    let (_, _, next) = page_of(&app, &format!("{codes}?per_page=10")).await;
    assert!(
        next.as_deref()
            .is_some_and(|n| n.contains("after_code=02-4")),
        "{next:?}"
    );
    // The same with a state filter, whose total is the state's count.
    let (walked, totals) = walk(&app, &format!("{codes}?per_page=10&sync_status=new")).await;
    assert_eq!((&walked, totals), (&everything, vec![25, 25, 25]));
    // A code deleted and one moved to another state move the totals at once.
    let first = app.get(&format!("{codes}?per_page=1")).await.1[0]["id"]
        .as_i64()
        .unwrap();
    let last = app.get(&format!("{codes}?per_page=1&page=25")).await.1[0]["id"]
        .as_i64()
        .unwrap();
    let (s, b) = app.delete(&format!("{codes}/{last}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
    let count = lists
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == list)
        .map(|l| l["codes_count"].clone());
    assert_eq!(count, Some(json!(24)));
    app.send(list).await;
    assert_eq!(
        page_of(&app, &format!("{codes}?sync_status=new")).await.1,
        0
    );
    assert_eq!(
        page_of(&app, &format!("{codes}?sync_status=pending"))
            .await
            .1,
        24
    );
    assert_eq!(page_of(&app, &codes).await.1, 24);
    // `after` says where a page starts, so a page number beside it is refused, and so is a
    // code that is gone.
    let (s, b) = app.get(&format!("{codes}?after={first}&page=2")).await;
    assert_eq!(
        (s, field_error(&b, "after").contains("page")),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
    let (s, b) = app.get(&format!("{codes}?after={last}")).await;
    assert_eq!(
        (s, field_error(&b, "after").contains("first page")),
        (StatusCode::UNPROCESSABLE_ENTITY, true)
    );
}

/// `rel="next"` says where the next page starts by the last code's full code, not its id: a
/// client walking a list while someone renames or deletes that code goes on from the same place,
/// with or without a search (answered from memory), where a cursor by id started the next page
/// from the code's new place (repeating codes) or refused it once the code was gone.
async fn a_next_link_keeps_its_place_when_its_code_is_renamed_or_deleted(app: TestApp) {
    let id_of = |page: Value, i: usize| page[i]["id"].as_i64().unwrap();
    // Every code's description has an "o": the search walks the whole list too.
    for search in ["", "&q=o"] {
        let list = app.new_list(&format!("Walked{search}")).await;
        app.import(list, divisions_csv(5, 4)).await;
        let codes = app.c(&format!("/cost_code_lists/{list}/cost_codes"));
        let first = format!("{codes}?per_page=10{search}");
        let (page, _, next) = page_of(&app, &first).await;
        assert_eq!(page.last().map(String::as_str), Some("02-4"), "{search}");
        // The page's last code, 02-4, is renamed to sort before the rest of its division.
        let last = id_of(app.get(&first).await.1, 9);
        let (s, b) = app
            .patch(&format!("{codes}/{last}"), json!({"code": "0"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (page, _, next) = page_of(&app, &next.unwrap()).await;
        assert_eq!(
            page.first().map(String::as_str),
            Some("03"),
            "{search}: {page:?}"
        );
        assert_eq!(page.last().map(String::as_str), Some("04-4"), "{search}");
        // That page's last code is deleted: the next still starts after it.
        let (_, b) = app.get(&format!("{codes}?per_page=20{search}")).await;
        let last = id_of(b, 19);
        let (s, _) = app.delete(&format!("{codes}/{last}")).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (page, _, _) = page_of(&app, &next.unwrap()).await;
        assert_eq!(
            page.first().map(String::as_str),
            Some("05"),
            "{search}: {page:?}"
        );
    }
}

/// Pages by number start from marks kept in memory (every thousandth code): after each kind
/// of change (codes created, deleted, renamed, sent to another state) every numbered page is
/// still exactly the slice of the list that walking it by key gives.
async fn deep_pages_by_number_follow_every_change(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.import(list, divisions_csv(50, 49)).await;
    let codes = app.c(&format!("/cost_code_lists/{list}/cost_codes"));
    // Each numbered page against the same slice of the list walked by key; per_page 7 puts
    // page starts between marks, 1000 on them, and the last pages run past the end.
    let check = async |state: &str, step: &str| {
        let filter = match state {
            "" => String::new(),
            s => format!("&sync_status={s}"),
        };
        let (truth, _) = walk(&app, &format!("{codes}?per_page=1000{filter}")).await;
        for (per_page, page) in [
            (1000, 2),
            (1000, 3),
            (7, 143),
            (7, 300),
            (500, 5),
            (1000, 4),
        ] {
            let (got, total, _) = page_of(
                &app,
                &format!("{codes}?per_page={per_page}&page={page}{filter}"),
            )
            .await;
            let from = (per_page * (page - 1)).min(truth.len());
            let want = &truth[from..(from + per_page).min(truth.len())];
            // Told by their ends, not in full: a page holds up to a thousand codes.
            let ends = |c: &[String]| (c.len(), c.first().cloned(), c.last().cloned());
            assert!(
                got == want && total == truth.len() as i64,
                "{step}: state '{state}', per_page {per_page}, page {page}: got {:?} of \
                 {total}, want {:?} of {}",
                ends(&got),
                ends(want),
                truth.len()
            );
        }
    };
    check("", "imported").await;
    check("new", "imported").await;
    // Codes that sort first, so every later mark moves by two.
    app.import(
        list,
        "full_code,description\n00,Zero\n00-1,Zero one\n".into(),
    )
    .await;
    check("", "created").await;
    check("new", "created").await;
    let (_, page) = app.get(&format!("{codes}?per_page=3&page=5")).await;
    let id = |i: usize| page[i]["id"].as_i64().unwrap();
    let (s, b) = app.delete(&format!("{codes}/{}", id(0))).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    check("", "deleted").await;
    // A rename moves a code from the front of the list to its end.
    let (s, b) = app
        .patch(&format!("{codes}/{}", id(1)), json!({"code": "999"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    check("", "renamed").await;
    check("new", "renamed").await;
    app.send(list).await;
    check("pending", "sent").await;
    check("new", "sent").await;
    check("", "sent").await;
    // Another company's admin asking for a deep page (one marks would serve) of this list
    // through their own company is not found, with or without a state.
    let (two, zed) = app.company_two().await;
    for filter in ["", "&sync_status=pending"] {
        let path = app.c_of(
            two,
            &format!("/cost_code_lists/{list}/cost_codes?per_page=100&page=15{filter}"),
        );
        let (s, b) = app.call("GET", &path, &zed, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {b}");
    }
}

/// Searches are answered from the list's text kept in memory: after each kind of change (a
/// description edited, codes created and deleted, sent to another state) every search page is
/// exactly what matching the whole list by hand gives, in list order, with the whole total;
/// and pages by key walk the same matches.
async fn searches_follow_every_change(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.import(list, divisions_csv(10, 30)).await;
    let codes = app.c(&format!("/cost_code_lists/{list}/cost_codes"));
    let check = async |q: &str, state: &str, step: &str| {
        let (s, all) = app.get(&format!("{codes}?per_page=1000")).await;
        assert_eq!(s, StatusCode::OK, "{all}");
        let needle = q.to_lowercase();
        let truth: Vec<String> = all
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                let has = |field: &str| c[field].as_str().unwrap().to_lowercase().contains(&needle);
                (has("full_code") || has("description"))
                    && (state.is_empty() || c["sync_status"] == state)
            })
            .map(|c| c["full_code"].as_str().unwrap().to_owned())
            .collect();
        let mut query = format!("{codes}?q={}", urlencode(q));
        if !state.is_empty() {
            query.push_str(&format!("&sync_status={state}"));
        }
        for (per_page, page) in [(1000, 1), (7, 1), (7, 3), (5, 40)] {
            let (got, total, _) =
                page_of(&app, &format!("{query}&per_page={per_page}&page={page}")).await;
            let from = (per_page * (page - 1)).min(truth.len());
            let want = &truth[from..(from + per_page).min(truth.len())];
            assert!(
                got == want && total == truth.len() as i64,
                "{step}: q '{q}', state '{state}', per_page {per_page}, page {page}: got \
                 {got:?} of {total}, want {want:?} of {}",
                truth.len()
            );
        }
        let (walked, totals) = walk(&app, &format!("{query}&per_page=9")).await;
        assert_eq!(walked, truth, "{step}: q '{q}' walked by key");
        assert!(
            totals.iter().all(|&t| t == truth.len() as i64),
            "{step}: {totals:?}"
        );
    };
    check("section 2", "", "imported").await;
    check("3", "new", "imported").await;
    check("nothing like it", "", "imported").await;
    // A description edited: the old words no longer match, the new ones do, whatever their case.
    let (_, page) = app.get(&format!("{codes}?q=section%207%20of%205")).await;
    let edited = page[0]["id"].as_i64().unwrap();
    let (s, b) = app
        .patch(
            &format!("{codes}/{edited}"),
            json!({"description": "Échafaudage Spécial"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    check("section 7 of 5", "", "edited").await;
    check("ÉCHAFAUDAGE", "", "edited").await;
    check("spécial", "", "edited").await;
    // Codes created and deleted.
    app.import(list, "full_code,description\n00,Zero section 2\n".into())
        .await;
    check("section 2", "", "created").await;
    let (s, b) = app.delete(&format!("{codes}/{edited}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    check("spécial", "", "deleted").await;
    // Sent: every code changes state.
    app.send(list).await;
    check("section 2", "pending", "sent").await;
    check("section 2", "new", "sent").await;
    // Text that would run across a code's fields is answered by the statement: no match.
    check("1\u{1}section", "", "sent").await;
    // Another company's admin searching this list through their own company: not found.
    let (two, zed) = app.company_two().await;
    let path = app.c_of(
        two,
        &format!("/cost_code_lists/{list}/cost_codes?q=section"),
    );
    let (s, b) = app.call("GET", &path, &zed, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {b}");
}

/// `text` as a query string value.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// API.md lists its parameters as `?sync_status=&q=&page=&per_page=`; a client that sends
/// every one, empty, got a 400 (`page=`), a 422 (`sync_status=`) or an empty list
/// (`entity_type=`). An empty value is no value.
async fn empty_query_values_ask_for_nothing(app: TestApp) {
    let list = app.new_list("Ours").await;
    app.code(list, "01", "General", None).await;
    app.code(list, "02", "Site", None).await;
    let codes = app.c(&format!("/cost_code_lists/{list}/cost_codes"));
    let (s, all) = app.get(&codes).await;
    assert_eq!(s, StatusCode::OK);
    let (s, empty) = app
        .get(&format!("{codes}?sync_status=&q=&page=&per_page="))
        .await;
    assert_eq!((s, &empty), (StatusCode::OK, &all));
    let (s, events) = app
        .get(&app.c("/audit_events?entity_type=&entity_id=&action="))
        .await;
    assert_eq!(s, StatusCode::OK, "{events}");
    assert!(events.as_array().is_some_and(|e| e.len() >= 2), "{events}");
    let (s, items) = app.get(&app.c("/erp/cost_codes?filter=")).await;
    assert_eq!(s, StatusCode::OK, "{items}");
    // A value that is given is still checked.
    let (s, b) = app.get(&format!("{codes}?page=zero")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
}

/// API.md: "Lists: `?page=1&per_page=100` (max 1000), response headers `Total`, `Per-Page`,
/// `Link`". The company's lists and users came back whole, with none of the three.
async fn lists_and_users_are_paged_like_every_list(app: TestApp) {
    for name in ["A", "B", "C"] {
        app.new_list(name).await;
    }
    let res = app
        .request("GET", &app.c("/cost_code_lists?per_page=2&page=2"))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["total"], "3");
    assert_eq!(res.headers()["per-page"], "2");
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    assert!(link.contains("page=1>; rel=\"prev\""), "{link}");
    let page: Value = res.json().await.unwrap();
    assert_eq!(strings(&page, "name"), ["C"]);
    app.user("second@one.example", perms("read_only", "none", false))
        .await;
    let res = app.request("GET", &app.c("/users?per_page=1")).await;
    assert_eq!(res.headers()["total"], "2");
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    assert!(link.contains("page=2>; rel=\"next\""), "{link}");
    let page: Value = res.json().await.unwrap();
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    let (s, b) = app.get(&app.c("/users?per_page=0")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
}

/// `page` pages by number, `after` and `after_code` by key: together they are refused, whatever
/// the page number. `page=1` beside a key was let through, and its page came without the
/// `rel="next"` that goes on from the key, so a walk stopped after one page. An empty `page=`
/// is no page number, as every empty value is no value.
async fn a_page_number_beside_a_key_is_refused(app: TestApp) {
    let list = app.new_list("Ours").await;
    let first = app.code(list, "01", "General", None).await;
    app.code(list, "02", "Site", None).await;
    app.code(list, "03", "Concrete", None).await;
    let codes = app.c(&format!("/cost_code_lists/{list}/cost_codes"));
    let after = format!("after={}", first["id"]);
    for (key, field) in [("after_code=01", "after_code"), (after.as_str(), "after")] {
        for page in ["1", "2"] {
            let (s, b) = app
                .get(&format!("{codes}?per_page=1&page={page}&{key}"))
                .await;
            assert_eq!(
                (s, field_error(&b, field).contains("page")),
                (StatusCode::UNPROCESSABLE_ENTITY, true),
                "page={page}&{key}: {b}"
            );
        }
    }
    let (got, _, next) = page_of(&app, &format!("{codes}?per_page=1&page=&after_code=01")).await;
    assert_eq!(got, ["02"]);
    assert!(
        next.as_deref().is_some_and(|n| n.contains("after_code=02")),
        "{next:?}"
    );
}

/// A PATCH that changes nothing (a retry: PATCH takes no Idempotency-Key) writes nothing: no
/// audit row, no `cost_code.updated` event sent again under a new id, no new list version or
/// `updated_at`, as the import counts such a row `unchanged`. Rights and values are judged as
/// before: who may not make the change is refused even when it would change nothing.
async fn a_patch_that_changes_nothing_writes_nothing(app: TestApp) {
    let receiver = Receiver::start().await;
    let sub = subscribe(&app, &receiver.url, &["cost_code.updated"]).await;
    let (list, top, code, path) = permits_under_general(&app).await;
    let written = async || {
        let (_, lists) = app.get(&app.c("/cost_code_lists")).await;
        let version = lists
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == list)
            .map(|l| l["version"].clone());
        let audited = app.audit_actions("entity_type=cost_code").await.len();
        (version, audited, log(&app, &sub).await.len())
    };
    let before = written().await;
    let same = json!({"code": "100", "description": "Permits", "active": true,
        "parent_id": top["id"]});
    for patch in [json!({}), json!({"active": true}), same] {
        assert_eq!(app.patched(&path, patch.clone()).await, code, "{patch}");
    }
    assert_eq!(written().await, before);
    let standard = app
        .user("standard@one.example", perms("standard", "none", false))
        .await;
    let (s, b) = app
        .call(
            "PATCH",
            &path,
            &standard,
            Some(json!({"description": "Permits"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = app.patch(&path, json!({"description": " "})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // A change is still written, once.
    app.patched(&path, json!({"description": "Permits and fees"}))
        .await;
    let (version, audited, events) = written().await;
    assert_ne!(version, before.0);
    assert_eq!((audited, events), (before.1 + 1, before.2 + 1));
    // A locked code answers 409 `locked` to any edit, one that would change nothing too.
    let erp = app.connect("quickbooks_desktop", "iif").await;
    let sent = app.code(erp, "01", "General", None).await;
    app.send(erp).await;
    let path = app.c(&format!("/cost_code_lists/{erp}/cost_codes/{}", sent["id"]));
    let (s, b) = app.patch(&path, json!({"description": "General"})).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("locked")),
        "{b}"
    );
}

/// `null` for a field that cannot be cleared is refused, naming it: read as absent, it answered
/// 200 with the value unchanged, and a client that meant to clear it never learned it had not.
/// `parent_id: null` still moves a code to the top tier.
async fn a_null_that_cannot_clear_is_refused_by_name(app: TestApp) {
    let (_, _, code, path) = permits_under_general(&app).await;
    for field in ["code", "description", "active"] {
        let (s, b) = app
            .patch(&path, json!({field: null, "parent_id": null}))
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {b}");
        assert!(field_error(&b, field).contains("cannot be cleared"), "{b}");
    }
    let (_, now) = app.get(&path).await;
    assert_eq!(now, code, "a refused PATCH changed the code");
    let moved = app.patched(&path, json!({"parent_id": null})).await;
    assert_eq!(moved["parent_id"], Value::Null);

    let (_, me) = app.get("/api/v1/me").await;
    let users = app.c(&format!("/users/{}", me["id"]));
    for field in ["name", "password", "current_password", "permissions"] {
        let (s, b) = app.patch(&users, json!({field: null})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {b}");
        assert!(field_error(&b, field).contains("cannot be cleared"), "{b}");
    }
}

/// A new list with `01 General` and `100 Permits` under it: the list, both codes, and the
/// path of Permits.
async fn permits_under_general(app: &TestApp) -> (i64, Value, Value, String) {
    let list = app.new_list("Ours").await;
    let top = app.code(list, "01", "General", None).await;
    let code = app.code(list, "100", "Permits", top["id"].as_i64()).await;
    let path = app.c(&format!(
        "/cost_code_lists/{list}/cost_codes/{}",
        code["id"]
    ));
    (list, top, code, path)
}
