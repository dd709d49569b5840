// Small niceties; every form works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The language choice applies as soon as it changes.
  document.querySelectorAll("select.autosubmit").forEach(function (el) {
    el.addEventListener("change", function () { el.form.submit(); });
    var button = el.form.querySelector("button");
    if (button) { button.hidden = true; }
  });
  // Ctrl+Enter (or Cmd+Enter) sends a reply or note.
  document.querySelectorAll("form.composer textarea").forEach(function (el) {
    el.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { el.form.requestSubmit(); }
    });
  });
  // A form sent once cannot be sent twice by a double click.
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    });
  });
});
