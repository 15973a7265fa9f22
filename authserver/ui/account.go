package ui

import (
	"errors"
	"net/http"
	"time"

	"github.com/leanauth/authstack/authserver/httpapi"
	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// notices are the messages a redirect to the account page may ask for (by
// key: nothing from the URL is shown).
var notices = map[string]string{
	"password":        "Your password is changed. Every other session was signed out.",
	"revoked":         "The session was signed out.",
	"totp-removed":    "The authenticator app was removed.",
	"passkey":         "The passkey was added.",
	"passkey-removed": "The passkey was removed.",
	"passkey-renamed": "The passkey was renamed.",
	"reauthenticated": "Confirmed. You can now change your password, factors and passkeys.",
}

// confirmFirst is the error of an action that needs a step-up.
const confirmFirst = "Confirm it is you, then try again."

type sessionRow struct {
	ID, IP, UserAgent string
	Created, LastSeen string
	Current           bool
}

type accountData struct {
	Email    string
	Sessions []sessionRow
	MFA      service.MFAStatus
	Passkeys []store.Passkey
	Reauth   bool // the last action asked for a step-up: show that form first
}

// authed wraps an account handler: without a valid session, to the login
// page (and back here after it).
func (p *Pages) authed(h func(http.ResponseWriter, *http.Request, session.Info)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cur, ok := p.current(r)
		if !ok {
			http.SetCookie(w, httpapi.ClearSessionCookie(p.cfg))
			http.Redirect(w, r, Prefix+"/login?next="+Prefix+"/account", http.StatusSeeOther)
			return
		}
		h(w, r, cur)
	}
}

func (p *Pages) account(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		v := view{Notice: notices[r.URL.Query().Get("done")]}
		if r.URL.Query().Get("stepup") == "1" { // webauthn.js, when adding a passkey asked for a step-up
			v.Field, v.Error = "reauth", confirmFirst
		}
		p.renderAccount(w, r, cur, http.StatusOK, v)
	})(w, r)
}

func (p *Pages) renderAccount(w http.ResponseWriter, r *http.Request, cur session.Info, status int, v view) {
	ss, err := p.svc.ListSessions(r.Context(), cur)
	if err != nil {
		p.fail(w, r, "message", view{Title: "Your account"}, err)
		return
	}
	st, err := p.svc.Status(r.Context(), cur)
	if err != nil {
		p.fail(w, r, "message", view{Title: "Your account"}, err)
		return
	}
	keys, err := p.svc.ListPasskeys(r.Context(), cur)
	if err != nil {
		p.fail(w, r, "message", view{Title: "Your account"}, err)
		return
	}
	d := accountData{Email: cur.Email, MFA: st, Passkeys: keys}
	for _, s := range ss {
		d.Sessions = append(d.Sessions, sessionRow{ID: s.ID, IP: s.IP, UserAgent: s.UserAgent,
			Created: s.CreatedAt.UTC().Format(time.DateTime) + " UTC", LastSeen: s.LastSeenAt.UTC().Format(time.DateTime) + " UTC",
			Current: s.ID == cur.ID})
	}
	d.Reauth = v.Field == "reauth"
	v.Title, v.Data = "Your account", d
	p.render(w, r, status, "account", v)
}

func (p *Pages) changePassword(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		res, err := p.svc.ChangePassword(r.Context(), p.api.Client(r), cur, r.PostForm.Get("current_password"), r.PostForm.Get("new_password"))
		if err != nil {
			se := view{Field: "new_password"}
			if field(err) == "" {
				se.Field = "current_password"
			}
			p.failAccount(w, r, cur, se, err)
			return
		}
		http.SetCookie(w, httpapi.SessionCookie(p.cfg, res))
		http.Redirect(w, r, Prefix+"/account?done=password", http.StatusSeeOther)
	})(w, r)
}

func (p *Pages) revokeSession(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		id := r.PostForm.Get("id")
		if err := p.svc.RevokeSession(r.Context(), p.api.Client(r), cur, id); err != nil {
			p.failAccount(w, r, cur, view{}, err)
			return
		}
		if id == cur.ID {
			http.SetCookie(w, httpapi.ClearSessionCookie(p.cfg))
			http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, Prefix+"/account?done=revoked", http.StatusSeeOther)
	})(w, r)
}

func (p *Pages) logoutAll(w http.ResponseWriter, r *http.Request) {
	p.authed(func(w http.ResponseWriter, r *http.Request, cur session.Info) {
		if err := p.svc.LogoutAll(r.Context(), p.api.Client(r), cur); err != nil {
			p.failAccount(w, r, cur, view{}, err)
			return
		}
		http.SetCookie(w, httpapi.ClearSessionCookie(p.cfg))
		http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
	})(w, r)
}

// failAccount shows err on the account page.
func (p *Pages) failAccount(w http.ResponseWriter, r *http.Request, cur session.Info, v view, err error) {
	var status int
	status, v.Error = p.problem(w, r, "account", err)
	if errors.Is(err, service.ErrReauthRequired) {
		v.Field, v.Error = "reauth", confirmFirst // not the API's message, which names its endpoint
	} else if errors.Is(err, service.ErrMFARequired) {
		v.Field = "reauth"
	}
	p.renderAccount(w, r, cur, status, v)
}
