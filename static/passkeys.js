// Passkeys on derp's pages: the one place a page needs JavaScript.
//
// Each <form data-passkey="register|sign-in" data-options="URL"> stays
// hidden unless this browser has WebAuthn (as does any text marked
// data-passkey-hint). On submit it posts the form
// (with its CSRF token) to data-options, which answers {flow_id, options}
// as JSON with binary fields in base64url; it runs the browser's prompt
// (navigator.credentials.create or .get), puts the flow id and the
// credential (as JSON, binary fields base64url) into the form's hidden
// fields and submits the form for real. The server checks everything.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function ids(list) {
    return (list || []).map(function (c) {
      return Object.assign({}, c, { id: toBytes(c.id) });
    });
  }

  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user = Object.assign({}, o.user, { id: toBytes(o.user.id) });
    o.excludeCredentials = ids(o.excludeCredentials);
    return o;
  }

  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.allowCredentials = ids(o.allowCredentials);
    return o;
  }

  function credentialJSON(cred) {
    var r = cred.response;
    var out = {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: { clientDataJSON: toB64url(r.clientDataJSON) },
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
    };
    if (r.attestationObject) {
      out.response.attestationObject = toB64url(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = toB64url(r.authenticatorData);
      out.response.signature = toB64url(r.signature);
      out.response.userHandle = r.userHandle ? toB64url(r.userHandle) : null;
    }
    return out;
  }

  function setUp(form) {
    var status = form.querySelector("[data-passkey-status]");
    var button = form.querySelector("button[type=submit]");
    function say(text) {
      if (status) status.textContent = text;
      if (button) button.disabled = false;
    }
    form.hidden = false;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      say("");
      if (button) button.disabled = true;
      fetch(form.dataset.options, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (res) {
          return res.json().then(function (body) {
            if (!res.ok) throw new Error(body.error || "The passkey could not be started.");
            return body;
          });
        })
        .then(function (start) {
          var prompt = form.dataset.passkey === "register"
            ? navigator.credentials.create({ publicKey: creationOptions(start.options) })
            : navigator.credentials.get({ publicKey: requestOptions(start.options) });
          return prompt.then(
            function (cred) {
              if (!cred) throw new Error("No passkey was chosen.");
              form.elements.flow_id.value = start.flow_id;
              form.elements.credential.value = JSON.stringify(credentialJSON(cred));
              form.submit();
            },
            function () {
              throw new Error("The passkey prompt was closed or failed. Try again.");
            }
          );
        })
        .catch(function (e) {
          say(e.message);
        });
    });
  }

  function start() {
    var forms = document.querySelectorAll("form[data-passkey]");
    for (var i = 0; i < forms.length; i++) setUp(forms[i]);
    // Text that speaks of the passkey form shows with it.
    var hints = document.querySelectorAll("[data-passkey-hint]");
    for (var j = 0; j < hints.length; j++) hints[j].hidden = false;
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
