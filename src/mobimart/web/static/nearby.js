// "Use my location" on /nearby: the browser's position fills the form, and the server renders
// the list (the page works without this script by typing coordinates). Only this script's
// POST records where a signed-in person is.
(function () {
  "use strict";
  var button = document.getElementById("locate");
  var form = document.getElementById("nearby-form");
  if (!button || !form || !("geolocation" in navigator)) return;
  var status = document.getElementById("locate-status");
  button.hidden = false;
  button.addEventListener("click", function () {
    button.disabled = true;
    status.textContent = button.dataset.busy;
    navigator.geolocation.getCurrentPosition(
      function (pos) {
        // 5 decimals is ~1 m: as fine as a phone's fix, no finer.
        document.getElementById("lat").value = pos.coords.latitude.toFixed(5);
        document.getElementById("lng").value = pos.coords.longitude.toFixed(5);
        document.getElementById("place").value = "";
        var submit = function () { form.submit(); };
        // Signed in: the position is the browser's own fix, so it is posted (with the CSRF
        // token) to record entering a shop's geofence; the GET that follows records nothing.
        if (!form.dataset.csrf || !window.fetch) return submit();
        var data = new FormData();
        data.append("csrf_token", form.dataset.csrf);
        data.append("lat", document.getElementById("lat").value);
        data.append("lng", document.getElementById("lng").value);
        fetch("/nearby/position", { method: "POST", body: data, credentials: "same-origin" })
          .then(submit, submit);
      },
      function () {
        button.disabled = false;
        status.textContent = button.dataset.denied;
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  });
})();
