package ui_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/testservers"
)

// phoneWidth is the viewport every page is checked at: nothing may be
// wider (no sideways scrolling on a small phone).
const phoneWidth = 375

// chromium is Debian's chromium, installed by hack/test-deps.sh
// (CHROMIUM overrides the path).
func chromium(t *testing.T) string {
	t.Helper()
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("chromium not found at %s (%v): run hack/test-deps.sh as root (it installs Debian's chromium) or set CHROMIUM", p, err)
	}
	return p
}

// artefacts is the folder for the screenshots (bin/ is gitignored).
func artefacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("UI_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "artefacts", "ui", t.Name())
	}
	dir, _ = filepath.Abs(dir)
	if err := os.RemoveAll(dir); err != nil { // the last run's
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// headless starts one headless chromium with the flags this machine needs
// (no sandbox as root, no network of its own) and a new empty profile.
func headless(t *testing.T) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", chromium(t), err)
	}
	return ctx
}

// tab is one browser context (its own cookies) at a phone's width.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
	base string
	dir  string
	shot int
}

func newTab(t *testing.T, browser context.Context, name, base, dir string, own bool) *tab {
	t.Helper()
	ctx := browser
	if own {
		var cancel context.CancelFunc
		ctx, cancel = chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		t.Cleanup(cancel)
	}
	// The first action opens the tab: without a timeout (one would close it).
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(phoneWidth, 800)); err != nil {
		t.Fatalf("opening tab %s: %v", name, err)
	}
	tb := &tab{t: t, name: name, ctx: ctx, base: base, dir: dir}
	return tb
}

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		url, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("location.href"))
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
		b.t.Fatalf("%s: %v\nat %s:\n%s", b.name, err, url, html)
	}
}

func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: evaluating %s: %v", b.name, expr, err)
	}
	return v
}

// at waits for the page whose h1 is title (a new document: fill marks the
// one it leaves), then saves its screenshot and checks that it is no wider
// than the phone.
func (b *tab) at(title string) {
	b.t.Helper()
	ready := fmt.Sprintf(`!window.leaving && document.readyState === "complete" && document.querySelector("h1") !== null && document.querySelector("h1").textContent === %q`, title)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](ready))
		cancel()
		if err == nil && ok {
			break
		}
		// An evaluation that meets a navigation fails; that is waiting too.
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
			b.t.Fatalf("%s: no page %q within 20s (last error: %v):\n%s", b.name, title, err, html)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.shot++
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("%s: screenshot: %v", b.name, err)
	}
	file := filepath.Join(b.dir, fmt.Sprintf("%s-%02d-%s.png", b.name, b.shot, strings.ToLower(regexp.MustCompile(`\W+`).ReplaceAllString(title, "-"))))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	if w := eval[int](b, "document.documentElement.scrollWidth"); w > phoneWidth {
		b.t.Errorf("%s: page %q is %d px wide at a %d px viewport (%s)", b.name, title, w, phoneWidth, file)
	}
}

// authenticator gives the tab a DevTools virtual authenticator (resident
// keys, user verification, presence simulated).
func (b *tab) authenticator() {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.t.Fatal(err)
	}
	if _, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *tab) open(path string) { b.do(chromedp.Navigate(b.base + path)) }

// fill types into the fields (id, value pairs) and presses the button.
func (b *tab) fill(button string, fields ...string) {
	b.t.Helper()
	steps := []chromedp.Action[chromedp.Void]{js("window.leaving = true")}
	for i := 0; i+1 < len(fields); i += 2 {
		id := fields[i]
		steps = append(steps, js(fmt.Sprintf("document.getElementById(%q).value = ''", id)), chromedp.SendKeys(chromedp.ID(id), fields[i+1]))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(button)))
	b.do(steps...)
}

// js runs a statement in the page.
func js(stmt string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[chromedp.Void](stmt+"; undefined")(ctx, t)
		return chromedp.Void{}, err
	}
}

func (b *tab) text() string { return eval[string](b, "document.body.innerText") }

// totpCode is the code of the TOTP key secret, steps periods from now.
func totpCode(t *testing.T, secret string, steps int) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, time.Now().Add(time.Duration(steps)*30*time.Second),
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatalf("TOTP code of the key the page showed: %v", err)
	}
	return code
}

var hostedLink = regexp.MustCompile(`http://localhost:\d+(/auth/ui/[a-z-]+\?token=[A-Za-z0-9_-]+)`)

// The hosted pages in a real browser against a real authserver on real
// PostgreSQL, Redis and SMTP: sign up, read the email, verify, sign in,
// turn on TOTP, sign in with its code, a recovery code once, register a
// passkey and sign in with it without an email, two browsers, revoke one
// from the other's account page, reset the password, change it, sign out,
// a passkey as the only factor shows its recovery codes. Every page is screenshotted and checked
// at a phone's width.
func TestBrowserFlows(t *testing.T) {
	port := testservers.FreePort(t)
	// localhost, not 127.0.0.1: WebAuthn needs a host name for its RP id.
	base := "http://localhost:" + strconv.Itoa(port)
	// One person signs in a dozen times within a minute here.
	e := start(t, map[string]string{"PORT": strconv.Itoa(port), "FRONTEND_URL": base, "AUTH_RATELIMIT_LOGIN_ACCOUNT": "100/1m"})
	browser := headless(t) // after the server: it stops first, leaving no connection to drain
	dir := artefacts(t)
	const email, pw, pw2, pw3 = "ada@example.com", "correct horse battery", "another staple pony", "third good passphrase"
	seen := map[string]bool{}
	// link waits for a new email link to the hosted page path.
	link := func(path string) string {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			for _, m := range e.Mail.Messages(t) {
				for _, l := range hostedLink.FindAllStringSubmatch(m.Text, -1) {
					if strings.HasPrefix(l[1], path+"?") && !seen[l[1]] {
						seen[l[1]] = true
						return l[1]
					}
				}
			}
		}
		t.Fatalf("no new email link to %s", path)
		return ""
	}

	a := newTab(t, browser, "a", base, dir, false)
	a.open("/auth/ui/signup")
	a.at("Create an account")
	a.fill(`button[type=submit]`, "email", email, "password", "qwertyuiop") // common: refused by the server
	a.at("Create an account")
	if !strings.Contains(a.text(), "common") || eval[string](a, "document.activeElement.id") != "password" {
		t.Fatalf("common password: no inline error on the focused field:\n%s", a.text())
	}
	a.fill(`button[type=submit]`, "email", email, "password", pw)
	a.at("Check your email")

	a.open(link("/auth/ui/verify-email"))
	a.at("Confirm your email")
	a.fill(`button[type=submit]`)
	a.at("Email confirmed")
	a.fill(`a[href="/auth/ui/login"]`)
	a.at("Sign in")
	a.fill(`button[type=submit]`, "email", email, "password", "wrong password!")
	a.at("Sign in")
	if !strings.Contains(a.text(), "Email or password is incorrect.") {
		t.Fatalf("wrong password: %s", a.text())
	}
	a.fill(`button[type=submit]`, "email", email, "password", pw)
	a.at("Your account")

	// Turn on TOTP with the code computed from the key the page shows.
	a.fill(`form[action="/auth/ui/account/totp"] button`)
	a.at("Set up two-step verification")
	secret := eval[string](a, `document.getElementById("secret").textContent`)
	if !eval[bool](a, `document.querySelector("img.qr").complete && document.querySelector("img.qr").naturalWidth > 0`) {
		t.Fatalf("the QR code does not show")
	}
	a.fill(`button[type=submit]`, "code", totpCode(t, secret, 0))
	a.at("Save your recovery codes")
	codes := eval[[]string](a, `[...document.querySelectorAll(".codes code")].map(e => e.textContent)`)
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes shown, want 10: %v", len(codes), codes)
	}
	a.fill(`a[href="/auth/ui/account"]`)
	a.at("Your account")
	signOut := func(x *tab) {
		t.Helper()
		x.open("/auth/ui/account")
		x.at("Your account")
		x.fill(`form[action="/auth/ui/logout"] button`)
		x.at("Sign in")
	}
	// signIn signs in with the password, then the second factor.
	signIn := func(x *tab, password, method, code string) {
		t.Helper()
		x.open("/auth/ui/login")
		x.at("Sign in")
		x.fill(`button[type=submit]`, "email", email, "password", password)
		x.at("Two-step verification")
		x.fill(`form:has(#`+method+`) button`, method, code)
	}

	// The password alone no longer signs in: the second step takes the
	// next TOTP code (the one used to confirm is spent).
	signOut(a)
	signIn(a, pw, "totp", totpCode(t, secret, 1))
	a.at("Your account")

	// A recovery code works once.
	signOut(a)
	signIn(a, pw, "recovery", codes[0])
	a.at("Your account")
	signOut(a)
	signIn(a, pw, "recovery", codes[0])
	a.at("Two-step verification")
	if !strings.Contains(a.text(), "The code is incorrect or was already used.") {
		t.Fatalf("a used recovery code: %s", a.text())
	}
	a.fill(`form:has(#recovery) button`, "recovery", codes[1])
	a.at("Your account")

	// Register a passkey with the DevTools virtual authenticator (resident
	// key, user verification), then sign in with it without an email.
	a.authenticator()
	a.fill(`#passkey-register`, "passkey-name", "Test phone")
	a.at("Your account")
	if txt := a.text(); !strings.Contains(txt, "The passkey was added.") || !strings.Contains(txt, "Test phone") {
		t.Fatalf("no passkey listed: %s", txt)
	}
	// Rename it from the account page.
	a.fill(`form[action="/auth/ui/account/passkeys/rename"] button`, eval[string](a, `document.querySelector("form[action='/auth/ui/account/passkeys/rename'] input[name=name]").id`), "Work laptop")
	a.at("Your account")
	if txt := a.text(); !strings.Contains(txt, "The passkey was renamed.") || !strings.Contains(txt, "Work laptop") || strings.Contains(txt, "Test phone") {
		t.Fatalf("passkey not renamed: %s", txt)
	}
	signOut(a)
	a.fill(`#passkey-login`)
	a.at("Your account")

	// A second browser context (its own cookies) signs in too.
	b := newTab(t, browser, "b", base, dir, true)
	b.open("/auth/ui/account")
	b.at("Sign in") // no session: sent to the login page
	signIn(b, pw, "recovery", codes[2])
	b.at("Your account")

	// a signs b out from its account page; b's next request is signed out.
	a.open("/auth/ui/account")
	a.at("Your account")
	if n := eval[int](a, `document.querySelectorAll("#sessions li").length`); n != 2 {
		t.Fatalf("account lists %d sessions, want 2:\n%s", n, a.text())
	}
	a.fill(`form[action="/auth/ui/account/sessions/revoke"] button`)
	a.at("Your account")
	if !strings.Contains(a.text(), "The session was signed out.") {
		t.Fatalf("no notice after revoking: %s", a.text())
	}
	b.open("/auth/ui/account")
	b.at("Sign in")

	// b resets the password by email: every session ends, a's too.
	b.fill(`a[href="/auth/ui/forgot-password"]`)
	b.at("Reset your password")
	b.fill(`button[type=submit]`, "email", email)
	b.at("Check your email")
	b.open(link("/auth/ui/reset-password"))
	b.at("Choose a new password")
	b.fill(`button[type=submit]`, "password", pw2)
	b.at("Password changed")
	a.open("/auth/ui/account")
	a.at("Sign in")

	// The passkey as the second factor, then change the password from the
	// account page (a step-up: the sign-in was just now, with a factor).
	a.open("/auth/ui/login")
	a.at("Sign in")
	a.fill(`button[type=submit]`, "email", email, "password", pw2)
	a.at("Two-step verification")
	a.fill(`#passkey-mfa`)
	a.at("Your account")
	a.fill(`form[action="/auth/ui/account/password"] button`, "current_password", pw2, "new_password", pw3)
	a.at("Your account")
	if !strings.Contains(a.text(), "Your password is changed.") {
		t.Fatalf("no notice after the change: %s", a.text())
	}

	// Step-up: once the sign-in is older than the window, new recovery
	// codes first ask to confirm (focus on the code field); a recovery code
	// confirms, then the action works and the old codes stop working.
	ageSessions(t, e, email)
	a.fill(`form[action="/auth/ui/account/recovery-codes"] button`)
	a.at("Your account")
	if txt := a.text(); !strings.Contains(txt, "Confirm it is you, then try again.") || eval[string](a, "document.activeElement.id") != "reauth-code" {
		t.Fatalf("an old sign-in: no step-up form with the code field focused:\n%s", txt)
	}
	a.fill(`form:has(#reauth-recovery) button`, "reauth-recovery", codes[3])
	a.at("Your account")
	if txt := a.text(); !strings.Contains(txt, "Confirmed.") || strings.Contains(txt, "Confirm it is you") {
		t.Fatalf("step-up with a recovery code: %s", txt)
	}
	a.fill(`form[action="/auth/ui/account/recovery-codes"] button`)
	a.at("Save your recovery codes")
	fresh := eval[[]string](a, `[...document.querySelectorAll(".codes code")].map(e => e.textContent)`)
	if len(fresh) != 10 {
		t.Fatalf("%d new recovery codes shown, want 10", len(fresh))
	}
	signIn(b, pw3, "recovery", codes[4]) // an old, unused code
	b.at("Two-step verification")
	if !strings.Contains(b.text(), "The code is incorrect or was already used.") {
		t.Fatalf("an old recovery code after new ones: %s", b.text())
	}
	b.fill(`form:has(#recovery) button`, "recovery", fresh[0])
	b.at("Your account")

	// Adding a passkey after the window leads to the step-up form too;
	// confirm with the passkey, then remove it and the authenticator app.
	ageSessions(t, e, email)
	a.open("/auth/ui/account")
	a.at("Your account")
	a.fill(`#passkey-register`, "passkey-name", "Spare")
	a.at("Your account")
	if txt := a.text(); !strings.Contains(txt, "Confirm it is you, then try again.") || !eval[bool](a, `document.getElementById("reauth-h") !== null`) {
		t.Fatalf("adding a passkey after an old sign-in: no step-up form:\n%s", txt)
	}
	a.fill(`#passkey-reauth`)
	a.at("Your account")
	if !strings.Contains(a.text(), "Confirmed.") {
		t.Fatalf("step-up with a passkey: %s", a.text())
	}
	a.fill(`form[action="/auth/ui/account/passkeys/remove"] button`)
	a.at("Your account")
	if txt := a.text(); !strings.Contains(txt, "The passkey was removed.") || !strings.Contains(txt, "No passkeys yet.") {
		t.Fatalf("passkey not removed: %s", txt)
	}
	a.fill(`form[action="/auth/ui/account/totp/remove"] button`)
	a.at("Your account")
	if txt := a.text(); !strings.Contains(txt, "The authenticator app was removed.") || !strings.Contains(txt, "Authenticator app: off.") {
		t.Fatalf("TOTP not removed: %s", txt)
	}

	// Sign out everywhere: b's session ends too.
	a.fill(`form[action="/auth/ui/account/logout-all"] button`)
	a.at("Sign in")
	b.open("/auth/ui/account")
	b.at("Sign in")

	// The removed passkey signs nobody in (the authenticator still holds it).
	a.fill(`#passkey-login`)
	a.do(chromedp.WaitVisible(chromedp.ID("passkey-error")))
	if url := eval[string](a, "location.pathname"); url != "/auth/ui/login" {
		t.Fatalf("a removed passkey: at %s", url)
	}
	// No factor left: the password set on the page signs in on its own.
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw3}); r.Status != 200 {
		t.Fatalf("the password set on the page, no factor left: %d %s", r.Status, r.Body)
	}
	// A passkey added on the account page as the only factor comes with
	// recovery codes, shown once in place (no navigation to wait for).
	a.fill(`button[type=submit]`, "email", email, "password", pw3)
	a.at("Your account")
	a.fill(`#passkey-register`, "passkey-name", "Only key")
	a.do(js("window.leaving = false"))
	a.at("Save your recovery codes")
	if n := eval[int](a, `document.querySelectorAll(".codes code").length`); n != 10 {
		t.Fatalf("%d recovery codes shown with the first passkey, want 10", n)
	}
	a.fill(`.links a`)
	a.at("Your account")
	if txt := a.text(); !strings.Contains(txt, "The passkey was added.") || !strings.Contains(txt, "Only key") {
		t.Fatalf("after the codes of the first passkey: %s", txt)
	}
}

// ageSessions moves the user's sessions' authentication an hour back, in
// PostgreSQL, and drops their Redis copies: the next action is outside
// the step-up window.
func ageSessions(t *testing.T, e *authtest.Env, email string) {
	t.Helper()
	ctx := context.Background()
	rows, err := e.Store.Pool.Query(ctx, `UPDATE sessions SET auth_at = now() - interval '1 hour'
		WHERE user_id = (SELECT id FROM users WHERE email = $1) RETURNING token_hash`, email)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, "authstack:session:"+hex.EncodeToString(h))
	}
	if rows.Close(); rows.Err() != nil || len(keys) == 0 {
		t.Fatalf("ageing the sessions of %s: %v (%d)", email, rows.Err(), len(keys))
	}
	rdb := redis.NewClient(&redis.Options{Addr: e.Redis.Addr(), Password: e.Redis.Password()})
	defer rdb.Close()
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
}

// With a second factor required, a user without one enrols a passkey on
// the page after the password step; it opens the session, and the next
// sign-in asks for it.
func TestBrowserRequiredPasskey(t *testing.T) {
	port := testservers.FreePort(t)
	base := "http://localhost:" + strconv.Itoa(port)
	e := start(t, map[string]string{"PORT": strconv.Itoa(port), "FRONTEND_URL": base, "AUTH_MFA_MODE": "required"})
	browser := headless(t)
	dir := artefacts(t)
	const email, pw = "grace@example.com", "correct horse battery"
	e.Do(t, "POST", "/auth/signup", map[string]string{"email": email, "password": pw})
	tok := authtest.TokenFromMail(t, e.Mail.WaitForMessage(t, email, 15*time.Second).Text)
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": tok}); r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	a := newTab(t, browser, "a", base, dir, false)
	a.authenticator()
	a.open("/auth/ui/login")
	a.at("Sign in")
	a.fill(`button[type=submit]`, "email", email, "password", pw)
	a.at("Set up two-step verification")
	if eval[bool](a, `document.getElementById("passkey-unsupported").hidden === false`) {
		t.Fatalf("the page says this browser cannot use passkeys")
	}
	a.fill(`#passkey-enroll`, "passkey-name", "Desk key")
	// The first factor comes with recovery codes, shown once by the script
	// in place (no navigation, so at must not wait for one).
	a.do(js("window.leaving = false"))
	a.at("Save your recovery codes")
	codes := eval[[]string](a, `[...document.querySelectorAll(".codes code")].map(e => e.textContent)`)
	if len(codes) != 10 || !eval[bool](a, `document.activeElement === document.querySelector(".links a")`) {
		t.Fatalf("%d recovery codes shown, want 10, and the focus on the link: %v", len(codes), codes)
	}
	a.fill(`.links a`)
	a.at("Your account")
	if txt := a.text(); !strings.Contains(txt, "Desk key") {
		t.Fatalf("no passkey after enrolling one at sign-in: %s", txt)
	}
	signInWith := func(button string, fields ...string) {
		t.Helper()
		a.fill(`form[action="/auth/ui/logout"] button`)
		a.at("Sign in")
		a.fill(`button[type=submit]`, "email", email, "password", pw)
		a.at("Two-step verification")
		a.fill(button, fields...)
		a.at("Your account")
	}
	signInWith(`#passkey-mfa`)
	signInWith(`form:has(#recovery) button`, "recovery", codes[0])
}
