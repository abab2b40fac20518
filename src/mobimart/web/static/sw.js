// Mobimart's service worker, served at /sw.js so its scope is the whole site. It shows the
// pushes the server sends ({"title", "body", "link"}, decrypted by the browser) and opens
// the link when the notification is tapped: a tab already on that page is focused instead.
"use strict";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener("push", function (event) {
  var data = {};
  if (event.data) {
    try { data = event.data.json(); } catch (e) { data = { body: event.data.text() }; }
  }
  event.waitUntil(self.registration.showNotification(data.title || "Mobimart", {
    body: data.body || "",
    icon: "/static/icon.svg",
    data: { link: data.link || "/" }
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var link = (event.notification.data && event.notification.data.link) || "/";
  var target;
  try { target = new URL(link, self.location.origin); } catch (e) { target = new URL("/", self.location.origin); }
  if (target.protocol !== "https:" && target.origin !== self.location.origin) {
    target = new URL("/", self.location.origin);  // never a javascript: or data: URL
  }
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (tabs) {
    for (var i = 0; i < tabs.length; i++) {
      if (tabs[i].url === target.href && "focus" in tabs[i]) { return tabs[i].focus(); }
    }
    return self.clients.openWindow(target.href);
  }));
});
