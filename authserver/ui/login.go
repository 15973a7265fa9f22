package ui

import (
	"errors"
	"net/http"

	"github.com/leanauth/authstack/authserver/httpapi"
	"github.com/leanauth/authstack/authserver/service"
)

func (p *Pages) loginForm(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "login", view{Title: "Sign in", Next: next(r.URL.Query().Get("next"))})
}

// login: the same Login as POST /auth/login (its limits, lockout and
// answers), then the session cookie and a redirect to next or the account.
func (p *Pages) login(w http.ResponseWriter, r *http.Request) {
	email, to := r.PostForm.Get("email"), next(r.PostForm.Get("next"))
	res, err := p.svc.Login(r.Context(), p.api.Client(r), email, r.PostForm.Get("password"))
	if err != nil {
		v := view{Title: "Sign in", Email: email, Next: to, Field: field(err)}
		if errors.Is(err, service.ErrEmailNotVerified) {
			v.Data = "resend" // comes only after a correct password: the page may offer a new link
		}
		p.fail(w, r, "login", v, err)
		return
	}
	if res.Challenge != nil {
		// A second factor is enrolled (or required): no session yet.
		p.secondStep(w, r, res.Challenge.Token, res.Challenge.Purpose, res.Challenge.Methods, to)
		return
	}
	p.signedIn(w, r, res, to)
}

// signedIn sets the session cookie and goes to next (or the account page).
func (p *Pages) signedIn(w http.ResponseWriter, r *http.Request, res service.LoginResult, to string) {
	http.SetCookie(w, httpapi.SessionCookie(p.cfg, res))
	if to == "" {
		to = Prefix + "/account"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func (p *Pages) logout(w http.ResponseWriter, r *http.Request) {
	if cur, ok := p.current(r); ok {
		if err := p.svc.Logout(r.Context(), p.api.Client(r), cur); err != nil {
			p.fail(w, r, "message", view{Title: "Sign out"}, err)
			return
		}
	}
	http.SetCookie(w, httpapi.ClearSessionCookie(p.cfg))
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

// field is the id of the input an error is about.
func field(err error) string {
	var se *service.Error
	if !errors.As(err, &se) {
		return ""
	}
	switch se.Code {
	case "invalid_email":
		return "email"
	case "invalid_password":
		return "password"
	}
	return ""
}
