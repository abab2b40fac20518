// The rating trend on the merchant feedback page: reviews per ISO week as bars and their
// average stars as a line, drawn with the vendored Chart.js from the page's JSON data block.
// Without script (or if Chart.js fails to load) the table of the same numbers stays open.
(function () {
  "use strict";
  var data = document.getElementById("trend-data");
  var canvas = document.getElementById("trend-chart");
  if (!data || !canvas || typeof window.Chart === "undefined") { return; }
  var trend = JSON.parse(data.textContent);
  var styles = getComputedStyle(document.documentElement);
  var red = styles.getPropertyValue("--red").trim() || "#e4393c";
  var muted = styles.getPropertyValue("--muted").trim() || "#64748b";

  canvas.parentElement.hidden = false;
  var chart = new window.Chart(canvas, {
    data: {
      labels: trend.labels.map(function (label) { return label.slice(5); }),  // "W49": the year is in the table
      datasets: [
        {
          type: "line",
          label: trend.averageLabel,
          data: trend.averages,
          yAxisID: "stars",
          borderColor: red,
          backgroundColor: red,
          spanGaps: true,  // a week without reviews has no average, not a zero
          tension: 0.25
        },
        {
          type: "bar",
          label: trend.countLabel,
          data: trend.counts,
          yAxisID: "count",
          backgroundColor: "rgba(100, 116, 139, 0.35)"
        }
      ]
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      scales: {
        stars: { position: "left", min: 1, max: 5, ticks: { stepSize: 1, color: red } },
        count: {
          position: "right", beginAtZero: true, grid: { drawOnChartArea: false },
          ticks: { precision: 0, color: muted }
        },
        x: { ticks: { autoSkip: true, maxRotation: 0, color: muted } }
      }
    }
  });
  canvas.dataset.drawn = String(chart.data.labels.length);
  // The chart says it now; the exact numbers stay one tap away.
  var table = document.getElementById("trend-table");
  if (table) { table.open = false; }
})();
