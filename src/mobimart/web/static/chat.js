// A chat thread, live: the page comes with its history rendered by the server and a plain
// form that works without this script. Here the thread follows the chat WebSocket instead:
// messages appear as they are sent, in order and once each, across reconnects; the thread
// is marked read while it is on screen; what we send shows at once, pending until the
// server acknowledges it. All text from people goes in as textContent, never as HTML.
(function () {
  "use strict";
  var root = document.getElementById("chat");
  if (!root || !root.dataset.ws || !window.WebSocket || !window.JSON) { return; }

  var conversationId = parseInt(root.dataset.conversation, 10);
  var side = root.dataset.side;
  var merchantId = root.dataset.merchant;
  var t = root.dataset;  // translated strings: data-t-*
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  var input = document.getElementById("chat-body");
  var errorBox = document.getElementById("chat-error");
  var statusBox = document.getElementById("chat-status");

  // The highest seq shown with every message before it shown too: the hello cursor. The
  // server then sends exactly what comes after it, so a reconnect loses and repeats nothing.
  var upto = parseInt(root.dataset.upto, 10) || 0;
  var otherRead = parseInt(root.dataset.otherRead, 10) || 0;
  var readSent = upto;      // the page was marked read when the server rendered it
  var ahead = {};           // seq -> message that arrived before the one it follows
  var pending = {};         // client_id -> {body, element}: sent, not yet acknowledged
  var socket = null;
  var attempt = 0;
  var retryTimer = null;
  var pingTimer = null;
  var stopped = false;

  // --- building messages -------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function timeOf(iso) {
    // The same "MM-DD HH:MM" (UTC) the server renders.
    var d = new Date(iso);
    if (isNaN(d.getTime())) { return ""; }
    return two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()) + " " +
      two(d.getUTCHours()) + ":" + two(d.getUTCMinutes());
  }

  function safeUrl(url) {
    // Only our own pages and files: a card's link never runs script or leaves the site.
    return typeof url === "string" && url.charAt(0) === "/" && url.charAt(1) !== "/" ? url : null;
  }

  function content(m) {
    if (m.hidden) { return el("p", "msg-body msg-removed", t.tRemoved); }
    if (m.kind === "text") { return el("p", "msg-body", m.body); }
    if (m.kind === "image") {
      var src = "/chats/" + conversationId + "/images/" + m.id;
      var link = el("a", "msg-image");
      link.href = src;
      var img = el("img");
      img.src = src;
      img.alt = t.tPhoto;
      link.appendChild(img);
      return link;
    }
    var card = m.card;
    var url = card && safeUrl(card.url);
    if (card && m.kind === "order" && side === "shop") {
      url = "/console/" + merchantId + "/orders/" + m.ref_id;
    }
    if (!card || !url) {
      return el("p", "msg-body msg-removed", m.kind === "order" ? t.tOrder : t.tProduct);
    }
    var a = el("a", "msg-card");
    a.href = url;
    var picture = safeUrl(card.image_url);
    if (picture) {
      var thumb = el("img");
      thumb.src = picture;
      thumb.alt = "";
      a.appendChild(thumb);
    }
    var text = el("span");
    text.appendChild(el("strong", "", card.title || ""));
    text.appendChild(el("span", "muted", card.subtitle || ""));
    a.appendChild(text);
    return a;
  }

  function bubble(m) {
    var mine = m.side === side;
    var li = el("li", "msg " + (mine ? "mine" : "theirs"));
    li.id = "m-" + m.seq;
    li.dataset.seq = String(m.seq);
    li.appendChild(content(m));
    var meta = el("span", "msg-meta");
    var time = el("time", "", timeOf(m.created_at));
    time.setAttribute("datetime", m.created_at);
    meta.appendChild(time);
    if (mine) {
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(el("span", "receipt", ""));
    }
    li.appendChild(meta);
    return li;
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
  }

  function toBottom() {
    var end = document.getElementById("end");
    if (end) { end.scrollIntoView({ block: "end" }); }
  }

  // --- receiving ---------------------------------------------------------------------------

  function showReceipts() {
    log.querySelectorAll("li.msg.mine[data-seq]").forEach(function (li) {
      var read = parseInt(li.dataset.seq, 10) <= otherRead;
      li.classList.toggle("read", read);
      var receipt = li.querySelector(".receipt");
      if (receipt) { receipt.textContent = read ? t.tRead : ""; }
    });
  }

  function place(m) {
    var follow = nearBottom();
    var empty = document.getElementById("chat-empty");
    if (empty) { empty.remove(); }
    var node = bubble(m);
    var own = m.client_id && pending[m.client_id];
    if (own) {
      // Our own message, confirmed: it takes the place of its pending copy.
      delete pending[m.client_id];
      own.element.remove();
    }
    // Pending messages stay last: they will be numbered after everything shown.
    var firstPending = log.querySelector("li.msg.pending");
    log.insertBefore(node, firstPending);
    upto = m.seq;
    if (own || follow) { toBottom(); }
  }

  function receive(m) {
    if (m.conversation_id !== conversationId || m.seq <= upto) { return; }  // not ours, or seen
    ahead[m.seq] = m;
    while (ahead[upto + 1]) {
      var next = ahead[upto + 1];
      delete ahead[upto + 1];
      place(next);
    }
    showReceipts();
    markRead();
  }

  function replace(m) {
    // A message shown already and changed since (removed by moderation): redrawn in place.
    if (m.conversation_id !== conversationId) { return; }
    var old = document.getElementById("m-" + m.seq);
    if (old) {
      old.replaceWith(bubble(m));
      showReceipts();
    } else if (ahead[m.seq]) {
      ahead[m.seq] = m;
    }
  }

  function markRead() {
    if (document.visibilityState !== "visible" || upto <= readSent) { return; }
    if (send({ type: "read", conversation_id: conversationId, seq: upto })) { readSent = upto; }
  }

  function onFrame(event) {
    var frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    if (frame.type === "message" && frame.message && frame.update) {
      replace(frame.message);
    } else if (frame.type === "message" && frame.message) {
      receive(frame.message);
    } else if (frame.type === "ack" && frame.conversation_id === conversationId) {
      var own = pending[frame.client_id];
      if (own) { own.element.classList.add("sent"); }
    } else if (frame.type === "read" && frame.conversation_id === conversationId) {
      if (frame.side !== side && frame.seq > otherRead) {
        otherRead = frame.seq;
        showReceipts();
      }
    } else if (frame.type === "error") {
      failed(frame);
    }
  }

  // --- sending -----------------------------------------------------------------------------

  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) { return false; }
    socket.send(JSON.stringify(frame));
    return true;
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    // randomUUID needs a secure context; a phone on the shop's Wi-Fi over plain http has not.
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function showError(text) {
    if (!errorBox) { return; }
    errorBox.textContent = text || "";
    errorBox.hidden = !text;
  }

  function failed(frame) {
    var own = frame.client_id && pending[frame.client_id];
    if (own) {
      // Refused (a blocked word, too fast): the message goes back into the box to fix.
      delete pending[frame.client_id];
      own.element.remove();
      if (input && !input.value) { input.value = own.body; }
    }
    showError(frame.detail || frame.code);
  }

  function submit(event) {
    // No live connection after a few tries: the plain form posts it instead.
    if ((!socket || socket.readyState !== WebSocket.OPEN) && attempt >= 3) { return; }
    event.preventDefault();
    var body = input.value.trim();
    if (!body) { return; }
    showError("");
    var clientId = newClientId();
    var li = el("li", "msg mine pending");
    li.appendChild(el("p", "msg-body", body));
    var meta = el("span", "msg-meta");
    meta.appendChild(el("span", "receipt", t.tSending));
    li.appendChild(meta);
    log.appendChild(li);
    var empty = document.getElementById("chat-empty");
    if (empty) { empty.remove(); }
    pending[clientId] = { body: body, element: li };
    input.value = "";
    toBottom();
    // Sent now if connected, else on reconnect: the same client id makes a resend one message.
    send({ type: "send", conversation_id: conversationId, client_id: clientId, body: body });
  }

  function resendPending() {
    Object.keys(pending).forEach(function (clientId) {
      send({
        type: "send", conversation_id: conversationId, client_id: clientId,
        body: pending[clientId].body
      });
    });
  }

  // --- the connection ----------------------------------------------------------------------

  function status(text) {
    if (!statusBox) { return; }
    statusBox.textContent = text || "";
    statusBox.hidden = !text;
  }

  function connect() {
    if (stopped || (socket && socket.readyState <= WebSocket.OPEN)) { return; }
    clearTimeout(retryTimer);
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + root.dataset.ws);
    socket.onopen = function () {
      attempt = 0;
      root.dataset.state = "live";  // for styles and tests: the thread follows the server
      status("");
      var cursors = {};
      cursors[conversationId] = upto;
      send({ type: "hello", cursors: cursors });
      resendPending();
      markRead();
      clearInterval(pingTimer);
      // Proxies drop a silent connection after a minute or so.
      pingTimer = setInterval(function () { send({ type: "ping" }); }, 25000);
    };
    socket.onmessage = onFrame;
    socket.onclose = function (event) {
      clearInterval(pingTimer);
      socket = null;
      root.dataset.state = "offline";
      if (event.code === 4401) {
        stopped = true;  // not signed in (any more): retrying would not help
        status(t.tSignin);
        if (form) { form.removeEventListener("submit", submit); }
        return;
      }
      status(t.tOffline);
      // 4403: what this person may see changed (a shop joined or left); a new socket follows
      // what they may see now, so come back soon, and from the same cursor. Otherwise
      // 0.5 s, 1 s, 2 s ... up to 30 s, jittered so a restarted server is not hit all at once.
      if (event.code === 4403) { attempt = 0; }
      var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
      attempt += 1;
      retryTimer = setTimeout(connect, delay);
    };
  }

  if (form && input) {
    form.addEventListener("submit", submit);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
      }
    });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      if (!socket) { attempt = 0; connect(); }
      markRead();
    }
  });
  window.addEventListener("online", function () { attempt = 0; connect(); });
  if (!errorBox || errorBox.hidden) { toBottom(); }
  connect();
})();
