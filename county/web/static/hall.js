// One hall's day by hour: tickets taken and ratings (bars), the queue at each hour's end (line).
"use strict";
(function () {
  const box = document.getElementById("hours-chart");
  if (!box || typeof echarts === "undefined") return;
  fetch(box.dataset.url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (hours) {
    if (!hours.length) { box.textContent = box.dataset.empty; box.classList.add("empty"); return; }
    const chart = echarts.init(box);
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 4 },
      grid: { left: 48, right: 48, top: 40, bottom: 28 },
      xAxis: { type: "category", data: hours.map(function (h) { return String(h.hour).padStart(2, "0") + ":00"; }) },
      yAxis: [{ type: "value", minInterval: 1 }, { type: "value", minInterval: 1, splitLine: { show: false } }],
      series: [
        { name: box.dataset.taken, type: "bar", data: hours.map(function (h) { return h.taken; }), itemStyle: { color: "#1f5fa8" } },
        { name: box.dataset.ratings, type: "bar", data: hours.map(function (h) { return h.ratings; }), itemStyle: { color: "#7fb3e6" } },
        { name: box.dataset.bad, type: "bar", data: hours.map(function (h) { return h.bad; }), itemStyle: { color: "#c53030" } },
        { name: box.dataset.waiting, type: "line", yAxisIndex: 1, data: hours.map(function (h) { return h.waiting; }), itemStyle: { color: "#b7791f" } }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
