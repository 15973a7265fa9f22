package ui

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/leanauth/authstack/authserver/httpapi"
	"github.com/leanauth/authstack/authserver/mfa"
	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// secondStep renders what follows a correct password when the account has
// a second factor (its code, a recovery code or a passkey) or must enrol
// one first (policy "required": the set-up of the methods offered, TOTP
// and/or a passkey, with the challenge).
func (p *Pages) secondStep(w http.ResponseWriter, r *http.Request, challenge, purpose string, methods []string, to string) {
	v := view{Title: "Two-step verification", Challenge: challenge, Methods: methods, Next: to}
	if purpose != store.ChallengeEnroll {
		p.render(w, r, http.StatusOK, "second-step", v)
		return
	}
	v.Title, v.Data = "Set up two-step verification", Prefix+"/login/enroll"
	if v.Has(service.MethodTOTP) {
		key, err := p.svc.EnrollTOTPWithChallenge(r.Context(), challenge)
		if err != nil {
			p.fail(w, r, "login", view{Title: "Sign in", Next: to}, err)
			return
		}
		v.TOTP, v.QR = &key, qr(key)
	}
	p.render(w, r, http.StatusOK, "totp", v)
}

// loginMFA completes the login challenge with a TOTP or recovery code (the
// service counts wrong codes towards the challenge's attempts and the
// account's lockout).
func (p *Pages) loginMFA(w http.ResponseWriter, r *http.Request) {
	ch, method, to := r.PostForm.Get("challenge"), r.PostForm.Get("method"), next(r.PostForm.Get("next"))
	res, err := p.svc.LoginWithCode(r.Context(), p.api.Client(r), ch, method, r.PostForm.Get("code"))
	if err != nil {
		info, cerr := p.svc.Challenge(r.Context(), ch)
		if cerr != nil { // the challenge is spent: start again
			p.fail(w, r, "login", view{Title: "Sign in", Next: to}, err)
			return
		}
		p.fail(w, r, "second-step", view{Title: "Two-step verification", Challenge: ch, Methods: info.Methods, Next: to, Field: method}, err)
		return
	}
	p.signedIn(w, r, res, to)
}

// enrollChallenge confirms the TOTP set up with an enroll challenge: the
// session opens and the recovery codes are shown once.
func (p *Pages) enrollChallenge(w http.ResponseWriter, r *http.Request) {
	ch, to := r.PostForm.Get("challenge"), next(r.PostForm.Get("next"))
	codes, res, err := p.svc.ConfirmTOTPWithChallenge(r.Context(), p.api.Client(r), ch, r.PostForm.Get("code"))
	if err != nil {
		p.fail(w, r, "login", view{Title: "Sign in", Next: to}, err)
		return
	}
	if to == "" {
		to = Prefix + "/account"
	}
	http.SetCookie(w, httpapi.SessionCookie(p.cfg, res))
	p.render(w, r, http.StatusOK, "codes", view{Title: "Save your recovery codes", Codes: codes, Data: to})
}

func (p *Pages) enrollTOTP(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		key, err := p.svc.EnrollTOTP(r.Context(), cur)
		if err != nil {
			p.failAccount(w, r, cur, view{}, err)
			return
		}
		p.render(w, r, http.StatusOK, "totp", view{Title: "Set up two-step verification", TOTP: &key, QR: qr(key), Data: Prefix + "/account/totp/confirm"})
	})(w, r)
}

func (p *Pages) confirmTOTP(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		codes, _, err := p.svc.ConfirmTOTP(r.Context(), p.api.Client(r), cur, r.PostForm.Get("code"))
		if err != nil {
			p.failAccount(w, r, cur, view{}, err)
			return
		}
		p.render(w, r, http.StatusOK, "codes", view{Title: "Save your recovery codes", Codes: codes, Data: Prefix + "/account"})
	})(w, r)
}

func (p *Pages) removeTOTP(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		if err := p.svc.RemoveTOTP(r.Context(), p.api.Client(r), cur); err != nil {
			p.failAccount(w, r, cur, view{}, err)
			return
		}
		http.Redirect(w, r, Prefix+"/account?done=totp-removed", http.StatusSeeOther)
	})(w, r)
}

func (p *Pages) regenerateCodes(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		codes, err := p.svc.RegenerateRecoveryCodes(r.Context(), p.api.Client(r), cur)
		if err != nil {
			p.failAccount(w, r, cur, view{}, err)
			return
		}
		p.render(w, r, http.StatusOK, "codes", view{Title: "Save your recovery codes", Codes: codes, Data: Prefix + "/account"})
	})(w, r)
}

// reauthenticate is the step-up the factor and password changes ask for.
func (p *Pages) reauthenticate(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		req := service.ReauthRequest{Password: r.PostForm.Get("password"), Code: r.PostForm.Get("code")}
		if req.Code != "" {
			req.Method = r.PostForm.Get("method")
		}
		if _, err := p.svc.Reauthenticate(r.Context(), p.api.Client(r), cur, req); err != nil {
			p.failAccount(w, r, cur, view{Field: "reauth"}, err)
			return
		}
		http.Redirect(w, r, Prefix+"/account?done=reauthenticated", http.StatusSeeOther)
	})(w, r)
}

func (p *Pages) removePasskey(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		if err := p.svc.RemovePasskey(r.Context(), p.api.Client(r), cur, r.PostForm.Get("id")); err != nil {
			p.failAccount(w, r, cur, view{}, err)
			return
		}
		http.Redirect(w, r, Prefix+"/account?done=passkey-removed", http.StatusSeeOther)
	})(w, r)
}

// renamePasskey names one of the user's passkeys (no step-up: a name is
// not a credential, as in the JSON API's PATCH).
func (p *Pages) renamePasskey(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		if _, err := p.svc.RenamePasskey(r.Context(), p.api.Client(r), cur, r.PostForm.Get("id"), r.PostForm.Get("name")); err != nil {
			p.failAccount(w, r, cur, view{}, err)
			return
		}
		http.Redirect(w, r, Prefix+"/account?done=passkey-renamed", http.StatusSeeOther)
	})(w, r)
}

// qr is the key's QR code as a URL html/template lets through: only a PNG
// data URL (made by authserver/mfa) is trusted.
func qr(k mfa.Key) template.URL {
	if !strings.HasPrefix(k.QRPNG, "data:image/png;base64,") {
		return ""
	}
	return template.URL(k.QRPNG)
}
