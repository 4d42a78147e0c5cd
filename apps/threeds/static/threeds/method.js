// 3DS Method page (SPEC §3.8). No inline script (CSP): this file is the page's only script.
// Collect what the risk policy compares with the AReq, post it to the ACS, then hand
// threeDSMethodData back to the 3DS Server; a timer notifies anyway if collection stalls.
(function () {
  "use strict";
  var form = document.getElementById("method-notify");
  if (!form) {
    return;
  }
  var sent = false;
  function notify() {
    if (sent) {
      return;
    }
    sent = true;
    form.submit();
  }
  window.setTimeout(notify, parseInt(form.getAttribute("data-fallback"), 10) || 8000);

  // FNV-1a, 32 bits: a stable fingerprint of the canvas rendering, not a secret.
  function fnv1a(text) {
    var hash = 0x811c9dc5;
    for (var i = 0; i < text.length; i += 1) {
      hash ^= text.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return ("0000000" + hash.toString(16)).slice(-8);
  }

  function canvasHash() {
    try {
      var canvas = document.createElement("canvas");
      canvas.width = 200;
      canvas.height = 40;
      var ctx = canvas.getContext("2d");
      if (!ctx) {
        return null;
      }
      ctx.textBaseline = "top";
      ctx.font = "16px sans-serif";
      ctx.fillStyle = "#f60";
      ctx.fillRect(100, 1, 62, 20);
      ctx.fillStyle = "#069";
      ctx.fillText("3-D Secure \u00e9\u6f22", 2, 15);
      return fnv1a(canvas.toDataURL());
    } catch (e) {
      return null;
    }
  }

  function collect() {
    var data = {};
    var s = window.screen || {};
    if (typeof s.width === "number") { data.screenWidth = Math.round(s.width); }
    if (typeof s.height === "number") { data.screenHeight = Math.round(s.height); }
    if (typeof s.colorDepth === "number") { data.colorDepth = s.colorDepth; }
    data.tzOffset = new Date().getTimezoneOffset();  // as EMV browserTZ
    var nav = window.navigator || {};
    if (nav.language) { data.language = String(nav.language).slice(0, 35); }
    if (nav.languages && nav.languages.length) {
      data.languages = Array.prototype.slice.call(nav.languages, 0, 16).map(function (l) { return String(l).slice(0, 35); });
    }
    if (nav.platform) { data.platform = String(nav.platform).slice(0, 64); }
    var hash = canvasHash();
    if (hash) { data.canvasHash = hash; }
    return data;
  }

  try {
    if (!window.fetch) {
      notify();
      return;
    }
    var body = JSON.stringify({ token: form.getAttribute("data-collect-token"), data: collect() });
    var timeout = parseInt(form.getAttribute("data-collect-timeout"), 10) || 5000;
    window.setTimeout(notify, timeout);
    window.fetch(form.getAttribute("data-collect-url"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: body,
      credentials: "omit",
      cache: "no-store"
    }).then(notify, notify);
  } catch (e) {
    notify();
  }
})();
