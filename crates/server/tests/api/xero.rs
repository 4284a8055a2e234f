//! The Xero connector end to end against `XeroStandIn`: the OAuth sign-in, the organisation
//! pick, exports as Items (created, updated, refused alone, conflicts, resumed without
//! duplicates), GL accounts from the chart, Sync from ERP, token refresh under two racing
//! workers, a revoked grant, 429 storms, 5xx, and Disconnect.
use crate::helpers::{Backend, TestApp, strings};
use crate::xero_standin::{Prism, XeroStandIn};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use serde_json::{Value, json};

macro_rules! xero_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::helpers::Backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(x) = super::Xero::start(Backend::Sqlite).await { super::$name(x).await }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(x) = super::Xero::start(Backend::Postgres).await { super::$name(x).await }
            }
        }
    )*};
}

xero_both!(
    connects_with_state_and_pkce_and_picks_the_organisation,
    refuses_a_foreign_state_a_denied_consent_and_a_used_code,
    exports_codes_as_items_and_reads_them_back,
    a_resumed_export_creates_nothing_twice_and_conflicts_are_refused,
    racing_workers_use_each_refresh_token_once,
    a_revoked_grant_needs_reconnect_and_tells_the_admins,
    a_429_storm_and_5xx_delay_the_job_without_failing_it,
    disconnect_revokes_the_grant,
    secrets_rotate_re_encrypts_the_xero_tokens,
    the_chart_is_read_once_a_minute,
    a_502_after_a_token_refresh_leaves_the_key_free,
    the_page_says_what_differs_in_the_first_fifty_conflicts,
);

/// A server pointed at a fresh stand-in with two organisations, and a signed-in admin.
pub struct Xero {
    app: TestApp,
    standin: XeroStandIn,
    browser: reqwest::Client,
    cookie: String,
    /// The ERP list.
    list: i64,
}

const TENANTS: [(&str, &str); 2] = [
    ("40000000-0000-4000-8000-000000000001", "Acme Builders Ltd"),
    ("40000000-0000-4000-8000-000000000002", "Acme Demo Company"),
];

impl Xero {
    async fn start(backend: Backend) -> Option<Xero> {
        let standin = XeroStandIn::start(&TENANTS).await;
        Xero::start_with(backend, standin, |_| {}).await
    }

    /// [`Xero::start`] on this stand-in, with the server's settings changed by `tweak` after
    /// they point at it.
    async fn start_with(
        backend: Backend, standin: XeroStandIn,
        tweak: impl FnOnce(&mut costbridge_server::Settings),
    ) -> Option<Xero> {
        let app = TestApp::spawn_with(backend, |s| {
            standin.configure(s);
            tweak(s);
        })
        .await?;
        let (s, b) = app
            .put(
                &app.c("/erp_connection"),
                json!({"profile": "xero", "connector": {"kind": "xero"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let list = b["erp_list_id"].as_i64().unwrap();
        let (browser, cookie) = app
            .session("admin@one.example", "first-admin-password")
            .await;
        Some(Xero {
            app,
            standin,
            browser,
            cookie,
            list,
        })
    }

    /// A GET as the signed-in browser; the status and the `Location` or the body.
    async fn get(&self, url: &str) -> (StatusCode, String) {
        let res = self
            .browser
            .get(url)
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        let status = res.status();
        match res.headers().get(LOCATION) {
            Some(l) => (status, l.to_str().unwrap().to_owned()),
            None => (status, res.text().await.unwrap()),
        }
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let res = self
            .browser
            .post(format!("{}{path}", self.app.base))
            .header(COOKIE, &self.cookie)
            .header("sec-fetch-site", "same-origin")
            .header("hx-request", "true")
            .form(form)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap_or_default())
    }

    /// Connect to Xero: to the stand-in's login page and back with `consent`; the answer
    /// of Costbridge's callback.
    async fn sign_in(&self, consent: &str) -> (StatusCode, String) {
        let (s, to_xero) = self
            .get(&format!("{}/oauth/xero/connect", self.app.base))
            .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{to_xero}");
        assert!(to_xero.starts_with(&self.standin.url), "{to_xero}");
        let (s, back) = self.get(&format!("{to_xero}&consent={consent}")).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{back}");
        self.get(&self.here(&back)).await
    }

    /// The callback address Xero sends the browser to, on this test's server (`base_url` is
    /// the default's, the server listens on a port of its own).
    fn here(&self, url: &str) -> String {
        let u = reqwest::Url::parse(url).unwrap();
        format!("{}{}?{}", self.app.base, u.path(), u.query().unwrap_or(""))
    }

    async fn connect(&self) {
        let (s, to) = self.sign_in("allow").await;
        assert_eq!(
            (s, to.as_str()),
            (StatusCode::SEE_OTHER, "/settings/erp?xero=pick")
        );
        let (s, part) = self
            .post_form(
                "/settings/erp/xero/organisation",
                &[("tenant_id", TENANTS[0].0)],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{part}");
        assert!(
            part.contains("Connected to the Xero organisation <strong>Acme Builders Ltd</strong>"),
            "{part}"
        );
    }

    async fn grant(&self) -> Option<costbridge_storage::xero::XeroGrant> {
        self.app
            .app_state
            .db
            .xero_grant(self.app.company)
            .await
            .unwrap()
    }

    async fn page(&self) -> String {
        let (s, page) = self.get(&format!("{}/settings/erp", self.app.base)).await;
        assert_eq!(s, StatusCode::OK);
        page
    }

    /// Codes `01`…, each with a child, sent to the ERP queue; returns the list id.
    async fn send_codes(&self, n: usize) -> i64 {
        let list = self.list;
        let mut csv = String::from("full_code,description\n");
        for i in 1..=n {
            csv.push_str(&format!(
                "{i:02},Division {i} cast-in-place concrete forming and reinforcing works\n"
            ));
        }
        self.app.import(list, csv).await;
        self.app.send(list).await;
        list
    }

    async fn export_all(&self, income: &str, expense: &str) -> i64 {
        let (s, b) = self
            .app
            .post(
                &self.app.c("/erp/cost_codes/export"),
                json!({"gl_income_account": income, "gl_expense_account": expense}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{b}");
        b["export_job_id"].as_i64().unwrap()
    }

    async fn job(&self, id: i64) -> Value {
        self.app
            .get(&self.app.c(&format!("/erp/export_jobs/{id}")))
            .await
            .1
    }
}

async fn connects_with_state_and_pkce_and_picks_the_organisation(x: Xero) {
    let page = x.page().await;
    assert!(page.contains("Not connected to Xero yet"), "{page}");
    assert!(page.contains("href=\"/oauth/xero/connect\""), "{page}");
    x.connect().await;
    let page = x.page().await;
    assert!(page.contains("Acme Builders Ltd"), "{page}");
    assert!(page.contains("by Ada Admin"), "{page}");
    assert!(page.contains("Disconnect"), "{page}");
    // The tokens are stored encrypted and shown nowhere.
    let stored = x
        .app
        .app_state
        .db
        .xero_grant(x.app.company)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.access_token.starts_with("enc:v1:"),
        "{}",
        stored.access_token
    );
    assert!(stored.refresh_token.starts_with("enc:v1:"));
    assert!(!page.contains("at-0000") && !page.contains("rt-0000"));
    // Test connection reaches the organisation.
    let (s, b) = x
        .app
        .post(&x.app.c("/erp_connection/test"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b.to_string().contains("Acme Builders Ltd"), "{b}");
    // GL accounts come from Xero's chart: revenue and cost types only.
    let (s, b) = x.app.get(&x.app.c("/erp/gl_accounts")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let codes = strings(&b, "code");
    assert_eq!(codes, ["200", "310", "429"]);
}

async fn refuses_a_foreign_state_a_denied_consent_and_a_used_code(x: Xero) {
    // Denied at Xero.
    let (s, page) = x.sign_in("deny").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Xero did not connect: consent was not given. Nothing changed"),
        "{page}"
    );
    // A state this session never started.
    let (s, page) = x
        .get(&format!(
            "{}/oauth/xero/callback?code=code-1&state=cb_forged",
            x.app.base
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("state mismatch"), "{page}");
    // A code that was used already (or expired) at Xero.
    let (_, to_xero) = x.get(&format!("{}/oauth/xero/connect", x.app.base)).await;
    let (_, back) = x.get(&format!("{to_xero}&consent=allow")).await;
    let code = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    x.standin.with(|s| s.codes_used(&code));
    let (s, page) = x.get(&x.here(&back)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Xero refused the sign-in code: it expired or was already used"),
        "{page}"
    );
    // The same answer twice: the state works once.
    let (_, page) = x.get(&x.here(&back)).await;
    assert!(page.contains("state mismatch"), "{page}");
    assert!(x.grant().await.is_none());
}

async fn exports_codes_as_items_and_reads_them_back(x: Xero) {
    x.connect().await;
    x.send_codes(3).await;
    let job = x.export_all("200", "310").await;
    x.app.run_worker().await;
    assert_eq!(x.job(job).await["status"], "done", "{}", x.job(job).await);
    let items = x.standin.with(|s| s.items());
    assert_eq!(items.len(), 3);
    let first = &items[0];
    assert_eq!(first["Code"], "01");
    assert_eq!(
        first["Name"],
        "Division 1 cast-in-place concrete forming and"
    );
    assert_eq!(
        first["Description"],
        "Division 1 cast-in-place concrete forming and reinforcing works"
    );
    assert_eq!(first["SalesDetails"]["AccountCode"], "200");
    assert_eq!(first["PurchaseDetails"]["AccountCode"], "310");
    assert_eq!(first["IsTrackedAsInventory"], false);
    let synced = x.app.items("synced").await;
    assert_eq!(synced.len(), 3);
    // The approval and the worker read the chart; then two calls a batch: one look-up, one POST.
    assert_eq!(
        x.standin.with(|s| s.calls.clone()),
        [
            "GET /Accounts",
            "GET /Accounts",
            "GET /Items",
            "POST /Items"
        ]
    );

    // Someone creates item 04 in Xero between the look-up and the POST: Xero refuses that
    // item alone, in its own words; 05 goes through in the same batch.
    let list = x.list;
    x.app.code(list, "04", "Masonry", None).await;
    x.app.code(list, "05", "Metals", None).await;
    x.app.send(list).await;
    x.export_all("200", "310").await;
    x.standin.with(|s| s.sneak_in = Some("04".into()));
    x.app.run_worker().await;
    let failed = x.app.items("failed").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]
            .to_string()
            .contains("Xero refused item 04: Item code '04' already exists"),
        "{failed:?}"
    );
    assert_eq!(x.app.items("synced").await.len(), 4);

    // Sync from ERP reads Xero's items.
    let (s, b) = x
        .app
        .post(&x.app.c("/erp/cost_codes/sync_from_erp"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Xero's 04 meets the local 04 still waiting in Failed to Export: reported, not applied.
    assert_eq!(
        (b["created"].as_i64(), b["unchanged"].as_i64()),
        (Some(0), Some(4)),
        "{b}"
    );
    assert!(b["conflicts"].to_string().contains("04"), "{b}");
}

/// Sync from ERP on the page says in words what differs in each conflict (only the fields that
/// differ) and lists the first 50; the page showed each side as raw JSON, every one of them.
/// The API still answers every conflict with both sides as JSON.
async fn the_page_says_what_differs_in_the_first_fifty_conflicts(x: Xero) {
    x.connect().await;
    // 60 codes waiting here; Xero has each of them described its own way, and 02 archived.
    let mut csv = String::from("full_code,description\n");
    let mut items = Vec::new();
    for i in 1..=60 {
        csv.push_str(&format!("{i:02},General {i}\n"));
        let (name, sold) = match i {
            1 => ("General conditions".to_owned(), true),
            2 => ("General 2".to_owned(), false),
            _ => (format!("Xero {i}"), true),
        };
        items.push(json!({"ItemID": format!("50000000-0000-4000-8000-{i:012}"),
            "Code": format!("{i:02}"), "Name": name, "Description": name,
            "IsSold": sold, "IsPurchased": sold}));
    }
    x.app.import(x.list, csv).await;
    x.standin
        .with(|s| s.items.insert(TENANTS[0].0.to_owned(), items));

    let (s, page) = x.post_form("/erp/sync", &[]).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("60 conflicts left as they are")
            && page.contains(
                "edit the code here and send it with Send to ERP, or change it in the ERP"
            ),
        "{page}"
    );
    let row = |code: &str| {
        let start = page
            .find(&format!("<td class=\"code\">{code}</td>"))
            .unwrap_or_else(|| panic!("no row for {code}: {page}"));
        let rest = &page[start..];
        rest[..rest.find("</tr>").unwrap()].to_owned()
    };
    let one = row("01");
    assert!(
        one.contains("Description: “General 1” in Costbridge, “General conditions” in the ERP")
            && !one.contains("Active")
            && !one.contains("Code:"),
        "{one}"
    );
    let two = row("02");
    assert!(
        two.contains("Active: yes in Costbridge, no in the ERP") && !two.contains("Description"),
        "{two}"
    );
    assert!(
        !page.contains("full_code") && !page.contains('{'),
        "raw JSON: {page}"
    );
    assert_eq!(page.matches("<td class=\"code\">").count(), 50, "{page}");
    assert!(page.contains("And 10 more conflicts, 60 in all."), "{page}");

    let (s, b) = x
        .app
        .post(&x.app.c("/erp/cost_codes/sync_from_erp"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let conflicts = b["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 60, "{b}");
    assert_eq!(
        (
            &conflicts[0]["local"]["description"],
            &conflicts[0]["erp"]["description"]
        ),
        (&json!("General 1"), &json!("General conditions"))
    );
}

/// The queue page, each GL picker change and the API all need the chart of accounts; each
/// read it from Xero, whose limit is 60 calls a minute per organisation. One read now serves
/// them for a minute; *Test connection* (what a person does after changing Xero) reads anew.
async fn the_chart_is_read_once_a_minute(x: Xero) {
    x.connect().await;
    x.send_codes(2).await;
    let reads = || {
        x.standin
            .with(|s| s.calls.iter().filter(|c| *c == "GET /Accounts").count())
    };
    assert_eq!(reads(), 0);
    let (s, chart) = x.app.get(&x.app.c("/erp/gl_accounts")).await;
    assert_eq!(s, StatusCode::OK, "{chart}");
    let (s, page) = x.get(&format!("{}/erp", x.app.base)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("200 Sales"), "{page}");
    for item in x.app.items("ready_to_export").await {
        x.app
            .patched(
                &x.app.c(&format!("/erp/cost_codes/{}", item["id"])),
                json!({"gl_income_account": "200"}),
            )
            .await;
    }
    assert_eq!(reads(), 1);
    let (s, b) = x
        .app
        .post(&x.app.c("/erp_connection/test"), json!({}))
        .await;
    assert_eq!((s, &b["ok"]), (StatusCode::OK, &json!(true)), "{b}");
    x.app.get(&x.app.c("/erp/gl_accounts")).await;
    assert_eq!(reads(), 2);
    // Xero's rate limit reaches the API's caller with how long to wait (it was a bare 502).
    let (s, b) = x
        .app
        .post(&x.app.c("/erp_connection/test"), json!({}))
        .await;
    assert_eq!((s, &b["ok"]), (StatusCode::OK, &json!(true)), "{b}");
    x.standin.with(|s| s.throttle = 1);
    let res = x.app.request("GET", &x.app.c("/erp/gl_accounts")).await;
    assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(res.headers()["retry-after"], "1");
    let b: Value = res.json().await.unwrap();
    assert_eq!(b["error"]["code"], "erp_unavailable", "{b}");
    x.app.get(&x.app.c("/erp/gl_accounts")).await;
    assert_eq!(reads(), 4);
    // Another organisation has another chart: read at once (the settings are the same `{}`).
    let (s, part) = x
        .post_form(
            "/settings/erp/xero/organisation",
            &[("tenant_id", TENANTS[1].0)],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{part}");
    x.app.get(&x.app.c("/erp/gl_accounts")).await;
    assert_eq!(reads(), 5);
    // A GL account that is not in the chart is still refused by name.
    let item = &x.app.items("ready_to_export").await[0];
    let (s, b) = x
        .app
        .patch(
            &x.app.c(&format!("/erp/cost_codes/{}", item["id"])),
            json!({"gl_income_account": "999"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
}

async fn a_resumed_export_creates_nothing_twice_and_conflicts_are_refused(x: Xero) {
    x.connect().await;
    let list = x.send_codes(2).await;
    let job = x.export_all("200", "310").await;
    // The batch reached Xero but its answer was lost (a crash before recording): simulate by
    // writing the same items into Xero first.
    x.app.run_worker().await;
    assert_eq!(x.job(job).await["status"], "done");
    let before = x.standin.with(|s| s.items());
    // Re-send after an edit: an update, not a create; and an item renamed in Xero conflicts.
    let (_, codes) = x
        .app
        .get(
            &x.app
                .c(&format!("/cost_code_lists/{list}/cost_codes?per_page=10")),
        )
        .await;
    let codes = codes.as_array().unwrap().clone();
    for c in &codes {
        let (s, b) = x
            .app
            .patch(
                &x.app
                    .c(&format!("/cost_code_lists/{list}/cost_codes/{}", c["id"])),
                json!({"description": format!("{} (revised)", c["description"].as_str().unwrap())}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    x.standin.with(|s| {
        let tenant = s.tenants[0].0.clone();
        s.items.get_mut(&tenant).unwrap()[1]["Name"] = json!("Renamed by the bookkeeper");
    });
    x.app.send(list).await;
    x.export_all("200", "310").await;
    x.app.run_worker().await;
    let after = x.standin.with(|s| s.items());
    assert_eq!(after.len(), before.len(), "nothing created twice");
    assert_eq!(after[0]["ItemID"], before[0]["ItemID"]);
    assert!(
        after[0]["Description"]
            .as_str()
            .unwrap()
            .ends_with("(revised)")
    );
    let failed = x.app.items("failed").await;
    assert_eq!(failed.len(), 1);
    let message = failed[0].to_string();
    assert!(
        message.contains("conflict: the item was changed in Xero since Costbridge last synced it"),
        "{message}"
    );
    assert!(message.contains("Renamed by the bookkeeper"), "{message}");
}

async fn racing_workers_use_each_refresh_token_once(x: Xero) {
    // Every token Xero issues is about to expire: each use needs a refresh.
    x.standin.with(|s| s.expires_in = 30);
    x.connect().await;
    // Two instances, each with its own database pool, racing for the grant.
    let mut settings = x.app.instance_settings();
    x.standin.configure(&mut settings);
    let other_db = costbridge_storage::Db::connect(&x.app.database_url)
        .await
        .unwrap();
    let outbound = x.app.app_state.connectors.outbound.clone();
    let other =
        costbridge_server::xero::env(&settings, &other_db, &x.app.app_state.cipher, &outbound)
            .grants;
    let ours = x.app.app_state.connectors.xero.clone().unwrap().grants;
    let company = x.app.company;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let g = if i % 2 == 0 {
            ours.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            g.access(company, None).await.map(|a| a.tenant_id)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), TENANTS[0].0);
    }
    let (refreshes, reused) = x.standin.with(|s| (s.refreshes.clone(), s.reused.clone()));
    assert!(
        reused.is_empty(),
        "a refresh token was used twice: {reused:?}"
    );
    assert!(!refreshes.is_empty());
    let unique: std::collections::HashSet<_> = refreshes.iter().collect();
    assert_eq!(unique.len(), refreshes.len());
    let g = x
        .app
        .app_state
        .db
        .xero_grant(company)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.status, costbridge_domain::xero::GrantStatus::Connected);
}

async fn a_revoked_grant_needs_reconnect_and_tells_the_admins(x: Xero) {
    x.connect().await;
    x.send_codes(1).await;
    let job = x.export_all("200", "310").await;
    // Revoked in Xero, and the token is about to expire.
    x.standin.with(|s| s.revoke());
    expire(&x).await;
    x.app.run_worker().await;
    let j = x.job(job).await;
    assert!(j.to_string().contains("needs reconnecting"), "{j}");
    let page = x.page().await;
    assert!(page.contains("Needs reconnect"), "{page}");
    assert!(page.contains("Connect to Xero"), "{page}");
    let mail = x.app.app_state.db.outbox_rows(50).await.unwrap();
    let notes: Vec<_> = mail
        .iter()
        .filter(|m| m.kind == "xero_needs_reconnect")
        .collect();
    assert_eq!(notes.len(), 1, "one email per admin");
    assert_eq!(notes[0].recipient, "admin@one.example");
}

async fn a_429_storm_and_5xx_delay_the_job_without_failing_it(x: Xero) {
    x.connect().await;
    x.send_codes(3).await;
    let job = x.export_all("200", "310").await;
    x.standin.with(|s| s.throttle = 12);
    // Each 429 postpones the job by Xero's Retry-After (0 s here), counting no attempt.
    let mut rounds = 0;
    loop {
        x.app.run_worker().await;
        rounds += 1;
        let j = x.job(job).await;
        if j["status"] == "done" {
            break;
        }
        assert!(
            j.to_string().contains("waiting for Xero's rate limit"),
            "{j}"
        );
        assert!(rounds < 30, "{j}");
    }
    assert_eq!(x.app.items("synced").await.len(), 3);
    assert_eq!(x.app.items("failed").await.len(), 0);
    // A 5xx is retried like any unreachable ERP.
    let list = x.list;
    x.app.code(list, "09", "Finishes", None).await;
    x.app.send(list).await;
    let job = x.export_all("200", "310").await;
    x.standin.with(|s| s.unavailable = 1);
    x.app.run_worker().await;
    let j = x.job(job).await;
    assert!(j.to_string().contains("503 Service Unavailable"), "{j}");
    assert!(x.standin.with(|s| s.most_at_once) <= 5);
}

async fn disconnect_revokes_the_grant(x: Xero) {
    x.connect().await;
    let (s, _) = x.post_form("/settings/erp/xero/disconnect", &[]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(x.grant().await.is_none());
    // Xero no longer accepts the old tokens.
    assert!(x.standin.with(|s| s.refreshes.is_empty()));
    let page = x.page().await;
    assert!(page.contains("Not connected to Xero yet"), "{page}");
    let actions = x.app.audit_actions("entity_type=company").await;
    assert_eq!(
        actions[..3],
        [
            "xero.disconnected",
            "xero.organisation_picked",
            "xero.connected"
        ],
        "{actions:?}"
    );
}

/// Makes the stored access token one that is about to expire, so its next use refreshes.
async fn expire(x: &Xero) {
    let sql = "UPDATE xero_grants SET access_expires_at = $1";
    let past = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    match &x.app.app_state.db {
        costbridge_storage::Db::Sqlite(p) => {
            sqlx::query(sql).bind(past).execute(p).await.map(|_| ())
        }
        costbridge_storage::Db::Postgres(p) => {
            sqlx::query(sql).bind(past).execute(p).await.map(|_| ())
        }
    }
    .unwrap();
}

/// The benchmark (BENCHMARKS.md): 10,000 codes exported to the stand-in within Xero's limits
/// (60 calls a minute, 5 at once); prints the time taken and the calls made.
/// `cargo test --release -p costbridge-server --test api -- --ignored xero_10000 --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it by name with --release"]
async fn xero_10000_codes_within_xeros_limits() {
    let Some(x) = Xero::start(Backend::Sqlite).await else {
        return;
    };
    x.connect().await;
    let start = std::time::Instant::now();
    x.send_codes(10_000).await;
    let sent = start.elapsed();
    let job = x.export_all("200", "310").await;
    let export = std::time::Instant::now();
    x.app.run_worker().await;
    let exported = export.elapsed();
    assert_eq!(x.job(job).await["status"], "done");
    let (items, calls, at_once) = x
        .standin
        .with(|s| (s.items().len(), s.calls.len(), s.most_at_once));
    assert_eq!(items, 10_000);
    assert!(calls <= 60, "{calls} calls: one minute's worth at most");
    println!(
        "xero benchmark: import+send {sent:.2?}, export {exported:.2?} for 10,000 codes; \
         {calls} Accounting calls, at most {at_once} at once"
    );
}

/// Every Accounting call goes through Prism, which checks each request the connector sends and
/// each answer the stand-in returns against Xero's published description; any break fails the
/// call. One backend: the wire does not depend on the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_keeps_to_xeros_published_contract() {
    let standin = XeroStandIn::start(&TENANTS).await;
    let Some(prism) = Prism::start(&format!("{}/api.xro/2.0", standin.url)).await else {
        return;
    };
    let Some(x) = Xero::start_with(Backend::Sqlite, standin, |s| {
        s.xero.accounting_base = prism.url.clone()
    })
    .await
    else {
        return;
    };
    x.connect().await;
    let (s, b) = x
        .app
        .post(&x.app.c("/erp_connection/test"), json!({}))
        .await;
    assert_eq!((s, b["ok"].clone()), (StatusCode::OK, json!(true)), "{b}");
    // Every export must be done in one worker step.
    let export_all = async |expense: &str| {
        let job = x.export_all("200", expense).await;
        x.app.run_worker().await;
        let j = x.job(job).await;
        assert_eq!(j["status"], "done", "{j}\n{}", prism.output());
    };
    // Create, then update and deactivate, then read back.
    x.send_codes(3).await;
    export_all("310").await;
    let (_, codes) = x
        .app
        .get(&x.app.c(&format!(
            "/cost_code_lists/{}/cost_codes?per_page=10",
            x.list
        )))
        .await;
    let codes = codes.as_array().unwrap().clone();
    let patch = |i: usize, body: Value| {
        let path = x.app.c(&format!(
            "/cost_code_lists/{}/cost_codes/{}",
            x.list, codes[i]["id"]
        ));
        let app = &x.app;
        async move { app.patch(&path, body).await }
    };
    assert_eq!(
        patch(0, json!({"description": "Concrete, revised"}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(patch(1, json!({"active": false})).await.0, StatusCode::OK);
    x.app.send(x.list).await;
    export_all("429").await;
    // The Synced filter shows each code once, by its latest item: 3 created, 2 of them since
    // changed.
    let synced = x.app.items("synced").await;
    let changed = synced.iter().filter(|i| i["change"] == "modified").count();
    assert_eq!((synced.len(), changed), (3, 2), "3 created, then 2 changed");
    assert!(x.app.items("failed").await.is_empty());
    let (s, b) = x
        .app
        .post(&x.app.c("/erp/cost_codes/sync_from_erp"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let log = prism.output();
    assert!(log.contains("Forwarding \"post\" request"), "{log}");
    assert!(!log.contains("Violation") && !log.contains("✖"), "{log}");

    // A stand-in answer that breaks Xero's contract is caught.
    x.standin.with(|s| s.break_contract = true);
    let (s, b) = x
        .app
        .post(&x.app.c("/erp/cost_codes/sync_from_erp"), json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{b}");
    assert!(b.to_string().contains("HTTP 500"), "{b}");
    // The stand-in answered 200: the 500 is Prism refusing the answer (VIOLATIONS).
}

/// `costbridge serve` killed with SIGKILL in the middle of an export to Xero, then started
/// again: the job resumes, and every code is in Xero exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_export_to_xero_duplicates_nothing() {
    use crate::helpers::SECRETS_KEY;
    use crate::tryton::{Server, wait_for};
    use std::time::Duration;
    const N: usize = 2000;
    let standin = XeroStandIn::start(&TENANTS[..1]).await;
    standin.with(|s| s.post_delay = Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    let accounting = format!("{}/api.xro/2.0", standin.url);
    let env = [
        ("COSTBRIDGE__SECRETS__KEY", SECRETS_KEY),
        (
            "COSTBRIDGE__XERO__CLIENT_ID",
            crate::xero_standin::CLIENT_ID,
        ),
        (
            "COSTBRIDGE__XERO__CLIENT_SECRET",
            crate::xero_standin::CLIENT_SECRET,
        ),
        ("COSTBRIDGE__XERO__API_BASE", &standin.url),
        ("COSTBRIDGE__XERO__ACCOUNTING_BASE", &accounting),
        ("COSTBRIDGE__XERO__IDENTITY_BASE", &standin.url),
        ("COSTBRIDGE__XERO__LOGIN_BASE", &standin.url),
    ];
    let ids = Server::bootstrap_with(&db, &env);
    let (company, token) = (
        ids["company_id"].as_i64().unwrap(),
        ids["token"].as_str().unwrap().to_owned(),
    );
    // The grant as Connect to Xero leaves it (the sign-in itself is tested above).
    let store = costbridge_storage::Db::connect(&db).await.unwrap();
    let cipher = costbridge_server::secrets::Cipher::from_base64(SECRETS_KEY, "test").unwrap();
    let issued = standin.with(|s| s.token());
    store
        .save_xero_grant(
            company,
            ids["user_id"].as_i64().unwrap(),
            "[]",
            Some((TENANTS[0].0, TENANTS[0].1)),
            &costbridge_storage::xero::XeroTokens {
                access_token: cipher.seal(issued["access_token"].as_str().unwrap()),
                refresh_token: cipher.seal(issued["refresh_token"].as_str().unwrap()),
                access_expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(30),
            },
        )
        .await
        .unwrap();
    let mut server = Server::start_with(&db, &env);
    let list = server
        .connect(
            &token,
            company,
            json!({"profile": "xero", "connector": {"kind": "xero"}}),
        )
        .await;
    let mut csv = String::from("full_code,description\n");
    for i in 1..=N {
        csv.push_str(&format!("{i:04},Code {i}\n"));
    }
    server.import_and_send(company, &token, list, csv).await;
    let job_path = server
        .export(&token, company, json!({"gl_income_account": "200"}))
        .await;
    // Killed once Xero holds some batches and not others.
    wait_for("the first batch", Duration::from_secs(120), async || {
        let st = server.job(&token, &job_path).await?;
        (st["counts"]["synced"].as_i64()? > 0).then_some(())
    })
    .await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let in_xero = standin.with(|s| s.items().len());
    assert!(in_xero < N, "killed mid-export: {in_xero} of {N} in Xero");
    standin.with(|s| s.post_delay = Duration::ZERO);
    let server = Server::start_with(&db, &env);
    server.all_synced(&token, &job_path, N).await;
    let items = standin.with(|s| s.items());
    let codes: std::collections::HashSet<&str> =
        items.iter().map(|i| i["Code"].as_str().unwrap()).collect();
    assert_eq!(
        (items.len(), codes.len()),
        (N, N),
        "every code in Xero exactly once"
    );
}

async fn secrets_rotate_re_encrypts_the_xero_tokens(x: Xero) {
    use costbridge_server::secrets::{Cipher, rotate};
    x.connect().await;
    let db = &x.app.app_state.db;
    let old = x.app.app_state.cipher.clone();
    let new = Cipher::new(&[42; 32]);
    rotate(db, &old, &new).await.unwrap();
    let g = db.xero_grant(x.app.company).await.unwrap().unwrap();
    let access = new
        .open(&g.access_token)
        .expect("the new key opens the access token");
    assert!(access.starts_with("at-"), "{access}");
    assert!(new.open(&g.refresh_token).unwrap().starts_with("rt-"));
    assert!(
        old.open(&g.access_token).is_err(),
        "no longer under the old key"
    );
    // A server started with the old key refuses to start, naming the Xero tokens.
    let e = costbridge_server::secrets::cipher(&x.app.instance_settings(), db)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("Xero tokens cannot be read"), "{e}");
}

/// A renewed Xero token is saved before the call it was renewed for; that call's 502 must let
/// the request's `Idempotency-Key` go, as for any error before the request changed anything:
/// the token is Costbridge's bookkeeping, not the request's change.
async fn a_502_after_a_token_refresh_leaves_the_key_free(x: Xero) {
    use crate::idempotency::post_with_key;
    // Every token Xero issues is about to expire: the next call renews it first.
    x.standin.with(|s| s.expires_in = 30);
    x.connect().await;
    let refreshed = x.standin.with(|s| s.refreshes.len());
    x.standin.with(|s| s.unavailable = 1);
    let path = x.app.c("/erp/cost_codes/sync_from_erp");
    let app = &x.app;
    let (s, _, b) = post_with_key(app, &app.base, &app.token, &path, "pull-1", &json!({})).await;
    assert_eq!(
        (s, &b["error"]["code"]),
        (StatusCode::BAD_GATEWAY, &json!("erp_unavailable")),
        "{b}"
    );
    assert!(
        x.standin.with(|s| s.refreshes.len()) > refreshed,
        "no token was renewed"
    );
    let (s, h, b) = post_with_key(app, &app.base, &app.token, &path, "pull-1", &json!({})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(!h.contains_key("idempotent-replayed"), "the 502 was kept");
}
