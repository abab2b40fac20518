// Face-to-face payment pages: a countdown to a code's expiry, the state of a code or a QR
// fetched without reloading, and sharing a pay-for-me link. Every page works without it (a
// refresh link, a meta refresh, a "check again" button, a link to copy by hand).
(function () {
  "use strict";
  var finished = false;

  function finish() {
    finished = true;
    document.querySelectorAll("[data-hide-when-final]").forEach(function (el) {
      el.hidden = true;
    });
  }

  document.querySelectorAll("[data-poll]").forEach(function (box) {
    var timer = setInterval(function () {
      if (document.hidden) { return; }  // a phone in a pocket polls nothing
      fetch(box.dataset.poll, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) { return; }
          box.innerHTML = html;
          if (box.querySelector("[data-final]")) {
            clearInterval(timer);
            finish();
          }
        })
        .catch(function () {});
    }, 2000);
  });

  document.querySelectorAll("[data-countdown]").forEach(function (el) {
    // Measured from this page's load, not the phone's clock, which may be wrong; timers
    // stop while the screen is off, so the time left is worked out afresh at each tick.
    var deadline = Date.now() + parseInt(el.dataset.countdown, 10) * 1000;
    function tick() {
      if (finished) { clearInterval(timer); return; }
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      el.textContent = String(left);
      if (left === 0) {
        clearInterval(timer);
        if (el.hasAttribute("data-reload")) { window.location.reload(); }
      }
    }
    var timer = setInterval(tick, 1000);
    document.addEventListener("visibilitychange", tick);
  });

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var input = document.getElementById(button.dataset.copy);
    if (!input) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      if (navigator.share) {
        navigator.share({ url: input.value }).catch(function () {});
        return;
      }
      input.select();
      if (navigator.clipboard) { navigator.clipboard.writeText(input.value).catch(function () {}); }
    });
  });
})();
