//! `Idempotency-Key` (issue #13, point 6): a retried POST with the same key gets the first
//! answer and changes nothing again, on either of two instances sharing one database; the
//! same key for another request is a 422 naming the header; a key still in flight is a 409.
use crate::both;
use crate::event_receiver::SECRET;
use crate::helpers::{TestApp, error_message, perms};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

both!(
    a_retried_create_runs_once,
    send_and_export_retried_on_another_instance_run_once,
    a_key_in_flight_is_a_conflict_until_its_claim_lapses,
    kept_answers_hold_no_secret_in_clear,
    a_change_saved_before_its_server_stopped_is_not_run_again,
    a_server_error_after_the_change_is_kept_not_run_again,
);

/// A POST with an `Idempotency-Key`, as `token`, to `base`: status, headers, body.
pub async fn post_with_key(
    app: &TestApp, base: &str, token: &str, path: &str, key: &str, body: &Value,
) -> (StatusCode, HeaderMap, Value) {
    let res = app
        .client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("request");
    let (s, h) = (res.status(), res.headers().clone());
    (s, h, res.json().await.unwrap_or(Value::Null))
}

/// Who the test's token is, as a key's owner.
async fn key_owner(app: &TestApp) -> costbridge_storage::requests::KeyOwner {
    let (_, me) = app.get("/api/v1/me").await;
    costbridge_storage::requests::KeyOwner {
        company: app.company,
        caller: me["id"].as_i64().unwrap(),
    }
}

/// What a claim holds of a `POST` to `path` with `body`: the hash of method, path and body.
fn request_hash(path: &str, body: &Value) -> String {
    let mut h = Sha256::new();
    h.update("POST");
    h.update([0]);
    h.update(path);
    h.update([0]);
    h.update(serde_json::to_vec(body).unwrap());
    hex::encode(h.finalize())
}

async fn a_retried_create_runs_once(app: TestApp) {
    let list = app.connect("quickbooks_desktop", "iif").await;
    let path = app.c(&format!("/cost_code_lists/{list}/cost_codes"));
    let body = json!({"code": "01", "description": "General", "parent_id": null});
    let (s1, h1, first) = post_with_key(&app, &app.base, &app.token, &path, "k-1", &body).await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert!(!h1.contains_key("idempotent-replayed"));
    let (s2, h2, again) = post_with_key(&app, &app.base, &app.token, &path, "k-1", &body).await;
    assert_eq!((s2, &again), (StatusCode::CREATED, &first));
    assert_eq!(h2["idempotent-replayed"], "true");
    assert_eq!(h2["content-type"], h1["content-type"]);
    let (_, codes) = app.get(&path).await;
    assert_eq!(codes.as_array().map(Vec::len), Some(1), "{codes}");
    assert_eq!(
        app.audit_actions("entity_type=cost_code").await,
        ["cost_code.created"]
    );

    // The same key for another body is refused, naming the header, and changes nothing.
    let other = json!({"code": "02", "description": "Site", "parent_id": null});
    let (s, _, b) = post_with_key(&app, &app.base, &app.token, &path, "k-1", &other).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["details"]["fields"]["Idempotency-Key"].is_array(),
        "{b}"
    );
    let (_, codes) = app.get(&path).await;
    assert_eq!(codes.as_array().map(Vec::len), Some(1));

    // A body past the route's limit is refused before the key is claimed (it was read up to
    // an import's 64 MiB first, whatever the route): the key stays free for the real request.
    let huge = json!({"code": "03", "description": "y".repeat(200_000), "parent_id": null});
    let (s, _, b) = post_with_key(&app, &app.base, &app.token, &path, "k-3", &huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    let fine = json!({"code": "03", "description": "Sitework", "parent_id": null});
    let (s, _, b) = post_with_key(&app, &app.base, &app.token, &path, "k-3", &fine).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // Signing in keeps no answer under a key, even sent with credentials: each is a new token.
    let sign_in = json!({"email": "admin@one.example", "password": "first-admin-password"});
    let sign_in = || {
        post_with_key(
            &app,
            &app.base,
            &app.token,
            "/api/v1/tokens",
            "k-4",
            &sign_in,
        )
    };
    let (s1, _, t1) = sign_in().await;
    let (s2, h2, t2) = sign_in().await;
    assert_eq!(
        (s1, s2),
        (StatusCode::CREATED, StatusCode::CREATED),
        "{t1} {t2}"
    );
    assert_ne!(t1["token"], t2["token"]);
    assert!(!h2.contains_key("idempotent-replayed"));

    // A refusal is an answer too: replayed as it was.
    let dup = json!({"code": "01", "description": "Again", "parent_id": null});
    let (s, _, refused) = post_with_key(&app, &app.base, &app.token, &path, "k-2", &dup).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (s, h, replayed) = post_with_key(&app, &app.base, &app.token, &path, "k-2", &dup).await;
    assert_eq!((s, &replayed), (StatusCode::UNPROCESSABLE_ENTITY, &refused));
    assert_eq!(h["idempotent-replayed"], "true");

    // A CSV import (not JSON) retried with its key imports once.
    let import = |key: &'static str| {
        let url = format!(
            "{}{}",
            app.base,
            app.c(&format!("/cost_code_lists/{list}/import"))
        );
        let req = app
            .client
            .post(url)
            .bearer_auth(&app.token)
            .header("idempotency-key", key)
            .header("content-type", "text/csv")
            .body("full_code,description,active\n05,Masonry,true\n");
        async move {
            let res = req.send().await.unwrap();
            let replayed = res.headers().contains_key("idempotent-replayed");
            (res.status(), replayed, res.json::<Value>().await.unwrap())
        }
    };
    let (s, replayed, first) = import("csv-1").await;
    assert_eq!((s, replayed), (StatusCode::OK, false), "{first}");
    assert_eq!(first["created"], 1, "{first}");
    assert_eq!(import("csv-1").await, (StatusCode::OK, true, first));
    let (_, codes) = app.get(&path).await;
    assert_eq!(codes.as_array().map(Vec::len), Some(3), "{codes}");

    // Keys are per caller: another user's "k-1" is theirs.
    let other_admin = app
        .user("second@one.example", perms("admin", "none", false))
        .await;
    let (s, h, b) = post_with_key(&app, &app.base, &other_admin, &path, "k-1", &other).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(!h.contains_key("idempotent-replayed"));

    // A key that is not a header value a client could mean is named.
    let (s, _, b) =
        post_with_key(&app, &app.base, &app.token, &path, &"x".repeat(300), &body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(
        b["error"]["details"]["fields"]["Idempotency-Key"].is_array(),
        "{b}"
    );
}

async fn send_and_export_retried_on_another_instance_run_once(app: TestApp) {
    let (second, _stop) = app.second_instance(|_| {}).await;
    let list = app.connect("quickbooks_desktop", "iif").await;
    app.code(list, "01", "General", None).await;
    app.code(list, "02", "Site", None).await;
    let (_, button) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/send_to_erp")))
        .await;
    let send = app.c(&format!("/cost_code_lists/{list}/send_to_erp"));
    let body = json!({"list_version": button["list_version"]});
    let (s, _, sent) = post_with_key(&app, &app.base, &app.token, &send, "send-1", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{sent}");
    let (s, h, resent) = post_with_key(&app, &second, &app.token, &send, "send-1", &body).await;
    assert_eq!((s, &resent), (StatusCode::CREATED, &sent));
    assert_eq!(h["idempotent-replayed"], "true");
    let (_, subs) = app.get(&app.c("/submissions")).await;
    assert_eq!(subs.as_array().map(Vec::len), Some(1), "{subs}");

    let export = app.c("/erp/cost_codes/export");
    let body = json!({"gl_income_account": "4000"});
    let (s, _, job) = post_with_key(&app, &second, &app.token, &export, "export-1", &body).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let (s, _, again) =
        post_with_key(&app, &app.base, &app.token, &export, "export-1", &body).await;
    assert_eq!((s, &again), (StatusCode::ACCEPTED, &job));
    app.run_worker().await;
    let exported = app.audit_actions("entity_type=export_job").await;
    assert_eq!(
        exported
            .iter()
            .filter(|a| *a == "export_job.queued")
            .count(),
        1,
        "{exported:?}"
    );
    assert_eq!(app.items("synced").await.len(), 2);
}

async fn a_key_in_flight_is_a_conflict_until_its_claim_lapses(app: TestApp) {
    use costbridge_storage::requests::Claim;
    let path = app.c("/cost_code_lists");
    let body = json!({"name": "Budget codes"});
    // The claim an instance holds while it runs the first request with this key.
    let hash = request_hash(&path, &body);
    let owner = key_owner(&app).await;
    let now = costbridge_storage::now();
    let day = time::Duration::days(1);
    let claim = |lease: time::Duration| {
        let (owner, hash) = (owner, hash.clone());
        let db = app.app_state.db.clone();
        async move {
            db.claim_idempotency_key(owner, "busy", &hash, now + lease, now + day)
                .await
                .unwrap()
        }
    };
    let count = || async { app.get(&path).await.1.as_array().map(Vec::len) };
    let before = count().await;
    assert_eq!(claim(time::Duration::minutes(10)).await, Claim::Mine);
    let (s, _, b) = post_with_key(&app, &app.base, &app.token, &path, "busy", &body).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(error_message(&b).contains("still running"));
    assert_eq!(count().await, before);
    assert_eq!(claim(time::Duration::minutes(10)).await, Claim::InFlight);

    // A claim whose instance died (its lease over) is taken over: the request runs, once.
    app.app_state
        .db
        .release_idempotency_key(owner, "busy")
        .await
        .unwrap();
    assert_eq!(claim(-time::Duration::minutes(1)).await, Claim::Mine);
    let (s, _, made) = post_with_key(&app, &app.base, &app.token, &path, "busy", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let (s, h, again) = post_with_key(&app, &app.base, &app.token, &path, "busy", &body).await;
    assert_eq!((s, &again), (StatusCode::CREATED, &made));
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(count().await, before.map(|n| n + 1));
}

/// A client's secret is shown once and kept only as its hash; its kept answer (replayed to a
/// retry) held it in clear until kept answers were sealed with the secrets key.
async fn kept_answers_hold_no_secret_in_clear(app: TestApp) {
    let path = app.c("/api_clients");
    let body = json!({"name": "Sync", "permissions": perms("none", "standard", false)});
    let (s, _, first) = post_with_key(&app, &app.base, &app.token, &path, "client-1", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let secret = first["client_secret"].as_str().expect("secret");
    let kept = app.app_state.db.kept_answers().await.unwrap();
    let (_, _, stored) = kept.iter().find(|(_, k, _)| k == "client-1").expect("kept");
    assert!(stored.starts_with("enc:v1:"), "{stored}");
    assert!(
        !stored.contains(secret) && !stored.contains("cbs_"),
        "{stored}"
    );
    // The retry still gets the first answer, secret and all.
    let (s, h, again) = post_with_key(&app, &app.base, &app.token, &path, "client-1", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(again, first);
}

/// An instance killed after a request's change committed and before its answer was kept left
/// the key claimed for its lease; a retry after the lease ran the change again (a second list).
/// The change now marks its key in its own transaction, so the retry is refused instead.
async fn a_change_saved_before_its_server_stopped_is_not_run_again(app: TestApp) {
    use costbridge_storage::Db;
    use costbridge_storage::requests::Claim;
    let path = app.c("/cost_code_lists");
    let body = json!({"name": "Budget codes"});
    let hash = request_hash(&path, &body);
    let owner = key_owner(&app).await;
    let db = &app.app_state.db;
    let count = || async { app.get(&path).await.1.as_array().map(Vec::len).unwrap() };
    let before = count().await;
    // What the dead instance did: claimed the key (its lease since run out) and committed the
    // request's change, the way a request's handler writes, then stopped before answering.
    let now = costbridge_storage::now();
    let lapsed = now - time::Duration::minutes(1);
    let day = now + time::Duration::days(1);
    let claimed = db.claim_idempotency_key(owner, "dead", &hash, lapsed, day);
    assert_eq!(claimed.await.unwrap(), Claim::Mine);
    let made = db.create_list(app.company, owner.caller, "Budget codes");
    Db::under_key(owner, "dead".into(), made).await.unwrap();
    assert_eq!(count().await, before + 1);

    let (s, h, b) = post_with_key(&app, &app.base, &app.token, &path, "dead", &body).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(
        error_message(&b).contains("its answer was not recorded"),
        "{b}"
    );
    assert!(!h.contains_key("idempotent-replayed"));
    assert_eq!(count().await, before + 1, "the retry ran the change again");

    // A claim whose request changed nothing is still taken over: the request runs, once.
    let other = json!({"name": "Site codes"});
    let other_hash = request_hash(&path, &other);
    let claimed = db.claim_idempotency_key(owner, "idle", &other_hash, lapsed, day);
    assert_eq!(claimed.await.unwrap(), Claim::Mine);
    let (s, _, b) = post_with_key(&app, &app.base, &app.token, &path, "idle", &other).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(count().await, before + 2);
}

/// A request whose change committed and whose answer then failed (here: the new subscription
/// is read back and cannot be decoded, as a row another version wrote) answered 500 and let
/// its key go, so the client's retry made a second subscription, and every event went out
/// twice. The 500 is now kept, says the change was saved, and a retry changes nothing more.
async fn a_server_error_after_the_change_is_kept_not_run_again(app: TestApp) {
    use crate::queue::{execute, texts};
    let spoil = "UPDATE event_subscriptions SET event_types = 'bogus' WHERE id = NEW.id";
    match &app.app_state.db {
        costbridge_storage::Db::Sqlite(_) => {
            let sql = format!(
                "CREATE TRIGGER spoil AFTER INSERT ON event_subscriptions BEGIN {spoil}; END"
            );
            execute(&app, &sql).await;
        }
        costbridge_storage::Db::Postgres(_) => {
            let sql = format!(
                "CREATE FUNCTION spoil() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {spoil}; \
                 RETURN NULL; END $$"
            );
            execute(&app, &sql).await;
            execute(
                &app,
                "CREATE TRIGGER spoil AFTER INSERT ON event_subscriptions FOR EACH ROW EXECUTE \
                 FUNCTION spoil()",
            )
            .await;
        }
    }
    let receiver = crate::event_receiver::Receiver::start().await;
    let path = app.c("/event_subscriptions");
    let body = json!({"url": receiver.url, "secret": SECRET, "event_types": ["cost_code.created"]});
    let count = || async {
        texts(
            &app,
            "SELECT CAST(COUNT(*) AS TEXT) FROM event_subscriptions",
        )
        .await
    };
    let (s, h, first) = post_with_key(&app, &app.base, &app.token, &path, "sub-1", &body).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{first}");
    assert!(!h.contains_key("idempotent-replayed"));
    let told = error_message(&first);
    assert!(
        told.contains("had already saved changes for this request"),
        "{first}"
    );
    // Not the plain failure's advice, which no longer holds.
    assert!(!told.contains("try again"), "{first}");
    assert_eq!(count().await, ["1"]);

    let (s, h, again) = post_with_key(&app, &app.base, &app.token, &path, "sub-1", &body).await;
    assert_eq!((s, &again), (StatusCode::INTERNAL_SERVER_ERROR, &first));
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(count().await, ["1"], "the retry made a second subscription");
}
