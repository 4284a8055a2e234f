//! The web pages at size: a 10,000-code list opens a tier at a time.
use crate::helpers::{Backend, TestApp};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_codes_open_a_tier_at_a_time() {
    let Some(app) = TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let (s, lists) = app
        .post(
            &app.c("/cost_code_lists"),
            serde_json::json!({"name": "Big"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{lists}");
    let list = lists["id"].as_i64().unwrap();
    let mut csv = String::from("full_code,description,active\n");
    for top in 1..=150 {
        csv.push_str(&format!("{top:03},Division {top},true\n"));
        for child in 1..=66 {
            csv.push_str(&format!("{top:03}-{child:03},Item {child} of {top},true\n"));
        }
    }
    let b = app.import(list, csv).await;
    assert_eq!(b["created"], 150 * 67);

    let (c, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let get = |path: String| {
        let (c, cookie) = (c.clone(), cookie.clone());
        async move {
            let start = Instant::now();
            let res = c.get(path).header(COOKIE, cookie).send().await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            let body = res.text().await.unwrap();
            (body, start.elapsed())
        }
    };
    let (page, took) = get(format!("{}/codes?list={list}", app.base)).await;
    // The top tier's first page only: 100 rows, not 10,050.
    assert_eq!(page.matches("<li id=\"node-").count(), 100);
    assert!(page.contains("Show more (100 of 150 shown)"), "paged");
    assert!(took < Duration::from_secs(3), "the page took {took:?}");
    let (kids, took) = get(format!("{}/codes/{list}/nodes?parent=1", app.base)).await;
    assert_eq!(kids.matches("<li id=\"node-").count(), 66);
    assert!(took < Duration::from_secs(2), "a tier took {took:?}");
    let (found, _) = get(format!(
        "{}/codes/{list}/nodes?q=Item%2066%20of%20150",
        app.base
    ))
    .await;
    assert_eq!(found.matches("<li id=\"node-").count(), 1);
}
