//! Admin → Work Breakdown Structure → Cost Code: tiers, field errors, edit, deactivate, delete,
//! search, history, CSV import preview, and Send to ERP.
use crate::harness::{ADMIN, PASSWORD, Site, THREE_CODES, with_browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_tiered_codes_edit_import_and_send() {
    let Some((site, company)) = Site::for_browser().await else {
        return;
    };
    let list = site.connect(&company, "quickbooks_desktop").await;
    let s = site.clone();
    with_browser(&site, "codes", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        b.go("/codes").await;
        b.wait_text("h1", "ERP Standard Cost Codes").await;
        b.wait_text("#send-button", "Send to ERP (0 codes)").await;

        // A top-tier code, then a child and a grandchild, each added in place.
        b.click("button[hx-get$='/new']").await;
        b.fill("#code-top", "01").await;
        b.fill("#desc-top", "General Requirements").await;
        b.click("#form-top button[type=submit]").await;
        b.wait_text("#tree", "General Requirements").await;
        let top = b.el("#tree > li.node").await.attr("id").await.unwrap().unwrap();
        let top_id: i64 = top.trim_start_matches("node-").parse().unwrap();

        b.click(&format!("#node-{top_id} button[hx-get*='new?parent=']")).await;
        b.fill(&format!("#code-c{top_id}"), "100").await;
        b.fill(&format!("#desc-c{top_id}"), "Project Management").await;
        b.click(&format!("#form-c{top_id} button[type=submit]")).await;
        b.wait_text(&format!("#kids-{top_id}"), "01-100").await;
        assert_eq!(
            b.attr(&format!("#node-{top_id} > .row .toggle"), "aria-expanded").await.as_deref(),
            Some("true")
        );

        // A duplicate code is refused at its field, and nothing else changes.
        b.click(&format!("#node-{top_id} > .row button[hx-get*='new?parent=']")).await;
        b.fill(&format!("#code-c{top_id}"), "100").await;
        b.fill(&format!("#desc-c{top_id}"), "Again").await;
        b.click(&format!("#form-c{top_id} button[type=submit]")).await;
        let err = b.text(&format!("#code-c{top_id}-error")).await;
        assert!(err.contains("already exists"), "{err}");
        b.click(&format!("#form-c{top_id} button[data-cancel]")).await;
        b.wait_gone(&format!("#form-c{top_id}")).await;

        let child = b.el(&format!("#kids-{top_id} > li.node")).await.attr("id").await.unwrap().unwrap();
        let child_id: i64 = child.trim_start_matches("node-").parse().unwrap();
        b.click(&format!("#node-{child_id} button[hx-get*='new?parent=']")).await;
        b.fill(&format!("#code-c{child_id}"), "10").await;
        b.fill(&format!("#desc-c{child_id}"), "Meetings").await;
        b.click(&format!("#form-c{child_id} button[type=submit]")).await;
        b.wait_text(&format!("#kids-{child_id}"), "01-100-10").await;
        let under = b
            .script_text(
                &format!("return document.querySelector('#node-{top_id} > .row .toggle').textContent"),
                vec![],
            )
            .await;
        assert_eq!(under, "01: 1 code under it");

        // Collapse and expand again.
        b.click(&format!("#node-{top_id} > .row .toggle")).await;
        assert_eq!(b.attr(&format!("#kids-{top_id}"), "hidden").await.as_deref(), Some("true"));
        b.click(&format!("#node-{top_id} > .row .toggle")).await;
        assert_eq!(b.attr(&format!("#kids-{top_id}"), "hidden").await, None);

        // The keyboard alone does the same: Enter on the focused toggle.
        let toggle = b.el(&format!("#node-{top_id} > .row .toggle")).await;
        b.d.execute("arguments[0].focus()", vec![toggle.json()]).await.unwrap();
        toggle.send_keys("\u{E007}").await.unwrap();
        assert_eq!(b.attr(&format!("#kids-{top_id}"), "hidden").await.as_deref(), Some("true"));
        toggle.send_keys("\u{E007}").await.unwrap();
        assert_eq!(b.attr(&format!("#kids-{top_id}"), "hidden").await, None);

        // Edit in place; an empty description is an error at the field.
        b.click(&format!("#node-{child_id} > .row button[hx-get$='/edit']")).await;
        b.fill(&format!("#desc-e{child_id}"), "").await;
        b.click(&format!("#form-e{child_id} button[type=submit]")).await;
        b.wait_text(&format!("#desc-e{child_id}-error"), "is required").await;
        b.fill(&format!("#desc-e{child_id}"), "Project Management and Coordination").await;
        b.click(&format!("#form-e{child_id} button[type=submit]")).await;
        b.wait_text(&format!("#node-{child_id}"), "Project Management and Coordination").await;

        // A second top-tier code, deactivated, and a third one deleted.
        for (code, desc) in [("02", "Existing Conditions"), ("99", "Typo")] {
            b.click("button[hx-get$='/new']").await;
            b.fill("#code-top", code).await;
            b.fill("#desc-top", desc).await;
            b.click("#form-top button[type=submit]").await;
            b.wait_text("#tree", desc).await;
        }
        let node_of = |text: &'static str| {
            let b = b.clone();
            async move {
                for li in b.d.find_all("#tree > li.node").await.unwrap() {
                    if li.text().await.unwrap().contains(text) {
                        return li.attr("id").await.unwrap().unwrap();
                    }
                }
                panic!("no code {text}");
            }
        };
        let existing = node_of("Existing Conditions").await;
        // Deactivate asks first, naming the code and what follows; Cancel changes nothing.
        let toggle = format!("#{existing} button[hx-post$='/active']");
        b.click(&toggle).await;
        let asked = b.d.alert_text().await.expect("Deactivate asks first");
        assert!(
            asked.starts_with("Deactivate 02 Existing Conditions?")
                && asked.contains("The ERP never had it, so Delete would remove it instead.")
                && asked.contains("Activate turns it back on"),
            "{asked}"
        );
        b.d.dismiss_alert().await.expect("cancel the deactivate");
        b.settled().await;
        assert!(!b.text(&format!("#{existing}")).await.contains("inactive"));
        b.click(&toggle).await;
        b.d.accept_alert().await.expect("confirm the deactivate");
        b.wait_text(&format!("#{existing}"), "inactive").await;
        // Activate takes one click: there is nothing to lose.
        b.click(&toggle).await;
        b.wait_gone(&format!("#{existing}.inactive")).await;
        assert!(b.d.alert_text().await.is_err(), "Activate asked to confirm");
        b.click(&toggle).await;
        b.d.accept_alert().await.expect("confirm the deactivate");
        b.wait_text(&format!("#{existing}"), "inactive").await;
        let typo = node_of("Typo").await;
        b.click(&format!("#{typo} button[hx-post$='/delete']")).await;
        b.d.accept_alert().await.expect("confirm the delete");
        b.wait_gone(&format!("#{typo}")).await;
        b.wait_text("#send-button", "Send to ERP (4 codes)").await;

        // Search and the sync-state filter give a flat list.
        b.fill("#q", "coordination").await;
        b.click_to_load("form[role=search] button[type=submit]").await;
        b.wait_text("#tree-heading", "Matching codes (1)").await;
        b.wait_text("#tree", "01-100").await;
        b.go("/codes").await;
        b.wait_text("#send-button", "(4 codes)").await;
        b.shot("codes").await;

        // A branch whose codes could not be fetched closes again, says why, and fetches them
        // when opened next (it was marked loaded before the answer, and stayed empty).
        b.d.execute(
            "window.__breakTree = true;
             window.__whileLoading = [];
             document.addEventListener('htmx:configRequest', function (e) {
               if (window.__breakTree && e.detail.elt.matches('[data-toggle]')) e.detail.path = '/no-such-page';
             });
             document.addEventListener('htmx:beforeRequest', function (e) {
               var t = e.detail.elt;
               if (t.matches('[data-toggle]')) window.__whileLoading.push(document.getElementById(t.getAttribute('aria-controls')).textContent);
             });",
            vec![],
        )
        .await
        .unwrap();
        let toggle = format!("#node-{top_id} > .row .toggle");
        b.click(&toggle).await;
        b.wait_text("#toasts .toast", "Costbridge refused this request (HTTP 404)").await;
        b.settled().await;
        assert_eq!(b.attr(&toggle, "aria-expanded").await.as_deref(), Some("false"));
        assert_eq!(b.attr(&format!("#kids-{top_id}"), "hidden").await.as_deref(), Some("true"));
        assert_eq!(b.attr(&format!("#kids-{top_id}"), "data-loaded").await, None);
        b.d.execute("window.__breakTree = false", vec![]).await.unwrap();
        b.click(&toggle).await;
        b.wait_text(&format!("#kids-{top_id}"), "01-100").await;
        let seen = b.d.execute("return window.__whileLoading", vec![]).await.unwrap();
        assert_eq!(seen, serde_json::json!(["Loading…", "Loading…"]));
        b.d.execute("document.getElementById('toasts').innerHTML = ''", vec![]).await.unwrap();

        // A CSV import is previewed first; a bad file lists every bad row and applies nothing.
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "full_code,description,active\n03,Concrete,true\n04-100,,maybe\n03,Again,true\n").unwrap();
        b.click("#import-card summary").await;
        b.el("#csv-file").await.send_keys(bad.to_str().unwrap()).await.unwrap();
        b.click("#import-card button[type=submit]").await;
        b.wait_text("#import-result", "Nothing can be imported").await;
        b.wait_text("#import-result", "Row 3 (04-100)").await;
        b.wait_text("#import-result", "Row 4 (03): duplicate of row 2").await;
        let good = dir.path().join("good.csv");
        std::fs::write(&good, "full_code,description,active\n03,Concrete,true\n03-300,Cast-in-Place Concrete,true\n02,Existing Conditions,true\n").unwrap();
        b.el("#csv-file").await.send_keys(good.to_str().unwrap()).await.unwrap();
        b.click("#import-card button[type=submit]").await;
        b.wait_text("#import-result", "2 to create, 1 to change, 0 unchanged").await;
        b.shot("import-preview").await;
        // Applying says, while it runs, that it may take a while and the page must stay open;
        // the page that follows reads what it said from the session's storage.
        b.d.execute(
            "document.addEventListener('htmx:beforeRequest', function (e) {
               var ev = e.detail.requestConfig.triggeringEvent;
               var btn = ev && ev.submitter;
               if (!btn) return;
               sessionStorage.setItem('busy', JSON.stringify([btn.getAttribute('aria-disabled'), btn.nextElementSibling.textContent]));
             });",
            vec![],
        )
        .await
        .unwrap();
        b.click("#import-result button[type=submit]").await;
        b.wait_text(".notice", "Import applied: 2 created, 1 updated, 0 unchanged").await;
        b.wait_text("#send-button", "Send to ERP (6 codes)").await;
        let busy = b.script_text("return sessionStorage.getItem('busy')", vec![]).await;
        let busy: serde_json::Value = serde_json::from_str(&busy).unwrap();
        assert_eq!(busy[0], "true", "{busy}");
        assert!(busy[1].as_str().unwrap().contains("keep this page open"), "{busy}");

        // Send: every unsynced code becomes pending, and the button says why it is now off.
        b.click("#send-button").await;
        b.wait_text(".notice", "Sent 6 codes").await;
        b.wait_text("#tree .badge.pending", "pending").await;
        b.wait_text("#send-button", "Re-send to ERP (0 codes)").await;
        assert_eq!(b.attr("#send-button", "data-reason").await.as_deref(), Some("nothing_to_send"));

        // Each code's history comes from the audit log.
        b.click(&format!("#node-{top_id} > .row button[hx-get$='/history']")).await;
        b.wait_text(&format!("#detail-{top_id}"), "created").await;
        b.wait_text(&format!("#detail-{top_id}"), "sent").await;

        // Phone width: the same page, one column.
        b.d.set_window_size(390, 844).await.unwrap();
        b.go("/codes").await;
        b.el("#tree").await;
        b.shot("codes-phone").await;
        // A description with a document number in it: one long word, which a phone must wrap.
        b.click("button[hx-get$='/new']").await;
        b.fill("#code-top", "98").await;
        b.fill("#desc-top", "Survey per SURVEYASSESSMENTDOCUMENTATIONVERIFICATIONREPORT2026").await;
        b.click("#form-top button[type=submit]").await;
        b.wait_text("#tree", "SURVEYASSESSMENT").await;
        let width = b.d.execute("return document.documentElement.scrollWidth", vec![]).await.unwrap().as_i64().unwrap();
        assert!(width <= 390, "the page scrolls sideways at phone width ({width}px)");
        // Nor is a description cut off at the screen's edge.
        let cut = b
            .d
            .execute(
                "return [...document.querySelectorAll('#tree .row .desc')].filter(e => \
                 e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > \
                 window.innerWidth + 1).map(e => e.textContent.trim())",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(cut, serde_json::json!([]), "cut off at phone width");
        // A finger's target: every action of the tree is at least 40px tall.
        let small = b
            .d
            .execute(
                "return [...document.querySelectorAll('#tree button.link')].filter(e => \
                 e.offsetParent && e.getBoundingClientRect().height < 40).map(e => \
                 e.textContent.trim())",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(small, serde_json::json!([]), "tap targets under 40px at phone width");
        // So are the tree's expand buttons (square) and the links of the header.
        let small = b
            .d
            .execute(
                "return [...document.querySelectorAll('#tree .toggle, .top nav a')].filter(e => {
                   var r = e.getBoundingClientRect();
                   return r.height < 44 || (e.matches('.toggle') && r.width < 44);
                 }).map(e => e.outerHTML.slice(0, 60))",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(small, serde_json::json!([]), "toggles or header links under 44px at phone width");
    })
    .await;
    let _ = (s, list);
}

/// A session that ended while a page was open: the next button goes to the sign-in page, and
/// signing in comes back to that page (its search too), not to the start page. The button was
/// a POST-only action; the way back is the page it was on, and the action did not run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_after_the_session_ended_comes_back_to_the_page() {
    let Some((site, _, _)) = Site::with_codes("quickbooks_desktop", THREE_CODES).await else {
        return;
    };
    with_browser(&site, "back-to-the-page", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        b.go("/codes?q=existing").await;
        let deactivate = "#tree button[id^='active-']";
        b.wait_text(deactivate, "Deactivate").await;
        let mut ended = b.session_cookie().await;
        ended["value"] = serde_json::json!("ended");
        b.d.add_cookie(ended)
            .await
            .expect("the session's cookie replaced");

        b.click(deactivate).await;
        b.d.accept_alert().await.expect("confirm the deactivate");
        b.wait_url("/login?next=%2Fcodes%3Fq%3Dexisting").await;
        b.fill("#f-email", ADMIN).await;
        b.fill("#f-password", PASSWORD).await;
        b.click_to_load("form button[type=submit]").await;
        b.wait_url("/codes?q=existing").await;
        b.wait_text(deactivate, "Deactivate").await;
        assert!(!b.exists("#tree .inactive").await, "the action ran");
    })
    .await;
}
