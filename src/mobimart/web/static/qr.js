// QR codes. In the console: scans per day drawn with the vendored Chart.js from the page's
// JSON data block (without script the table of the same numbers stays open). On a code's
// landing page: "share my location", which posts the browser's position to the scan.
(function () {
  "use strict";

  function drawScans() {
    var data = document.getElementById("scans-data");
    var canvas = document.getElementById("scans-chart");
    if (!data || !canvas || typeof window.Chart === "undefined") { return; }
    var scans = JSON.parse(data.textContent);
    var styles = getComputedStyle(document.documentElement);
    var red = styles.getPropertyValue("--red").trim() || "#e4393c";
    var muted = styles.getPropertyValue("--muted").trim() || "#64748b";
    canvas.parentElement.hidden = false;
    var chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: scans.labels.map(function (day) { return day.slice(5); }),  // "12-01": the year is in the table
        datasets: [{ label: scans.scansLabel, data: scans.scans, backgroundColor: red }]
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0, color: muted } },
          x: { ticks: { autoSkip: true, maxRotation: 0, color: muted } }
        }
      }
    });
    canvas.dataset.drawn = String(chart.data.labels.length);
    var table = document.getElementById("scans-table");
    if (table) { table.open = false; }
  }

  function offerLocation() {
    var box = document.getElementById("share-location");
    if (!box || !("geolocation" in navigator)) { return; }
    box.hidden = false;
    var button = box.querySelector("button");
    var status = box.querySelector("[role=status]");
    button.addEventListener("click", function () {
      button.disabled = true;
      navigator.geolocation.getCurrentPosition(function (position) {
        var body = new URLSearchParams();
        body.set("lat", position.coords.latitude.toFixed(6));
        body.set("lng", position.coords.longitude.toFixed(6));
        fetch(box.dataset.url, { method: "POST", body: body, credentials: "same-origin" })
          .then(function (r) { if (r.ok) { status.textContent = status.dataset.done; button.hidden = true; } })
          .catch(function () { button.disabled = false; });
      }, function () { button.disabled = false; }, { maximumAge: 60000, timeout: 15000 });
    });
  }

  drawScans();
  offerLocation();
})();
