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
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (e) { init(e.detail.elt); });
  // A dialog closes once its form went through.
  document.addEventListener("htmx:afterRequest", function (e) {
    var d = e.detail.elt.closest && e.detail.elt.closest("dialog");
    if (d && e.detail.xhr && e.detail.xhr.status < 300) d.close();
  });
})();

// Cancel buttons in forms and panels empty the detail area they were drawn in.
document.addEventListener("click", function (e) {
  var c = e.target.closest("[data-cancel]");
  if (!c) return;
  var holder = c.closest(".detail");
  if (holder) holder.innerHTML = "";
});
