//! The few W3C WebDriver commands the tests use, spoken to chromedriver over plain HTTP.
//! (thirtyfour was tried: as a dev-dependency it turns on serde_json's `preserve_order` for the
//! whole test build, so the server under test would not be the server that ships.)
use serde_json::{Value, json};
use std::path::Path;

/// The key W3C gives element references in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub type Result<T> = std::result::Result<T, String>;

/// One browser session.
#[derive(Clone)]
pub struct Driver {
    http: reqwest::Client,
    session: String,
}

#[derive(Clone)]
pub struct Element {
    d: Driver,
    id: String,
}

async fn call(
    http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>,
) -> Result<Value> {
    let mut req = http.request(method, url);
    // POST commands take a JSON object even when they have nothing to say.
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = res.status();
    let v: Value = res.json().await.map_err(|e| format!("{url}: {e}"))?;
    if status.is_success() {
        Ok(v["value"].clone())
    } else {
        Err(format!(
            "{url}: {} {}",
            v["value"]["error"].as_str().unwrap_or("error"),
            v["value"]["message"].as_str().unwrap_or("")
        ))
    }
}

impl Driver {
    /// Starts a session on the chromedriver at `base` with these Chromium arguments.
    pub async fn start(base: &str, binary: &str, args: &[String]) -> Result<Driver> {
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": args},
        }}});
        let v = call(
            &http,
            reqwest::Method::POST,
            &format!("{base}/session"),
            Some(caps),
        )
        .await?;
        let id = v["sessionId"].as_str().ok_or("no session id")?;
        Ok(Driver {
            http,
            session: format!("{base}/session/{id}"),
        })
    }

    async fn get(&self, path: &str) -> Result<Value> {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.session),
            None,
        )
        .await
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.session),
            Some(body),
        )
        .await
    }

    pub async fn quit(&self) -> Result<()> {
        call(&self.http, reqwest::Method::DELETE, &self.session, None)
            .await
            .map(|_| ())
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({"url": url})).await.map(|_| ())
    }

    pub async fn refresh(&self) -> Result<()> {
        self.post("/refresh", json!({})).await.map(|_| ())
    }

    pub async fn current_url(&self) -> Result<String> {
        Ok(self
            .get("/url")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    fn elements(&self, v: Value) -> Vec<Element> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str())
                    .map(|id| Element {
                        d: self.clone(),
                        id: id.to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await?;
        Ok(self.elements(v))
    }

    /// Runs a script in the page; a returned promise is awaited by the browser.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let v = self.get("/screenshot").await?;
        let png = base64(v.as_str().unwrap_or_default())?;
        std::fs::write(path, png).map_err(|e| e.to_string())
    }

    /// The cookie as WebDriver describes it (`value`, `httpOnly`, `sameSite`, …).
    pub async fn cookie(&self, name: &str) -> Result<Value> {
        self.get(&format!("/cookie/{name}")).await
    }

    pub async fn add_cookie(&self, cookie: Value) -> Result<()> {
        self.post("/cookie", json!({"cookie": cookie}))
            .await
            .map(|_| ())
    }

    pub async fn accept_alert(&self) -> Result<()> {
        self.post("/alert/accept", json!({})).await.map(|_| ())
    }

    /// Answers "Cancel" to the open confirm; an error when none is open.
    pub async fn dismiss_alert(&self) -> Result<()> {
        self.post("/alert/dismiss", json!({})).await.map(|_| ())
    }

    /// The words of the open alert or confirm; an error when none is open.
    pub async fn alert_text(&self) -> Result<String> {
        Ok(self
            .get("/alert/text")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Input actions (W3C "Perform Actions"): keys pressed on whatever has focus.
    pub async fn actions(&self, actions: Value) -> Result<()> {
        self.post("/actions", json!({"actions": actions}))
            .await
            .map(|_| ())
    }

    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.post("/window/rect", json!({"width": width, "height": height}))
            .await
            .map(|_| ())
    }
}

impl Element {
    /// The element as a script argument.
    pub fn json(&self) -> Value {
        json!({ELEMENT: self.id})
    }

    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    pub async fn click(&self) -> Result<()> {
        self.d
            .post(&self.path("/click"), json!({}))
            .await
            .map(|_| ())
    }

    pub async fn clear(&self) -> Result<()> {
        self.d
            .post(&self.path("/clear"), json!({}))
            .await
            .map(|_| ())
    }

    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.d
            .post(&self.path("/value"), json!({"text": text}))
            .await
            .map(|_| ())
    }

    pub async fn text(&self) -> Result<String> {
        Ok(self
            .d
            .get(&self.path("/text"))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub async fn attr(&self, name: &str) -> Result<Option<String>> {
        let v = self
            .d
            .get(&self.path(&format!("/attribute/{name}")))
            .await?;
        Ok(v.as_str().map(str::to_owned))
    }

    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self
            .d
            .post(
                &self.path("/elements"),
                json!({"using": "css selector", "value": css}),
            )
            .await?;
        Ok(self.d.elements(v))
    }

    /// Picks the option with this value in a `<select>`, as a click would (firing `change`).
    pub async fn select(&self, value: &str) -> Result<()> {
        let options = self.find_all(&format!("option[value='{value}']")).await?;
        options
            .first()
            .ok_or(format!("no option {value}"))?
            .click()
            .await
    }
}

/// Standard base64 (the screenshot's encoding), without pulling in a crate for one call.
fn base64(text: &str) -> Result<Vec<u8>> {
    let value = |c: u8| -> Result<u32> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("not base64: {c}")),
        } as u32)
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

#[test]
fn decodes_base64() {
    assert_eq!(base64("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(base64("aGk=").unwrap(), b"hi");
    assert_eq!(base64("YWJj").unwrap(), b"abc");
}
