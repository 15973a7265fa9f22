// The hosted pages' only script (CSP script-src 'self'): the WebAuthn
// calls, which need JavaScript. Buttons marked data-passkey stay hidden
// when the browser cannot do passkeys; every other control is a plain form.
"use strict";
(function () {
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    return;
  }
  // Only a path on this origin (the server checked it too).
  function here(p) {
    return typeof p === "string" && /^\/(?![\/\\])/.test(p) ? p : "/auth/ui/account";
  }
  async function post(url, body) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const j = r.status === 204 ? {} : await r.json();
    if (!r.ok) {
      throw new Error((j.error && j.error.message) || "The request failed.");
    }
    return j;
  }
  function fail(e) {
    const el = document.getElementById("passkey-error");
    el.textContent = e && e.name === "NotAllowedError" ? "The passkey prompt was closed or timed out." : (e && e.message) || "The passkey did not work.";
    el.hidden = false;
    el.focus();
  }
  const add = document.getElementById("passkey-add");
  if (add) {
    add.hidden = false;
  }
  document.querySelectorAll("[data-passkey]").forEach(function (btn) {
    btn.hidden = false;
    btn.addEventListener("click", async function () {
      btn.disabled = true;
      try {
        const kind = btn.dataset.passkey;
        if (kind === "register") {
          const o = await post("/auth/passkeys/register/begin", {});
          const cred = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(o.publicKey) });
          await post("/auth/passkeys/register/finish", { credential: cred.toJSON(), name: document.getElementById("passkey-name").value });
          location.assign("/auth/ui/account?done=passkey");
          return;
        }
        // kind is "login" (no email typed: a discoverable passkey) or "mfa"
        // (the second step of a password login, with its challenge).
        const body = kind === "mfa" ? { challenge: btn.dataset.challenge } : {};
        const api = kind === "mfa" ? "/auth/login/mfa/passkey" : "/auth/passkeys/login";
        const o = await post(api + "/begin", body);
        const cred = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(o.publicKey) });
        body.credential = cred.toJSON();
        await post(api + "/finish", body);
        location.assign(here(btn.dataset.next));
      } catch (e) {
        fail(e);
        btn.disabled = false;
      }
    });
  });
})();
