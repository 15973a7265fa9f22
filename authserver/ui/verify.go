package ui

import "net/http"

// verifyForm is where the email link leads. Opening it changes nothing:
// mail scanners fetch links, so the token is spent only by the button's POST.
func (p *Pages) verifyForm(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "verify", view{Title: "Confirm your email", Token: r.URL.Query().Get("token")})
}

func (p *Pages) verify(w http.ResponseWriter, r *http.Request) {
	tok := r.PostForm.Get("token")
	if err := p.svc.VerifyEmail(r.Context(), p.api.Client(r), tok); err != nil {
		p.fail(w, r, "verify", view{Title: "Confirm your email"}, err)
		return
	}
	p.render(w, r, http.StatusOK, "message", view{Title: "Email confirmed",
		Notice: "Your address is confirmed. You can now sign in.", Data: Prefix + "/login"})
}

func (p *Pages) resendForm(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "resend", view{Title: "Send the link again"})
}

// resend answers the same whether or not the address has an unverified account.
func (p *Pages) resend(w http.ResponseWriter, r *http.Request) {
	email := r.PostForm.Get("email")
	if err := p.svc.ResendVerification(r.Context(), p.api.Client(r), email); err != nil {
		p.fail(w, r, "resend", view{Title: "Send the link again", Email: email, Field: "email"}, err)
		return
	}
	p.render(w, r, http.StatusAccepted, "check-email", view{Title: "Check your email",
		Notice: "If this address has an account waiting for confirmation, we sent it a new link."})
}
