//! The company's time zone (issue #14): an admin sets it on Company settings → Users, a name
//! the tz database does not have is refused at the field, and the pages then show every time
//! in that zone with the zone named.
use crate::harness::{ADMIN, PASSWORD, Site, with_browser};
use time::OffsetDateTime;
use time::macros::{format_description, offset};

/// `t` as a person in India reads it, the way the pages write it.
fn in_india(t: OffsetDateTime) -> String {
    let local = t
        .to_offset(offset!(+5:30))
        .format(format_description!(
            "[day padding:none] [month repr:short] [year] [hour]:[minute]"
        ))
        .unwrap();
    format!("{local} IST")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_follow_the_company_zone() {
    let Some((site, _)) = Site::for_browser().await else {
        return;
    };
    with_browser(&site, "zone", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        b.go("/settings/users").await;
        b.fill("#company-time-zone", "Nowhere/Land").await;
        b.click("#company-zone button[type=submit]").await;
        b.wait_text(
            "#company-time-zone-error",
            "'Nowhere/Land' is not a time zone name like Europe/Berlin",
        )
        .await;

        let before = OffsetDateTime::now_utc();
        b.fill("#company-time-zone", "Asia/Kolkata").await;
        b.click("#company-zone button[type=submit]").await;
        b.wait_text(
            "#company-time-zone-hint",
            "Saved. Every time in pages, CSV downloads and emails is shown in Asia/Kolkata",
        )
        .await;
        let after = OffsetDateTime::now_utc();

        // The audit log's newest event is that change, at its time in India, named.
        b.go("/settings/audit").await;
        let at = b.text("tbody tr:first-child td:first-child").await;
        assert!(
            at == in_india(before) || at == in_india(after),
            "{at} is not {} in India",
            in_india(before)
        );
        b.wait_text("tbody tr:first-child", "company.updated").await;
    })
    .await;
}
