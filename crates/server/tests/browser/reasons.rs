//! Every reason the Send to ERP button can be disabled for, as the page shows it: disabled,
//! the reason on hover (title), as visible text beside it and for screen readers; a stale page
//! says "refresh".
use crate::harness::{ADMIN, Browser, PASSWORD, Site, admin_tool_only, with_browser};
use costbridge_domain::Level;

/// The button is disabled for `code`, and both the hover text and the screen-reader text say `words`.
async fn disabled_for(b: &Browser, code: &str, words: &str) {
    // What the page says when it loads, not what an earlier swap left.
    b.d.refresh().await.unwrap();
    let button = b.el("#send-button").await;
    assert_eq!(
        button.attr("disabled").await.unwrap().as_deref(),
        Some("true"),
        "{code}: disabled"
    );
    assert_eq!(
        button.attr("data-reason").await.unwrap().as_deref(),
        Some(code)
    );
    let hover = b.attr(".send-wrap", "title").await.unwrap_or_default();
    assert!(hover.contains(words), "{code}: hover says {hover:?}");
    let sr = b.el("#send-reason").await;
    let spoken = b
        .script_text("return arguments[0].textContent", vec![sr.json()])
        .await;
    assert!(
        spoken.contains(words),
        "{code}: screen readers hear {spoken:?}"
    );
    assert_eq!(
        button.attr("aria-describedby").await.unwrap().as_deref(),
        Some("send-reason")
    );
    // Visible beside the button too, for touch users and anyone who does not hover.
    let seen = sr.text().await.unwrap();
    assert!(seen.contains(words), "{code}: the page shows {seen:?}");
    let width =
        b.d.execute(
            "return arguments[0].getBoundingClientRect().width",
            vec![sr.json()],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap_or_default();
    assert!(width > 100.0, "{code}: the reason is {width}px wide");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_disabled_send_reason() {
    let Some((site, company)) = Site::for_browser().await else {
        return;
    };
    site.user(
        &company,
        "viewer@one.example",
        "Vic Viewer",
        admin_tool_only(Level::ReadOnly),
    )
    .await;
    let s = site.clone();
    with_browser(&site, "reasons", |b| async move {
        b.login(ADMIN, PASSWORD).await;

        // No connection yet: a plain list of our own.
        b.go("/codes").await;
        b.click("details.card summary").await;
        b.fill("#new-list-name", "Estimating").await;
        b.click("form[hx-post='/codes/lists'] button").await;
        b.wait_text("h1", "Estimating").await;
        disabled_for(&b, "no_erp_connection", "Connect an ERP").await;

        // An import-only ERP owns its codes.
        let erp_list = s.connect(&company, "sage_300_cre").await;
        s.codes(&company, erp_list, "01,General Requirements,true")
            .await;
        b.go(&format!("/codes?list={erp_list}")).await;
        disabled_for(
            &b,
            "erp_owns_cost_codes",
            "Sage 300 CRE owns its cost codes",
        )
        .await;

        // A list other than the ERP list never syncs.
        s.connect(&company, "xero").await;
        b.go("/codes").await;
        b.el("#list-picker").await;
        let estimating = format!("/codes?list={}", erp_list - 1);
        b.go(&estimating).await;
        b.wait_text("h1", "Estimating").await;
        disabled_for(&b, "not_erp_list", "Only the ERP Standard Cost Code list").await;

        // Codes that break the ERP's rules are listed.
        s.codes(
            &company,
            erp_list,
            "01-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,Far too long for Xero,true",
        )
        .await;
        b.go(&format!("/codes?list={erp_list}")).await;
        disabled_for(&b, "invalid_codes", "break Xero's rules").await;
        b.click("#send-panel details summary").await;
        b.wait_text(
            "#send-panel details",
            "01-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        )
        .await;
        b.shot("send-disabled").await;

        // Fixing the code (in place) enables the button.
        b.click("#tree > li.node .toggle").await;
        let long = b
            .el("#tree li li.node")
            .await
            .attr("id")
            .await
            .unwrap()
            .unwrap();
        b.click(&format!("#{long} button[hx-post$='/delete']"))
            .await;
        b.d.accept_alert().await.unwrap();
        b.wait_gone(&format!("#{long}")).await;
        b.wait_text("#send-button", "Send to ERP (1 code)").await;
        assert_eq!(b.attr("#send-button", "disabled").await, None);

        // Someone else changes the list behind this page: sending says to refresh.
        s.codes(&company, erp_list, "02,Existing Conditions,true")
            .await;
        b.click("#send-button").await;
        b.wait_text("#send-panel", "This list changed since the page was loaded")
            .await;
        assert_eq!(
            b.attr("#send-button", "data-reason").await.as_deref(),
            Some("stale_page")
        );
        let hover = b.attr(".send-wrap", "title").await.unwrap_or_default();
        assert!(hover.contains("refresh"), "{hover}");
        b.click("#send-panel a[href^='/codes']").await;
        b.wait_text("#send-button", "Send to ERP (2 codes)").await;

        // Sending everything leaves nothing to send.
        b.click("#send-button").await;
        b.wait_text(".notice", "Sent 2 codes").await;
        disabled_for(
            &b,
            "nothing_to_send",
            "Every code is synced, pending or exporting",
        )
        .await;

        // Someone who is not an Admin-tool admin may look but not send.
        b.logout().await;
        b.login("viewer@one.example", PASSWORD).await;
        b.go(&format!("/codes?list={erp_list}")).await;
        disabled_for(&b, "no_permission", "Only admins of the Admin tool").await;
    })
    .await;
}
