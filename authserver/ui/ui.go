// Package ui serves the hosted pages under /auth/ui/: sign up, verify,
// log in, forgot/reset and the account page, server-rendered with
// html/template and posted as plain forms (no JavaScript needed). They call
// the same service methods as the JSON API, so its rules (enumeration,
// rate limits, lockout, revocation) hold here unchanged; one file per flow.
package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/httpapi"
	"github.com/leanauth/authstack/authserver/mfa"
	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
)

// Prefix is where the pages live.
const Prefix = "/auth/ui"

//go:embed templates/*.html static/style.css static/webauthn.js
var files embed.FS

// Pages serves the hosted pages.
type Pages struct {
	svc   *service.Service
	cfg   *config.Config
	api   *httpapi.Server
	log   *slog.Logger
	pages map[string]*template.Template
	css   []byte // the theme's variables, then static/style.css
	js    []byte // static/webauthn.js
	csp   string
	cspJS string // for the pages that load webauthn.js
	csrf  string // name of the CSRF cookie
}

// Mount adds the pages to api's routes.
func Mount(api *httpapi.Server, svc *service.Service, cfg *config.Config, log *slog.Logger) *Pages {
	p := &Pages{svc: svc, cfg: cfg, api: api, log: log, pages: map[string]*template.Template{}}
	for _, name := range []string{"signup", "check-email", "verify", "resend", "login", "forgot", "reset", "account", "message",
		"second-step", "totp", "codes"} {
		p.pages[name] = template.Must(template.New("layout.html").ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
	style, err := files.ReadFile("static/style.css")
	if err != nil {
		panic(err)
	}
	if p.js, err = files.ReadFile("static/webauthn.js"); err != nil {
		panic(err)
	}
	// The colours are checked against #rrggbb by the config loader: nothing
	// else can reach this file.
	p.css = fmt.Appendf(nil, ":root{--primary:%s;--on-primary:%s;--bg:%s}\n%s",
		cfg.UI.PrimaryColor, onColour(cfg.UI.PrimaryColor), cfg.UI.BackgroundColor, style)
	img := "'self' data:" // data: for the TOTP QR code
	if cfg.UI.LogoOrigin != "" {
		img += " " + cfg.UI.LogoOrigin
	}
	p.csp = "default-src 'none'; style-src 'self'; img-src " + img +
		"; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	// The pages with passkey buttons load one script of this origin, which
	// calls the JSON API of this origin; no other page may run any script.
	p.cspJS = strings.Replace(p.csp, "default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';", 1)
	p.csrf = "csrf"
	if cfg.CookieSecure {
		// As __Host-session: only this host, over TLS, can set it, so a
		// sibling subdomain cannot plant a token of its own.
		p.csrf = "__Host-csrf"
	}

	// The forms that hash a password are shed like the API's routes when
	// hashing is full, before the form is read (httpapi/shed.go).
	api.Handle("GET", Prefix+"/{$}", p.home)
	api.Handle("GET", Prefix+"/style.css", p.style)
	api.Handle("GET", Prefix+"/webauthn.js", p.script)
	api.Handle("GET", Prefix+"/signup", p.page(p.signupForm))
	api.Handle("POST", Prefix+"/signup", api.Hashing(p.form(p.signup)))
	api.Handle("GET", Prefix+"/verify-email", p.page(p.verifyForm))
	api.Handle("POST", Prefix+"/verify-email", p.form(p.verify))
	api.Handle("GET", Prefix+"/resend-verification", p.page(p.resendForm))
	api.Handle("POST", Prefix+"/resend-verification", p.form(p.resend))
	api.Handle("GET", Prefix+"/login", p.page(p.loginForm))
	api.Handle("POST", Prefix+"/login", api.Hashing(p.form(p.login)))
	api.Handle("POST", Prefix+"/login/mfa", p.form(p.loginMFA))
	api.Handle("POST", Prefix+"/login/enroll", p.form(p.enrollChallenge))
	api.Handle("POST", Prefix+"/logout", p.form(p.logout))
	api.Handle("GET", Prefix+"/forgot-password", p.page(p.forgotForm))
	api.Handle("POST", Prefix+"/forgot-password", p.form(p.forgot))
	api.Handle("GET", Prefix+"/reset-password", p.page(p.resetForm))
	api.Handle("POST", Prefix+"/reset-password", api.Hashing(p.form(p.reset)))
	api.Handle("GET", Prefix+"/account", p.page(p.account))
	api.Handle("POST", Prefix+"/account/password", api.Hashing(p.form(p.changePassword)))
	api.Handle("POST", Prefix+"/account/sessions/revoke", p.form(p.revokeSession))
	api.Handle("POST", Prefix+"/account/logout-all", p.form(p.logoutAll))
	api.Handle("POST", Prefix+"/account/reauthenticate", api.Hashing(p.form(p.reauthenticate)))
	api.Handle("POST", Prefix+"/account/totp", p.form(p.enrollTOTP))
	api.Handle("POST", Prefix+"/account/totp/confirm", p.form(p.confirmTOTP))
	api.Handle("POST", Prefix+"/account/totp/remove", p.form(p.removeTOTP))
	api.Handle("POST", Prefix+"/account/recovery-codes", p.form(p.regenerateCodes))
	api.Handle("POST", Prefix+"/account/passkeys/remove", p.form(p.removePasskey))
	api.Handle("POST", Prefix+"/account/passkeys/rename", p.form(p.renamePasskey))
	return p
}

// onColour is black or white, whichever reads better on the #rrggbb bg
// (WCAG relative luminance, threshold where both contrasts are equal).
func onColour(bg string) string {
	var r, g, b int
	_, _ = fmt.Sscanf(bg, "#%02x%02x%02x", &r, &g, &b)
	lin := func(c int) float64 {
		v := float64(c) / 255
		if v <= 0.04045 {
			return v / 12.92
		}
		return math.Pow((v+0.055)/1.055, 2.4)
	}
	if 0.2126*lin(r)+0.7152*lin(g)+0.0722*lin(b) > 0.179 {
		return "#000000"
	}
	return "#ffffff"
}

// view is what a page template sees.
type view struct {
	Product string
	Logo    string
	Title   string
	CSRF    string
	Error   string // shown above the form, role=alert
	Notice  string // a success message
	Field   string // id of the field the error is about (aria-describedby, focus)
	Email   string
	Token   string
	Next    string
	Data    any

	Challenge string       // a login challenge (second step, enrolment)
	Methods   []string     // its methods
	TOTP      *mfa.Key     // a TOTP secret to show once
	QR        template.URL // its QR code: a data: URL made by authserver/mfa, which html/template would refuse
	Codes     []string     // recovery codes to show once
}

// Has tells whether the view's methods include m (templates).
func (v view) Has(m string) bool { return slices.Contains(v.Methods, m) }

// EnrollPasskey tells whether the page is the enrolment of a login
// challenge that offers passkeys (it then loads webauthn.js).
func (v view) EnrollPasskey() bool { return v.Challenge != "" && v.Has(service.MethodPasskey) }

// headers are the hardening headers of every page (Cache-Control: no-store
// and nosniff come from the API's middleware).
func (p *Pages) headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Frame-Options", "DENY")
	// The verify and reset pages carry their token in the URL.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if p.cfg.CookieSecure {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}

// render writes page name with status.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	v.Product = p.cfg.UI.ProductName
	v.Logo = p.cfg.UI.LogoURL
	v.CSRF = p.csrfToken(w, r)
	var b strings.Builder
	if err := p.pages[name].Execute(&b, v); err != nil {
		p.log.ErrorContext(r.Context(), "rendering page", "page", name, "error", err.Error())
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if scripted[name] || (name == "totp" && v.EnrollPasskey()) {
		w.Header().Set("Content-Security-Policy", p.cspJS)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// scripted are the pages that load webauthn.js (passkey buttons); the
// "totp" page does too when it enrols a passkey (view.EnrollPasskey).
var scripted = map[string]bool{"login": true, "second-step": true, "account": true}

// page wraps a GET handler.
func (p *Pages) page(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.headers(w)
		h(w, r)
	}
}

// form wraps a POST handler: the request must pass the API's cross-origin
// check (Sec-Fetch-Site / Origin) and carry the CSRF token of the form,
// equal to the CSRF cookie (double submit). Either alone stops a
// cross-site form; both stop a browser without Fetch Metadata as well as a
// subdomain that can send same-site requests.
func (p *Pages) form(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.headers(w)
		r.Body = http.MaxBytesReader(w, r.Body, p.cfg.MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			p.render(w, r, http.StatusBadRequest, "message", view{Title: "Bad request", Error: "The form could not be read."})
			return
		}
		c, err := r.Cookie(p.csrf)
		sent := r.PostForm.Get("csrf")
		if p.api.CheckOrigin(r) != nil || err != nil || !wellFormed(c.Value) ||
			subtle.ConstantTimeCompare([]byte(c.Value), []byte(sent)) != 1 {
			p.render(w, r, http.StatusForbidden, "message", view{Title: "Form expired",
				Error: "This form expired or was sent from another site. Go back, reload the page and try again."})
			return
		}
		h(w, r)
	}
}

// csrfToken returns the CSRF cookie's value, setting a new cookie when
// there is none.
func (p *Pages) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.csrf); err == nil && wellFormed(c.Value) {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: p.csrf, Value: v, Path: "/", HttpOnly: true,
		Secure: p.cfg.CookieSecure, SameSite: http.SameSiteStrictMode})
	return v
}

func wellFormed(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// current is the session of the request's cookie, if valid.
func (p *Pages) current(r *http.Request) (session.Info, bool) {
	c, err := r.Cookie(p.cfg.CookieName)
	if err != nil || !session.WellFormed(c.Value) {
		return session.Info{}, false
	}
	cur, err := p.svc.Authenticate(r.Context(), c.Value)
	return cur, err == nil
}

// fail renders err on page name (see problem).
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, name string, v view, err error) {
	var status int
	status, v.Error = p.problem(w, r, name, err)
	p.render(w, r, status, name, v)
}

// problem is the status and message err is shown with: a service error's
// own (the JSON API's: same status, same safe message, Retry-After),
// anything else a logged 500 without detail.
func (p *Pages) problem(w http.ResponseWriter, r *http.Request, name string, err error) (int, string) {
	var se *service.Error
	if !errors.As(err, &se) {
		p.log.ErrorContext(r.Context(), "page request failed", "page", name, "error", err.Error())
		return http.StatusInternalServerError, "Something went wrong. Try again in a moment."
	}
	ra := se.RetryAfter
	if se == service.ErrBusy { // the expected wait, jittered
		ra = p.svc.BusyRetryAfter()
	}
	if ra > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int((ra+time.Second-1)/time.Second)))
	}
	return se.Status, sentence(se.Message)
}

// sentence capitalises a service message and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// next is a return path after login: a path on this origin only (no
// scheme, no host, no "//" or "/\" that browsers read as another host).
func next(v string) string {
	if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.HasPrefix(v, "/\\") || len(v) > 1024 {
		return ""
	}
	for _, c := range v {
		if c < 0x21 || c == 0x7f || c == '\\' {
			return ""
		}
	}
	return v
}

func (p *Pages) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.current(r); ok {
		http.Redirect(w, r, Prefix+"/account", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, Prefix+"/login", http.StatusSeeOther)
}

func (p *Pages) script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(p.js)
}

func (p *Pages) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(p.css)
}
