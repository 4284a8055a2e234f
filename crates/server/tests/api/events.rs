//! Event subscriptions (issue #13, point 5): events written with the change that causes them,
//! delivered signed, in order per code, retried, redelivered; refused addresses; secrets never
//! shown. A real HTTP receiver runs in the test and checks every signature as a subscriber
//! would; the delivery worker is driven with an explicit clock.
use crate::both;
pub use crate::event_receiver::{Receiver, SECRET};
use crate::helpers::TestApp;
use costbridge_server::events::{EventReport, deliver_pending};
use costbridge_storage::pull::RemoteCode;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

pub async fn subscribe(app: &TestApp, url: &str, types: &[&str]) -> Value {
    app.created(
        &app.c("/event_subscriptions"),
        json!({"url": url, "secret": SECRET, "event_types": types}),
    )
    .await
}

pub async fn deliver(app: &TestApp, at: OffsetDateTime) -> EventReport {
    deliver_pending(&app.app_state, &app.worker, at)
        .await
        .expect("delivery round")
}

pub fn now() -> OffsetDateTime {
    costbridge_storage::now()
}

/// The subscription's delivery log, newest first.
pub async fn log(app: &TestApp, sub: &Value) -> Vec<Value> {
    let (s, b) = app
        .get(&app.c(&format!(
            "/event_subscriptions/{}/deliveries?per_page=1000",
            sub["id"]
        )))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b.as_array().unwrap().clone()
}

/// `(type, full_code)` of each event, in order.
fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let code = &e["data"]["cost_code"]["full_code"];
            (
                e["type"].as_str().unwrap().to_owned(),
                code.as_str().unwrap_or("-").to_owned(),
            )
        })
        .collect()
}

async fn a_code_s_life_reaches_the_subscriber_signed_and_in_order(app: TestApp) {
    let receiver = Receiver::start().await;
    let all = [
        "cost_code.created",
        "cost_code.updated",
        "cost_code.sent",
        "cost_code.synced",
        "cost_code.rejected",
        "cost_code.failed",
        "export_job.done",
    ];
    let sub = subscribe(&app, &receiver.url, &all).await;
    assert_eq!(sub["secret"], "********", "{sub}");
    assert_eq!(sub["event_types"], json!(all));

    let list = app.connect("quickbooks_desktop", "iif").await;
    let top = app.code(list, "31", "Earthwork", None).await;
    let child = app
        .code(list, "100", "Excavation", top["id"].as_i64())
        .await;
    let path = format!("/cost_code_lists/{list}/cost_codes/{}", child["id"]);
    app.patched(&app.c(&path), json!({"description": "Excavation and fill"}))
        .await;
    app.send(list).await;
    let job = app.accept_all().await;
    assert!(
        receiver.events().is_empty(),
        "nothing goes out before the worker runs"
    );
    let (_, metrics) = app.call("GET", "/metrics", "", None).await;
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(metrics.contains("costbridge_events_pending 8"), "{metrics}");

    let report = deliver(&app, now()).await;
    assert_eq!(
        report.delivered, 1,
        "{report:?}: one batch, not one call per event"
    );
    let events = receiver.events();
    assert_eq!(
        kinds(&events),
        [
            ("cost_code.created", "31"),
            ("cost_code.created", "31-100"),
            ("cost_code.updated", "31-100"),
            ("cost_code.sent", "31"),
            ("cost_code.sent", "31-100"),
            ("cost_code.synced", "31"),
            ("cost_code.synced", "31-100"),
            ("export_job.done", "-"),
        ]
        .map(|(t, c)| (t.to_owned(), c.to_owned()))
    );
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids ascend: {ids:?}");
    let synced = &events[6];
    assert_eq!(synced["data"]["cost_code"]["sync_status"], "synced");
    assert_eq!(
        synced["data"]["cost_code"]["description"],
        "Excavation and fill"
    );
    assert_eq!(synced["data"]["export_job_id"], job);
    assert_eq!(synced["company_id"], app.company);
    assert_eq!(events[7]["data"]["export_job"]["id"], job);
    // Both counts, a zero too: a receiver reads `counts.failed` of a job where all synced.
    assert_eq!(
        events[7]["data"]["export_job"]["counts"],
        json!({"synced": 2, "failed": 0})
    );
    // The file connector: no ERP confirmed these, and the events name the file they went to.
    let file = format!("costbridge-export-{job}.iif");
    assert_eq!(synced["data"]["cost_code"]["delivered_to"], file.as_str());
    assert_eq!(
        events[7]["data"]["export_job"]["delivered_to"],
        file.as_str()
    );
    assert_eq!(events[3]["data"]["cost_code"]["delivered_to"], Value::Null);

    let entries = log(&app, &sub).await;
    assert_eq!(entries.len(), 8);
    for e in &entries {
        assert_eq!(e["status"], "delivered", "{e}");
        assert_eq!(e["attempts"], 1, "{e}");
        assert_eq!(e["last_status"], 200, "{e}");
        assert_eq!(e["last_response"], "thanks", "{e}");
        assert_eq!(e["next_attempt_at"], Value::Null, "{e}");
    }
    // A second round has nothing left to send.
    assert_eq!(deliver(&app, now()).await, EventReport::default());

    // Rejected and failed codes carry the reason and the ERP's message.
    let code = app.code(list, "32", "Utilities", None).await;
    app.send(list).await;
    let item = app.items("ready_to_export").await[0]["id"].clone();
    let (s, b) = app
        .post(
            &app.c("/erp/cost_codes/reject"),
            json!({"item_ids": [item], "reason": "Use 33 instead"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    deliver(&app, now()).await;
    let rejected = receiver.events().last().unwrap().clone();
    assert_eq!(rejected["type"], "cost_code.rejected");
    assert_eq!(rejected["data"]["cost_code"]["id"], code["id"]);
    assert_eq!(rejected["data"]["cost_code"]["message"], "Use 33 instead");
}

async fn order_per_code_holds_across_a_failure_retry_and_give_up(app: TestApp) {
    let receiver = Receiver::start().await;
    let sub = subscribe(
        &app,
        &receiver.url,
        &["cost_code.created", "cost_code.updated"],
    )
    .await;
    let list = app.new_list("Own").await;

    receiver.fail_next(&[503]);
    let code = app.code(list, "01", "General", None).await;
    let r = deliver(&app, now()).await;
    assert_eq!((r.delivered, r.retried), (0, 1), "{r:?}");
    let first = &log(&app, &sub).await[0];
    assert_eq!(first["status"], "pending");
    assert_eq!(first["last_status"], 503);
    assert_eq!(first["last_response"], "busy, try later");
    assert!(first["next_attempt_at"].is_string(), "{first}");

    // A later event for the code waits behind the failed one, even once it is due itself.
    let path = format!("/cost_code_lists/{list}/cost_codes/{}", code["id"]);
    app.patched(&app.c(&path), json!({"description": "General conditions"}))
        .await;
    assert_eq!(
        deliver(&app, now()).await,
        EventReport::default(),
        "still backing off"
    );
    assert!(receiver.events().is_empty());

    let r = deliver(&app, now() + Duration::hours(2)).await;
    assert_eq!(r.delivered, 1, "{r:?}");
    assert_eq!(
        kinds(&receiver.events()),
        [("cost_code.created", "01"), ("cost_code.updated", "01")]
            .map(|(t, c)| (t.to_owned(), c.to_owned()))
    );
    let entries = log(&app, &sub).await;
    assert_eq!(
        entries[1]["attempts"], 2,
        "the created event took two tries"
    );
    assert_eq!(entries[0]["attempts"], 1);

    // The tests allow two attempts: then the events are failed and the ones behind them go.
    receiver.fail_next(&[500, 500]);
    app.code(list, "02", "Site work", None).await;
    assert_eq!(deliver(&app, now()).await.retried, 1);
    let r = deliver(&app, now() + Duration::hours(2)).await;
    assert_eq!(r.failed, 1, "{r:?}");
    let failed = log(&app, &sub).await[0].clone();
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["attempts"], 2);
    assert_eq!(failed["last_status"], 500);
    let error = failed["last_error"].as_str().unwrap();
    assert!(error.contains("answered HTTP 500"), "{error}");
    assert!(error.contains("gave up after 2 attempts"), "{error}");
    assert_eq!(
        app.gauge("costbridge_events_failed").await.as_deref(),
        Some("1")
    );
    app.code(list, "03", "Concrete", None).await;
    deliver(&app, now() + Duration::hours(3)).await;
    assert_eq!(
        receiver.events().last().unwrap()["data"]["cost_code"]["full_code"],
        "03"
    );

    // Redeliver sends the same event, with the same id, once more.
    app.accepted(
        &app.c(&format!(
            "/event_subscriptions/{}/deliveries/{}/redeliver",
            sub["id"], failed["id"]
        )),
        json!({}),
    )
    .await;
    assert_eq!(deliver(&app, now() + Duration::hours(3)).await.delivered, 1);
    let again = receiver.events().last().unwrap().clone();
    assert_eq!(again["id"], failed["id"]);
    assert_eq!(again["data"]["cost_code"]["full_code"], "02");
    let entry = log(&app, &sub)
        .await
        .into_iter()
        .find(|e| e["id"] == failed["id"])
        .unwrap();
    assert_eq!(entry["status"], "delivered");
    assert_eq!(app.audit_actions("action=event.redelivered").await.len(), 1);
}

async fn events_are_written_with_their_change_only(app: TestApp) {
    let receiver = Receiver::start().await;
    let list = app.new_list("Own").await;
    // Before anyone subscribes, changes write no events at all.
    app.code(list, "01", "General", None).await;
    let sub = subscribe(&app, &receiver.url, &["cost_code.created"]).await;
    assert!(log(&app, &sub).await.is_empty());

    // Refused changes roll back their events with them.
    let (s, b) = app
        .post(
            &app.c(&format!("/cost_code_lists/{list}/cost_codes")),
            json!({"code": "01", "description": "Again"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    let (s, b) = app
        .raw(
            "POST",
            &app.c(&format!("/cost_code_lists/{list}/import")),
            "text/csv",
            b"full_code,description,active\n05,Metals,true\n06,,true\n".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        log(&app, &sub).await.is_empty(),
        "nothing from refused changes"
    );

    // A 250-code import: one event per code, written before the import answered.
    let big = app.new_list("Big").await;
    let b = app.import(big, crate::helpers::divisions_csv(250)).await;
    assert_eq!(b["created"], 250);
    let entries = log(&app, &sub).await;
    assert_eq!(entries.len(), 250);
    assert!(entries.iter().all(|e| e["status"] == "pending"));
    // Updating is not subscribed: nothing is written for it.
    let b = app
        .import(
            big,
            "full_code,description,active\n01,Renamed,true\n".into(),
        )
        .await;
    assert_eq!(b["updated"], 1);
    assert_eq!(log(&app, &sub).await.len(), 250);

    let r = deliver(&app, now()).await;
    assert_eq!(r.delivered, 3, "{r:?}: 250 events in batches of 100");
    assert_eq!(receiver.batches(), 3);
    let codes: Vec<String> = kinds(&receiver.events())
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert_eq!(codes.len(), 250);
    assert_eq!(codes[0], "01");
    assert_eq!(codes[1], "01-001", "in list order");
}

async fn codes_pulled_from_the_erp_are_told_too(app: TestApp) {
    let receiver = Receiver::start().await;
    subscribe(
        &app,
        &receiver.url,
        &["cost_code.created", "cost_code.updated", "cost_code.synced"],
    )
    .await;
    let list = app.new_list("Own").await;
    app.code(list, "02", "Site work", None).await;
    let (_, me) = app.get("/api/v1/me").await;
    let remote = |description: &str| {
        [("01", description), ("02", "Site work")].map(|(code, description)| RemoteCode {
            origin_id: format!("ERP-{code}"),
            full_code: code.into(),
            description: description.into(),
            active: true,
        })
    };
    let pull = |codes: [RemoteCode; 2]| {
        let (db, company, actor) = (
            app.app_state.db.clone(),
            app.company,
            me["id"].as_i64().unwrap(),
        );
        async move {
            db.pull_from_erp(company, list, actor, &codes, costbridge_storage::now())
                .await
                .unwrap()
        }
    };
    let s = pull(remote("General")).await;
    assert_eq!((s.created, s.updated), (1, 1));
    let s = pull(remote("General requirements")).await;
    assert_eq!(s.updated, 1);
    deliver(&app, now()).await;
    assert_eq!(
        kinds(&receiver.events()),
        [
            ("cost_code.created", "02"),
            ("cost_code.created", "01"),
            ("cost_code.synced", "01"),
            ("cost_code.synced", "02"),
            ("cost_code.updated", "01"),
        ]
        .map(|(t, c)| (t.to_owned(), c.to_owned()))
    );
    let last = receiver.events().last().unwrap().clone();
    assert_eq!(
        last["data"]["cost_code"]["description"],
        "General requirements"
    );
    assert_eq!(last["data"]["cost_code"]["origin_id"], "ERP-01");
}

async fn two_workers_never_send_a_batch_twice(app: TestApp) {
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &["cost_code.created"]).await;
    let list = app.new_list("Own").await;
    app.code(list, "01", "General", None).await;
    // While one worker waits for the slow subscriber, the other finds the subscription leased.
    receiver.slow(300);
    let (a, b) = tokio::join!(deliver(&app, now()), deliver(&app, now()));
    assert_eq!(a.delivered + b.delivered, 1, "{a:?} {b:?}");
    assert_eq!(receiver.batches(), 1);
    assert_eq!(receiver.events().len(), 1);
}

/// A worker whose lease ran out while its subscriber was slow, and whose subscription another
/// worker took over, records no refusal over a delivery and leaves the other's lease alone
/// (released, the subscription would go to a third worker while the second still sends).
async fn a_late_worker_undoes_no_delivery(app: TestApp) {
    use costbridge_storage::events::Delivery;
    let receiver = Receiver::start().await;
    let sub = subscribe(&app, &receiver.url, &["cost_code.created"]).await;
    let list = app.new_list("Own").await;
    app.code(list, "01", "General", None).await;
    let db = &app.app_state.db;
    let late = db
        .claim_event_subscription(now(), Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<i64> = db
        .event_batch(late.id, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let current = db
        .claim_event_subscription(now(), Duration::minutes(1))
        .await
        .unwrap()
        .expect("the run-out lease is taken over");
    let delivered = Delivery::Delivered {
        status: 200,
        response: String::new(),
    };
    db.record_delivery(&current, &ids, &delivered)
        .await
        .unwrap();
    let refused = Delivery::NotTaken {
        status: Some(503),
        response: None,
        error: "late".into(),
        retry_at: Some(now()),
    };
    db.record_delivery(&late, &ids, &refused).await.unwrap();
    let entries = log(&app, &sub).await;
    assert_eq!(entries[0]["status"], "delivered", "{entries:?}");

    // The second worker takes the subscription again; the late one's release leaves it held.
    app.code(list, "02", "Site Work", None).await;
    let again = db
        .claim_event_subscription(now(), Duration::minutes(1))
        .await
        .unwrap()
        .expect("due again");
    db.record_delivery(&late, &[], &delivered).await.unwrap();
    let third = db
        .claim_event_subscription(now(), Duration::minutes(1))
        .await
        .unwrap();
    assert!(third.is_none(), "the subscription went to a third worker");
    db.record_delivery(&again, &[], &delivered).await.unwrap();
}

both!(
    two_workers_never_send_a_batch_twice,
    a_late_worker_undoes_no_delivery,
    codes_pulled_from_the_erp_are_told_too,
    a_code_s_life_reaches_the_subscriber_signed_and_in_order,
    order_per_code_holds_across_a_failure_retry_and_give_up,
    events_are_written_with_their_change_only,
);
