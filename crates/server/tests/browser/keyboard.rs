//! The whole workflow by keyboard alone: sign in, add and edit codes, import, send, pick GL
//! accounts, reject with a reason, export, manage users and the ERP connection. After every
//! swap the test asserts where focus is (the first invalid field, or the control that opened
//! the form or panel), and that messages appear in a live region that was there before.
use crate::a11y::{APPROVER_RIGHTS, DOWN, ENTER, SPACE, user_row};
use crate::harness::{ADMIN, Browser, PASSWORD, Site, with_browser};

const APPROVER: &str = "approver@one.example";

/// The id number at the end of the `id` of the first element matching `css`.
async fn id_of(b: &Browser, css: &str) -> i64 {
    let id = b.el(css).await.attr("id").await.unwrap().unwrap();
    let digits = id.rsplit('-').next().unwrap();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{css} has id {id}"))
}

/// The id of the tree node whose row says `text`.
async fn node_with(b: &Browser, text: &str) -> i64 {
    b.wait_text("#tree", text).await;
    for li in b.d.find_all("#tree li.node").await.unwrap() {
        let row = li.find_all(":scope > .row").await.unwrap();
        if row[0].text().await.unwrap().contains(text) {
            let id = li.attr("id").await.unwrap().unwrap();
            return id.trim_start_matches("node-").parse().unwrap();
        }
    }
    panic!("no code {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_by_keyboard_alone() {
    let Some((site, company)) = Site::for_browser().await else {
        return;
    };
    site.connect(&company, "quickbooks_desktop").await;
    with_browser(&site, "keyboard_codes", |b| async move {
        // Sign in: Tab to each field, type, Enter.
        b.go("/login").await;
        b.tab_to("#f-email").await;
        b.press(ADMIN).await;
        b.tab_to("#f-password").await;
        b.press(PASSWORD).await;
        b.press(ENTER).await;
        b.wait_url("/codes").await;
        b.el("#send-button").await;

        // A top-tier code: the form takes focus; once added, focus is back on its opener.
        b.tab_to("#add-top").await;
        b.press(ENTER).await;
        b.wait_focus("code-top").await;
        b.press("01").await;
        b.tab_to("#desc-top").await;
        b.press("General Requirements").await;
        b.press(ENTER).await;
        let top = node_with(&b, "General Requirements").await;
        b.wait_focus("add-top").await;

        // A child, refused first: focus goes to the invalid field (not the first one, which
        // had autofocus), its error is tied to it, and the summary is announced.
        b.mark_live("#error-summary").await;
        b.tab_to(&format!("#add-{top}")).await;
        b.press(ENTER).await;
        b.wait_focus(&format!("code-c{top}")).await;
        b.press("100").await;
        b.press(ENTER).await;
        b.wait_focus(&format!("desc-c{top}")).await;
        assert_eq!(
            b.attr(&format!("#desc-c{top}"), "aria-describedby")
                .await
                .as_deref(),
            Some(format!("desc-c{top}-error").as_str())
        );
        b.wait_announced("#error-summary", "Description: is required.")
            .await;
        b.press("Project Management").await;
        b.press(ENTER).await;
        let child = node_with(&b, "Project Management").await;
        b.wait_focus(&format!("add-{top}")).await;

        // Edit: an emptied description is refused with focus on it, then saved; focus returns
        // to the Edit button of the redrawn row.
        b.tab_to(&format!("#edit-{child}")).await;
        b.press(ENTER).await;
        b.wait_focus(&format!("code-e{child}")).await;
        b.tab_to(&format!("#desc-e{child}")).await;
        b.clear_focused().await;
        b.enter_refused(&format!("desc-e{child}"), "is required")
            .await;
        b.press("Project Management and Coordination").await;
        b.press(ENTER).await;
        b.wait_text(&format!("#node-{child}"), "Coordination").await;
        b.wait_focus(&format!("edit-{child}")).await;

        // History opens beside its button and closes back onto it.
        b.tab_to(&format!("#hist-{child}")).await;
        b.press(ENTER).await;
        b.wait_text(&format!("#detail-{child}"), "created").await;
        b.tab_to(&format!("#detail-{child} [data-cancel]")).await;
        b.press(ENTER).await;
        b.wait_gone(&format!("#detail-{child} section")).await;
        b.wait_focus(&format!("hist-{child}")).await;

        // Deactivate: the redrawn row keeps focus on its button.
        b.tab_to(&format!("#active-{child}")).await;
        b.press(ENTER).await;
        b.d.accept_alert().await.expect("confirm the deactivate");
        b.wait_text(&format!("#node-{child}"), "inactive").await;
        b.wait_focus(&format!("active-{child}")).await;

        // Delete: the row goes, and focus lands on the tree's heading, not the top of the page.
        b.tab_to("#add-top").await;
        b.press(ENTER).await;
        b.wait_focus("code-top").await;
        b.press("99").await;
        b.tab_to("#desc-top").await;
        b.press("Typo").await;
        b.press(ENTER).await;
        let typo = node_with(&b, "Typo").await;
        b.tab_to(&format!("#node-{typo} button[hx-post$='/delete']"))
            .await;
        b.press(ENTER).await;
        b.d.accept_alert().await.expect("confirm the delete");
        b.wait_gone(&format!("#node-{typo}")).await;
        b.wait_focus("tree-heading").await;

        // Import: the preview is announced in the region that was there before.
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("codes.csv");
        std::fs::write(
            &csv,
            "full_code,description,active\n02,Existing Conditions,true\n03,Concrete,true\n",
        )
        .unwrap();
        b.tab_to("#import-card summary").await;
        b.press(ENTER).await;
        b.mark_live("#import-result").await;
        b.tab_to("#csv-file").await;
        b.el("#csv-file")
            .await
            .send_keys(csv.to_str().unwrap())
            .await
            .unwrap();
        b.tab_to("#import-card form button[type=submit]").await;
        b.press(ENTER).await;
        b.wait_announced("#import-result", "2 to create, 0 to change")
            .await;
        b.tab_to("#import-result button[type=submit]").await;
        b.press(ENTER).await;
        b.wait_text(".notice", "Import applied: 2 created").await;

        // Send to ERP.
        b.tab_to("#send-button").await;
        b.press(ENTER).await;
        b.wait_text(".notice", "Sent").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_and_settings_by_keyboard_alone() {
    let Some((site, company, _)) = Site::with_codes(
        "quickbooks_desktop",
        "01,General Requirements,true\n02,Existing Conditions,true\n03,Concrete,true",
    )
    .await
    else {
        return;
    };
    site.user(&company, APPROVER, "Parker Approver", APPROVER_RIGHTS)
        .await;
    let s = site.clone();
    with_browser(&site, "keyboard_queue", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        b.go("/codes").await;
        b.tab_to("#send-button").await;
        b.press(ENTER).await;
        b.wait_text(".notice", "Sent 3 codes").await;
        b.logout().await;
        b.login(APPROVER, PASSWORD).await;
        b.go("/erp").await;

        // A GL account picked with the arrow keys: the row is redrawn, focus stays on it.
        let item = id_of(&b, "#queue-rows tr[id^=item-]").await;
        b.tab_to(&format!("#gl-income-{item}")).await;
        b.press(DOWN).await;
        b.wait_text(".toast", "GL account saved.").await;
        b.wait_focus(&format!("gl-income-{item}")).await;

        // Reject: the dialog refuses an empty reason with focus on it, inside the dialog.
        b.tab_to(&format!("#item-{item} input[name=item_ids]"))
            .await;
        b.press(SPACE).await;
        b.tab_to("button[data-open-dialog][data-set-value=selected]")
            .await;
        b.press(ENTER).await;
        b.tab_to("#reject-submit").await;
        b.enter_refused("reject-reason", "Reason: ").await;
        assert_eq!(
            b.attr("#reject-dialog", "open").await.as_deref(),
            Some("true")
        );
        b.press("Duplicate of 02").await;
        b.tab_to("#reject-submit").await;
        b.press(ENTER).await;
        b.wait_text(".notice", "Rejected 1 code.").await;

        // Export: the job's status line is one live region whose text changes; the tab
        // holding focus keeps it while the counts change.
        let item = id_of(&b, "#queue-rows tr[id^=item-]").await;
        b.tab_to(&format!("#item-{item} input[name=item_ids]"))
            .await;
        b.press(SPACE).await;
        b.tab_to("#default-income").await;
        b.press(DOWN).await;
        b.tab_to("button[hx-post='/erp/export'][data-needs-selection]")
            .await;
        b.press(ENTER).await;
        b.wait_text("#job-status", "still exporting").await;
        b.mark_live("#job-status").await;
        b.tab_back_to("#queue-tabs a[aria-current=page]").await;
        b.d.execute("window.__tab = document.activeElement", vec![])
            .await
            .unwrap();
        assert_eq!(s.run_worker().await, 1);
        b.wait_announced("#job-status", "finished: 1 written to costbridge-export-")
            .await;
        b.wait_text("#count-synced", "1").await;
        let kept =
            b.d.execute(
                "return window.__tab === document.activeElement && window.__tab.isConnected",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            kept, true,
            "the focused tab kept focus while the counts changed"
        );
        b.logout().await;

        // Users: the edit row takes focus, a refusal lands on the invalid field, Cancel and
        // Save go back to the row's Edit button.
        b.login(ADMIN, PASSWORD).await;
        b.go("/settings/users").await;
        let parker = user_row(&b, APPROVER).await;
        b.tab_to(&format!("#user-edit-{parker}")).await;
        b.press(ENTER).await;
        b.wait_focus(&format!("name-{parker}")).await;
        b.clear_focused().await;
        b.enter_refused(
            &format!("name-{parker}"),
            "1 problem to fix: Name: is required.",
        )
        .await;
        b.tab_to(&format!("#user-{parker} button[hx-get]")).await;
        b.press(ENTER).await;
        b.wait_focus(&format!("user-edit-{parker}")).await;
        b.press(ENTER).await;
        b.wait_focus(&format!("name-{parker}")).await;
        b.clear_focused().await;
        b.press("Parker Q. Approver").await;
        b.press(ENTER).await;
        b.wait_text(&format!("#user-{parker}"), "Parker Q. Approver")
            .await;
        b.wait_focus(&format!("user-edit-{parker}")).await;

        // A password reset link, said in the row's status region.
        b.press(ENTER).await;
        b.wait_focus(&format!("name-{parker}")).await;
        b.mark_live(&format!("#reset-{parker}")).await;
        b.tab_to(&format!("#reset-button-{parker}")).await;
        b.press(ENTER).await;
        b.wait_announced(&format!("#reset-{parker}"), "Give this link to")
            .await;
        b.wait_focus(&format!("reset-button-{parker}")).await;

        // Add user, refused: focus on the first invalid field.
        b.tab_to("#new-email").await;
        b.press("not-an-email").await;
        b.tab_to("#new-user-submit").await;
        b.enter_refused("new-email", "email").await;

        // The ERP connection, refused, then saved.
        b.go("/settings/erp").await;
        b.tab_to("#erp-file-directory").await;
        b.clear_focused().await;
        b.tab_to("#erp-save").await;
        b.enter_refused("erp-file-directory", "is required").await;
        b.press(".").await;
        b.tab_to("#erp-save").await;
        b.press(ENTER).await;
        b.wait_text(".notice", "Connection saved.").await;
        b.mark_live("#test-result").await;
        b.tab_to("button[hx-post='/settings/erp/test']").await;
        b.press(ENTER).await;
        b.wait_announced("#test-result", "Connection works").await;
    })
    .await;
}
