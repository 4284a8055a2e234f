//! ERP Integrations: GL accounts saved on change, reject with a reason (seen on the code),
//! export with the status updating live, a failure and its retry; and a read-only user.
use crate::a11y::APPROVER_RIGHTS;
use crate::harness::{
    ADMIN, Browser, PASSWORD, Site, THREE_CODES, VIEWER_RIGHTS, wait_until, with_browser,
};

const APPROVER: &str = "approver@one.example";

/// The row of the queue table for a full code.
async fn row(b: &Browser, full_code: &str) -> String {
    for tr in b.d.find_all("#queue-rows tr[id^=item-]").await.unwrap() {
        let code = tr.find_all("td strong").await.unwrap()[0]
            .text()
            .await
            .unwrap();
        if code == full_code {
            return format!("#{}", tr.attr("id").await.unwrap().unwrap());
        }
    }
    panic!("no row for {full_code}");
}

async fn pick(b: &Browser, css: &str, value: &str) {
    b.el(css).await.select(value).await.unwrap();
}

/// Sends the ERP list as the admin, through the page.
async fn send_as_admin(b: &Browser) {
    b.login(ADMIN, PASSWORD).await;
    b.go("/codes").await;
    b.click("#send-button").await;
    b.wait_text(".notice", "Sent").await;
    b.logout().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_reject_export_live_and_retry() {
    let Some((site, company, _)) = Site::with_codes("quickbooks_desktop", "01,General Requirements,true\n01-100,Project Management,true\n02,Existing Conditions,true\n03,Concrete,true").await else {
        return;
    };
    site.user(&company, APPROVER, "Parker Approver", APPROVER_RIGHTS)
        .await;
    let s = site.clone();
    with_browser(&site, "queue", |b| async move {
        send_as_admin(&b).await;
        b.login(APPROVER, PASSWORD).await;
        b.go("/erp").await;
        b.wait_text("#queue-tabs a[aria-current=page]", "Ready to Export 4")
            .await;

        // A GL account is saved as soon as it is picked.
        let first = row(&b, "01").await;
        pick(
            &b,
            &format!("{first} select[name=gl_income_account]"),
            "4000",
        )
        .await;
        b.wait_text(".toast", "GL account saved.").await;
        b.d.refresh().await.unwrap();
        let first = row(&b, "01").await;
        let chosen = b
            .el(&format!(
                "{first} select[name=gl_income_account] option[selected]"
            ))
            .await;
        assert_eq!(chosen.attr("value").await.unwrap().as_deref(), Some("4000"));
        b.shot("erp-queue").await;

        // Reject one code through the dialog, which insists on a reason.
        let concrete = row(&b, "03").await;
        b.click(&format!("{concrete} input[name=item_ids]")).await;
        b.wait_text(
            "button[data-open-dialog][data-set-value=selected]",
            "Reject selected (1)",
        )
        .await;
        b.click("button[data-open-dialog][data-set-value=selected]")
            .await;
        b.click("#reject-form button[type=submit]").await;
        b.wait_text("#reject-error", "Reason is required").await;
        b.fill("#reject-reason", "Duplicate of 02; use that code")
            .await;
        b.click("#reject-form button[type=submit]").await;
        b.wait_text(".notice", "Rejected 1 code.").await;
        b.wait_text("#queue-tabs", "Rejected 1").await;

        // Export only the child: its parent is still pending, so the ERP side fails it. The
        // worker is held back, so the page shows the job waiting, then updates by itself.
        let child = row(&b, "01-100").await;
        b.click(&format!("{child} input[name=item_ids]")).await;
        pick(&b, "#default-income", "4000").await;
        b.click("button[hx-post='/erp/export'][data-needs-selection]")
            .await;
        b.wait_text("#job-panel", "Export job").await;
        b.wait_text("#job-panel [data-item-status='01-100']", "exporting")
            .await;
        assert_eq!(b.attr("#live", "data-live").await.as_deref(), Some("on"));
        b.shot("erp-exporting").await;
        b.d.execute("window.notReloaded = true", vec![])
            .await
            .unwrap();
        assert_eq!(s.run_worker().await, 1);
        b.wait_text("#job-panel h2", "finished").await;
        // Nothing went into a file (its one code was refused first), so no file is named.
        b.wait_text("#job-panel", "0 synced, 1 failed").await;
        b.wait_text("#job-panel", "parent '01' is pending").await;
        b.wait_text("#queue-tabs", "Failed to Export 1").await;
        let kept =
            b.d.execute("return window.notReloaded === true", vec![])
                .await
                .unwrap()
                == true;
        assert!(kept, "the status changed without a page reload");
        b.wait_text("#live[data-live=off]", "").await;

        // Export everything else that is ready, parents first.
        b.go("/erp").await;
        pick(&b, "#default-income", "4000").await;
        b.click("button[hx-post='/erp/export'][hx-vals]").await;
        b.d.accept_alert().await.expect("confirm export all");
        b.wait_text("#job-panel", "Export job").await;
        assert_eq!(s.run_worker().await, 1);
        b.wait_text("#job-panel", "2 written to costbridge-export-")
            .await;

        // Retry the failure now that its parent is in the ERP.
        b.go("/erp?filter=failed").await;
        let failed = row(&b, "01-100").await;
        b.wait_text(&failed, "parent '01' is pending").await;
        b.click(&format!("{failed} input[name=item_ids]")).await;
        b.click("button[hx-post='/erp/retry'][data-needs-selection]")
            .await;
        b.wait_text("#job-panel", "Export job").await;
        assert_eq!(s.run_worker().await, 1);
        b.wait_text("#job-panel", "1 written to costbridge-export-")
            .await;
        b.wait_text("#queue-tabs", "Synced or in file 3").await;
        b.go("/erp?filter=synced").await;
        b.wait_text("#queue-rows", "01-100").await;
        b.wait_text("#queue-rows .badge.synced", "in file").await;

        // The admin sees the reason on the rejected code, and the exported ones in green,
        // saying they went into a file (the file connector: no ERP confirmed them).
        b.logout().await;
        b.login(ADMIN, PASSWORD).await;
        b.go("/codes").await;
        b.wait_text("#tree", "Rejected: Duplicate of 02; use that code")
            .await;
        b.wait_text("#tree .badge.synced", "in file").await;
        b.wait_text("#tree .badge.rejected", "rejected").await;
        b.shot("codes-after-export").await;

        // A code the ERP has had offers Deactivate, not Delete (which the server would refuse).
        let synced = b
            .el("#tree > li.node:nth-child(2)")
            .await
            .attr("id")
            .await
            .unwrap()
            .unwrap();
        b.wait_text(&format!("#{synced}"), "Existing Conditions")
            .await;
        assert!(
            !b.exists(&format!("#{synced} button[hx-post$='/delete']"))
                .await
        );
        assert!(
            b.exists(&format!("#{synced} button[hx-post$='/active']"))
                .await
        );
        let iif = s.export_files();
        assert!(iif >= 2, "the file connector wrote the exports");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_user_sees_no_actions() {
    let Some((site, company, _)) = Site::with_codes(
        "quickbooks_desktop",
        "01,General Requirements,true\n02,Existing Conditions,true",
    )
    .await
    else {
        return;
    };
    site.user(&company, "viewer@one.example", "Vic Viewer", VIEWER_RIGHTS)
        .await;
    with_browser(&site, "read_only", |b| async move {
        send_as_admin(&b).await;
        b.login("viewer@one.example", PASSWORD).await;
        b.go("/erp").await;
        b.wait_text("#readonly-why", "You can view this queue but not act on it")
            .await;
        b.wait_text(
            "#readonly-why",
            "ERP Integrations at standard or admin and the Push to accounting privilege",
        )
        .await;
        b.wait_text("#queue-rows", "General Requirements").await;
        for css in [
            "#queue",
            "input[name=item_ids]",
            "select[name=gl_income_account]",
            "button[hx-post]",
            "#reject-dialog",
        ] {
            assert!(!b.exists(css).await, "a read-only user sees {css}");
        }
        b.shot("erp-read-only").await;

        b.go("/codes").await;
        b.wait_text("#tree", "General Requirements").await;
        for css in [
            "button[hx-get$='/new']",
            "button[hx-get$='/edit']",
            "button[hx-post$='/delete']",
            "button[hx-post$='/active']",
            "#import-card",
        ] {
            assert!(!b.exists(css).await, "a read-only user sees {css}");
        }
        assert_eq!(
            b.attr("#send-button", "data-reason").await.as_deref(),
            Some("no_permission")
        );
        // The history is for everyone who may read.
        assert!(b.exists("button[hx-get$='/history']").await);
    })
    .await;
}

/// Records, as each of the person's requests starts, what the button they used shows (whether
/// it is marked disabled, `aria-busy`, and the words beside it), and taps it again at once.
const RECORD_BUSY: &str = "
  window.__busy = [];
  document.addEventListener('htmx:beforeRequest', function (e) {
    var ev = e.detail.requestConfig.triggeringEvent;
    var b = e.detail.elt.matches('button') ? e.detail.elt : ev && ev.submitter;
    if (!b) return;
    var note = b.nextElementSibling;
    window.__busy.push([b.getAttribute('aria-disabled'), b.getAttribute('aria-busy'), note ? note.textContent : '']);
    if (window.__busy.length === 1) b.click();
  });";

/// Sends the ERP live view's polls to an address that answers 404 while `window.__breakPolls`
/// is set, and counts the failures.
const BREAK_POLLS: &str = "
  window.__breakPolls = true;
  window.__pollFailures = 0;
  document.addEventListener('htmx:configRequest', function (e) {
    if (window.__breakPolls && e.detail.elt.id === 'live') e.detail.path = '/erp/no-such-page';
  });
  document.addEventListener('htmx:responseError', function (e) {
    if (e.detail.elt.id === 'live') window.__pollFailures++;
  });";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_buttons_dialog_messages_and_failed_polls() {
    let Some((site, _, _)) = Site::with_codes("quickbooks_desktop", THREE_CODES).await else {
        return;
    };
    let s = site.clone();
    with_browser(&site, "busy", |b| async move {
        send_as_admin(&b).await;
        b.login(ADMIN, PASSWORD).await;
        b.go("/erp").await;
        let child = row(&b, "01-100").await;
        b.click(&format!("{child} input[name=item_ids]")).await;
        let export = "#queue button[hx-post='/erp/export'][data-needs-selection]";
        b.wait_text(export, "Export selected (1)").await;

        // While the export is asked for, its button takes no second tap (that one sends
        // nothing) and says it is at work; once refused (QuickBooks needs an income account)
        // it is back as it was.
        b.d.execute(RECORD_BUSY, vec![]).await.unwrap();
        b.click(export).await;
        b.wait_text("#toasts .toast", "needs a GL income account")
            .await;
        b.settled().await;
        let seen = b.d.execute("return window.__busy", vec![]).await.unwrap();
        assert_eq!(seen, serde_json::json!([["true", "true", "Working…"]]));
        assert_eq!(b.attr(export, "disabled").await, None);
        assert_eq!(b.attr(export, "aria-disabled").await, None);
        assert_eq!(b.attr(export, "aria-busy").await, None);
        assert!(!b.exists(".busy-note").await);
        let told = b.d.find_all("#toasts .toast").await.unwrap().len();
        assert_eq!(told, 1, "the second tap was sent too");
        b.d.execute("document.getElementById('toasts').innerHTML = ''", vec![])
            .await
            .unwrap();

        // A refusal that is not the reject form's own (the codes went meanwhile) is shown in
        // the open dialog, where it can be read and dismissed, not behind it.
        b.click("button[data-open-dialog][data-set-value=selected]")
            .await;
        b.fill("#reject-reason", "Not ours").await;
        b.d.execute(
            "document.addEventListener('htmx:configRequest', function (e) {
               if (e.detail.path === '/erp/reject') e.detail.path = '/erp/items/999999/gl';
             });",
            vec![],
        )
        .await
        .unwrap();
        b.click("#reject-form button[type=submit]").await;
        b.wait_text("#reject-dialog .toast[role=alert]", "Costbridge cannot find that")
            .await;
        let on_top = b
            .d
            .execute(
                "var t = document.querySelector('#reject-dialog .toast');
                 var r = t.getBoundingClientRect();
                 return t.contains(document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(on_top, true, "the message is not on top");
        b.click("#reject-dialog .toast button").await;
        b.wait_gone("#reject-dialog .toast").await;
        b.click("#reject-form button[data-close-dialog]").await;

        // An export that runs: the page polls. Failed polls say so once, quietly, and the
        // line goes once a poll gets through again.
        b.go("/erp").await;
        let child = row(&b, "01-100").await;
        b.click(&format!("{child} input[name=item_ids]")).await;
        b.el("#default-income").await.select("4000").await.unwrap();
        b.click(export).await;
        b.wait_url("job=").await;
        b.wait_text("#live[data-live=on]", "").await;
        b.d.execute(BREAK_POLLS, vec![]).await.unwrap();
        wait_until("two failed polls", || async {
            let n = b
                .d
                .execute("return window.__pollFailures", vec![])
                .await
                .ok()?;
            (n.as_i64() >= Some(2)).then_some(())
        })
        .await;
        let lost = b
            .d
            .execute(
                "return [document.querySelectorAll('#toasts .toast').length,
                         document.querySelectorAll('#toasts [role=alert]').length,
                         document.querySelector('#poll-lost[role=status]').textContent]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            lost,
            serde_json::json!([1, 0, "Connection to Costbridge lost — retrying…"])
        );
        b.d.execute("window.__breakPolls = false", vec![])
            .await
            .unwrap();
        b.wait_gone("#poll-lost").await;

        // Retry all asks first, with the count it would export again.
        assert_eq!(s.run_worker().await, 1);
        b.go("/erp?filter=failed").await;
        let retry_all = b
            .attr("#queue button[hx-post='/erp/retry'][hx-vals]", "hx-confirm")
            .await
            .unwrap_or_default();
        assert!(
            retry_all.contains("Export all 1 code in Failed to Export into the ERP again?"),
            "{retry_all}"
        );
    })
    .await;
}
