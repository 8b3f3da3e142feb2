// The phone page: follows the ticket over SSE; shows the reasons and phone only with a bad level.
(function () {
  "use strict";
  var body = document.body;
  var stream = body.dataset.stream;
  var stage = body.dataset.stage;

  var form = document.getElementById("rate");
  if (form) {
    var bad = document.getElementById("bad-only");
    var sync = function () {
      var chosen = form.querySelector("input[name=level]:checked");
      var isBad = chosen !== null && Number(chosen.value) <= 2;
      bad.hidden = !isBad;
      if (!isBad) {
        bad.querySelectorAll("input").forEach(function (input) {
          if (input.type === "checkbox") { input.checked = false; } else { input.value = ""; }
        });
      }
    };
    form.addEventListener("change", sync);
    sync();
    form.addEventListener("submit", function () {
      form.querySelector("button[type=submit]").disabled = true;
    });
  }

  if (!stream || ["waiting", "called", "rate"].indexOf(stage) < 0) { return; }
  var live = document.getElementById("live");
  var source = new EventSource(stream);
  source.onmessage = function (message) {
    var view = JSON.parse(message.data);
    if (live) { live.classList.remove("offline"); }
    if (view.stage !== stage) {
      source.close();
      window.location.reload();
      return;
    }
    if (view.stage === "waiting") {
      var ahead = document.getElementById("ahead");
      var wait = document.getElementById("wait");
      ahead.textContent = view.ahead > 0 ? ahead.dataset.template.replace("{n}", view.ahead) : ahead.dataset.zero;
      wait.textContent = wait.dataset.template.replace("{m}", view.wait_minutes);
      wait.hidden = view.ahead === 0;
    }
  };
  source.onerror = function () {
    if (live) { live.classList.add("offline"); }
  };
})();
