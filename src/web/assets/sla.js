// SLA countdowns: every element with data-due (an RFC 3339 time) gets the
// time left, or how late it is, beside the absolute time the page shows
// (Europe/Brussels; without this file that time is all there is). The
// wording comes from the element: data-in="in {}", data-late="{} overdue".
// A paused clock (data-paused) shows no countdown.
"use strict";
(function () {
  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var days = Math.floor(minutes / 1440);
    var hours = Math.floor((minutes % 1440) / 60);
    var rest = minutes % 60;
    if (days > 0) { return days + " d " + hours + " h"; }
    if (hours > 0) { return hours + " h " + rest + " min"; }
    return rest + " min";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-due]").forEach(function (el) {
      if (el.hasAttribute("data-paused")) { return; }
      var due = Date.parse(el.getAttribute("data-due"));
      if (isNaN(due)) { return; }
      var out = el.querySelector(".countdown");
      if (!out) {
        out = document.createElement("span");
        out.className = "countdown";
        el.appendChild(document.createTextNode(" "));
        el.appendChild(out);
      }
      var left = due - now;
      var text = left >= 0 ? el.getAttribute("data-in") : el.getAttribute("data-late");
      out.textContent = "(" + (text || "{}").replace("{}", span(left)) + ")";
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 3600000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 30000);
  });
})();
