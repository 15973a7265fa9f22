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
      const e = new Error((j.error && j.error.message) || "The request failed.");
      e.code = j.error && j.error.code;
      throw e;
    }
    return j;
  }
  function fail(e, id) {
    const el = document.getElementById(id || "passkey-error");
    el.textContent = e && e.name === "NotAllowedError" ? "The passkey prompt was closed or timed out." : (e && e.message) || "The passkey did not work.";
    el.hidden = false;
    el.focus();
  }
  // A passkey that became the first factor came with recovery codes: show
  // them once, as templates/codes.html does after TOTP, then continue.
  function showCodes(codes, next) {
    if (!Array.isArray(codes) || codes.length === 0) {
      location.assign(next);
      return;
    }
    const main = document.querySelector("main");
    const el = function (tag, text) {
      const e = document.createElement(tag);
      if (text) {
        e.textContent = text;
      }
      return e;
    };
    const h1 = el("h1", "Save your recovery codes");
    document.title = document.title.replace(/^[^·]*·/, h1.textContent + " ·");
    const ul = el("ul");
    ul.className = "codes";
    ul.setAttribute("aria-label", "Recovery codes");
    codes.forEach(function (c) {
      ul.appendChild(el("li")).appendChild(el("code", c));
    });
    const links = el("p");
    links.className = "links";
    const a = links.appendChild(el("a", "I saved them, continue"));
    a.href = next;
    main.replaceChildren(h1, el("p", "Each code signs you in once if you lose your authenticator. Keep them somewhere safe: they are not shown again."), ul, links);
    a.focus();
  }
  const add = document.getElementById("passkey-add");
  if (add) {
    add.hidden = false;
  }
  const unsupported = document.getElementById("passkey-unsupported");
  if (unsupported) {
    unsupported.hidden = true;
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
          const j = await post("/auth/passkeys/register/finish", { credential: cred.toJSON(), name: document.getElementById("passkey-name").value });
          showCodes(j.recovery_codes, "/auth/ui/account?done=passkey");
          return;
        }
        if (kind === "enroll") {
          // The required enrolment after the password step: the new passkey
          // completes the login challenge and opens the session.
          const body = { challenge: btn.dataset.challenge };
          const o = await post("/auth/login/mfa/passkey/register/begin", body);
          const cred = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(o.publicKey) });
          body.credential = cred.toJSON();
          body.name = document.getElementById("passkey-name").value;
          const j = await post("/auth/login/mfa/passkey/register/finish", body);
          showCodes(j.recovery_codes, here(btn.dataset.next));
          return;
        }
        if (kind === "reauth") {
          // The account page's step-up: this session authenticates again.
          const o = await post("/auth/reauthenticate/passkey/begin", {});
          const cred = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(o.publicKey) });
          await post("/auth/reauthenticate/passkey/finish", { credential: cred.toJSON() });
          location.assign("/auth/ui/account?done=reauthenticated");
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
        if (e.code === "reauthentication_required" && btn.dataset.passkey === "register") {
          location.assign("/auth/ui/account?stepup=1"); // shows the step-up form
          return;
        }
        fail(e, btn.dataset.error);
        btn.disabled = false;
      }
    });
  });
})();
