//! What the accessibility tests add to the browser: axe-core (the standard accessibility
//! engine, the pinned npm package scripts/setup installs into .tools/axe) run inside a page
//! state, and a keyboard that types into whatever has focus, as a person without a mouse does.
use crate::harness::{Browser, wait_until};
use costbridge_domain::{Level, Permissions};
use serde_json::{Value, json};
use std::sync::Arc;

/// Widths every page state is checked at: desktop, and a phone held upright.
pub const WIDTHS: [(u32, u32); 2] = [(1280, 900), (390, 844)];

/// An accounting approver who maintains no codes.
pub const APPROVER_RIGHTS: Permissions = Permissions {
    admin_tool: Level::ReadOnly,
    erp_integrations: Level::Standard,
    can_push_to_accounting: true,
};

/// The key codes WebDriver gives the keys a keyboard user presses.
pub const TAB: &str = "\u{E004}";
pub const ENTER: &str = "\u{E007}";
pub const SPACE: &str = " ";
pub const DOWN: &str = "\u{E015}";
pub const BACKSPACE: &str = "\u{E003}";
const SHIFT: &str = "\u{E008}";
const CONTROL: &str = "\u{E009}";

/// axe-core's script, read once.
#[derive(Clone)]
pub struct Axe(Arc<String>);

impl Axe {
    /// `None` (with a note) when axe-core is not installed; in CI that fails instead.
    pub fn load() -> Option<Axe> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../.tools/axe/node_modules/axe-core/axe.min.js");
        match std::fs::read_to_string(&path) {
            Ok(source) => Some(Axe(Arc::new(source))),
            Err(e) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "axe-core is missing at {} ({e}): run scripts/setup",
                    path.display()
                );
                eprintln!("skipping: axe-core is not installed (scripts/setup installs it)");
                None
            }
        }
    }
}

/// One serious or critical violation as a person reads it.
fn describe(v: &Value) -> String {
    let targets: Vec<String> = v["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| n.as_str().unwrap_or_default().to_owned())
        .collect();
    format!(
        "- {} ({}): {}\n    at {}",
        v["id"].as_str().unwrap_or("?"),
        v["impact"].as_str().unwrap_or("?"),
        v["help"].as_str().unwrap_or(""),
        targets.join("\n    at ")
    )
}

impl Browser {
    /// Runs axe-core on the page as it stands, at each of [`WIDTHS`], and fails on any
    /// violation of impact serious or critical (and on a skipped heading level, which axe
    /// rates moderate), naming the rule, the element and the fix.
    pub async fn axe(&self, axe: &Axe, state: &str) {
        let mut found = Vec::new();
        for (w, h) in WIDTHS {
            self.d.set_window_size(w, h).await.expect("window size");
            // The script is injected once per page; axe then runs on the page's own document.
            let loaded = self
                .d
                .execute("return typeof window.axe === 'object'", vec![])
                .await
                .expect("check for axe");
            if loaded != true {
                self.d
                    .execute(&format!("{}\n;return true", axe.0), vec![])
                    .await
                    .expect("inject axe-core");
            }
            let v = self
                .d
                .execute(
                    "return axe.run(document, {resultTypes: ['violations']}).then(r => r.violations
                       .filter(v => v.impact === 'serious' || v.impact === 'critical' || v.id === 'heading-order')
                       .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                   nodes: v.nodes.map(n => n.target.join(' '))})))",
                    vec![],
                )
                .await
                .unwrap_or_else(|e| panic!("axe-core on {state}: {e}"));
            for violation in v.as_array().into_iter().flatten() {
                found.push(format!("at {w}px {}", describe(violation)));
            }
        }
        self.d
            .set_window_size(WIDTHS[0].0, WIDTHS[0].1)
            .await
            .expect("window size");
        assert!(
            found.is_empty(),
            "axe-core: {} serious or critical violation(s) on '{state}':\n{}",
            found.len(),
            found.join("\n")
        );
    }

    /// Presses keys on whatever has focus (not on an element WebDriver picks).
    pub async fn press(&self, keys: &str) {
        self.settled().await;
        let mut actions = Vec::new();
        for k in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": k.to_string()}));
            actions.push(json!({"type": "keyUp", "value": k.to_string()}));
        }
        self.d
            .actions(json!([{"type": "key", "id": "keyboard", "actions": actions}]))
            .await
            .unwrap_or_else(|e| panic!("press {keys:?}: {e}"));
    }

    /// Holds `modifier` (Shift or Control) while pressing `key`.
    async fn chord(&self, modifier: &str, key: &str) {
        let actions = json!([
            {"type": "keyDown", "value": modifier},
            {"type": "keyDown", "value": key},
            {"type": "keyUp", "value": key},
            {"type": "keyUp", "value": modifier},
        ]);
        self.d
            .actions(json!([{"type": "key", "id": "keyboard", "actions": actions}]))
            .await
            .expect("key chord");
    }

    /// Empties the focused field the way a person does: select all, delete.
    pub async fn clear_focused(&self) {
        self.chord(CONTROL, "a").await;
        self.press(BACKSPACE).await;
    }

    /// Tabs forward until the element matching `css` has focus (failing if it never does, so
    /// whatever a test reaches this way is reachable by keyboard).
    pub async fn tab_to(&self, css: &str) {
        for _ in 0..200 {
            if self.focus_is(css).await {
                return;
            }
            self.press(TAB).await;
        }
        panic!(
            "Tab never reached {css}; focus is on {}",
            self.focused().await
        );
    }

    /// Shift+Tab until `css` has focus.
    pub async fn tab_back_to(&self, css: &str) {
        for _ in 0..200 {
            if self.focus_is(css).await {
                return;
            }
            self.chord(SHIFT, TAB).await;
        }
        panic!(
            "Shift+Tab never reached {css}; focus is on {}",
            self.focused().await
        );
    }

    async fn focus_is(&self, css: &str) -> bool {
        self.d
            .execute(
                "return !!document.activeElement && document.activeElement.matches(arguments[0])",
                vec![json!(css)],
            )
            .await
            .expect("focus")
            == true
    }

    /// The focused element, as `#id` (or its tag when it has no id).
    pub async fn focused(&self) -> String {
        let v = self
            .d
            .execute(
                "const a = document.activeElement;
                 return !a ? 'nothing' : a.id ? '#' + a.id : a.tagName.toLowerCase()",
                vec![],
            )
            .await
            .expect("focus");
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the element with this id has focus (after a swap, focus settles).
    pub async fn wait_focus(&self, id: &str) {
        let want = format!("#{id}");
        let what = format!("focus on {want}");
        let mut last = String::new();
        let ok = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                last = self.focused().await;
                if last == want {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            ok.is_ok(),
            "timed out waiting for {what}; focus is on {last}"
        );
    }

    /// Marks the live region `css` now and empties it, so [`Browser::wait_announced`] sees
    /// only what comes next and can tell it is the same element (a region created with its
    /// text is not announced).
    pub async fn mark_live(&self, css: &str) {
        let ok = self
            .d
            .execute(
                "const e = document.querySelector(arguments[0]);
                 const live = !!e && !!e.closest('[aria-live], [role=status], [role=alert]');
                 if (live) {
                   window.__live = window.__live || {};
                   window.__live[arguments[0]] = e;
                   e.textContent = '';
                 }
                 return live",
                vec![json!(css)],
            )
            .await
            .expect("mark the live region");
        assert!(ok == true, "{css} is not in a live region");
    }

    /// Presses Enter on a form that must be refused: focus lands on the field `id`, and the
    /// error summary is announced saying `needle`.
    pub async fn enter_refused(&self, id: &str, needle: &str) {
        self.mark_live("#error-summary").await;
        self.press(ENTER).await;
        self.wait_focus(id).await;
        self.wait_announced("#error-summary", needle).await;
    }

    /// Waits until the live region marked by [`Browser::mark_live`] says `needle`, and checks
    /// it is still the element that was there before the change.
    pub async fn wait_announced(&self, css: &str, needle: &str) {
        let what = format!("the live region {css} to say '{needle}'");
        let same = wait_until(&what, || async {
            let v = self
                .d
                .execute(
                    "const e = document.querySelector(arguments[0]);
                     return !!e && e.textContent.includes(arguments[1]) ? e === window.__live[arguments[0]] : null",
                    vec![json!(css), json!(needle)],
                )
                .await
                .ok()?;
            match v {
                Value::Bool(same) => Some(same),
                _ => None,
            }
        })
        .await;
        assert!(
            same,
            "{css} says '{needle}' but was replaced, so it was not announced"
        );
    }
}

/// The id of a user's row on the users page.
pub async fn user_row(b: &Browser, email: &str) -> i64 {
    for tr in b.d.find_all("tbody tr[id^=user-]").await.unwrap() {
        if tr.text().await.unwrap().contains(email) {
            let id = tr.attr("id").await.unwrap().unwrap();
            return id.trim_start_matches("user-").parse().unwrap();
        }
    }
    panic!("no row for {email}");
}
