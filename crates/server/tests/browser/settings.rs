//! Company settings: users and the rule for granting Push to accounting, the ERP connection
//! with its Test button, and the audit log with its CSV download.
use crate::harness::{ADMIN, PASSWORD, Site, admin_tool_only, with_browser};
use costbridge_domain::Level;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_connection_and_audit_log() {
    let Some((site, company)) = Site::for_browser().await else {
        return;
    };
    for (email, name, level) in [
        ("nopush@one.example", "Noel Nopush", Level::Admin),
        ("pat@one.example", "Pat Standard", Level::Standard),
    ] {
        site.user(&company, email, name, admin_tool_only(level))
            .await;
    }
    // Relative to the company's folder under the operator's export root.
    let exports = "iif".to_owned();
    with_browser(&site, "settings", |b| async move {
        // An admin without the privilege manages users but cannot grant it.
        b.login("nopush@one.example", PASSWORD).await;
        b.go("/settings/users").await;
        b.click("#user-3 button[hx-get$='/edit']").await;
        let push = b.el("#push-3").await;
        assert_eq!(
            push.attr("disabled").await.unwrap().as_deref(),
            Some("true")
        );
        let why = b
            .attr("#user-3 span[title]", "title")
            .await
            .unwrap_or_default();
        assert!(
            why.contains("Only an Admin-tool admin who holds Push to accounting"),
            "{why}"
        );
        b.el("#admin-3").await.select("read_only").await.unwrap();
        b.click("#user-3 button[type=submit]").await;
        b.wait_text("#user-3", "Read-only").await;
        b.logout().await;

        // The full admin grants it.
        b.login(ADMIN, PASSWORD).await;
        b.go("/settings/users").await;
        b.click("#user-3 button[hx-get$='/edit']").await;
        b.click("#push-3").await;
        b.click("#user-3 button[type=submit]").await;
        b.wait_text("#user-3", "yes").await;

        // Adding a user: errors at the field, then the new user in the list.
        b.fill("#new-email", "not-an-email").await;
        b.fill("#new-name", "Quinn").await;
        b.fill("#new-password", "a-long-password").await;
        b.click("#new-user button[type=submit]").await;
        b.wait_text("#new-email-error", "is not an email address")
            .await;
        b.fill("#new-email", "quinn@one.example").await;
        b.fill("#new-password", "a-long-password").await;
        b.click("#new-user button[type=submit]").await;
        b.wait_text(".notice", "Added quinn@one.example.").await;
        b.shot("users").await;

        // The ERP connection: errors at the field, then saved and tested.
        b.go("/settings/erp").await;
        b.wait_text(".notice", "No ERP is connected yet").await;
        b.el("#erp-profile")
            .await
            .select("quickbooks_desktop")
            .await
            .unwrap();
        b.fill(
            "#erp-file-gl_accounts",
            "4000,Construction Income,income\n5000,Job Materials,expense",
        )
        .await;
        b.click("#erp-form button[type=submit]").await;
        b.wait_text("#erp-file-directory-error", "is required")
            .await;
        b.fill("#erp-file-directory", &exports).await;
        b.click("#erp-form button[type=submit]").await;
        b.wait_text(".notice", "Connection saved.").await;
        b.wait_text(
            "main",
            "QuickBooks Desktop through the connector “File (QuickBooks",
        )
        .await;
        b.click("button[hx-post='/settings/erp/test']").await;
        b.wait_text("#test-result", "Connection works").await;
        // Only the chosen connector's fields are shown.
        assert!(
            b.el("fieldset[data-connector=tryton]")
                .await
                .attr("hidden")
                .await
                .unwrap()
                .is_some()
        );
        b.shot("erp-connection").await;

        // The audit log records all of it, filters, and downloads as CSV.
        b.go("/settings/audit").await;
        b.el("#a-type").await.select("user").await.unwrap();
        b.click_to_load("form[role=search] button[type=submit]")
            .await;
        b.wait_text("main", "user.updated").await;
        b.wait_text("main", "permissions").await;
        b.shot("audit-log").await;
        let csv = b
            .script_text(
                "return fetch(document.querySelector('a[href^=\"/settings/audit.csv\"]').href).then(r => r.text())",
                vec![],
            )
            .await;
        assert!(
            csv.starts_with("id,at,actor,action,entity_type,entity_id,before,after"),
            "{csv}"
        );
        assert!(
            csv.contains("user.created") && !csv.contains("erp_connection.saved"),
            "{csv}"
        );
    })
    .await;
}
