// The Me page's "Notifications on this device": asks for permission, registers the service
// worker at the site root, subscribes with the server's VAPID key and posts the subscription
// through the block's own form (so the session cookie and CSRF token go with it, as for any
// form). Browsers without the Push API keep the button hidden; removal works without script.
(function () {
  "use strict";
  var section = document.getElementById("push");
  var button = document.getElementById("push-enable");
  var form = document.getElementById("push-subscribe");
  var status = document.getElementById("push-status");
  if (!section || !button || !form) { return; }
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return;
  }

  function keyBytes(base64url) {
    var padded = base64url.replace(/-/g, "+").replace(/_/g, "/");
    padded += "===".slice((padded.length + 3) % 4);
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  function sameKey(buffer, bytes) {
    if (!buffer) { return false; }
    var have = new Uint8Array(buffer);
    if (have.length !== bytes.length) { return false; }
    for (var i = 0; i < have.length; i++) { if (have[i] !== bytes[i]) { return false; } }
    return true;
  }

  function fail(message) {
    status.textContent = message;
    button.disabled = false;
  }

  button.hidden = false;
  // Already subscribed here: say so (the list below names devices, not which one this is).
  navigator.serviceWorker.getRegistration("/").then(function (registration) {
    return registration ? registration.pushManager.getSubscription() : null;
  }).then(function (existing) {
    if (existing && Notification.permission === "granted") { status.textContent = section.dataset.active; }
  }).catch(function () { /* nothing to say */ });

  button.addEventListener("click", function () {
    button.disabled = true;
    status.textContent = "";
    var key = keyBytes(section.dataset.key);
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") { fail(section.dataset.denied); return null; }
      return navigator.serviceWorker.register("/sw.js", { scope: "/" })
        .then(function () { return navigator.serviceWorker.ready; })
        .then(function (registration) {
          return registration.pushManager.getSubscription().then(function (existing) {
            // A subscription made with another key (the server's key changed) would be
            // refused by the push service: replace it.
            if (existing && sameKey(existing.options.applicationServerKey, key)) { return existing; }
            var gone = existing ? existing.unsubscribe() : Promise.resolve(true);
            return gone.then(function () {
              return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
            });
          });
        })
        .then(function (subscription) {
          var json = subscription.toJSON();
          form.elements.endpoint.value = json.endpoint;
          form.elements.p256dh.value = json.keys.p256dh;
          form.elements.auth.value = json.keys.auth;
          form.submit();
        });
    }).catch(function () { fail(section.dataset.failed); });
  });
})();
