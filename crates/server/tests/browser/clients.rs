//! Company settings → API clients: an admin creates a machine client and sees its secret once
//! (only its hash is stored), gives it a new secret, and revokes it; each step is checked
//! against the token endpoint too.
use crate::harness::{ADMIN, PASSWORD, Site, with_browser};
use sha2::{Digest, Sha256};

/// `POST /oauth/token` with this id and secret: the status.
async fn token_status(base: &str, id: &str, secret: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_rotate_and_revoke_a_client() {
    let Some((site, _)) = Site::for_browser().await else {
        return;
    };
    let s = site.clone();
    with_browser(&site, "clients", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        b.go("/settings/clients").await;
        b.wait_text("main", "No API clients yet").await;

        // A name is required, and said so at the field.
        b.click("#new-client button[type=submit]").await;
        b.wait_text("#new-name-error", "is required").await;
        b.fill("#new-name", "ERP sync").await;
        b.el("#new-admin").await.select("admin").await.unwrap();
        b.click("#new-client button[type=submit]").await;
        b.wait_text("#client-made", "API client ERP sync created")
            .await;
        let id = b.text("[data-client-id]").await;
        let secret = b.text("[data-client-secret]").await;
        assert!(secret.starts_with("cbs_"), "{secret}");
        let stored = s.state.db.client_secret(&id).await.unwrap().expect("row");
        assert_eq!(
            stored.secret_hash,
            hex::encode(Sha256::digest(secret.as_bytes()))
        );
        assert_eq!(token_status(&s.base, &id, &secret).await, 200);

        // Back on the list, the secret is nowhere to be seen.
        b.click("#client-made a[href='/settings/clients']").await;
        b.wait_text("#client-1", "Active").await;
        assert!(!b.exists("[data-client-secret]").await);
        assert!(!b.text("main").await.contains(&secret));

        // A new secret: shown once, the old one refused.
        b.click("#client-1 button[hx-post$='/rotate']").await;
        b.d.accept_alert().await.expect("confirm the new secret");
        b.wait_text("#client-made", "New secret for ERP sync").await;
        let new_secret = b.text("[data-client-secret]").await;
        assert_ne!(new_secret, secret);
        assert_eq!(token_status(&s.base, &id, &secret).await, 401);
        assert_eq!(token_status(&s.base, &id, &new_secret).await, 200);

        // Revoked: the row says so and the secret no longer works.
        b.click("#client-1 button[hx-post$='/revoke']").await;
        b.d.accept_alert().await.expect("confirm the revoke");
        b.wait_text("#client-1", "Revoked").await;
        assert!(!b.exists("#client-1 button").await);
        assert_eq!(token_status(&s.base, &id, &new_secret).await, 401);

        // The audit log names who did what.
        b.go("/settings/audit?entity_type=api_client").await;
        b.wait_text("main", "api_client.revoked").await;
    })
    .await;
}
