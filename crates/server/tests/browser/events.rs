//! Company settings → Events: an admin subscribes a receiver, sees the delivery in the log and
//! redelivers it (issue #13, point 5).
use crate::a11y::Axe;
use crate::event_receiver::{Receiver, SECRET};
use crate::harness::{ADMIN, PASSWORD, Site, available, with_browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_see_a_delivery_and_redeliver() {
    if !available() {
        return;
    }
    let Some(axe) = Axe::load() else {
        return;
    };
    // The receiver listens on loopback, which the default policy refuses.
    let site = Site::start_with(|s| s.outbound.allow_private = true).await;
    let company = site.company().await;
    let list = site.connect(&company, "quickbooks_desktop").await;
    let receiver = Receiver::start().await;
    let s = site.clone();
    with_browser(&site, "events", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        b.go("/settings/events").await;
        b.wait_text("#events-heading", "Event subscriptions").await;

        // A short secret is refused beside its field, and the typed one is not shown again.
        b.fill("#ev-url", &receiver.url).await;
        b.fill("#ev-secret", "short").await;
        b.click("input[value='cost_code.created']").await;
        b.click_to_load("#new-subscription button[type=submit]")
            .await;
        b.wait_text("#ev-secret-error", "at least 16 characters")
            .await;
        assert_eq!(b.attr("#ev-secret", "value").await.unwrap_or_default(), "");

        b.fill("#ev-secret", SECRET).await;
        b.click_to_load("#new-subscription button[type=submit]")
            .await;
        b.wait_text(".notice", "Subscribed").await;
        let row = b.text("tbody tr").await;
        assert!(
            row.contains("cost_code.created") && row.contains("********"),
            "{row}"
        );
        assert!(!row.contains(SECRET));

        s.codes(&company, list, "01,General conditions,true").await;

        // Delete names the subscription (to a screen reader too) and asks first, saying what
        // waits is thrown away; answering Cancel keeps it.
        b.go("/settings/events").await;
        let named = b
            .script_text(
                "return document.querySelector('tbody tr button[type=submit]').textContent",
                vec![],
            )
            .await;
        assert_eq!(
            named,
            format!("Delete the subscription of {}", receiver.url)
        );
        b.click("tbody tr button[type=submit]").await;
        let asked = b.d.alert_text().await.expect("Delete asks first");
        assert!(
            asked.contains(&receiver.url)
                && asked.contains("Its 1 waiting event is discarded, never to be delivered"),
            "{asked}"
        );
        b.d.dismiss_alert().await.unwrap();
        b.wait_text("tbody tr", "cost_code.created").await;
        assert_eq!(receiver.events().len(), 0);
        let report = costbridge_server::events::deliver_pending(
            &s.state,
            &s.worker,
            costbridge_storage::now(),
        )
        .await
        .unwrap();
        assert_eq!(report.delivered, 1, "{report:?}");
        assert_eq!(receiver.events().len(), 1);

        b.click_to_load("tbody tr a").await;
        let line = b.wait_text("tbody tr", "delivered").await;
        assert!(
            line.contains("cost_code.created") && line.contains("01"),
            "{line}"
        );
        assert!(line.contains("HTTP 200: thanks"), "{line}");
        b.shot("event-deliveries").await;
        // The delivery log is a page state too (issue #15): its table scrolls by keyboard.
        b.axe(&axe, "event delivery log").await;

        let named = b
            .script_text(
                "return document.querySelector('tbody tr button[type=submit]').textContent",
                vec![],
            )
            .await;
        assert!(named.starts_with("Redeliver event "), "{named}");
        assert!(named.ends_with(", cost_code.created"), "{named}");
        b.click_to_load("tbody tr button[type=submit]").await;
        b.wait_text(".notice", "queued to be delivered again").await;
        b.wait_text("tbody tr", "pending").await;
        costbridge_server::events::deliver_pending(&s.state, &s.worker, costbridge_storage::now())
            .await
            .unwrap();
        let ids: Vec<_> = receiver.events().iter().map(|e| e["id"].clone()).collect();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], ids[1], "the same event, its id unchanged");

        // Nothing waits now: Delete says so, and goes ahead once confirmed.
        b.go("/settings/events").await;
        b.click("tbody tr button[type=submit]").await;
        let asked = b.d.alert_text().await.expect("Delete asks first");
        assert!(
            asked.contains("No events wait to be delivered to it"),
            "{asked}"
        );
        b.d.accept_alert().await.unwrap();
        b.wait_text(".notice", "Deleted the subscription").await;
        b.wait_text("tbody tr", "No subscriptions yet").await;
    })
    .await;
}
