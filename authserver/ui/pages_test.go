package ui_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

const (
	wantCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	// The pages with passkey buttons: one script file of this origin.
	wantCSPJS = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	script    = `<script src="/auth/ui/webauthn.js"></script>`
)

func start(t *testing.T, vars map[string]string) *authtest.Env {
	t.Helper()
	v := map[string]string{"AUTH_UI_ENABLED": "true", "AUTH_UI_EMAIL_LINKS": "true"}
	for k, x := range vars {
		v[k] = x
	}
	return authtest.Start(t, authtest.Options{Vars: v})
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	t    *testing.T
	e    *authtest.Env
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, e *authtest.Env) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	status int
	header http.Header
	body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values, headers ...string) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.BaseURL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindStringSubmatch(string(raw)); m != nil {
		b.csrf = m[1]
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

// post sends a form with the CSRF token of the last page.
func (b *browser) post(path string, form url.Values, headers ...string) page {
	b.t.Helper()
	form.Set("csrf", b.csrf)
	return b.do("POST", path, form, headers...)
}

// Every page carries the strict CSP and the hardening headers, and has no
// inline script or style the CSP would have to allow.
func TestPagesHeaders(t *testing.T) {
	e := start(t, nil)
	b := newBrowser(t, e)
	for _, path := range []string{"/auth/ui/login", "/auth/ui/signup", "/auth/ui/forgot-password", "/auth/ui/reset-password?token=x",
		"/auth/ui/verify-email?token=x", "/auth/ui/resend-verification"} {
		p := b.do("GET", path, nil)
		h := p.header
		csp := wantCSP
		if strings.Contains(p.body, script) {
			csp = wantCSPJS
		}
		if path == "/auth/ui/login" && csp != wantCSPJS {
			t.Errorf("the login page does not load the passkey script")
		}
		if p.status != 200 || h.Get("Content-Security-Policy") != csp || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("Cache-Control") != "no-store" || h.Get("Cross-Origin-Opener-Policy") != "same-origin" ||
			!strings.HasPrefix(h.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %v", path, p.status, h)
		}
		if regexp.MustCompile(`\son[a-z]+=`).MatchString(p.body) {
			t.Errorf("GET %s: page has an inline event handler", path)
		}
		for _, inline := range []string{"<script", "style=", "<style", "javascript:"} {
			if strings.Contains(strings.ReplaceAll(p.body, script, ""), inline) {
				t.Errorf("GET %s: page has %s", path, inline)
			}
		}
		if !strings.Contains(p.body, `<label for="`) && !strings.Contains(path, "verify") {
			t.Errorf("GET %s: no labelled field", path)
		}
	}
}

// A form is accepted only with the CSRF cookie's token and from this
// origin: a page of another site can neither log the visitor in (login
// CSRF) nor act in their session.
func TestPagesRefuseCrossSiteForms(t *testing.T) {
	e := start(t, nil)
	b := newBrowser(t, e)
	b.do("GET", "/auth/ui/login", nil)
	creds := func() url.Values { return url.Values{"email": {"who@example.com"}, "password": {"not-the-password"}} }
	for name, c := range map[string]struct {
		token   string
		headers []string
	}{
		"no token":            {token: "", headers: nil},
		"wrong token":         {token: strings.Repeat("A", 43), headers: nil},
		"cross-site fetch":    {token: "ok", headers: []string{"Sec-Fetch-Site", "cross-site"}},
		"foreign origin":      {token: "ok", headers: []string{"Origin", "https://evil.example"}},
		"same-site subdomain": {token: "ok", headers: []string{"Sec-Fetch-Site", "same-site", "Origin", "http://evil.127.0.0.1"}},
	} {
		f := creds()
		f.Set("csrf", b.csrf)
		if c.token != "ok" {
			f.Set("csrf", c.token)
		}
		p := b.do("POST", "/auth/ui/login", f, c.headers...)
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "another site") {
			t.Errorf("%s: %d, want 403\n%s", name, p.status, p.body)
		}
	}
	// Without the cookie (another browser) the token of this one is no good.
	other := newBrowser(t, e)
	f := creds()
	f.Set("csrf", b.csrf)
	if p := other.do("POST", "/auth/ui/login", f); p.status != http.StatusForbidden {
		t.Errorf("token without its cookie: %d", p.status)
	}
	if p := b.post("/auth/ui/login", creds()); p.status != http.StatusUnauthorized {
		t.Errorf("same-origin form: %d, want 401", p.status)
	}
}

// The login page answers an unknown address and a wrong password alike,
// as the JSON API does.
func TestPagesLoginTellsNothing(t *testing.T) {
	e := start(t, nil)
	e.SignupVerifyLogin(t, "known@example.com", "correct horse battery")
	b := newBrowser(t, e)
	b.do("GET", "/auth/ui/login", nil)
	norm := func(p page, email string) string {
		return strings.ReplaceAll(csrfField.ReplaceAllString(p.body, ""), email, "EMAIL")
	}
	known := b.post("/auth/ui/login", url.Values{"email": {"known@example.com"}, "password": {"wrong password!"}})
	unknown := b.post("/auth/ui/login", url.Values{"email": {"nobody@example.com"}, "password": {"wrong password!"}})
	if known.status != 401 || unknown.status != 401 || norm(known, "known@example.com") != norm(unknown, "nobody@example.com") {
		t.Fatalf("known %d / unknown %d differ:\n%s\n---\n%s", known.status, unknown.status, known.body, unknown.body)
	}
	if !strings.Contains(known.body, "Email or password is incorrect.") || !strings.Contains(known.body, `role="alert"`) {
		t.Fatalf("no inline error:\n%s", known.body)
	}
	for _, path := range []string{"/auth/ui/forgot-password", "/auth/ui/resend-verification", "/auth/ui/signup"} {
		form := func(email string) url.Values {
			return url.Values{"email": {email}, "password": {"another good password"}}
		}
		k := b.post(path, form("known@example.com"))
		u := b.post(path, form("nobody2@example.com"))
		if k.status != 202 || u.status != 202 || norm(k, "known@example.com") != norm(u, "nobody2@example.com") {
			t.Errorf("%s: known %d / unknown %d differ", path, k.status, u.status)
		}
	}
}

// Wrong passwords on the page count towards the same lockout as the JSON
// API's: the client is locked out of the account on both.
func TestPagesShareLockoutWithAPI(t *testing.T) {
	e := start(t, map[string]string{"AUTH_LOCKOUT_THRESHOLD": "3"})
	e.SignupVerifyLogin(t, "locked@example.com", "correct horse battery")
	b := newBrowser(t, e)
	b.do("GET", "/auth/ui/login", nil)
	for i := 0; i < 3; i++ {
		if p := b.post("/auth/ui/login", url.Values{"email": {"locked@example.com"}, "password": {"wrong password!"}}); p.status != 401 {
			t.Fatalf("attempt %d: %d", i, p.status)
		}
	}
	p := b.post("/auth/ui/login", url.Values{"email": {"locked@example.com"}, "password": {"correct horse battery"}})
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many attempts") {
		t.Fatalf("page after lockout: %d %v", p.status, p.header)
	}
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": "locked@example.com", "password": "correct horse battery"}); r.Status != http.StatusTooManyRequests {
		t.Fatalf("JSON login after page lockout: %d", r.Status)
	}
}

// With AUTH_UI_EMAIL_LINKS the email leads to the hosted page; opening it
// spends nothing (mail scanners fetch links), the button does, once.
func TestPagesEmailLinkVerifiesOnlyOnPost(t *testing.T) {
	e := start(t, nil)
	b := newBrowser(t, e)
	b.do("GET", "/auth/ui/signup", nil)
	if p := b.post("/auth/ui/signup", url.Values{"email": {"new@example.com"}, "password": {"correct horse battery"}}); p.status != 202 {
		t.Fatalf("signup: %d\n%s", p.status, p.body)
	}
	msg := e.Mail.WaitForMessage(t, "new@example.com", 15*time.Second)
	link := regexp.MustCompile(`https://app\.authstack\.test/auth/ui/verify-email\?token=[A-Za-z0-9_-]+`).FindString(msg.Text)
	if link == "" {
		t.Fatalf("no hosted verification link in:\n%s", msg.Text)
	}
	path := strings.TrimPrefix(link, "https://app.authstack.test")
	b.do("GET", path, nil)
	b.do("GET", path, nil)
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": "new@example.com", "password": "correct horse battery"}); r.ErrorCode() != "email_not_verified" {
		t.Fatalf("opening the link verified the address: %d %s", r.Status, r.Body)
	}
	tok := authtest.TokenFromMail(t, msg.Text)
	if p := b.post("/auth/ui/verify-email", url.Values{"token": {tok}}); p.status != 200 || !strings.Contains(p.body, "Email confirmed") {
		t.Fatalf("verify: %d\n%s", p.status, p.body)
	}
	if p := b.post("/auth/ui/verify-email", url.Values{"token": {tok}}); p.status != 400 {
		t.Fatalf("second use: %d", p.status)
	}
}

// With a second factor required, the right password of a user without one
// leads to the TOTP set-up (no session before it is confirmed), and
// confirming it signs in and shows the recovery codes once.
func TestPagesRequiredEnrolment(t *testing.T) {
	e := start(t, map[string]string{"AUTH_MFA_MODE": "required"})
	e.Do(t, "POST", "/auth/signup", map[string]string{"email": "must@example.com", "password": "correct horse battery"})
	tok := authtest.TokenFromMail(t, e.Mail.WaitForMessage(t, "must@example.com", 15*time.Second).Text)
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": tok}); r.Status != 200 {
		t.Fatalf("verify: %d", r.Status)
	}
	b := newBrowser(t, e)
	b.do("GET", "/auth/ui/login", nil)
	p := b.post("/auth/ui/login", url.Values{"email": {"must@example.com"}, "password": {"correct horse battery"}})
	secret := regexp.MustCompile(`<output id="secret" class="secret">([A-Z2-7]+)</output>`).FindStringSubmatch(p.body)
	if p.status != 200 || secret == nil || !strings.Contains(p.body, `action="/auth/ui/login/enroll"`) || !strings.Contains(p.body, `src="data:image/png;base64,`) {
		t.Fatalf("password step: %d, no TOTP set-up:\n%s", p.status, p.body)
	}
	// Both methods are offered (the default): a passkey too, with the script.
	if !strings.Contains(p.body, `data-passkey="enroll"`) || p.header.Get("Content-Security-Policy") != wantCSPJS {
		t.Fatalf("password step: no passkey enrolment beside TOTP (CSP %q)", p.header.Get("Content-Security-Policy"))
	}
	if c := p.header.Values("Set-Cookie"); len(c) > 0 && strings.Contains(strings.Join(c, ";"), "session=") {
		t.Fatalf("a session before the factor is confirmed: %v", c)
	}
	ch := regexp.MustCompile(`name="challenge" value="([^"]+)"`).FindStringSubmatch(p.body)
	code, err := totp.GenerateCodeCustom(secret[1], time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil || ch == nil {
		t.Fatalf("code %v, challenge %v", err, ch)
	}
	p = b.post("/auth/ui/login/enroll", url.Values{"challenge": {ch[1]}, "code": {code}})
	if p.status != 200 || strings.Count(p.body, "<li><code>") != 10 {
		t.Fatalf("confirm: %d, want 10 recovery codes:\n%s", p.status, p.body)
	}
	if a := b.do("GET", "/auth/ui/account", nil); a.status != 200 || !strings.Contains(a.body, "Authenticator app: <strong>on</strong>") {
		t.Fatalf("account after enrolment: %d\n%s", a.status, a.body)
	}
}

// With passkeys the only method offered and a second factor required, the
// password step leads to a passkey enrolment (the one page that loads the
// script then), with no TOTP set-up and no session yet.
func TestPagesRequiredPasskeyOnly(t *testing.T) {
	e := start(t, map[string]string{"AUTH_MFA_MODE": "required", "AUTH_MFA_METHODS": "passkey"})
	e.Do(t, "POST", "/auth/signup", map[string]string{"email": "keys@example.com", "password": "correct horse battery"})
	tok := authtest.TokenFromMail(t, e.Mail.WaitForMessage(t, "keys@example.com", 15*time.Second).Text)
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": tok}); r.Status != 200 {
		t.Fatalf("verify: %d", r.Status)
	}
	b := newBrowser(t, e)
	b.do("GET", "/auth/ui/login", nil)
	p := b.post("/auth/ui/login", url.Values{"email": {"keys@example.com"}, "password": {"correct horse battery"}})
	if p.status != 200 || !strings.Contains(p.body, `data-passkey="enroll"`) || !strings.Contains(p.body, `<label for="passkey-name">`) ||
		strings.Contains(p.body, `id="secret"`) || !strings.Contains(p.body, script) {
		t.Fatalf("password step: %d, no passkey enrolment (or a TOTP set-up):\n%s", p.status, p.body)
	}
	if csp := p.header.Get("Content-Security-Policy"); csp != wantCSPJS {
		t.Fatalf("enrolment page CSP %q, want %q", csp, wantCSPJS)
	}
	if c := p.header.Values("Set-Cookie"); strings.Contains(strings.Join(c, ";"), "session=") {
		t.Fatalf("a session before a factor is enrolled: %v", c)
	}
}
