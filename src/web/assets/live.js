// Live updates on the queue page and a ticket page (server-sent events from
// /events), and presence heartbeats on a ticket. Every page works without
// this file. Nothing here turns text into markup: labels are set with
// textContent, and rows or threads come from our own pages, rendered and
// escaped by the server, parsed inertly and moved in as nodes.
"use strict";
(function () {
  var root = document.getElementById("live");
  if (!root || typeof EventSource === "undefined" || !window.fetch) { return; }
  var d = root.dataset;
  var ticket = d.ticket || "";
  var me = d.me || "";
  var csrfField = document.querySelector("input[name=csrf]");
  var csrf = csrfField ? csrfField.value : "";
  var notice = document.getElementById("live-notice");

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = text; }
    if (cls) { e.className = cls; }
    return e;
  }

  function fetchPage(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(new Error(String(r.status))); })
      .then(function (html) { return new DOMParser().parseFromString(html, "text/html"); });
  }

  // ------------------------------------------------------------ queue page
  function rowKey(tr) {
    var a = tr.querySelector("a[href^='/tickets/']");
    return a ? a.getAttribute("href") : "";
  }

  function checkedIn(node) {
    var on = {};
    node.querySelectorAll("input[type=checkbox]:checked").forEach(function (i) { on[i.name + "=" + i.value] = true; });
    return on;
  }

  function mergeRows(doc) {
    var fresh = doc.querySelector("table.tickets");
    var table = document.querySelector("table.tickets");
    if (!fresh) {
      if (table) { table.tBodies[0].replaceChildren(); }
      return;
    }
    if (!table) {
      var empty = document.querySelector("p.empty");
      if (!empty) { return; }
      var imported = document.importNode(fresh, true);
      Array.prototype.forEach.call(imported.tBodies[0].rows, function (tr) { tr.classList.add("fresh"); });
      empty.replaceWith(imported);
      return;
    }
    var body = table.tBodies[0];
    var old = {};
    Array.prototype.forEach.call(body.rows, function (tr) { old[rowKey(tr)] = tr; });
    var on = checkedIn(body);
    var rows = [];
    Array.prototype.forEach.call(fresh.tBodies[0].rows, function (ntr) {
      var key = rowKey(ntr);
      var tr = old[key];
      if (tr) {
        delete old[key];
        if (tr.innerHTML !== ntr.innerHTML || tr.className !== ntr.className) {
          var copy = document.importNode(ntr, true);
          copy.querySelectorAll("input[type=checkbox]").forEach(function (i) { i.checked = !!on[i.name + "=" + i.value]; });
          tr = copy;
        }
      } else {
        tr = document.importNode(ntr, true);
        tr.classList.add("fresh");
      }
      rows.push(tr);
    });
    Object.keys(old).forEach(function (k) { old[k].remove(); });
    body.replaceChildren.apply(body, rows);
  }

  var refreshing = false, again = false;
  function refreshQueue() {
    if (refreshing) { again = true; return; }
    var params = new URLSearchParams(location.search);
    if (params.get("before")) {
      params.delete("before");
      var a = el("a", d.tNewTickets);
      a.href = "/?" + params.toString();
      showNotice([], a);
      return;
    }
    refreshing = true;
    fetchPage(location.pathname + location.search).then(mergeRows).catch(function () {}).then(function () {
      refreshing = false;
      root.dataset.refreshed = String(Number(root.dataset.refreshed || 0) + 1);
      if (again) { again = false; refreshQueue(); }
    });
  }

  function setCount(href, n) {
    document.querySelectorAll("a[href='" + href + "'] .count").forEach(function (c) { c.textContent = String(n); });
  }

  function showCounts(c) {
    ["open", "mine", "unassigned", "awaiting_approval", "on_hold", "waiting", "to_check"].forEach(function (v) {
      if (typeof c[v] === "number") { setCount("/?view=" + v, c[v]); }
    });
    Object.keys(c.categories || {}).forEach(function (k) { setCount("/?view=open&category=" + k, c.categories[k]); });
  }

  // ----------------------------------------------------------- ticket page
  var arrived = [];

  function showNotice(lines, action) {
    if (!notice) { return; }
    notice.replaceChildren();
    if (lines.length) {
      var ul = el("ul");
      lines.forEach(function (l) { ul.appendChild(el("li", l)); });
      notice.appendChild(ul);
    }
    if (action) { notice.appendChild(action); }
    if (ticket) {
      var reload = el("a", d.tReload);
      reload.href = location.pathname;
      notice.appendChild(reload);
    }
    notice.hidden = false;
  }

  function who(actor) {
    return actor.indexOf("agent:") === 0 ? actor.slice(6) : actor;
  }

  function label(e) {
    if (e.field === "inbound" || e.field === "bounce") { return d.tInbound; }
    if (e.field === "reply") { return d.tReply + " " + who(e.actor); }
    if (e.field === "note") { return d.tNote + " " + who(e.actor); }
    var field = root.getAttribute("data-f-" + e.field) || e.field;
    return d.tChanged + ": " + field + (e.new ? " → " + e.new : "") + " (" + who(e.actor) + ")";
  }

  function showTicket() {
    fetchPage(location.pathname).then(function (doc) {
      ["ol.thread", "p.meta", "ul.history"].forEach(function (css) {
        var now = document.querySelector(css), next = doc.querySelector(css);
        if (now && next) { now.replaceWith(document.importNode(next, true)); }
      });
      var seen = doc.querySelector("input[name=seen_message]");
      document.querySelectorAll("input[name=seen_message]").forEach(function (i) { if (seen) { i.value = seen.value; } });
      arrived = [];
      notice.hidden = true;
    }).catch(function () { location.reload(); });
  }

  function onTicketEvent(e) {
    if (e.ticket !== ticket || e.actor === "agent:" + me) { return; }
    arrived.push(label(e));
    var show = el("button", d.tShow, "small");
    show.type = "button";
    show.id = "live-show";
    show.addEventListener("click", showTicket);
    showNotice(arrived, show);
  }

  function showPresence(p) {
    var box = document.getElementById("presence");
    if (!box || p.ticket !== ticket) { return; }
    var list = box.querySelector(".presence-list");
    var others = (p.viewers || []).filter(function (v) { return v.agent !== me; });
    list.replaceChildren.apply(list, others.map(function (v) {
      var li = el("li", v.name + (v.composing ? " (" + d.tWriting + ")" : ""), v.composing ? "composing" : "");
      li.dataset.agent = v.agent;
      return li;
    }));
    box.hidden = others.length === 0;
  }

  // Heartbeats: this tab has the ticket open; writing while the reply box holds text.
  var reply = document.querySelector("form[action$='/reply'] textarea[name=text]");
  var composing = false;
  function beat(leave) {
    var body = new URLSearchParams();
    body.set("client", d.client);
    body.set("composing", composing ? "1" : "0");
    if (leave) { body.set("leave", "1"); }
    return fetch("/tickets/" + encodeURIComponent(ticket) + "/presence", {
      method: "POST", credentials: "same-origin", keepalive: !!leave,
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: body.toString()
    }).catch(function () {});
  }
  // Only while someone is there: a heartbeat also keeps the session from
  // idling out, and a page left open overnight must not.
  var lastActive = Date.now();
  function present() {
    return document.visibilityState === "visible" && Date.now() - lastActive < 5 * 60 * 1000;
  }
  // A queue page nobody looks at does not fetch itself (each fetch would
  // keep the session from idling out): it catches up when someone is back.
  var stale = false;
  function refreshWhenPresent() {
    if (present()) { refreshQueue(); } else { stale = true; }
  }
  function back() {
    if (stale && present()) { stale = false; refreshQueue(); }
  }
  ["keydown", "pointerdown", "pointermove", "scroll", "focus"].forEach(function (k) {
    window.addEventListener(k, function () { lastActive = Date.now(); back(); }, { passive: true, capture: true });
  });
  document.addEventListener("visibilitychange", back);
  if (ticket && d.client) {
    setInterval(function () {
      if (document.visibilityState === "visible" && Date.now() - lastActive < 5 * 60 * 1000) { beat(false); }
    }, 15000);
    if (reply) {
      reply.addEventListener("input", function () {
        var now = reply.value.trim() !== "";
        if (now !== composing) { composing = now; beat(false); }
      });
    }
    window.addEventListener("pagehide", function () { beat(true); });
  }

  // --------------------------------------------------------------- stream
  var url = "/events?" + (ticket ? "ticket=" + encodeURIComponent(ticket) + "&" : "") +
    (Number(d.after) >= 0 && d.after !== "" ? "after=" + encodeURIComponent(d.after) : "");
  var source = new EventSource(url);
  // What changes a queue's rows (notes and replies do not).
  var QUEUE_FIELDS = ["created", "status", "category", "chargeable_reason", "assignee", "priority", "charge_approved"];
  var queuePage = !ticket && !!document.querySelector("section.content");
  source.addEventListener("open", function () { root.dataset.state = "open"; });
  source.addEventListener("ticket", function (m) {
    var e;
    try { e = JSON.parse(m.data); } catch (x) { return; }
    root.dataset.last = String(e.id);
    if (ticket) { onTicketEvent(e); } else if (queuePage && QUEUE_FIELDS.indexOf(e.field) >= 0) { refreshWhenPresent(); }
  });
  source.addEventListener("counts", function (m) {
    try { showCounts(JSON.parse(m.data)); } catch (x) { /* ignored */ }
  });
  source.addEventListener("presence", function (m) {
    try { showPresence(JSON.parse(m.data)); } catch (x) { /* ignored */ }
  });
  source.addEventListener("reset", function () {
    if (ticket) { showNotice([d.tChanged]); } else { location.reload(); }
  });
  function ended() {
    source.close();
    root.dataset.state = "ended";
    if (notice) { notice.replaceChildren(el("span", d.tEnded)); notice.hidden = false; }
  }
  source.addEventListener("end", ended);
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) { ended(); } else { root.dataset.state = "connecting"; }
  });
})();
