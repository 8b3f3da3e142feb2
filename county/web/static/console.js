// Sortable tables (click a header; numbers by their data-value) and the print button. No inline script: CSP.
"use strict";
(function () {
  function value(cell, numeric) {
    const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    if (!numeric) return raw;
    const n = parseFloat(raw);
    return isNaN(n) ? -Infinity : n;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-sort]").forEach(function (th, index) {
      const column = Array.prototype.indexOf.call(th.parentNode.children, th);
      th.addEventListener("click", function () {
        const numeric = th.dataset.sort === "num";
        const descending = !th.classList.contains("desc");
        table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
        th.classList.add(descending ? "desc" : "asc");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows).filter(function (r) { return r.cells.length > column; });
        rows.sort(function (a, b) {
          const x = value(a.cells[column], numeric), y = value(b.cells[column], numeric);
          const order = numeric ? x - y : String(x).localeCompare(String(y), "zh-CN");
          return descending ? -order : order;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  const print = document.getElementById("print");
  if (print) print.addEventListener("click", function () { window.print(); });
})();
