// Keyboard shortcuts on the queue and ticket pages: j/k move, Enter opens,
// x ticks a ticket, r reply, n note, e resolve, ? lists them. Never while
// typing in a field (Esc leaves the field). Every action has its control
// on the page too.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var overlay = document.getElementById("shortcuts");
  if (!overlay) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("table.tickets tbody tr"));
  var items = rows.length ? rows : Array.prototype.slice.call(document.querySelectorAll("ol.thread > li.msg"));
  var current = -1;
  var opener = null;

  // Ticking every ticket of the page at once (the form works without it).
  var all = document.querySelector("input.pick-all");
  if (all) {
    var boxes = function () { return document.querySelectorAll("input[name=ticket][form=bulk]"); };
    all.hidden = false;
    all.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = all.checked; });
    });
    document.addEventListener("change", function (e) {
      if (e.target.name !== "ticket") { return; }
      var list = Array.prototype.slice.call(boxes());
      all.checked = list.length > 0 && list.every(function (b) { return b.checked; });
    });
  }

  function typing(el) {
    if (!el || !el.tagName) { return false; }
    var tag = el.tagName;
    if (tag === "INPUT") {
      // A ticked box or a button takes no text: shortcuts still work there.
      return ["checkbox", "radio", "button", "submit", "reset"].indexOf((el.type || "").toLowerCase()) < 0;
    }
    return el.isContentEditable || tag === "TEXTAREA" || tag === "SELECT";
  }

  function select(i) {
    if (!items.length) { return; }
    current = Math.max(0, Math.min(items.length - 1, i));
    items.forEach(function (el, n) {
      el.classList.toggle("kb-current", n === current);
      if (n === current) { el.setAttribute("aria-current", "true"); } else { el.removeAttribute("aria-current"); }
    });
    var el = items[current];
    var link = rows.length ? el.querySelector("a[href^='/tickets/']") : null;
    (link || el).focus({ preventScroll: true });
    el.scrollIntoView({ block: "nearest" });
  }

  function openOverlay() {
    opener = document.activeElement;
    overlay.hidden = false;
    overlay.querySelector("button.close").focus();
  }

  function closeOverlay() {
    overlay.hidden = true;
    if (opener && opener.focus) { opener.focus(); }
  }

  overlay.querySelector("button.close").addEventListener("click", closeOverlay);
  overlay.addEventListener("click", function (e) {
    if (e.target === overlay) { closeOverlay(); }
  });

  function focusBox(id) {
    var box = document.getElementById(id);
    if (!box) { return false; }
    box.focus();
    box.scrollIntoView({ block: "center" });
    return true;
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (!overlay.hidden) {
      // The dialog keeps the focus until it is closed.
      if (e.key === "Escape" || e.key === "?") { e.preventDefault(); closeOverlay(); }
      else if (e.key === "Tab") { e.preventDefault(); }
      return;
    }
    var target = e.target;
    if (typing(target)) {
      if (e.key === "Escape" && target.blur) { target.blur(); }
      return;
    }
    var handled = true;
    switch (e.key) {
      case "?": openOverlay(); break;
      case "j": select(current + 1); break;
      case "k": select(current < 0 ? 0 : current - 1); break;
      case "Enter":
        // A focused link or button does its own thing.
        if (!rows.length || current < 0 || target.tagName === "A" || target.tagName === "BUTTON") { handled = false; break; }
        var link = rows[current].querySelector("a[href^='/tickets/']");
        if (link) { window.location.assign(link.href); } else { handled = false; }
        break;
      case "x":
        var box = rows.length && current >= 0 ? rows[current].querySelector("input[type=checkbox]") : null;
        if (box) {
          box.checked = !box.checked;
          box.dispatchEvent(new Event("change", { bubbles: true }));
        } else { handled = false; }
        break;
      case "r": handled = focusBox("reply"); break;
      case "n": handled = focusBox("note"); break;
      case "e":
        var resolve = document.getElementById("resolve");
        if (resolve) { resolve.requestSubmit(); } else { handled = false; }
        break;
      default: handled = false;
    }
    if (handled) { e.preventDefault(); }
  });
});
