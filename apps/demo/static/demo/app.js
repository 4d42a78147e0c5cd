// The demo issuer app (apps/demo/views.py): the issuer's mobile app, played by this page through
// the real SDK API (/sdk/v1/). A file, not inline: the site's CSP allows only scripts from 'self'.
"use strict";

(function () {
  const root = document.getElementById("demo-app");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const words = $("messages").dataset;
  const select = $("cardholder");
  const POLL_MS = 2000;
  // ISO 4217 numeric → alphabetic for the amounts the demo uses; others show their number.
  const CURRENCIES = { "392": "JPY", "978": "EUR", "840": "USD", "826": "GBP" };
  let pollTimer = null;
  let busy = false;

  // ---------------------------------------------------------------- base64url <-> bytes

  function bytes(b64url) {
    const b64 = b64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((b64url.length + 3) % 4);
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
  }

  function b64url(buffer) {
    let text = "";
    new Uint8Array(buffer).forEach((b) => { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // ---------------------------------------------------------------- the device, per cardholder

  const storageKey = () => "demo-app-device:" + select.value;
  const device = () => JSON.parse(localStorage.getItem(storageKey()) || "null");
  const forget = () => localStorage.removeItem(storageKey());

  async function call(url, { method = "GET", body, auth } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth) headers.Authorization = "Device " + auth.token;
    const response = await fetch(url, {
      method, headers, credentials: "omit", body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error((data.error && data.error.message) || "HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function say(id, text, kind) {
    const node = $(id);
    node.textContent = text;
    node.className = kind || "";
  }

  function showDevice() {
    const current = device();
    const name = select.options[select.selectedIndex].text.split(" (")[0];
    say("device-status", current ? words.registered.replace("{name}", name) : words.notRegistered, current ? "ok" : "");
    $("register").hidden = Boolean(current);
    $("unregister").hidden = !current;
    $("pending").replaceChildren();
    $("pending-empty").hidden = false;
    say("outcome", "");
  }

  // ---------------------------------------------------------------- registration (SPEC §5.3)

  async function register() {
    $("register").disabled = true;
    say("device-status", words.registering);
    try {
      // The issuer backend's part: a device-enrollment token (10 minutes, single use).
      const form = new FormData();
      form.append("cardholder", select.value);
      const enrolled = await fetch(root.dataset.enrollUrl, {
        method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": root.dataset.csrf },
      });
      const enrollment = await enrolled.json();
      if (!enrolled.ok) throw new Error(enrollment.error ? enrollment.error.message : "HTTP " + enrolled.status);
      const token = enrollment.enrollment_token;

      const options = await call("/sdk/v1/registrations/options", { method: "POST", body: { enrollment_token: token } });
      const publicKey = Object.assign({}, options, {
        challenge: bytes(options.challenge),
        user: Object.assign({}, options.user, { id: bytes(options.user.id) }),
        excludeCredentials: (options.excludeCredentials || []).map((c) => Object.assign({}, c, { id: bytes(c.id) })),
      });
      const credential = await navigator.credentials.create({ publicKey });
      const registration = await call("/sdk/v1/registrations", {
        method: "POST",
        body: {
          enrollment_token: token,
          credential: {
            id: credential.id,
            rawId: b64url(credential.rawId),
            type: credential.type,
            authenticatorAttachment: credential.authenticatorAttachment,
            response: {
              clientDataJSON: b64url(credential.response.clientDataJSON),
              attestationObject: b64url(credential.response.attestationObject),
              transports: credential.response.getTransports ? credential.response.getTransports() : [],
            },
            clientExtensionResults: credential.getClientExtensionResults(),
          },
          // No push service in a browser: the page polls instead (GET /sdk/v1/authn-requests).
          push: { platform: "fcm", token: "demo-browser-" + b64url(crypto.getRandomValues(new Uint8Array(12))) },
          device_name: "Demo issuer app (browser)",
        },
      });
      localStorage.setItem(storageKey(), JSON.stringify({ id: registration.device_id, token: registration.device_token }));
      showDevice();
    } catch (error) {
      say("device-status", words.failed + " " + error.message, "problem");
    } finally {
      $("register").disabled = false;
    }
  }

  async function unregister() {
    const current = device();
    if (current) {
      try {
        await call("/sdk/v1/registrations/current", { method: "DELETE", auth: current });
      } catch (error) { /* already gone: forget it anyway */ }
    }
    forget();
    showDevice();
  }

  // ---------------------------------------------------------------- out-of-band requests (SPEC §3.4)

  function amountText(request) {
    const exponent = parseInt(request.purchaseExponent || "0", 10);
    const value = Number(request.purchaseAmount || "0") / Math.pow(10, exponent);
    const currency = CURRENCIES[request.purchaseCurrency];
    if (!currency) return value.toFixed(exponent) + " (" + request.purchaseCurrency + ")";
    return new Intl.NumberFormat(document.documentElement.lang || undefined, {
      style: "currency", currency, minimumFractionDigits: exponent, maximumFractionDigits: exponent,
    }).format(value);
  }

  function render(requests) {
    const list = $("pending");
    const shown = new Set(Array.from(list.children, (li) => li.dataset.acsTransId));
    const wanted = new Set(requests.map((r) => r.acsTransId));
    Array.from(list.children).forEach((li) => { if (!wanted.has(li.dataset.acsTransId)) li.remove(); });
    requests.filter((r) => !shown.has(r.acsTransId)).forEach((request) => {
      const item = $("request-template").content.firstElementChild.cloneNode(true);
      item.dataset.acsTransId = request.acsTransId;
      item.querySelector(".merchant").textContent = request.merchantName;
      item.querySelector(".amount").textContent = amountText(request);
      const expires = new Date(request.expiresAt).toLocaleTimeString();
      item.querySelector(".details").textContent = words.card + " •••• " + request.cardLast4 + " · " + words.expires + " " + expires;
      item.querySelector(".approve").addEventListener("click", () => answer(request.acsTransId, true));
      item.querySelector(".decline").addEventListener("click", () => answer(request.acsTransId, false));
      list.appendChild(item);
    });
    $("pending-empty").hidden = list.children.length > 0;
  }

  async function poll() {
    const current = device();
    if (!current || busy) return;
    try {
      render((await call("/sdk/v1/authn-requests", { auth: current })).authnRequests);
    } catch (error) {
      if (error.status === 401 || error.status === 403) { forget(); showDevice(); }
    }
  }

  async function answer(acsTransId, approve) {
    const current = device();
    if (!current) return;
    busy = true;
    document.querySelectorAll(".request button").forEach((b) => { b.disabled = true; });
    const base = "/sdk/v1/authn-requests/" + encodeURIComponent(acsTransId) + "/";
    try {
      if (!approve) {
        await call(base + "cancel", { method: "POST", auth: current });
        say("outcome", words.declined);
      } else {
        say("outcome", words.approving);
        const options = await call(base + "proceed", { method: "POST", auth: current });
        const publicKey = Object.assign({}, options, {
          challenge: bytes(options.challenge),
          allowCredentials: (options.allowCredentials || []).map((c) => Object.assign({}, c, { id: bytes(c.id) })),
        });
        const assertion = await navigator.credentials.get({ publicKey });
        await call(base + "assertion", {
          method: "POST",
          auth: current,
          body: {
            credential: {
              id: assertion.id,
              rawId: b64url(assertion.rawId),
              type: assertion.type,
              authenticatorAttachment: assertion.authenticatorAttachment,
              response: {
                clientDataJSON: b64url(assertion.response.clientDataJSON),
                authenticatorData: b64url(assertion.response.authenticatorData),
                signature: b64url(assertion.response.signature),
                userHandle: assertion.response.userHandle ? b64url(assertion.response.userHandle) : null,
              },
              clientExtensionResults: assertion.getClientExtensionResults(),
            },
          },
        });
        say("outcome", words.approved, "ok");
      }
    } catch (error) {
      say("outcome", words.failed + " " + error.message, "problem");
    } finally {
      busy = false;
      await poll();
    }
  }

  // ---------------------------------------------------------------- start

  if (!select) return;
  if (!window.PublicKeyCredential) {
    $("unsupported").hidden = false;
  }
  select.addEventListener("change", showDevice);
  $("register").addEventListener("click", register);
  $("unregister").addEventListener("click", unregister);
  showDevice();
  poll();
  pollTimer = setInterval(poll, POLL_MS);
  window.addEventListener("pagehide", () => clearInterval(pollTimer));
})();
