// The composer's live preview: as the author types, the form goes to the preview route and
// the answer (the text as a sample person gets it, SMS size and cost) replaces the preview.
// Without script the Preview button posts the whole form and the page comes back with it.
(function () {
  "use strict";
  var form = document.getElementById("composer");
  var preview = document.getElementById("preview");
  if (!form || !preview || !window.fetch) { return; }
  var timer = null;
  var sent = 0;

  function refresh() {
    var mine = ++sent;
    fetch(form.dataset.preview, {
      method: "POST",
      // URL-encoded, as the form itself posts (FormData alone would go as multipart).
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
      headers: { "Accept": "text/html" }
    }).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html === null || mine !== sent) { return; }  // a later keystroke's answer wins
      var box = document.createElement("div");
      box.innerHTML = html;
      var fresh = box.querySelector("#preview");
      if (fresh) { preview.replaceWith(fresh); preview = fresh; }
    }).catch(function () { /* the Preview button still works */ });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);  // one request per pause in typing, not per key
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
