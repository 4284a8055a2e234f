//! QuickBooks Desktop through the QuickBooks Web Connector, end to end: a scripted Web
//! Connector calls the SOAP service with the envelopes and `SOAPAction` headers QBWC sends,
//! through whole sessions, in front of the `QuickBooksStandIn` (every qbXML message validated
//! against Intuit's schema). This file: the harness, connecting, signing in, the pages; the
//! exports are in `qbwc_export.rs`.
use crate::both;
use crate::helpers::{TestApp, error_message, perms};
use crate::qbwc_standin::QuickBooksStandIn;
use costbridge_erp::qbwc::xml::{Element, esc, parse};
use reqwest::StatusCode;
use serde_json::{Value, json};

both!(
    first_connect_nothing_to_do_bad_password_and_expired_ticket,
    the_pages_show_the_web_connector_and_what_waits_for_it,
    wrong_passwords_are_throttled,
    an_admin_keeps_their_rights_while_the_web_connector_has_their_password,
);

const HCP: &str = r#"<?xml version="1.0" ?><QBXML><QBXMLMsgsRs><HostQueryRs requestID="0" statusCode="0" statusSeverity="Info" statusMessage="Status OK"><HostRet><ProductName>QuickBooks Enterprise Solutions: Contractor 23.0</ProductName><MajorVersion>33</MajorVersion><MinorVersion>0</MinorVersion><Country>US</Country><SupportedQBXMLVersion>13.0</SupportedQBXMLVersion></HostRet></HostQueryRs></QBXMLMsgsRs></QBXML>"#;

/// The QuickBooks Web Connector as a script: the calls it makes, as it makes them.
pub struct WebConnector {
    pub url: String,
    pub user: String,
    pub password: String,
    client: reqwest::Client,
}

/// What one session did.
#[derive(Debug, Default)]
pub struct Session {
    /// `authenticate`'s second string: "" (work), "none" or "nvu".
    pub auth: String,
    pub rounds: usize,
    pub percentages: Vec<i64>,
    pub close: String,
    pub last_error: Option<String>,
}

impl WebConnector {
    pub fn new(base: &str, user: &str, password: &str) -> Self {
        WebConnector {
            url: format!("{base}/qbwc"),
            user: user.into(),
            password: password.into(),
            client: reqwest::Client::new(),
        }
    }

    /// One SOAP call; returns the `<method>Result` element.
    pub async fn call(&self, method: &str, params: &[(&str, &str)]) -> Element {
        let body: String = params
            .iter()
            .map(|(k, v)| format!("<{k}>{}</{k}>", esc(v)))
            .collect();
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\"><soap:Body><{method} xmlns=\"http://developer.intuit.com/\">{body}</{method}></soap:Body></soap:Envelope>"
        );
        let res = self
            .client
            .post(&self.url)
            .header("content-type", "text/xml; charset=utf-8")
            .header(
                "soapaction",
                format!("\"http://developer.intuit.com/{method}\""),
            )
            .body(envelope)
            .send()
            .await
            .expect("QBWC reaches the service");
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{method}: {text}");
        let env = parse(&text).unwrap_or_else(|e| panic!("{method} answered no XML ({e}): {text}"));
        let response = env
            .child("Body")
            .and_then(|b| b.child(&format!("{method}Response")))
            .unwrap_or_else(|| panic!("{method}: no {method}Response in {text}"));
        response
            .child(&format!("{method}Result"))
            .cloned()
            .unwrap_or_default()
    }

    pub async fn authenticate(&self, password: &str) -> (String, String) {
        let r = self
            .call(
                "authenticate",
                &[("strUserName", &self.user), ("strPassword", password)],
            )
            .await;
        let s: Vec<String> = r.children("string").map(|s| s.text.clone()).collect();
        assert_eq!(s.len(), 2, "{r:?}");
        (s[0].clone(), s[1].clone())
    }

    /// A whole session in front of `qb`. `lose_answer_of` makes the round with that number
    /// (1-based) end as if QBWC had been closed after QuickBooks did the work: QuickBooks'
    /// answer never reaches Costbridge. `tamper` runs before QuickBooks answers each round.
    pub async fn session_with(
        &self, qb: &mut QuickBooksStandIn, lose_answer_of: Option<usize>,
        mut tamper: impl FnMut(&mut QuickBooksStandIn, usize, &str),
    ) -> Session {
        let mut out = Session::default();
        let v = self
            .call("clientVersion", &[("strVersion", "2.3.0.215")])
            .await;
        assert_eq!(v.text, "", "any Web Connector version is accepted");
        let (ticket, auth) = self.authenticate(&self.password.clone()).await;
        out.auth = auth.clone();
        if auth == "nvu" || auth == "none" {
            return out;
        }
        loop {
            let first = out.rounds == 0;
            let request = self
                .call(
                    "sendRequestXML",
                    &[
                        ("ticket", &ticket),
                        ("strHCPResponse", if first { HCP } else { "" }),
                        ("strCompanyFileName", "C:\\Users\\Public\\Documents\\Intuit\\QuickBooks\\Company Files\\One Builders.QBW"),
                        ("qbXMLCountry", "US"),
                        ("qbXMLMajorVers", "13"),
                        ("qbXMLMinorVers", "0"),
                    ],
                )
                .await
                .text;
            if request.is_empty() {
                out.last_error = Some(self.call("getLastError", &[("ticket", &ticket)]).await.text);
                break;
            }
            out.rounds += 1;
            tamper(qb, out.rounds, &request);
            let response = qb.handle(&request);
            if lose_answer_of == Some(out.rounds) {
                return out;
            }
            let pct: i64 = self
                .call(
                    "receiveResponseXML",
                    &[
                        ("ticket", &ticket),
                        ("response", &response),
                        ("hresult", ""),
                        ("message", ""),
                    ],
                )
                .await
                .text
                .parse()
                .expect("a percentage");
            out.percentages.push(pct);
            if pct < 0 {
                out.last_error = Some(self.call("getLastError", &[("ticket", &ticket)]).await.text);
                break;
            }
            if pct >= 100 {
                break;
            }
            assert!(out.rounds < 1000, "the session does not end");
        }
        out.close = self
            .call("closeConnection", &[("ticket", &ticket)])
            .await
            .text;
        out
    }

    pub async fn session(&self, qb: &mut QuickBooksStandIn) -> Session {
        self.session_with(qb, None, |_, _, _| {}).await
    }
}

/// Connects the test company to the Web Connector and makes its password; returns the ERP
/// list and the scripted Web Connector.
pub async fn connect(app: &TestApp, token: &str, company: i64) -> (i64, WebConnector) {
    let c = |p: &str| format!("/api/v1/companies/{company}{p}");
    let (s, b) = app
        .call(
            "PUT",
            &c("/erp_connection"),
            token,
            Some(json!({"profile": "quickbooks_desktop", "connector": {"kind": "qbwc"}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["connector"], json!({"kind": "qbwc"}));
    let list = b["erp_list_id"].as_i64().unwrap();
    let (s, p) = app
        .call("POST", &c("/erp_connection/qbwc/password"), token, None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let qbwc = WebConnector::new(
        &app.base,
        p["user_name"].as_str().unwrap(),
        p["password"].as_str().unwrap(),
    );
    (list, qbwc)
}

/// Imports `n` codes: tier-1 divisions, each with tier-2 children.
pub(crate) async fn import(app: &TestApp, list: i64, n: usize) {
    app.import(list, crate::helpers::divisions_csv(n)).await;
}

/// Sends the list and exports every code with these accounts; returns the job id.
pub(crate) async fn send_and_export(
    app: &TestApp, list: i64, income: &str, expense: Option<&str>,
) -> i64 {
    app.send(list).await;
    let b = app
        .accepted(
            &app.c("/erp/cost_codes/export"),
            json!({"gl_income_account": income, "gl_expense_account": expense}),
        )
        .await;
    // The worker leaves it to the Web Connector.
    assert_eq!(app.run_worker().await, 0);
    b["export_job_id"].as_i64().unwrap()
}

/// A first session: QuickBooks reports its accounts.
pub(crate) async fn first_session(qbwc: &WebConnector, qb: &mut QuickBooksStandIn) {
    let s = qbwc.session(qb).await;
    assert_eq!(
        (s.auth.as_str(), s.rounds, s.percentages.as_slice()),
        ("", 1, &[100][..]),
        "{s:?}"
    );
}

pub(crate) async fn codes(app: &TestApp, list: i64) -> Vec<Value> {
    let (s, b) = app
        .get(&app.c(&format!("/cost_code_lists/{list}/cost_codes?per_page=1000")))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b.as_array().unwrap().clone()
}

/// The Web Connector status's last error says `needle`.
async fn assert_last_error(app: &TestApp, needle: &str) {
    let (_, st) = app.get(&app.c("/erp_connection/qbwc")).await;
    let last = st["last_error"].as_str().unwrap_or_default();
    assert!(last.contains(needle), "{st}");
}

async fn first_connect_nothing_to_do_bad_password_and_expired_ticket(app: TestApp) {
    let (_, qbwc) = connect(&app, &app.token, app.company).await;
    // The .qwc file names this service and the user; fresh GUIDs each time.
    let res = app.request("GET", &app.c("/erp_connection/qbwc/qwc")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".qwc")
    );
    let qwc = parse(&res.text().await.unwrap()).unwrap();
    assert_eq!(
        qwc.text_of("AppURL"),
        Some(format!("{}/qbwc", app.app_state.base_url.trim_end_matches('/')).as_str())
    );
    assert_eq!(qwc.text_of("UserName"), Some(qbwc.user.as_str()));
    assert_eq!(qwc.text_of("QBType"), Some("QBFS"));
    let again = app
        .request("GET", &app.c("/erp_connection/qbwc/qwc"))
        .await
        .text()
        .await
        .unwrap();
    assert_ne!(
        parse(&again).unwrap().text_of("OwnerID"),
        qwc.text_of("OwnerID")
    );
    // The WSDL is served at the endpoint.
    let wsdl = app.page_with("/qbwc?wsdl", &[]).await.text().await.unwrap();
    let wsdl = parse(&wsdl).unwrap();
    assert_eq!(wsdl.name, "definitions");
    assert_eq!(
        wsdl.child("binding").unwrap().children("operation").count(),
        8
    );
    let (_, st) = app.get(&app.c("/erp_connection/qbwc")).await;
    assert_eq!(
        (st["has_password"].as_bool(), st["last_seen_at"].is_null()),
        (Some(true), true),
        "{st}"
    );
    assert!(
        !st.to_string().contains(&qbwc.password),
        "the password is shown once"
    );
    // The GL pickers wait for QuickBooks' chart.
    let (s, b) = app.get(&app.c("/erp/gl_accounts")).await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{b}");
    assert!(error_message(&b).contains("has not reported its accounts yet"));
    // The queue says the same, without sending the approver to check a connection that works.
    let (_, cookie) = app
        .session("admin@one.example", "first-admin-password")
        .await;
    let html = app.page(&cookie, "/erp").await;
    assert!(
        html.contains("The pickers offer no GL accounts yet. QuickBooks has not reported")
            && !html.contains("Check the connection"),
        "{html}"
    );

    assert!(
        qbwc.call("serverVersion", &[])
            .await
            .text
            .starts_with("Costbridge ")
    );
    // A wrong password: nvu, and the page says so.
    let (ticket, what) = qbwc.authenticate("not-the-password").await;
    assert_eq!((ticket.as_str(), what.as_str()), ("", "nvu"));
    assert_last_error(&app, "wrong password from 127.0.0.1").await;
    let unknown = WebConnector::new(&app.base, "costbridge-999", &qbwc.password);
    assert_eq!(unknown.authenticate(&qbwc.password).await.1, "nvu");
    // A user name longer than any real one is refused unread, and not counted: 25 of them
    // from this address (20 failures lock a client, whatever the names) leave its Web
    // Connector free to sign in.
    for n in 0..25 {
        let long = WebConnector::new(&app.base, &format!("{n}{}", "x".repeat(300)), "guess");
        assert_eq!(long.authenticate("guess").await.1, "nvu");
    }
    assert_last_error(&app, "wrong password from 127.0.0.1").await;

    // First connect: QuickBooks reports its accounts.
    let mut qb = QuickBooksStandIn::new();
    first_session(&qbwc, &mut qb).await;
    let (_, st) = app.get(&app.c("/erp_connection/qbwc")).await;
    assert!(st["last_seen_at"].is_string(), "{st}");
    assert!(st["accounts_as_of"].is_string(), "{st}");
    assert_eq!(
        st["quickbooks_version"],
        "QuickBooks Enterprise Solutions: Contractor 23.0, qbXML 13.0 US"
    );
    assert!(
        st["company_file"]
            .as_str()
            .unwrap()
            .ends_with("One Builders.QBW")
    );
    assert!(
        st["last_error"].is_null(),
        "a good session clears the error: {st}"
    );
    let (s, accounts) = app.get(&app.c("/erp/gl_accounts")).await;
    assert_eq!(s, StatusCode::OK, "{accounts}");
    assert_eq!(
        accounts,
        json!([
            {"code": "Construction Income", "id": "Construction Income", "name": "4000 · Construction Income", "kind": "income"},
            {"code": "Service Income", "id": "Service Income", "name": "4100 · Service Income", "kind": "income"},
            {"code": "Job Materials", "id": "Job Materials", "name": "5000 · Job Materials", "kind": "expense"},
            {"code": "Subcontractors", "id": "Subcontractors", "name": "5100 · Subcontractors", "kind": "expense"},
        ])
    );
    let (_, t) = app.post(&app.c("/erp_connection/test"), json!({})).await;
    assert_eq!(t["ok"], true, "{t}");
    // Nothing to do now.
    let s = qbwc.session(&mut qb).await;
    assert_eq!((s.auth.as_str(), s.rounds), ("none", 0));

    // QBWC could not open QuickBooks: the page shows why.
    let (ticket, _) = qbwc.authenticate(&qbwc.password).await;
    let r = qbwc
        .call(
            "connectionError",
            &[
                ("ticket", &ticket),
                ("hresult", "0x80040408"),
                ("message", "Could not start QuickBooks."),
            ],
        )
        .await;
    assert_eq!(r.text, "done");
    assert_last_error(&app, "Could not start QuickBooks. (0x80040408)").await;
    let e = qbwc.call("getLastError", &[("ticket", &ticket)]).await;
    assert!(
        e.text
            .starts_with("Costbridge: the Web Connector could not open QuickBooks"),
        "{}",
        e.text
    );
    // One session a company: a new one ends the older.
    let (newer, _) = qbwc.authenticate(&qbwc.password).await;
    let e = qbwc.call("getLastError", &[("ticket", &ticket)]).await;
    assert!(e.text.contains("session ended or expired"), "{}", e.text);
    let e = qbwc.call("getLastError", &[("ticket", &newer)]).await;
    assert_eq!(e.text, "");
    // An expired ticket: QBWC is told the session ended.
    let (ticket, _) = qbwc.authenticate(&qbwc.password).await;
    expire_tickets(&app).await;
    let r = qbwc
        .call(
            "sendRequestXML",
            &[
                ("ticket", &ticket),
                ("strHCPResponse", ""),
                ("strCompanyFileName", ""),
                ("qbXMLCountry", "US"),
                ("qbXMLMajorVers", "13"),
                ("qbXMLMinorVers", "0"),
            ],
        )
        .await;
    assert_eq!(r.text, "");
    let r = qbwc
        .call(
            "receiveResponseXML",
            &[
                ("ticket", &ticket),
                ("response", "<QBXML/>"),
                ("hresult", ""),
                ("message", ""),
            ],
        )
        .await;
    assert_eq!(r.text, "-1");
    let e = qbwc.call("getLastError", &[("ticket", &ticket)]).await;
    assert!(e.text.contains("session ended or expired"), "{}", e.text);
    // A call that is not SOAP is a SOAP fault, not a crash.
    let res = app
        .client
        .post(format!("{}/qbwc", app.base))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(res.text().await.unwrap().contains("<faultstring>"));
}

async fn expire_tickets(app: &TestApp) {
    let sql = "UPDATE qbwc_sessions SET expires_at = created_at";
    match &app.app_state.db {
        costbridge_storage::Db::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        costbridge_storage::Db::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
    }
    .unwrap();
}

async fn the_pages_show_the_web_connector_and_what_waits_for_it(app: TestApp) {
    let cookie = crate::session::sign_in(&app, None).await;
    let csrf = crate::session::csrf_of(&app, &cookie).await;
    let get = async |path: &str| {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .header("hx-request", "true")
            .send()
            .await
            .unwrap();
        (
            res.status(),
            res.headers()
                .get("content-disposition")
                .map(|v| v.to_str().unwrap().to_owned()),
            res.text().await.unwrap(),
        )
    };
    // Another connector: no panel.
    app.connect("quickbooks_desktop", "iif").await;
    let (s, _, panel) = get("/settings/erp/qbwc").await;
    assert_eq!((s, panel.as_str()), (StatusCode::OK, ""));
    let (s, _, page) = get("/settings/erp").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("QuickBooks Desktop (Web Connector)"),
        "offered in the connector choice"
    );
    assert!(page.contains("hx-get=\"/settings/erp/qbwc\""));
    let (list, qbwc) = connect(&app, &app.token, app.company).await;
    let (_, _, panel) = get("/settings/erp/qbwc").await;
    assert!(
        panel.contains("The Web Connector has not connected yet.")
            && panel.contains("Make a new password"),
        "{panel}"
    );
    assert!(!panel.contains(&qbwc.password));
    let (s, disposition, file) = get("/settings/erp/qbwc.qwc").await;
    assert_eq!(s, StatusCode::OK);
    assert!(disposition.unwrap().contains("attachment"));
    assert_eq!(
        parse(&file).unwrap().text_of("UserName"),
        Some(qbwc.user.as_str())
    );
    // A new password, shown once; the old one stops working.
    let res = app
        .htmx_post(&cookie, &csrf, "/settings/erp/qbwc/password", &[])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let panel = res.text().await.unwrap();
    let shown = panel
        .split("data-qbwc-password>")
        .nth(1)
        .and_then(|p| p.split('<').next())
        .expect("the password is shown")
        .to_owned();
    assert_eq!(qbwc.authenticate(&qbwc.password).await.1, "nvu");
    let fresh = WebConnector::new(&app.base, &qbwc.user, &shown);
    let mut qb = QuickBooksStandIn::new();
    first_session(&fresh, &mut qb).await;
    let (_, _, panel) = get("/settings/erp/qbwc").await;
    assert!(
        panel.contains("Last connected")
            && panel.contains("Contractor 23.0")
            && panel.contains("GL accounts from QuickBooks as of"),
        "{panel}"
    );
    let (_, _, line) = get("/erp/qbwc").await;
    assert!(
        line.contains("GL accounts: QuickBooks' chart as of") && line.contains("last seen"),
        "{line}"
    );
    let (_, _, page) = get("/erp").await;
    assert!(page.contains("hx-get=\"/erp/qbwc\""));
    // An exported job waits visibly for the Web Connector.
    import(&app, list, 3).await;
    let job = send_and_export(&app, list, "Construction Income", None).await;
    let (_, _, page) = get(&format!("/erp?filter=exporting&job={job}")).await;
    assert!(
        page.contains("Waiting for the QuickBooks Web Connector (last seen"),
        "{page}"
    );
    fresh.session(&mut qb).await;
    let (_, _, page) = get(&format!("/erp?filter=synced&job={job}")).await;
    assert!(!page.contains("Waiting for the QuickBooks Web Connector"));
}

async fn wrong_passwords_are_throttled(app: TestApp) {
    let (_, qbwc) = connect(&app, &app.token, app.company).await;
    for n in 1..=5 {
        assert_eq!(qbwc.authenticate(&format!("guess-{n}")).await.1, "nvu");
    }
    // Locked now: even the right password is refused, and no ticket is made.
    let (ticket, what) = qbwc.authenticate(&qbwc.password).await;
    assert_eq!((ticket.as_str(), what.as_str()), ("", "nvu"));
}

/// The Web Connector's password acts as the company's QuickBooks: it confirms exports (codes
/// become synced) and sends codes into the ERP list. An admin who set it was shown it, so
/// they are not demoted below managing users (what setting it takes) until another admin sets
/// a new one. Before, a demoted admin could still run a Web Connector of their own.
async fn an_admin_keeps_their_rights_while_the_web_connector_has_their_password(app: TestApp) {
    let bob = app
        .user("bob@one.example", perms("admin", "admin", false))
        .await;
    let (_, me) = app.call("GET", "/api/v1/me", &bob, None).await;
    connect(&app, &bob, app.company).await;
    let user = app.c(&format!("/users/{}", me["id"]));
    let demote = json!({"permissions": perms("standard", "admin", false)});
    let (s, b) = app.patch(&user, demote.clone()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let message = error_message(&b);
    assert!(
        message.contains("set the QuickBooks Web Connector password and was shown it")
            && message.contains("sets a new password first"),
        "{message}"
    );
    let (_, still) = app.call("GET", "/api/v1/me", &bob, None).await;
    assert_eq!(still["permissions"], perms("admin", "admin", false));
    // Lowering what setting it does not take is not held back.
    let (s, b) = app
        .patch(
            &user,
            json!({"permissions": perms("admin", "standard", false)}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Once another admin set a new password, the one Bob saw is dead: he may be demoted.
    let (s, b) = app
        .post(&app.c("/erp_connection/qbwc/password"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app.patch(&user, demote).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // A password Bob asked for before his demotion, written after it: refused.
    let bob_id = me["id"].as_i64().unwrap();
    let late = app
        .app_state
        .db
        .set_qbwc_password(app.company, bob_id, "costbridge-x", "late-hash")
        .await;
    assert!(
        matches!(&late, Err(costbridge_storage::StoreError::Conflict(m)) if m.contains("your rights changed meanwhile")),
        "{late:?}"
    );
}
