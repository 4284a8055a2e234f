//! WCAG 2.1 AA, checked by axe-core on every page state a user can reach: first run, sign-in,
//! the codes with their forms, panels and import preview, the queue with its dialog and a
//! running export, the settings pages, the password reset; as admin, approver and read-only
//! user; each at desktop and phone width, refused forms included.
use crate::a11y::{APPROVER_RIGHTS, Axe, user_row};
use crate::harness::{ADMIN, Browser, PASSWORD, Site, VIEWER_RIGHTS, available, with_browser};

const APPROVER: &str = "approver@one.example";
const VIEWER: &str = "viewer@one.example";
const NEW_PASSWORD: &str = "another-long-password";

/// The id of the first top-tier code in the tree.
async fn first_code(b: &Browser) -> i64 {
    let id = b
        .el("#tree > li.node")
        .await
        .attr("id")
        .await
        .unwrap()
        .unwrap();
    id.trim_start_matches("node-").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_state_passes_axe() {
    if !available() {
        return;
    }
    let Some(axe) = Axe::load() else {
        return;
    };
    let site = Site::start().await;
    let s = site.clone();
    with_browser(&site, "axe", |b| async move {
        b.go("/").await;
        b.wait_text("h1", "Set up Costbridge").await;
        b.axe(&axe, "setup").await;
        b.click_to_load("form button[type=submit]").await;
        b.el(".field-error").await;
        b.axe(&axe, "setup refused").await;

        let company = s.company().await;
        let list = s.connect(&company, "quickbooks_desktop").await;
        let long = "Temporary facilities and controls with a description long enough to wrap on a phone";
        s.codes(
            &company,
            list,
            &format!("01,General Requirements,true\n01-100,{long},true\n02,Existing Conditions,true\n03,Concrete,true"),
        )
        .await;
        s.user(&company, APPROVER, "Parker Approver", APPROVER_RIGHTS).await;
        s.user(&company, VIEWER, "Vic Viewer", VIEWER_RIGHTS).await;

        b.go("/login").await;
        b.axe(&axe, "sign-in").await;
        b.fill("#f-email", ADMIN).await;
        b.fill("#f-password", "not-the-password").await;
        b.click_to_load("form button[type=submit]").await;
        b.el("#login-error").await;
        b.axe(&axe, "sign-in refused").await;

        // The codes, as the admin.
        b.login(ADMIN, PASSWORD).await;
        b.go("/codes").await;
        let top = first_code(&b).await;
        b.click(&format!("#node-{top} > .row .toggle")).await;
        b.wait_text(&format!("#kids-{top}"), "01-100").await;
        b.axe(&axe, "codes (admin)").await;
        b.click(&format!("#hist-{top}")).await;
        b.wait_text(&format!("#detail-{top}"), "History").await;
        b.axe(&axe, "history panel").await;
        b.click(&format!("#detail-{top} [data-cancel]")).await;
        b.click(&format!("#edit-{top}")).await;
        b.axe(&axe, "code edit").await;
        b.fill(&format!("#desc-e{top}"), "").await;
        b.click(&format!("#form-e{top} button[type=submit]")).await;
        b.el(&format!("#desc-e{top}-error")).await;
        b.axe(&axe, "code edit refused").await;
        b.click(&format!("#form-e{top} [data-cancel]")).await;
        b.click("#add-top").await;
        b.fill("#code-top", "01").await;
        b.fill("#desc-top", "Again").await;
        b.click("#form-top button[type=submit]").await;
        b.el("#code-top-error").await;
        b.axe(&axe, "add code refused").await;
        b.click("#form-top [data-cancel]").await;

        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        std::fs::write(&good, "full_code,description,active\n04,Masonry,true\n02,Existing Conditions and Demolition,true\n").unwrap();
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "full_code,description,active\n05,,maybe\n").unwrap();
        b.click("#import-card summary").await;
        b.el("#csv-file").await.send_keys(good.to_str().unwrap()).await.unwrap();
        b.click("#import-card button[type=submit]").await;
        b.wait_text("#import-result", "1 to create, 1 to change").await;
        b.axe(&axe, "import preview").await;
        b.el("#csv-file").await.send_keys(bad.to_str().unwrap()).await.unwrap();
        b.click("#import-card button[type=submit]").await;
        b.wait_text("#import-result", "Nothing can be imported").await;
        b.axe(&axe, "import refused").await;

        b.click("#send-button").await;
        b.wait_text(".notice", "Sent").await;
        b.axe(&axe, "codes after send").await;

        // A second list brings the list picker.
        b.click(".toolbar details.card summary").await;
        b.click("form[hx-post='/codes/lists'] button[type=submit]").await;
        b.el("#new-list-error").await;
        b.axe(&axe, "new list refused").await;
        b.fill("#new-list-name", "Job 7 extras").await;
        b.click_to_load("form[hx-post='/codes/lists'] button[type=submit]").await;
        b.el("#list-picker").await;
        b.axe(&axe, "codes, second list").await;

        // The queue, as the admin (who may approve too).
        b.go("/erp").await;
        b.wait_text("#queue-rows", "Concrete").await;
        b.axe(&axe, "queue (admin)").await;
        b.click("#queue-rows input[name=item_ids]").await;
        b.click("button[data-open-dialog][data-set-value=selected]").await;
        b.axe(&axe, "reject dialog").await;
        b.click("#reject-submit").await;
        b.el("#reject-error").await;
        b.axe(&axe, "reject refused").await;
        b.click("#reject-dialog [data-close-dialog]").await;
        b.el("#default-income").await.select("4000").await.unwrap();
        b.click("button[hx-post='/erp/export'][hx-vals]").await;
        b.d.accept_alert().await.expect("confirm export all");
        b.wait_text("#job-status", "exporting").await;
        b.axe(&axe, "export running").await;
        assert_eq!(s.run_worker().await, 1);
        b.wait_text("#job-status", "finished").await;
        b.axe(&axe, "export finished").await;
        b.go("/erp?filter=synced").await;
        b.wait_text("#queue-rows", "Concrete").await;
        b.axe(&axe, "queue synced").await;

        // Company settings.
        b.go("/settings/users").await;
        b.axe(&axe, "users").await;
        let vic = user_row(&b, VIEWER).await;
        b.click(&format!("#user-edit-{vic}")).await;
        b.el(&format!("#name-{vic}")).await;
        b.axe(&axe, "user edit row").await;
        b.fill(&format!("#name-{vic}"), "").await;
        b.click(&format!("#user-{vic} button[type=submit]")).await;
        b.el(&format!("#name-{vic}-error")).await;
        b.axe(&axe, "user edit refused").await;
        b.click(&format!("#reset-button-{vic}")).await;
        let link = b.text(&format!("#reset-{vic} .reset-link")).await;
        b.axe(&axe, "reset link shown").await;
        b.fill("#new-email", "not-an-email").await;
        b.click("#new-user-submit").await;
        b.el("#new-email-error").await;
        b.axe(&axe, "add user refused").await;
        b.fill("#company-time-zone", "Mars/Olympus").await;
        b.click("#company-zone button[type=submit]").await;
        b.el("#company-time-zone-error").await;
        b.axe(&axe, "time zone refused").await;

        // Machine clients and event subscriptions, each refused once and then made.
        b.go("/settings/clients").await;
        b.axe(&axe, "API clients").await;
        b.click("#new-client button[type=submit]").await;
        b.el("#new-name-error").await;
        b.axe(&axe, "API client refused").await;
        b.fill("#new-name", "ERP sync").await;
        b.click("#new-client button[type=submit]").await;
        b.el("[data-client-secret]").await;
        b.axe(&axe, "API client secret shown").await;
        b.go("/settings/events").await;
        b.axe(&axe, "event subscriptions").await;
        b.fill("#ev-url", "not a url").await;
        b.click_to_load("#new-subscription button[type=submit]").await;
        b.el("#ev-url-error").await;
        b.axe(&axe, "event subscription refused").await;

        b.go("/settings/erp").await;
        b.axe(&axe, "erp connection").await;
        b.fill("#erp-file-directory", "").await;
        b.click("#erp-save").await;
        b.el("#erp-file-directory-error").await;
        b.axe(&axe, "erp connection refused").await;

        b.go("/settings/audit").await;
        b.wait_text("main", " events.").await;
        b.axe(&axe, "audit").await;
        // Long values (the 80-character description) wrap: the table fits the desktop width.
        let wrap = "const w = document.querySelector('main .table-wrap'); return w.scrollWidth - w.clientWidth";
        let overflow = b.d.execute(wrap, vec![]).await.unwrap();
        assert_eq!(overflow, 0, "the audit table is wider than its region at 1280px");
        b.go("/erp?filter=no-such-tab").await;
        b.axe(&axe, "error page").await;

        // The reset page the link opens, without signing in.
        b.go("/codes").await;
        b.logout().await;
        // The link carries the configured address; the path is what matters here.
        let path = &link[link.find("/reset-password").expect("a reset link")..];
        b.go(path).await;
        b.el("#f-password").await;
        b.axe(&axe, "password reset").await;
        b.fill("#f-password", "short").await;
        b.click_to_load("form button[type=submit]").await;
        b.el("#f-password-error").await;
        b.axe(&axe, "password reset refused").await;
        b.fill("#f-password", NEW_PASSWORD).await;
        b.click_to_load("form button[type=submit]").await;
        b.el("#reset-done").await;
        b.axe(&axe, "password set").await;
        b.go("/reset-password?token=used-or-made-up").await;
        b.el("#reset-invalid").await;
        b.axe(&axe, "reset link invalid").await;

        // The approver, then the read-only user.
        b.login(APPROVER, PASSWORD).await;
        b.go("/erp?filter=synced").await;
        b.wait_text("#queue-rows", "Concrete").await;
        b.axe(&axe, "queue (approver)").await;
        b.go("/codes").await;
        b.el("#tree").await;
        b.axe(&axe, "codes (approver)").await;
        b.go("/settings/users").await;
        b.axe(&axe, "users (approver)").await;
        b.go("/settings/erp").await;
        b.axe(&axe, "erp connection (approver)").await;
        b.logout().await;
        b.login(VIEWER, NEW_PASSWORD).await;
        b.go("/erp?filter=synced").await;
        b.wait_text("#queue-rows", "Concrete").await;
        b.axe(&axe, "queue (read-only)").await;
        b.go("/codes").await;
        b.el("#tree").await;
        b.axe(&axe, "codes (read-only)").await;

        // The QuickBooks Web Connector's own section, with the password it shows only once.
        b.logout().await;
        let qbwc = serde_json::json!({"kind": "qbwc"});
        s.state
            .db
            .put_erp_connection(company.id, company.admin, "quickbooks_desktop", &qbwc, &qbwc)
            .await
            .expect("connection");
        b.login(ADMIN, PASSWORD).await;
        b.go("/erp").await;
        b.el("#qbwc-line").await;
        b.axe(&axe, "queue (QuickBooks Web Connector)").await;
        b.go("/settings/erp").await;
        b.click("#qbwc-password").await;
        b.el("[data-qbwc-password]").await;
        b.axe(&axe, "Web Connector password").await;
    })
    .await;
}
