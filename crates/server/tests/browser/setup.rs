//! First run, sign-in, sign-out, the session cookie and the sign-in limit.
use crate::harness::{Site, available, with_browser};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_setup_then_sign_in_and_out() {
    if !available() {
        return;
    }
    let site = Site::start().await;
    let code = site.state.first_run.code.clone().expect("a setup code");
    with_browser(&site, "first_run", |b| async move {
        // An empty database offers setup at the home page.
        b.go("/").await;
        b.wait_text("h1", "Set up Costbridge").await;
        b.fill("#f-company", "Acme Builders").await;
        b.fill("#f-name", "Sam Setup").await;
        b.fill("#f-email", "sam@acme.example").await;
        b.fill("#f-password", "short").await;
        b.fill("#f-setup_code", &code).await;
        b.click_to_load("form button[type=submit]").await;
        let error = b.text("#f-password-error").await;
        assert!(error.contains("at least 10 characters"), "{error}");
        assert_eq!(
            b.attr("#f-password", "aria-invalid").await.as_deref(),
            Some("true")
        );
        b.fill("#f-password", "correct-horse-battery").await;
        b.shot("setup").await;
        b.click_to_load("form button[type=submit]").await;

        // Signed in at once, as an admin of a company with no lists yet.
        b.wait_text("main", "no cost code lists yet").await;
        b.wait_text(".who", "Sam Setup · Acme Builders").await;
        let first = b.session_cookie().await;
        assert_eq!(first["httpOnly"], true, "{first}");
        assert_eq!(first["sameSite"], "Lax", "{first}");

        // Setup is a one-time thing.
        b.go("/").await;
        b.wait_url("/codes").await;

        b.logout().await;
        b.fill("#f-email", "sam@acme.example").await;
        b.fill("#f-password", "not-the-password").await;
        b.click_to_load("form button[type=submit]").await;
        b.wait_text("#login-error", "The email or password is wrong.")
            .await;
        b.fill("#f-password", "").await;
        b.shot("login").await;

        b.login("sam@acme.example", "correct-horse-battery").await;
        b.wait_text(".who", "Sam Setup").await;
        let second = b.session_cookie().await;
        assert_ne!(
            first["value"], second["value"],
            "a sign-in starts a new session id"
        );

        // Signing out ends the session on the server: the old cookie no longer works.
        b.logout().await;
        b.d.add_cookie(second)
            .await
            .expect("put the old cookie back");
        b.go("/codes").await;
        b.wait_url("/login").await;

        // Guessing is limited per email.
        for _ in 0..11 {
            b.fill("#f-email", "sam@acme.example").await;
            b.fill("#f-password", "guess-guess-guess").await;
            b.click_to_load("form button[type=submit]").await;
            b.el("#login-error").await;
        }
        b.wait_text("#login-error", "Too many sign-in attempts")
            .await;
    })
    .await;
}
