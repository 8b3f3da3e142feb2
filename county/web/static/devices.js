// The devices page reloads itself within a second or two of a change at any hall it shows.
"use strict";
(function () {
  const mark = document.getElementById("fleet-stamp");
  if (!mark) return;
  const shown = mark.dataset.stamp;
  setInterval(function () {
    fetch("/api/devices/stamp", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) { if (body && body.stamp !== shown) window.location.reload(); })
      .catch(function () { /* the next tick tries again */ });
  }, 1000);
})();
