/* The charts page: Apache ECharts (vendored, served from /static) fed by /api/charts. */
"use strict";
window.hallkitCharts = function () {
  var root = document.getElementById("charts"), d = root.dataset;
  var font = {fontFamily: getComputedStyle(document.body).fontFamily, fontSize: 14};
  var charts = [];

  function chart(id, option) {
    var node = document.getElementById(id);
    var c = echarts.getInstanceByDom(node);
    if (!c) { c = echarts.init(node, null, {renderer: "canvas"}); charts.push(c); }
    option.textStyle = font;
    option.animation = false;
    c.setOption(option, true);
    return c;
  }
  function empty(id, message) {
    chart(id, {title: {text: message, left: "center", top: "middle", textStyle: {color: "#888", fontSize: 18}}});
  }
  // A hall has dozens of services: a line each would need a legend of many pages. The busiest
  // MAX_LINES are drawn; the tooltip still names each.
  var MAX_LINES = 6;
  // Long service names, cut to a legend item's width (the tooltip gives them whole), in at most two rows.
  var legendText = {width: 96, overflow: "truncate"};
  function peak(s) { return s.values.reduce(function (m, v) { return v === null ? m : Math.max(m, v); }, 0); }
  function lines(id, times, series, unit) {
    if (!series.length) return empty(id, d.noData);
    series = series.slice().sort(function (a, b) { return peak(b) - peak(a); }).slice(0, MAX_LINES);
    chart(id, {
      tooltip: {trigger: "axis"},
      legend: {top: 0, left: 0, right: 0, textStyle: legendText},
      grid: {left: 10, right: 20, top: 84, bottom: 10, containLabel: true},
      xAxis: {type: "category", data: times, boundaryGap: false, axisLabel: {hideOverlap: true}},
      yAxis: {type: "value", name: unit, minInterval: 1, nameLocation: "end", nameGap: 8},
      series: series.map(function (s) {
        return {name: s.name, type: "line", step: unit === d.people ? "end" : false, connectNulls: true,
                showSymbol: times.length < 30, data: s.values};
      })
    });
  }
  function levelBars(id, slices) {
    if (!slices.length) return empty(id, d.noData);
    var names = d.levels.split("|"), colors = ["#1a9850", "#91cf60", "#d9d9d9", "#fc8d59", "#d73027"];
    var series = names.map(function (name, i) {
      return {name: name, type: "bar", stack: "levels", itemStyle: {color: colors[i]},
              data: slices.map(function (s) { return s.levels[i]; })};
    });
    series.push({name: d.satisfaction, type: "line", yAxisIndex: 1, itemStyle: {color: "#2c7fb8"},
                 data: slices.map(function (s) { return s.satisfaction === null ? null : Math.round(s.satisfaction * 1000) / 10; })});
    chart(id, {
      tooltip: {trigger: "axis"}, legend: {type: "scroll", top: 0, left: 0, right: 0},
      grid: {left: 10, right: 10, top: 48, bottom: 10, containLabel: true},
      xAxis: {type: "category", data: slices.map(function (s) { return s.name; }),
              axisLabel: {interval: 0, rotate: slices.length > 6 ? 30 : 0, width: 90, overflow: "truncate", hideOverlap: true}},
      yAxis: [{type: "value", minInterval: 1}, {type: "value", min: 0, max: 100, axisLabel: {formatter: "{value}%"}}],
      series: series
    });
  }
  function load() {
    fetch("/api/charts?day=" + encodeURIComponent(d.day), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (v) {
        lines("chart-queue", v.times, v.queue, d.people);
        lines("chart-wait", v.times, v.wait, d.minutes);
        if (v.hours.length) {
          chart("chart-hours", {
            tooltip: {trigger: "axis"}, grid: {left: 50, right: 20, top: 30, bottom: 30},
            xAxis: {type: "category", data: v.hours}, yAxis: {type: "value", name: d.tickets, minInterval: 1},
            series: [{type: "bar", data: v.tickets_per_hour, itemStyle: {color: "#2c7fb8"}, label: {show: true, position: "top"}}]
          });
        } else empty("chart-hours", d.noData);
        if (!v.ratings_available) {
          ["chart-coverage", "chart-window", "chart-staff"].forEach(function (id) { empty(id, d.noRatings); });
          return;
        }
        chart("chart-coverage", {
          tooltip: {trigger: "item"},
          title: {text: v.coverage === null ? "–" : Math.round(v.coverage * 1000) / 10 + "%", left: "center", top: "middle",
                  textStyle: {fontSize: 32}},
          series: [{type: "pie", radius: ["50%", "75%"], label: {formatter: "{b}: {c}"},
                    data: [{name: d.rated, value: v.rated, itemStyle: {color: "#1a9850"}},
                           {name: d.unrated, value: v.served - v.rated, itemStyle: {color: "#d9d9d9"}}]}]
        });
        levelBars("chart-window", v.by_window);
        levelBars("chart-staff", v.by_staff);
      });
  }
  load();
  // Today's charts follow the day; a past day's never change.
  hallkit.onBoard(function () { if (!load.pending) { load.pending = true; setTimeout(function () { load.pending = false; load(); }, 30000); } });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
};
