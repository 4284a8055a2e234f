//! Connect to Xero in the browser: the ERP connection page, the stand-in's login and consent
//! page, the organisation pick, and the refusals (state mismatch, denied consent, expired code).
use crate::a11y::Axe;
use crate::harness::{ADMIN, PASSWORD, Site, available, free_port, with_browser};
use crate::xero_standin::XeroStandIn;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_xero_consent_pick_and_the_refusals() {
    if !available() {
        return;
    }
    let standin = XeroStandIn::start(&[
        ("40000000-0000-4000-8000-000000000001", "Acme Builders Ltd"),
        ("40000000-0000-4000-8000-000000000002", "Acme Demo Company"),
    ])
    .await;
    let site = xero_site(&standin).await;
    let company = site.company().await;
    let xero = json!({"kind": "xero"});
    site.state
        .db
        .put_erp_connection(company.id, company.admin, "xero", &xero, &xero)
        .await
        .expect("connection");
    let s = standin.clone();
    // The Xero section's states are checked for accessibility too (when axe-core is installed).
    let axe = Axe::load();
    with_browser(&site, "xero", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        b.go("/settings/erp").await;
        b.wait_text("#xero", "Not connected to Xero yet").await;
        if let Some(a) = &axe {
            b.axe(a, "xero not connected").await;
        }

        // Denied consent: nothing changes, and the page says so.
        b.click_to_load("#xero a[href='/oauth/xero/connect']").await;
        b.wait_text("h1", "XeroStandIn login").await;
        b.click_to_load("#deny").await;
        b.wait_text("#xero-problem", "consent was not given. Nothing changed")
            .await;
        if let Some(a) = &axe {
            b.axe(a, "xero refused").await;
        }

        // An answer this session never asked for.
        b.go("/oauth/xero/callback?code=code-1&state=cb_forged")
            .await;
        b.wait_text("#xero-problem", "state mismatch").await;

        // A code that expired at Xero before it came back.
        s.with(|x| x.codes_expire = true);
        b.go("/settings/erp").await;
        b.click_to_load("#xero a[href='/oauth/xero/connect']").await;
        b.click_to_load("#allow").await;
        b.wait_text("#xero-problem", "expired or was already used")
            .await;
        s.with(|x| x.codes_expire = false);

        // Connect, consent, pick the organisation.
        b.go("/settings/erp").await;
        b.click_to_load("#xero a[href='/oauth/xero/connect']").await;
        b.shot("xero-consent").await;
        b.click_to_load("#allow").await;
        b.wait_url("xero=pick").await;
        b.wait_text("#xero", "Acme Demo Company").await;
        if let Some(a) = &axe {
            b.axe(a, "xero organisation pick").await;
        }
        b.click("#xero input[value='40000000-0000-4000-8000-000000000002']")
            .await;
        b.click("#xero button[type=submit]").await;
        b.wait_text("#xero-connected", "Acme Demo Company").await;
        b.go("/settings/erp").await;
        let shown = b.wait_text("#xero", "by Ada Admin").await;
        assert!(shown.contains("Disconnect"), "{shown}");
        if let Some(a) = &axe {
            b.axe(a, "xero connected").await;
        }
        b.shot("xero-connected").await;
    })
    .await;
}

/// Sync from ERP's conflicts on a phone: each one in words, long descriptions wrapped, and the
/// page no wider than the screen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_conflicts_read_on_a_phone() {
    if !available() {
        return;
    }
    const TENANT: &str = "40000000-0000-4000-8000-000000000001";
    let standin = XeroStandIn::start(&[(TENANT, "Acme Builders Ltd")]).await;
    let site = xero_site(&standin).await;
    let company = site.company().await;
    let xero = json!({"kind": "xero"});
    let list = site
        .state
        .db
        .put_erp_connection(company.id, company.admin, "xero", &xero, &xero)
        .await
        .expect("connection")
        .erp_list_id;
    // Codes waiting here that Xero describes otherwise, at length.
    let mut csv = String::new();
    let mut items = Vec::new();
    for i in 1..=12 {
        csv.push_str(&format!(
            "{i:02},Concrete forming and reinforcing {i},true\n"
        ));
        let name = format!(
            "Cast-in-place concrete forming, reinforcing and finishing for foundations {i}"
        );
        items.push(json!({"ItemID": format!("50000000-0000-4000-8000-{i:012}"),
            "Code": format!("{i:02}"), "Name": name, "Description": name,
            "IsSold": i != 2, "IsPurchased": i != 2}));
    }
    site.codes(&company, list, &csv).await;
    standin.with(|s| s.items.insert(TENANT.to_owned(), items));
    with_browser(&site, "xero-conflicts", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        b.go("/settings/erp").await;
        b.click_to_load("#xero a[href='/oauth/xero/connect']").await;
        // One organisation: no pick.
        b.click_to_load("#allow").await;
        b.wait_text(
            "#xero",
            "Connected to the Xero organisation Acme Builders Ltd",
        )
        .await;

        b.d.set_window_size(390, 844).await.unwrap();
        b.go("/erp").await;
        b.click("button[hx-post='/erp/sync']").await;
        let table = b.wait_text("#conflicts", "in the ERP").await;
        assert!(
            table.contains("Active: yes in Costbridge, no in the ERP") && !table.contains('{'),
            "{table}"
        );
        let wide =
            b.d.execute(
                "var d = document.documentElement; return [d.scrollWidth, d.clientWidth, \
                 document.getElementById('conflicts').getBoundingClientRect().right];",
                vec![],
            )
            .await
            .unwrap();
        let [page, screen, table]: [f64; 3] = serde_json::from_value(wide).unwrap();
        assert!(
            page <= screen && table <= screen,
            "wider than the phone: page {page}, table {table}, screen {screen}"
        );
    })
    .await;
}

/// A site speaking to `standin`. Xero sends the browser back to base_url, so the site listens
/// where base_url says.
async fn xero_site(standin: &XeroStandIn) -> std::sync::Arc<Site> {
    let port = free_port();
    Site::start_with(|s| {
        standin.configure(s);
        s.server.listen = format!("127.0.0.1:{port}");
        s.mail.base_url = format!("http://127.0.0.1:{port}");
        s.outbound.allow_private = true;
    })
    .await
}
