// Costbridge pages: the little behaviour htmx does not give. No inline scripts (the pages'
// Content-Security-Policy forbids them), so everything hangs off data- attributes.
(function () {
  "use strict";

  function toast(message, ok) {
    var box = document.getElementById("toasts");
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
    toast(decodeURIComponent(header), false);
  });
  // Errors on htmx requests are not swapped (see the htmx-config meta tag): say them instead.
  document.addEventListener("htmx:responseError", function (e) {
    var xhr = e.detail.xhr;
    var header = xhr.getResponseHeader("x-error");
    var message = header ? decodeURIComponent(header) :
      "The server answered " + xhr.status + "; nothing was changed. Reload the page and try again.";
    toast(message, false);
  });
  document.addEventListener("htmx:sendError", function () {
    toast("The server cannot be reached. Check the connection and try again.", false);
  });
  // A success message a response asks for (header x-message).
  document.addEventListener("htmx:afterRequest", function (e) {
    var xhr = e.detail.xhr;
    var m = xhr && xhr.getResponseHeader && xhr.getResponseHeader("x-message");
    if (m && e.detail.successful) toast(decodeURIComponent(m), true);
  });

  // Tree: expand and collapse; a tier's children are fetched the first time it opens.
  document.addEventListener("click", function (e) {
    var t = e.target.closest("[data-toggle]");
    if (!t) return;
    var kids = document.getElementById(t.getAttribute("aria-controls"));
    var open = t.getAttribute("aria-expanded") !== "true";
    t.setAttribute("aria-expanded", open ? "true" : "false");
    kids.hidden = !open;
    if (open && !kids.dataset.loaded) {
      kids.dataset.loaded = "1";
      htmx.ajax("GET", t.dataset.toggle, { target: kids, swap: "innerHTML" });
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
    form.querySelectorAll("[data-needs-selection]").forEach(function (b) { b.disabled = n === 0; });
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
  // Polls ("every 2s", "load") are not the user's doing and never move focus.
  function byUser(d) {
    var t = d.requestConfig && d.requestConfig.triggeringEvent;
    return !!t && t.type !== "load";
  }
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
