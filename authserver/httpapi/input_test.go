package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/session"
)

// The server acts on what the user meant, and refuses what it
// cannot know the meaning of.
func TestInputIsWhatTheUserMeant(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})

	// Invalid UTF-8 in a password is refused, not turned into U+FFFD (which
	// would make "pass\xffword" and "pass\xfeword" the same password).
	for _, path := range []string{"/auth/signup", "/auth/login"} {
		if r := e.Do(t, "POST", path, "{\"email\":\"utf@example.com\",\"password\":\"pass\xffword12\"}"); r.Status != 400 {
			t.Fatalf("%s with invalid UTF-8: %d %s", path, r.Status, r.Body)
		}
		if r := e.Do(t, "POST", path, `{"email":"utf@example.com","password":"pass\udc00word12"}`); r.Status != 400 {
			t.Fatalf("%s with a lone surrogate: %d %s", path, r.Status, r.Body)
		}
	}

	// Passwords are NFKC-normalised: fullwidth letters are the ASCII ones;
	// emails are one account per mailbox whatever the case or composition.
	e.SignupVerifyLogin(t, "\u00e9lodie@example.com", "ｐａｓｓｗｏｒｄ ｏｎｅ")
	for _, email := range []string{"\u00c9LODIE@Example.COM", "e\u0301lodie@example.com", "E\u0301lodie@EXAMPLE.com"} {
		if r := e.Do(t, "POST", "/auth/login", creds(email, "password one")); r.Status != 200 {
			t.Fatalf("login as %q with the ASCII form: %d %s", email, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "POST", "/auth/signup", creds("E\u0301LODIE@example.com", "another password 1")); r.Status != 202 {
		t.Fatalf("signup: %d", r.Status)
	}
	var n int
	if err := e.Store.Pool.QueryRow(t.Context(), "SELECT count(*) FROM users").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d accounts for one mailbox (%v)", n, err)
	}

	// The length rules apply at login: 400 at once, no hash.
	start := time.Now()
	r := e.Do(t, "POST", "/auth/login", creds("\u00e9lodie@example.com", strings.Repeat("x", 16000)))
	if r.Status != 400 || r.ErrorCode() != "invalid_password" {
		t.Fatalf("16,000-character password: %d %s", r.Status, r.Body)
	}
	t.Logf("16,000-character password refused in %s", time.Since(start))

	// JSON only: a cross-site form (text/plain, no preflight) cannot log in.
	login := `{"email":"elodie@example.com","password":"password one"}`
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded"} {
		for _, path := range []string{"/auth/login", "/auth/signup"} {
			if r := e.Do(t, "POST", path, login, "Content-Type", ct); r.Status != 415 {
				t.Fatalf("%s with Content-Type %q: %d %s", path, ct, r.Status, r.Body)
			}
		}
	}
	// The cross-origin check of the other state-changing routes.
	for path, body := range map[string]any{
		"/auth/login": creds("\u00e9lodie@example.com", "password one"), "/auth/signup": creds("new@example.com", "password one"),
		"/auth/password/forgot": map[string]string{"email": "\u00e9lodie@example.com"},
	} {
		if r := e.Do(t, "POST", path, body, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); r.Status != 403 || r.ErrorCode() != "csrf_rejected" {
			t.Fatalf("cross-site %s: %d %s", path, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "POST", "/auth/login", creds("\u00e9lodie@example.com", "password one"), "Origin", "https://app.authstack.test", "Sec-Fetch-Site", "same-site"); r.Status != 200 {
		t.Fatalf("same-site login: %d %s", r.Status, r.Body)
	}
}

// An Authorization header that is not a session token (an
// app's own JWT, Basic auth, forwarded by a proxy to /auth/check) leaves
// the decision to the session cookie.
func TestForeignAuthorizationFallsBackToCookie(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	cookie := "session=" + e.SignupVerifyLogin(t, "proxied@example.com", "proxied app password")
	appToken, _ := session.NewToken() // an app's own opaque token, shaped like ours
	for _, authz := range []string{"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "Basic dXNlcjpwYXNz", "Bearer " + appToken} {
		if r := e.Do(t, "GET", "/auth/check", nil, "Authorization", authz, "Cookie", cookie); r.Status != 200 {
			t.Fatalf("/auth/check with %q and the cookie: %d %s", authz[:6], r.Status, r.Body)
		}
		if r := e.Do(t, "GET", "/auth/check", nil, "Authorization", authz); r.Status != 401 {
			t.Fatalf("/auth/check with %q alone: %d", authz[:6], r.Status)
		}
	}
	// Falling back to the cookie keeps the cookie's cross-origin check.
	if r := e.Do(t, "POST", "/auth/logout-all", nil, "Authorization", "Bearer "+appToken, "Cookie", cookie, "Sec-Fetch-Site", "cross-site"); r.Status != 403 {
		t.Fatalf("cross-site logout with an app's token and the cookie: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/check", nil, "Cookie", cookie); r.Status != 200 {
		t.Fatalf("the session after a refused cross-site logout: %d", r.Status)
	}
}
