// Voice search: record from the microphone (MediaRecorder), send the clip, open the results.
// Without MediaRecorder the page keeps its file picker, which works without script.
(function () {
  "use strict";
  var form = document.getElementById("voice-form");
  var button = document.getElementById("record");
  var status = document.getElementById("voice-status");
  if (!form || !button || !window.MediaRecorder || !navigator.mediaDevices) { return; }
  var label = button.textContent;
  var recorder = null;
  var stopTimer = null;
  button.hidden = false;
  document.getElementById("voice-file").hidden = true;

  function send(blob) {
    var data = new FormData();
    data.append("csrf_token", form.querySelector("input[name=csrf_token]").value);
    data.append("audio", blob, "voice." + (blob.type.indexOf("mp4") >= 0 ? "mp4" : "webm"));
    status.textContent = "…";
    fetch(form.action, { method: "POST", body: data, headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (answer) {
        if (answer.url) { window.location.assign(answer.url); }
        else { status.textContent = answer.error; button.textContent = label; }
      })
      .catch(function () { status.textContent = ""; button.textContent = label; });
  }

  button.addEventListener("click", function () {
    if (recorder && recorder.state === "recording") { recorder.stop(); return; }
    navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
      var chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.ondataavailable = function (e) { if (e.data.size) { chunks.push(e.data); } };
      recorder.onstop = function () {
        clearTimeout(stopTimer);
        stream.getTracks().forEach(function (t) { t.stop(); });
        send(new Blob(chunks, { type: recorder.mimeType }));
      };
      recorder.start();
      button.textContent = button.dataset.listening;
      stopTimer = setTimeout(function () { if (recorder.state === "recording") { recorder.stop(); } }, 6000);
    }).catch(function (err) { status.textContent = err.message; });
  });
})();
