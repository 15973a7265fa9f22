package ui

import "net/http"

func (p *Pages) forgotForm(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "forgot", view{Title: "Reset your password"})
}

// forgot answers the same whether or not the address has an account.
func (p *Pages) forgot(w http.ResponseWriter, r *http.Request) {
	email := r.PostForm.Get("email")
	if err := p.svc.ForgotPassword(r.Context(), p.api.Client(r), email); err != nil {
		p.fail(w, r, "forgot", view{Title: "Reset your password", Email: email, Field: field(err)}, err)
		return
	}
	p.render(w, r, http.StatusAccepted, "check-email", view{Title: "Check your email",
		Notice: "If this address has an account, we sent it a link to choose a new password."})
}

// resetForm is where the reset email leads; only its POST spends the token.
func (p *Pages) resetForm(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "reset", view{Title: "Choose a new password", Token: r.URL.Query().Get("token")})
}

func (p *Pages) reset(w http.ResponseWriter, r *http.Request) {
	tok := r.PostForm.Get("token")
	if err := p.svc.ResetPassword(r.Context(), p.api.Client(r), tok, r.PostForm.Get("password")); err != nil {
		p.fail(w, r, "reset", view{Title: "Choose a new password", Token: tok, Field: field(err)}, err)
		return
	}
	p.render(w, r, http.StatusOK, "message", view{Title: "Password changed",
		Notice: "Your password is changed and every session was signed out. Sign in with the new password.", Data: Prefix + "/login"})
}
