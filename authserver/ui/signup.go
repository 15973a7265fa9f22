package ui

import "net/http"

func (p *Pages) signupForm(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "signup", view{Title: "Create an account"})
}

// signup answers "check your email" whether or not the address already has
// an account (the service sends that account an email instead).
func (p *Pages) signup(w http.ResponseWriter, r *http.Request) {
	email := r.PostForm.Get("email")
	if err := p.svc.Signup(r.Context(), p.api.Client(r), email, r.PostForm.Get("password")); err != nil {
		p.fail(w, r, "signup", view{Title: "Create an account", Email: email, Field: field(err)}, err)
		return
	}
	p.render(w, r, http.StatusAccepted, "check-email", view{Title: "Check your email",
		Notice: "We sent a link to confirm your address. Open it to finish creating your account."})
}
