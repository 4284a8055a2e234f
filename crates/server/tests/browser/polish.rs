//! What a new admin and an accountant tripped over (issue #14): the list they typed becomes
//! the ERP list, counts follow changes, a code moves on the page, Delete only where it
//! applies; every htmx action's refusal lands in the message area with the page intact; codes
//! and times never wrap, at desktop and at phone width.
use crate::harness::with_browser;
use crate::harness::{ADMIN, Browser, PASSWORD, Site, THREE_CODES, wait_until};
use serde_json::Value;

/// The list id in the address of the page the browser shows (`/codes?list=N…`).
async fn list_in_url(b: &Browser) -> i64 {
    let url = b.d.current_url().await.unwrap();
    let tail = url.split("list=").nth(1).expect("a list in the address");
    tail.split('&').next().unwrap().parse().unwrap()
}

async fn node_id(b: &Browser, css: &str) -> i64 {
    let id = b.el(css).await.attr("id").await.unwrap().unwrap();
    id.trim_start_matches("node-").parse().unwrap()
}

async fn js(b: &Browser, script: &str) -> Value {
    b.d.execute(script, vec![]).await.unwrap()
}

/// The message area shows a refusal containing `words`, and the page kept its structure: the
/// element still there, no error page drawn inside it.
async fn refused_in_place(b: &Browser, css: &str, words: &str) {
    b.wait_text("#toasts .toast", words).await;
    assert!(b.exists(css).await, "{css} is gone after the refusal");
    assert!(
        !b.exists("main [data-error-page]").await,
        "an error page was drawn inside {css}"
    );
    js(b, "document.getElementById('toasts').innerHTML = ''").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_company_gets_its_typed_codes_to_the_erp() {
    let Some((site, _)) = Site::for_browser().await else {
        return;
    };
    let s = site.clone();
    with_browser(&site, "getting-started", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        b.go("/codes").await;
        b.wait_text("main", "no cost code lists yet").await;
        b.click("details.card summary").await;
        b.fill("#new-list-name", "Estimating").await;
        b.click("form[hx-post='/codes/lists'] button").await;
        b.wait_text("h1", "Estimating").await;
        let estimating = list_in_url(&b).await;
        b.wait_text("#tree-heading", "Codes (0)").await;
        assert_eq!(b.attr("#tree-empty", "hidden").await, None);

        // Counts and the empty state follow each add and delete without a reload.
        for (code, desc) in [
            ("01", "General Requirements"),
            ("02", "Existing Conditions"),
            ("99", "Typo"),
        ] {
            b.click("button[hx-get$='/new']").await;
            b.fill("#code-top", code).await;
            b.fill("#desc-top", desc).await;
            b.click("#form-top button[type=submit]").await;
            b.wait_text("#tree", desc).await;
        }
        b.wait_text("#tree-heading", "Codes (3)").await;
        assert_eq!(
            b.attr("#tree-empty", "hidden").await.as_deref(),
            Some("true")
        );
        let typo = node_id(&b, "#tree > li.node:last-child").await;
        b.click(&format!("#node-{typo} button[hx-post$='/delete']"))
            .await;
        b.d.accept_alert().await.unwrap();
        b.wait_gone(&format!("#node-{typo}")).await;
        b.wait_text("#tree-heading", "Codes (2)").await;
        let first = node_id(&b, "#tree > li.node:first-child").await;
        b.click(&format!("#node-{first} button[hx-get*='new?parent=']"))
            .await;
        b.fill(&format!("#code-c{first}"), "100").await;
        b.fill(&format!("#desc-c{first}"), "Project Management")
            .await;
        b.click(&format!("#form-c{first} button[type=submit]"))
            .await;
        b.wait_text(&format!("#kids-{first}"), "01-100").await;
        b.wait_text("#tree-heading", "Codes (3)").await;

        // Moving a code under another parent, on the page; an unknown parent is refused at
        // its field.
        let child = node_id(&b, &format!("#kids-{first} > li.node")).await;
        b.click(&format!("#node-{child} > .row button[hx-get$='/edit']"))
            .await;
        assert_eq!(
            b.attr(&format!("#parent-e{child}"), "value")
                .await
                .as_deref(),
            Some("01")
        );
        b.fill(&format!("#parent-e{child}"), "07").await;
        b.click(&format!("#form-e{child} button[type=submit]"))
            .await;
        b.wait_text(
            &format!("#parent-e{child}-error"),
            "there is no code '07' in this list",
        )
        .await;
        b.fill(&format!("#parent-e{child}"), "02").await;
        b.click(&format!("#form-e{child} button[type=submit]"))
            .await;
        b.wait_url("moved=1").await;
        b.wait_text(".notice", "the code is now 02-100").await;

        // Connecting: the only list is offered, and becomes the ERP list; no second list.
        b.go("/settings/erp").await;
        let chosen = js(
            &b,
            "return document.querySelector('#erp-list option[selected]').textContent",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned();
        assert!(chosen.starts_with("Estimating"), "{chosen}");
        b.el("#erp-profile")
            .await
            .select("quickbooks_desktop")
            .await
            .unwrap();
        b.fill("#erp-file-directory", ".").await;
        b.fill(
            "#erp-file-gl_accounts",
            "4000,Construction Income,income\n5000,Job Materials,expense",
        )
        .await;
        b.click("#erp-form button[type=submit]").await;
        b.wait_text(".notice", "Connection saved.").await;
        b.go("/codes").await;
        b.wait_text("h1", "Estimating ERP list").await;
        assert!(!b.exists("#list-picker").await);
        b.wait_text("#send-button", "Send to ERP (3 codes)").await;
        assert_eq!(b.attr("#send-button", "disabled").await, None);

        // Another list can become the ERP list while nothing was sent, and back again.
        b.click("details.card summary").await;
        b.fill("#new-list-name", "Field").await;
        b.click("form[hx-post='/codes/lists'] button").await;
        b.wait_text("h1", "Field").await;
        let field = list_in_url(&b).await;
        b.wait_text("#send-reason", "An admin can make this list the ERP list")
            .await;
        b.click("#not-erp-list button").await;
        b.d.accept_alert().await.unwrap();
        b.wait_text(".notice", "This list is now the ERP list")
            .await;
        b.go(&format!("/codes?list={estimating}")).await;
        b.click("#not-erp-list button").await;
        b.d.accept_alert().await.unwrap();
        b.wait_text(".notice", "This list is now the ERP list")
            .await;
        b.click("#send-button").await;
        b.wait_text(".notice", "Sent 3 codes").await;

        // Once sent, the ERP list stays; the refusal is said in the message area and the
        // page stays whole (a 422 that used to be drawn inside the button).
        b.go(&format!("/codes?list={field}")).await;
        b.click("#not-erp-list button").await;
        b.d.accept_alert().await.unwrap();
        refused_in_place(
            &b,
            "#not-erp-list button",
            "'Estimating' stays the ERP list",
        )
        .await;

        // Export all without the income account QuickBooks requires: refused in place.
        b.go("/erp").await;
        let export_all = "#queue button[hx-vals*='all']";
        b.click(export_all).await;
        b.d.accept_alert().await.unwrap();
        refused_in_place(&b, export_all, "needs a GL income account").await;
        b.el("#default-income").await.select("4000").await.unwrap();
        b.click(export_all).await;
        b.d.accept_alert().await.unwrap();
        b.wait_url("job=").await;
        s.run_worker().await;
        b.go("/erp?filter=synced").await;
        b.wait_text("#queue-rows", "written to costbridge-export-")
            .await;

        // A code the ERP has had offers Deactivate, never Delete. It went into a file, so it
        // says so rather than "synced".
        b.go(&format!("/codes?list={estimating}")).await;
        let top = node_id(&b, "#tree > li.node:first-child").await;
        b.wait_text(&format!("#node-{top} .badge"), "in file").await;
        assert!(
            b.exists(&format!("#node-{top} > .row button[hx-post$='/active']"))
                .await
        );
        assert!(
            !b.exists(&format!("#node-{top} > .row button[hx-post$='/delete']"))
                .await
        );
    })
    .await;
}

/// Marks every htmx element of the page and makes the requests of a marked element go to a
/// refusal that answers 422 with a message (an empty export selection): the status htmx
/// swaps, as a form's field errors are swapped.
const SWEEP_SETUP: &str = "
  window.confirm = function () { return true; };
  if (!window.__sweepHook) {
    window.__sweepHook = true;
    document.addEventListener('htmx:configRequest', function (e) {
      if (!e.detail.elt.closest('[data-sweep-active]')) return;
      e.detail.verb = 'post';
      e.detail.path = '/erp/export';
      e.detail.useUrlParams = false;
      e.detail.parameters = {};
    });
  }
  // A loader fired once at page load (hx-trigger=load) replaces itself; it is not an action.
  var els = Array.prototype.slice.call(document.querySelectorAll('main [hx-get], main [hx-post]'))
    .filter(function (el) { return el.getAttribute('hx-trigger') !== 'load'; });
  els.forEach(function (el, i) { el.setAttribute('data-sweep', i); });
  return els.length;";

/// Fires element `i` as a person would (click, change, submit; a poll fired by hand).
const SWEEP_FIRE: &str = "
  var el = document.querySelector('[data-sweep=\"' + arguments[0] + '\"]');
  if (!el) return '';
  window.__sweepCount = document.querySelectorAll('main *').length;
  el.setAttribute('data-sweep-active', '');
  var trigger = el.getAttribute('hx-trigger') || '';
  if (/every|load/.test(trigger)) {
    el.setAttribute('hx-trigger', 'click');
    htmx.process(el);
    el.click();
  } else if (el.tagName === 'FORM') {
    el.noValidate = true;
    htmx.trigger(el, 'submit');
  } else if (el.tagName === 'SELECT') {
    el.dispatchEvent(new Event('change', {bubbles: true}));
  } else {
    el.disabled = false;
    el.click();
  }
  return el.tagName + ' ' + (el.getAttribute('hx-post') || el.getAttribute('hx-get'));";

const SWEEP_CHECK: &str = "
  var el = document.querySelector('[data-sweep=\"' + arguments[0] + '\"]');
  if (el) el.removeAttribute('data-sweep-active');
  var same = document.querySelectorAll('main *').length === window.__sweepCount;
  var page = !!document.querySelector('main [data-error-page]');
  document.getElementById('toasts').innerHTML = '';
  return [!!el && el.isConnected, same, !page];";

/// Refuses each htmx action of the page in turn: each refusal shows in the message area and
/// leaves the page as it was. Returns what was fired.
async fn sweep(b: &Browser) -> Vec<String> {
    let n = js(b, SWEEP_SETUP).await.as_i64().unwrap();
    let mut fired = Vec::new();
    for i in 0..n {
        b.settled().await;
        let what =
            b.d.execute(SWEEP_FIRE, vec![i.into()])
                .await
                .unwrap()
                .as_str()
                .unwrap_or_default()
                .to_owned();
        if what.is_empty() {
            continue;
        }
        wait_until(&format!("a message for {what}"), || async {
            let t = js(
                b,
                "return document.querySelectorAll('#toasts .toast').length",
            )
            .await;
            (t.as_i64() > Some(0)).then_some(())
        })
        .await;
        let text = b.text("#toasts .toast").await;
        assert!(text.contains("Item ids is empty"), "{what}: {text}");
        let check = b.d.execute(SWEEP_CHECK, vec![i.into()]).await.unwrap();
        assert_eq!(
            check,
            serde_json::json!([true, true, true]),
            "{what}: [still there, page unchanged, no error page]"
        );
        fired.push(what);
    }
    fired
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_refused_keeps_the_page() {
    let Some((site, _, _)) = Site::with_codes("quickbooks_desktop", THREE_CODES).await else {
        return;
    };
    with_browser(&site, "refusals", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        let mut fired = Vec::new();

        // Cost codes: the tree open, an edit form, a new-code form, a history, an import
        // preview waiting to be applied.
        b.go("/codes").await;
        let top = node_id(&b, "#tree > li.node:first-child").await;
        b.click(&format!("#node-{top} > .row .toggle")).await;
        b.wait_text(&format!("#kids-{top}"), "01-100").await;
        let second = node_id(&b, "#tree > li.node:last-child").await;
        b.click(&format!("#node-{second} > .row button[hx-get$='/edit']"))
            .await;
        b.el(&format!("#form-e{second}")).await;
        b.click(&format!("#node-{top} > .row button[hx-get$='/history']"))
            .await;
        b.wait_text(&format!("#detail-{top}"), "History").await;
        b.click("button[hx-get$='/new']").await;
        b.el("#form-top").await;
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        std::fs::write(&good, "full_code,description,active\n03,Concrete,true\n").unwrap();
        b.click("#import-card summary").await;
        b.el("#csv-file")
            .await
            .send_keys(good.to_str().unwrap())
            .await
            .unwrap();
        b.click("#import-card button[type=submit]").await;
        b.wait_text("#import-result", "1 to create").await;
        fired.extend(sweep(&b).await);

        // Send, then the queue: pickers, export, reject, and the failed tab's retry.
        b.go("/codes").await;
        b.click("#send-button").await;
        b.wait_text(".notice", "Sent 3 codes").await;
        b.go("/erp").await;
        b.el("#queue-rows tr[id^=item-]").await;
        fired.extend(sweep(&b).await);
        b.go("/erp?filter=failed").await;
        b.el("#queue").await;
        fired.extend(sweep(&b).await);

        // Company settings: users (one opened for editing) and the ERP connection.
        b.go("/settings/users").await;
        b.click("tr[id^=user-] button[hx-get$='/edit']").await;
        b.el("tr[id^=user-] form").await;
        fired.extend(sweep(&b).await);
        b.go("/settings/erp").await;
        b.el("#erp-form").await;
        fired.extend(sweep(&b).await);

        for expected in [
            "/codes/lists",
            "/import/preview",
            "/import",
            "/active",
            "/delete",
            "/history",
            "/edit",
            "/send",
            "/erp/items/",
            "/erp/export",
            "/erp/retry",
            "/erp/reject",
            "/settings/users",
            "/reset",
            "/settings/erp",
            "/settings/erp/test",
        ] {
            assert!(
                fired.iter().any(|f| f.contains(expected)),
                "no action on {expected} was tried: {fired:?}"
            );
        }
    })
    .await;
}

/// Whether every element matching `css` is on one line (no wrapping) and set not to wrap. The
/// height measured is its text's, not its box's: a table cell is as tall as its row.
async fn one_line(b: &Browser, css: &str) -> Vec<String> {
    let script = format!(
        "return Array.prototype.slice.call(document.querySelectorAll('{css}')).filter(function (el) {{
           var s = getComputedStyle(el);
           var line = parseFloat(s.lineHeight) || parseFloat(s.fontSize) * 1.5;
           var text = document.createRange();
           text.selectNodeContents(el);
           return s.whiteSpace !== 'nowrap' || text.getBoundingClientRect().height > line * 1.5;
         }}).map(function (el) {{ return el.textContent; }});"
    );
    let wrapped = js(b, &script).await;
    serde_json::from_value(wrapped).unwrap()
}

/// The words of the elements matching `css` that break across two lines ("Managemen" / "t").
async fn broken_words(b: &Browser, css: &str) -> Vec<String> {
    let script = format!(
        "var cut = [];
         document.querySelectorAll('{css}').forEach(function (el) {{
           var walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
           for (var n = walk.nextNode(); n; n = walk.nextNode()) {{
             var re = /\\S+/g, m;
             while ((m = re.exec(n.data))) {{
               var r = document.createRange();
               r.setStart(n, m.index);
               r.setEnd(n, m.index + m[0].length);
               var tops = {{}};
               Array.prototype.forEach.call(r.getClientRects(), function (x) {{ tops[Math.round(x.top)] = 1; }});
               if (Object.keys(tops).length > 1) cut.push(m[0]);
             }}
           }}
         }});
         return cut;"
    );
    serde_json::from_value(js(b, &script).await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_and_times_never_wrap() {
    let Some((site, _, _)) = Site::with_codes(
        "quickbooks_desktop",
        "01,General Requirements and a rather long description that fills the row,true\n\
         01-100,Project Management and Coordination of every trade on the site,true\n\
         01-100-20,Meetings with the owner the architect and the subcontractors,true\n\
         02,Existing Conditions,true",
    )
    .await
    else {
        return;
    };
    with_browser(&site, "layout", |b| async move {
        b.login(ADMIN, PASSWORD).await;
        for (width, height) in [(1280, 900), (390, 844)] {
            b.d.set_window_size(width, height).await.unwrap();
            b.go("/codes?q=0").await;
            b.el("#tree .code").await;
            let wrapped = one_line(&b, "#tree .code").await;
            assert!(wrapped.is_empty(), "{width}px: codes wrap: {wrapped:?}");
            if width == 1280 {
                // Each row's actions stay on its line.
                let dropped = js(
                    &b,
                    "return Array.prototype.slice.call(document.querySelectorAll('#tree .row')).filter(function (r) {
                       var c = r.querySelector('.code').getBoundingClientRect();
                       var a = r.querySelector('.actions').getBoundingClientRect();
                       return a.top > c.bottom;
                     }).length;",
                )
                .await;
                assert_eq!(dropped, 0, "rows whose actions dropped under them");
            }
        }
        b.d.set_window_size(1280, 900).await.unwrap();
        b.go("/codes").await;
        b.click("#send-button").await;
        b.wait_text(".notice", "Sent 4 codes").await;
        for (width, height) in [(1280, 900), (390, 844)] {
            b.d.set_window_size(width, height).await.unwrap();
            b.go("/erp").await;
            b.el("#queue-rows .when").await;
            let broken = broken_words(&b, "#queue-rows td.text").await;
            assert!(broken.is_empty(), "{width}px: words cut in two: {broken:?}");
            // Nothing is refused yet: at phone width the empty reasons column takes no room
            // of its own (on a wide screen the table shares out what is left).
            let empty = js(
                &b,
                "return Array.prototype.slice.call(document.querySelectorAll('#queue-rows td.text:empty')).map(function (c) {
                   return Math.round(c.getBoundingClientRect().width);
                 });",
            )
            .await;
            let empty: Vec<i64> = serde_json::from_value(empty).unwrap();
            assert!(
                !empty.is_empty() && (width > 390 || empty.iter().all(|w| *w < 100)),
                "{width}px: empty reasons cells' widths {empty:?}"
            );
            for css in ["#queue-rows .when", "#queue-rows .code"] {
                let wrapped = one_line(&b, css).await;
                assert!(wrapped.is_empty(), "{width}px: {css} wraps: {wrapped:?}");
            }
            // The audit log's times, people, actions and entities too ("user.creat" / "ed").
            b.go("/settings/audit").await;
            b.el("td.ident").await;
            for css in ["td.when", "td.ident"] {
                let wrapped = one_line(&b, css).await;
                assert!(wrapped.is_empty(), "{width}px: audit {css} wraps: {wrapped:?}");
            }
            // What changed keeps whole words beside them ("descripti" / "on"); a value longer
            // than the cell (a connection's settings as JSON) still wraps where it must.
            let mut broken = broken_words(&b, "td.text").await;
            broken.retain(|w| w.chars().count() <= 20);
            assert!(broken.is_empty(), "{width}px: audit changes cut: {broken:?}");
        }
        // The bulk bar fits on one line at 1280 px.
        b.d.set_window_size(1280, 900).await.unwrap();
        b.go("/erp").await;
        let tops = js(
            &b,
            "return Array.prototype.slice.call(document.querySelectorAll('#queue .toolbar button')).map(function (x) {
               return Math.round(x.getBoundingClientRect().top);
             });",
        )
        .await;
        let tops: Vec<i64> = serde_json::from_value(tops).unwrap();
        assert!(tops.len() >= 4, "{tops:?}");
        assert!(
            tops.iter().all(|t| *t == tops[0]),
            "the bulk bar wraps: button tops {tops:?}"
        );
        // The export folder shows its whole path.
        b.go("/settings/erp").await;
        b.fill("#erp-file-directory", "exports/acme/quickbooks/cost-codes/2026")
            .await;
        let cut = js(
            &b,
            "var i = document.getElementById('erp-file-directory'); return i.scrollWidth > i.clientWidth;",
        )
        .await;
        assert_eq!(cut, false, "the export folder field cuts off its path");
    })
    .await;
}
