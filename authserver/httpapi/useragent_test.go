package httpapi_test

import (
	"testing"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

// A User-Agent that is not valid UTF-8 (HTTP allows any byte above 0x7f in
// a header) is stored in the audit log and sessions as text: every flow
// that writes it answers as usual, never 500.
func TestInvalidUTF8UserAgent(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	ua := []string{"User-Agent", "Mozilla\xff\xfe/5.0 \xc3"}
	email, pw := "agent@example.com", "agent password 1"
	tok := e.SignupVerifyLogin(t, email, pw)
	for _, c := range []struct {
		path string
		body any
		want int
	}{
		{"/auth/signup", creds("new-agent@example.com", pw), 202},
		{"/auth/signup", creds(email, pw), 202},
		{"/auth/login", creds(email, "a wrong password"), 401},
		{"/auth/login", creds("nobody@example.com", "a wrong password"), 401},
		{"/auth/login", creds(email, pw), 200},
		{"/auth/resend-verification", map[string]string{"email": "new-agent@example.com"}, 202},
		{"/auth/password/forgot", map[string]string{"email": email}, 202},
		{"/auth/password/forgot", map[string]string{"email": "nobody@example.com"}, 202},
	} {
		if r := e.Do(t, "POST", c.path, c.body, ua...); r.Status != c.want {
			t.Errorf("%s with a non-UTF-8 User-Agent: %d %s, want %d", c.path, r.Status, r.Body, c.want)
		}
	}
	if r := e.Do(t, "POST", "/auth/logout", nil, append(ua, authtest.Bearer(tok)...)...); r.Status >= 300 {
		t.Errorf("logout with a non-UTF-8 User-Agent: %d %s", r.Status, r.Body)
	}
	// Nor does such a header keep failed logins out of the audit log.
	var fails int
	if err := e.Store.Pool.QueryRow(t.Context(), "SELECT count(*) FROM audit_logs WHERE kind = 'LOGIN_FAIL'").Scan(&fails); err != nil || fails != 2 {
		t.Errorf("%d LOGIN_FAIL audit rows, want 2 (%v)", fails, err)
	}
}
