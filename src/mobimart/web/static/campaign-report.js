// A campaign's (or the marketing overview's) figures over time: sent and delivered as bars,
// clicks and orders as lines, drawn with the vendored Chart.js from the page's JSON data
// block. Without script (or if Chart.js fails to load) the table of the same numbers stays open.
(function () {
  "use strict";
  var data = document.getElementById("report-data");
  var canvas = document.getElementById("report-chart");
  if (!data || !canvas || typeof window.Chart === "undefined") { return; }
  var series = JSON.parse(data.textContent);
  if (!series.labels.length) { return; }
  var styles = getComputedStyle(document.documentElement);
  var red = styles.getPropertyValue("--red").trim() || "#e4393c";
  var muted = styles.getPropertyValue("--muted").trim() || "#64748b";
  var ok = styles.getPropertyValue("--ok").trim() || "#15803d";

  canvas.parentElement.hidden = false;
  var chart = new window.Chart(canvas, {
    data: {
      labels: series.labels,
      datasets: [
        { type: "bar", label: series.names.sent, data: series.sent, yAxisID: "messages",
          backgroundColor: "rgba(100, 116, 139, 0.35)" },
        { type: "bar", label: series.names.delivered, data: series.delivered, yAxisID: "messages",
          backgroundColor: "rgba(21, 128, 61, 0.35)" },
        { type: "line", label: series.names.clicked, data: series.clicked, yAxisID: "people",
          borderColor: red, backgroundColor: red, tension: 0.25 },
        { type: "line", label: series.names.converted, data: series.converted, yAxisID: "people",
          borderColor: ok, backgroundColor: ok, tension: 0.25 }
      ]
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: {
        // Clicks and orders are far fewer than messages: their own axis keeps them visible.
        messages: { position: "left", beginAtZero: true, ticks: { precision: 0, color: muted } },
        people: {
          position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
          ticks: { precision: 0, color: red }
        },
        x: { ticks: { autoSkip: true, maxRotation: 0, color: muted } }
      }
    }
  });
  canvas.dataset.drawn = String(chart.data.labels.length);
  var table = document.getElementById("report-table");
  if (table) { table.open = false; }
})();
