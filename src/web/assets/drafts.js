// Drafts saved on the server as they are typed (and when the box is left
// or the page goes away), so a reply or note survives a reload, a change
// to the ticket and a restart; and the countdown of replies that can still
// be taken back. The forms work without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var WAIT_MS = 800;

  document.querySelectorAll("form[data-ticket] textarea[data-draft]").forEach(function (box) {
    var form = box.form;
    var csrf = form.querySelector("input[name=csrf]");
    var state = form.querySelector(".draft-state");
    var url = "/api/tickets/" + encodeURIComponent(form.dataset.ticket) +
      "/drafts/" + encodeURIComponent(box.dataset.draft);
    var saved = box.value;
    var timer = null;
    var queue = Promise.resolve();
    var sending = false;

    function say(key) {
      if (!state) { return; }
      var text = state.dataset[key] || "";
      if (key === "saved") {
        text += " " + new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
      }
      state.textContent = text;
    }

    function put(text, keepalive) {
      return fetch(url, {
        method: "PUT",
        credentials: "same-origin",
        keepalive: !!keepalive,
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.value : "" },
        body: JSON.stringify({ text: text })
      });
    }

    // Saves run one after the other, so the last text typed is the one kept.
    function save() {
      clearTimeout(timer);
      timer = null;
      queue = queue.then(function () {
        var text = box.value;
        if (text === saved || sending) { return; }
        return put(text, false).then(function (r) {
          if (r.ok) { saved = text; say("saved"); } else { say("failed"); }
        }, function () { say("failed"); });
      });
      return queue;
    }

    box.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(save, WAIT_MS);
    });
    box.addEventListener("blur", save);

    // Leaving the page: what is not saved yet goes out with keepalive.
    function leaving() {
      if (sending || box.value === saved) { return; }
      clearTimeout(timer);
      saved = box.value;
      put(saved, true).catch(function () {});
    }
    window.addEventListener("pagehide", leaving);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "hidden") { leaving(); }
    });

    // Back to this page from the history (the send failed, or went
    // elsewhere): saving goes on.
    window.addEventListener("pageshow", function (e) {
      if (e.persisted) { sending = false; saved = box.value; }
    });

    // Sending clears the draft on the server: no save may come after it.
    form.addEventListener("submit", function (e) {
      if (sending) { return; }
      e.preventDefault();
      sending = true;
      clearTimeout(timer);
      queue.then(function () { form.submit(); });
    });
  });

  // A reply that can still be taken back: count down, then it is gone.
  document.querySelectorAll("form.held[data-due]").forEach(function (form) {
    var due = Date.parse(form.dataset.due);
    if (isNaN(due)) { return; }
    var left = document.createElement("span");
    left.className = "countdown";
    var status = form.querySelector("[role=status]");
    (status || form).appendChild(left);
    function tick() {
      var secs = Math.ceil((due - Date.now()) / 1000);
      if (secs <= 0) { form.remove(); return; }
      left.textContent = " (" + secs + " s)";
      setTimeout(tick, 1000);
    }
    tick();
  });
});
