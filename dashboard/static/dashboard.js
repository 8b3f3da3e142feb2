/* The dashboard's pages: one live stream (SSE) of the board; every page shows its alerts,
   the board page its tables, the devices page reloads its rows, the charts page draws ECharts.
   Text comes from the page's data- attributes (the server's catalogues); nothing from elsewhere. */
"use strict";
var hallkit = (function () {
  var listeners = [];

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fmt(value, unit) { return value === null || value === undefined ? "–" : value + (unit || ""); }

  // All alerts on one line (a day's queue alerts must not push the board off the screen);
  // the worst colours it, a click lists them one a line (not on the wall board: nobody clicks a wall).
  function renderAlerts(board) {
    var bar = document.getElementById("alerts");
    if (!bar) return;
    var english = bar.dataset.lang === "en";
    var items = board.alerts.map(function (a) { return {severity: a.severity, text: english ? a.en : a.zh}; });
    if (!board.connected) items.unshift({severity: "critical", text: bar.dataset.offline});
    bar.replaceChildren();
    bar.classList.toggle("empty", items.length === 0);
    if (!items.length) return;
    var worst = items.some(function (i) { return i.severity === "critical"; }) ? "critical" : "warning";
    var line = el("div", "alert-line " + worst);
    line.appendChild(el("strong", "count", bar.dataset.count.replace("{count}", items.length)));
    line.appendChild(el("span", "texts", items.map(function (i) { return i.text; }).join("；")));
    bar.appendChild(line);
    var list = el("ul", "alert-list");
    items.forEach(function (i) { list.appendChild(el("li", "alert " + i.severity, i.text)); });
    bar.appendChild(list);
  }

  function renderBoard(board) {
    var root = document.getElementById("board");
    if (!root) return;
    var d = root.dataset, minutes = " " + d.minutes;
    document.getElementById("waiting-total").textContent = board.waiting_total;
    document.getElementById("served-total").textContent = board.served_today;
    var open = board.windows.filter(function (w) { return w.open && !w.paused; }).length;
    document.getElementById("windows-open").textContent = open + " / " + board.windows.length;
    var longest = board.services.reduce(function (m, s) { return Math.max(m, s.longest_wait_minutes); }, 0);
    document.getElementById("longest-wait").textContent = Math.round(longest) + minutes;

    var windows = document.getElementById("windows");
    windows.replaceChildren();
    board.windows.forEach(function (w) {
      var state = !w.open ? "closed" : w.paused ? "paused" : w.calling ? "calling" : "idle";
      var card = el("div", "window " + state);
      card.dataset.window = w.number;
      var head = el("div", "whead");
      head.appendChild(el("span", "wnum", w.number));
      head.appendChild(el("span", "wname", w.name));
      card.appendChild(head);
      var now = state === "calling" ? w.calling : d[state];
      card.appendChild(el("div", "calling", now));
      card.appendChild(el("div", "staff", d.onDuty + " " + fmt(w.staff_on_duty) + "　" + d.posts + " A " + fmt(w.staff_a) + " / B " + fmt(w.staff_b)));
      card.appendChild(el("div", "figs", d.served + " " + w.served_today + "　" + d.meanService + " " +
        fmt(w.mean_service_minutes, minutes) + "　" + d.meanWait + " " + fmt(w.mean_wait_minutes, minutes)));
      windows.appendChild(card);
    });

    var body = document.getElementById("services");
    body.replaceChildren();
    var shown = board.services.filter(function (s) { return s.waiting > 0 || s.issued_today > 0; });
    var limit = Number(root.dataset.serviceRows || 0);  // the wall board: the busiest that fit its screen
    if (limit) shown = shown.slice().sort(function (a, b) { return b.waiting - a.waiting; }).slice(0, limit);
    if (shown.length === 0) {
      var row = el("tr"), cell = el("td", "empty", d.noWaiting);
      cell.colSpan = 8; row.appendChild(cell); body.appendChild(row);
    }
    shown.forEach(function (s) {
      var row = el("tr", s.waiting > 0 ? "busy" : "");
      row.dataset.service = s.service_id;
      [[s.prefix, "prefix"], [s.name, "name"], [s.waiting, "num waiting"], [fmt(s.longest_wait_minutes), "num"],
       [fmt(s.mean_wait_minutes), "num"], [fmt(s.estimated_wait_minutes), "num"], [s.issued_today, "num"],
       [s.served_today, "num"]].forEach(function (c) { row.appendChild(el("td", c[1], c[0])); });
      body.appendChild(row);
    });
  }

  function refreshDevices() {
    var table = document.getElementById("devices");
    if (!table) return;
    fetch("/api/devices", {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (rows) {
      var body = table.tBodies[0], d = table.dataset;
      body.replaceChildren();
      rows.forEach(function (r) {
        var row = el("tr", "state-" + r.state);
        row.dataset.device = r.device;
        row.appendChild(el("td", "", r.device));
        row.appendChild(el("td", "", r.kind_label));
        var state = el("td"); state.appendChild(el("span", "badge " + r.state, d[r.state])); row.appendChild(state);
        var paper = el("td");
        if (r.paper) paper.appendChild(el("span", "badge paper-" + r.paper, d["paper-" + r.paper] || r.paper));
        row.appendChild(paper);
        row.appendChild(el("td", "", r.last_seen ? new Date(r.last_seen).toLocaleString("zh-CN", {timeZone: document.body.dataset.zone, hour12: false}) : "–"));
        row.appendChild(el("td", "", r.version));
        row.appendChild(el("td", "", r.problems.join("；")));
        var facts = el("ul", "facts");
        r.detail.forEach(function (item) {
          var li = el("li"); li.appendChild(el("span", "fact", item.label)); li.appendChild(document.createTextNode(" " + item.value));
          facts.appendChild(li);
        });
        var detail = el("td", "detail"); detail.appendChild(facts); row.appendChild(detail);
        body.appendChild(row);
      });
    });
  }

  function connect() {
    var source = new EventSource("/api/stream");
    source.onmessage = function (event) {
      var board = JSON.parse(event.data);
      document.body.classList.remove("stale");
      renderAlerts(board);
      renderBoard(board);
      listeners.forEach(function (f) { f(board); });
    };
    source.onerror = function () {
      document.body.classList.add("stale");
      // A closed stream (login expired, server restarted): reload, which leads to the login page if need be.
      if (source.readyState === EventSource.CLOSED) setTimeout(function () { location.reload(); }, 5000);
    };
  }

  function tick() {
    var clock = document.getElementById("clock");
    if (clock) clock.textContent = new Date().toLocaleTimeString("zh-CN", {timeZone: document.body.dataset.zone, hour12: false});
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick(); setInterval(tick, 1000);
    var alerts = document.getElementById("alerts");
    if (alerts && !document.body.classList.contains("wall-page")) {
      alerts.addEventListener("click", function () { alerts.classList.toggle("open"); });
    }
    var print = document.getElementById("print");
    if (print) print.addEventListener("click", function () { window.print(); });
    if (document.getElementById("devices")) listeners.push(refreshDevices);
    if (document.getElementById("charts") && window.hallkitCharts) window.hallkitCharts();
    connect();
  });
  return {el: el, onBoard: function (f) { listeners.push(f); }};
})();
