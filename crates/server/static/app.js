// Costbridge pages: the little behaviour htmx does not give. No inline scripts (the pages'
// Content-Security-Policy forbids them), so everything hangs off data- attributes.
(function () {
  "use strict";

  // Where messages go: the page's corner, or the open dialog. A modal dialog (showModal) sits
  // in the top layer, over everything else, so a message in the corner behind it could be
  // neither read nor dismissed, and the dialog's button seemed to do nothing.
  function toastBox() {
    var d = document.querySelector("dialog[open]");
    if (!d) return document.getElementById("toasts");
    var box = d.querySelector(".dialog-toasts");
    if (!box) {
      box = document.createElement("div");
      box.className = "dialog-toasts";
      d.insertBefore(box, d.firstChild);
    }
    return box;
  }
  // A dialog opened again starts without the messages of its last use. "close" does not
  // bubble, hence the capture.
  document.addEventListener("close", function (e) {
    var box = e.target.querySelector && e.target.querySelector(".dialog-toasts");
    if (box) box.textContent = "";
  }, true);

  function toast(message, ok) {
    var box = toastBox();
    if (!box) return;
    var t = document.createElement("div");
    t.className = ok ? "toast ok" : "toast";
    t.setAttribute("role", ok ? "status" : "alert");
    var p = document.createElement("p");
    p.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "link";
    close.textContent = "Dismiss";
    close.addEventListener("click", function () { t.remove(); });
    t.appendChild(p);
    t.appendChild(close);
    box.appendChild(t);
    if (ok) setTimeout(function () { t.remove(); }, 4000);
  }

  // Polls ("every 2s", "load") are not the user's doing: they never move focus, and their
  // failures are not the person's to act on.
  function byUser(d) {
    var t = d.requestConfig && d.requestConfig.triggeringEvent;
    return !!t && t.type !== "load";
  }
  // Told apart as each request starts: once a poll's answer replaced its element, htmx
  // reports the request's end from an ancestor instead, which has no trigger to look at.
  var polls = new WeakSet();
  document.addEventListener("htmx:beforeRequest", function (e) {
    var d = e.detail, el = d.elt;
    if (!byUser(d) && el && el.getAttribute && /\bevery\b/.test(el.getAttribute("hx-trigger") || "")) {
      polls.add(d.xhr);
    }
  });
  function isPoll(d) {
    return !!d.xhr && polls.has(d.xhr);
  }
  function isGet(d) {
    return !d.requestConfig || String(d.requestConfig.verb || "get").toLowerCase() === "get";
  }
  // A failed poll (the Send panel every 15 s, the ERP live view every 2 s) made an alert each
  // time, a screenful in a minute of a dropped connection. Polls say it once, quietly, until
  // one gets through again.
  function pollLost() {
    if (document.getElementById("poll-lost")) return;
    var box = document.getElementById("toasts");
    if (!box) return;
    var t = document.createElement("div");
    t.id = "poll-lost";
    t.className = "toast quiet";
    t.setAttribute("role", "status");
    var p = document.createElement("p");
    p.textContent = "Connection to Costbridge lost — retrying…";
    t.appendChild(p);
    box.appendChild(t);
  }
  function pollBack() {
    var t = document.getElementById("poll-lost");
    if (t) t.remove();
  }
  document.addEventListener("htmx:afterRequest", function (e) {
    var xhr = e.detail.xhr;
    if (isPoll(e.detail) && xhr && xhr.status >= 200 && xhr.status < 400) pollBack();
  });

  // A response without the server's own sentence: a refusal before any handler ran (an
  // unknown address, a body over the limit), or an answer from something in between (a proxy
  // that gave up: 502, 504). Only the first certainly changed nothing.
  function failedMessage(d) {
    var status = d.xhr.status;
    if (status < 500) {
      return "Costbridge refused this request (HTTP " + status + "); nothing was changed. " +
        "Reload the page and try again.";
    }
    var what = status === 504 ? "did not answer in time" :
      status === 502 || status === 503 ? "could not be reached" : "could not finish this request";
    var said = "Costbridge " + what + " (HTTP " + status + ").";
    return said + (isGet(d) ? " Reload the page and try again." :
      " The change may or may not have been made: reload the page to see where things stand " +
      "before trying again.");
  }

  // A refusal carries its sentence in the x-error header (web/error.rs); its body is the
  // full error page, meant for a navigation. A 422 is swapped (forms redraw with their field
  // errors), so one with x-error must be stopped here, or the error page would land inside
  // the button or row that asked. Every such message goes to the page's message area.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var xhr = e.detail.xhr;
    var header = xhr && xhr.getResponseHeader && xhr.getResponseHeader("x-error");
    if (!header) return;
    e.detail.shouldSwap = false;
    e.detail.isError = false;
    if (isPoll(e.detail)) pollLost();
    else toast(decodeURIComponent(header), false);
  });
  // Errors on htmx requests are not swapped (see the htmx-config meta tag): say them instead.
  document.addEventListener("htmx:responseError", function (e) {
    if (isPoll(e.detail)) { pollLost(); return; }
    var header = e.detail.xhr.getResponseHeader("x-error");
    toast(header ? decodeURIComponent(header) : failedMessage(e.detail), false);
  });
  // The request may have reached Costbridge before the connection dropped.
  document.addEventListener("htmx:sendError", function (e) {
    if (isPoll(e.detail)) { pollLost(); return; }
    toast(isGet(e.detail) ? "Costbridge could not be reached. Check the connection, then try again." :
      "Costbridge could not be reached, so the change may or may not have been made. Check the " +
      "connection, then reload the page to see where things stand before trying again.", false);
  });

  // While a person's own request runs, the control they used says so and takes no second
  // tap: a second Send to ERP, export or import went out again behind the first. GETs change
  // nothing and answer at once; a select or a field is left alone. The button is marked
  // aria-disabled and its taps are stopped here rather than made `disabled`: a disabled
  // button drops focus to the page body, and a keyboard user started over at the top.
  var busy = [];
  document.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("button[aria-busy=true]")) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
  document.addEventListener("submit", function (e) {
    if (e.target.querySelector && e.target.querySelector("button[aria-busy=true]")) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);
  function triggerButton(d) {
    var elt = d.elt;
    if (!elt || !elt.matches) return null;
    if (elt.matches("button")) return elt;
    var ev = d.requestConfig && d.requestConfig.triggeringEvent;
    if (ev && ev.submitter) return ev.submitter;
    if (elt.tagName === "FORM") return elt.querySelector("button[type=submit], button:not([type])");
    return null;
  }
  function settle(entry) {
    var b = entry.button;
    if (entry.ariaDisabled === null) b.removeAttribute("aria-disabled");
    else b.setAttribute("aria-disabled", entry.ariaDisabled);
    b.removeAttribute("aria-busy");
    entry.note.remove();
    // Rows may have been ticked or cleared meanwhile.
    var sel = b.closest("form[data-selection]") || (b.form && b.form.matches("[data-selection]") ? b.form : null);
    if (sel) updateSelection(sel);
  }
  document.addEventListener("htmx:beforeRequest", function (e) {
    var d = e.detail;
    if (!byUser(d) || isGet(d)) return;
    var b = triggerButton(d);
    if (!b || b.getAttribute("aria-busy") === "true") return;
    var note = document.createElement("span");
    note.className = "busy-note";
    note.setAttribute("role", "status");
    note.textContent = b.dataset.busy || "Working…";
    busy.push({ xhr: d.xhr, button: b, note: note, ariaDisabled: b.getAttribute("aria-disabled") });
    b.setAttribute("aria-disabled", "true");
    b.setAttribute("aria-busy", "true");
    b.insertAdjacentElement("afterend", note);
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    // A redirect keeps the button busy until the next page replaces this one (htmx keeps its
    // own indicators then too): re-enabled, it took a second tap while the page loaded.
    if (e.detail.keepIndicators) return;
    busy = busy.filter(function (entry) {
      if (entry.xhr !== e.detail.xhr) return true;
      settle(entry);
      return false;
    });
  });
  // Back to a page kept by the browser (back/forward cache): it was left mid-redirect.
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) return;
    busy.forEach(settle);
    busy = [];
  });
  // Plain forms (no htmx) that ask first, with data-confirm.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.dataset && f.dataset.confirm && !window.confirm(f.dataset.confirm)) e.preventDefault();
  });
  // A success message a response asks for (header x-message).
  document.addEventListener("htmx:afterRequest", function (e) {
    var xhr = e.detail.xhr;
    var m = xhr && xhr.getResponseHeader && xhr.getResponseHeader("x-message");
    if (m && e.detail.successful) toast(decodeURIComponent(m), true);
  });

  // Tree: expand and collapse; a tier's children are fetched the first time it opens, and
  // again on the next opening if that fetch failed (marked loaded before it answered, a
  // failed branch stayed empty for good).
  document.addEventListener("click", function (e) {
    var t = e.target.closest("[data-toggle]");
    if (!t) return;
    var kids = document.getElementById(t.getAttribute("aria-controls"));
    var open = t.getAttribute("aria-expanded") !== "true";
    t.setAttribute("aria-expanded", open ? "true" : "false");
    kids.hidden = !open;
    if (open && !kids.dataset.loaded && !kids.dataset.loading) {
      kids.dataset.loading = "1";
      kids.setAttribute("aria-busy", "true");
      var wait = document.createElement("li");
      wait.className = "loading";
      wait.textContent = "Loading…";
      kids.replaceChildren(wait);
      htmx.ajax("GET", t.dataset.toggle, { source: t, target: kids, swap: "innerHTML" });
    }
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var t = e.detail.elt;
    if (!t || !t.matches || !t.matches("[data-toggle]")) return;
    var kids = document.getElementById(t.getAttribute("aria-controls"));
    if (!kids) return;
    delete kids.dataset.loading;
    kids.removeAttribute("aria-busy");
    var xhr = e.detail.xhr;
    if (xhr && xhr.status >= 200 && xhr.status < 300) {
      kids.dataset.loaded = "1";
    } else {
      // The message says why (responseError, sendError); the branch closes, to be opened again.
      kids.replaceChildren();
      kids.hidden = true;
      t.setAttribute("aria-expanded", "false");
    }
  });

  // Dialogs: a button names the dialog to open and may set a field in it.
  document.addEventListener("click", function (e) {
    var opener = e.target.closest("[data-open-dialog]");
    if (opener) {
      var d = document.getElementById(opener.dataset.openDialog);
      if (opener.dataset.setName) {
        var f = d.querySelector("[name='" + opener.dataset.setName + "']");
        if (f) f.value = opener.dataset.setValue;
      }
      var title = d.querySelector("[data-dialog-title]");
      if (title && opener.dataset.title) title.textContent = opener.dataset.title;
      d.showModal();
      return;
    }
    var closer = e.target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog").close();
  });

  // Select-all checkbox and the count of selected rows on the action buttons.
  // The row checkboxes live in the table and join the form through their form attribute.
  function boxesOf(form) {
    return Array.prototype.filter.call(form.elements, function (e) { return e.name === "item_ids"; });
  }
  function updateSelection(form) {
    var boxes = boxesOf(form);
    var n = 0;
    boxes.forEach(function (b) { if (b.checked) n++; });
    form.querySelectorAll("[data-selected-count]").forEach(function (s) { s.textContent = n; });
    form.querySelectorAll("[data-needs-selection]").forEach(function (b) {
      if (b.getAttribute("aria-busy") !== "true") b.disabled = n === 0;
    });
  }
  document.addEventListener("change", function (e) {
    var all = e.target.closest("[data-select-all]");
    var form = e.target.form;
    if (all && form) {
      boxesOf(form).forEach(function (b) { b.checked = all.checked; });
    }
    if (form && (all || e.target.name === "item_ids")) updateSelection(form);
    var auto = e.target.closest("[data-autosubmit]");
    if (auto && auto.form) auto.form.requestSubmit();
    var kind = e.target.closest("[data-connector-kind]");
    if (kind) showConnector(kind.value);
  });

  // ERP connection form: only the chosen connector's fields are shown.
  function showConnector(kind) {
    document.querySelectorAll("[data-connector]").forEach(function (fs) {
      fs.hidden = fs.dataset.connector !== kind;
    });
  }
  function init(root) {
    var kind = root.querySelector && root.querySelector("[data-connector-kind]");
    if (kind) showConnector(kind.value);
    root.querySelectorAll && root.querySelectorAll("form[data-selection]").forEach(updateSelection);
  }
  // Focus and announcements after htmx swaps. htmx itself gives focus back to an element with
  // the id of the one that had it; where that element is gone, or a form came back refused,
  // focus would fall to the page body and a keyboard or screen-reader user would start over
  // at the top. Containers name the control to return to in data-return-focus (innermost first).
  function returnIds(el) {
    var ids = [];
    var n = el && el.closest ? el.closest("[data-return-focus]") : null;
    while (n) {
      ids.push(n.dataset.returnFocus);
      n = n.parentElement && n.parentElement.closest("[data-return-focus]");
    }
    return ids;
  }
  function focusLost() {
    var a = document.activeElement;
    return !a || a === document.body || !a.isConnected;
  }
  function focusBack(ids) {
    for (var i = 0; i < ids.length; i++) {
      var el = document.getElementById(ids[i]);
      if (el && !el.disabled && el.getClientRects().length) { el.focus(); return; }
    }
  }
  // The error summary: a live region in every page (so it exists before the change), told the
  // refused form's messages in one go.
  function announce(text) {
    var box = document.getElementById("error-summary");
    if (!box) return;
    box.textContent = "";
    // A fresh text node after a pause, so the same refusal twice is announced twice.
    setTimeout(function () { box.textContent = text; }, 50);
  }
  // What a refused form or action says, invalid fields first (named by their label, with the
  // messages tied to them), then messages that belong to no field.
  function sentence(t) {
    t = t.trim();
    return /[.!?]$/.test(t) ? t : t + ".";
  }
  function problemsIn(area) {
    var list = [];
    var told = [];
    area.querySelectorAll("[aria-invalid=true]").forEach(function (f) {
      var label = f.labels && f.labels.length ? f.labels[0].textContent : (f.getAttribute("aria-label") || f.name);
      var said = (f.getAttribute("aria-describedby") || "").split(/\s+/).map(function (id) {
        var m = id && document.getElementById(id);
        if (m) told.push(m);
        return m ? m.textContent.trim() : "";
      }).join(" ").trim();
      list.push({ elt: f, text: sentence(label.trim() + (said ? ": " + said : ": is not valid")) });
    });
    area.querySelectorAll(".field-error, .notice.bad:not([role=status])").forEach(function (m) {
      if (told.indexOf(m) < 0) list.push({ elt: m, text: sentence(m.textContent) });
    });
    return list;
  }
  // Where focus was when each response came in, by request (a poll may answer in between).
  var returnTo = new WeakMap();
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.xhr) returnTo.set(e.detail.xhr, returnIds(document.activeElement));
  });
  document.addEventListener("htmx:afterSettle", function (e) {
    var area = e.detail.elt;
    if (!byUser(e.detail) || !area.querySelector) return;
    var problems = problemsIn(area);
    if (problems.length) {
      announce((problems.length === 1 ? "1 problem to fix: " : problems.length + " problems to fix: ") +
        problems.map(function (p) { return p.text; }).join(" "));
      var first = problems[0].elt;
      if (!first.matches("input, select, textarea, button")) first.setAttribute("tabindex", "-1");
      first.focus();
    } else if (focusLost()) {
      focusBack(returnTo.get(e.detail.xhr) || []);
    }
  });
  // A live region's text is replaced only when it changed, so a poll does not repeat it.
  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var t = e.detail.target;
    if (t.matches("[role=status], [aria-live]") && t.textContent === e.detail.fragment.textContent) {
      e.detail.shouldSwap = false;
    }
  });

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (e) { init(e.detail.elt); });
  // A dialog closes once its form went through.
  document.addEventListener("htmx:afterRequest", function (e) {
    var d = e.detail.elt.closest && e.detail.elt.closest("dialog");
    if (d && e.detail.xhr && e.detail.xhr.status < 300) d.close();
  });
  // Cancel buttons in forms and panels empty the detail area they were drawn in, and focus
  // goes back to the control that opened it.
  document.addEventListener("click", function (e) {
    var c = e.target.closest("[data-cancel]");
    if (!c) return;
    var holder = c.closest(".detail");
    var back = returnIds(c);
    if (holder) holder.innerHTML = "";
    focusBack(back);
  });
})();
