package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/testservers"
)

// mailsTo waits for n emails to addr and returns them.
func mailsTo(t *testing.T, e *authtest.Env, addr string, n int) []testservers.Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out []testservers.Message
		for _, m := range e.Mail.Messages(t) {
			for _, to := range m.To {
				if strings.EqualFold(to, addr) {
					out = append(out, m)
				}
			}
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d emails to %s, want %d", len(out), addr, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// resetToken waits for a password-reset email to addr and returns its token. Counting
// emails is not enough: delivery is at least once, and under load the verification
// email can arrive twice before the reset email does.
func resetToken(t *testing.T, e *authtest.Env, addr string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, m := range mailsTo(t, e, addr, 1) {
			if strings.Contains(m.Text, "/reset-password?token=") {
				return authtest.TokenFromMail(t, m.Text)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no password-reset email to %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newestToken returns the token, among those in msgs' links, that was issued last.
func newestToken(t *testing.T, e *authtest.Env, msgs []testservers.Message) string {
	t.Helper()
	best, bestID := "", int64(-1)
	for _, m := range msgs {
		tok := authtest.TokenFromMail(t, m.Text)
		h := sha256.Sum256([]byte(tok))
		var id int64
		if err := e.Store.Pool.QueryRow(context.Background(), "SELECT id FROM email_tokens WHERE token_hash = $1", h[:]).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if id > bestID {
			best, bestID = tok, id
		}
	}
	return best
}

func creds(email, pw string) map[string]string {
	return map[string]string{"email": email, "password": pw}
}

// Account pre-hijacking, step by step: a second signup of an unverified address
// and the owner's click on the newest email activate the owner's password,
// not the first signer's.
func TestPreHijackedAccountGetsOwnersPassword(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	owner := "owner@example.com"
	r1 := e.Do(t, "POST", "/auth/signup", creds(owner, "first-signer-pass-1"))
	r2 := e.Do(t, "POST", "/auth/signup", creds(owner, "owners-own-pass-22"))
	if r1.Status != 202 || r2.Status != 202 || string(r1.Body) != string(r2.Body) {
		t.Fatalf("signups: %d %s / %d %s", r1.Status, r1.Body, r2.Status, r2.Body)
	}
	tok := newestToken(t, e, mailsTo(t, e, owner, 2))
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": tok}); r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/login", creds(owner, "first-signer-pass-1")); r.Status != 401 {
		t.Fatalf("first signer's password: %d %s, want 401", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/login", creds(owner, "owners-own-pass-22")); r.Status != 200 {
		t.Fatalf("owner's password: %d %s, want 200", r.Status, r.Body)
	}
}

// A completed reset lifts the account lock.
func TestResetLiftsLock(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_LOCKOUT_THRESHOLD": "3", "AUTH_LOCKOUT_BASE": "10m", "AUTH_LOCKOUT_MAX": "1h",
	}})
	email, pw := "lockedout@example.com", "the owners password"
	e.SignupVerifyLogin(t, email, pw)
	for i := 0; i < 3; i++ {
		e.Do(t, "POST", "/auth/login", creds(email, "someone guessing"))
	}
	if r := e.Do(t, "POST", "/auth/login", creds(email, pw)); r.Status != 429 {
		t.Fatalf("locked account: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": email}); r.Status != 202 {
		t.Fatalf("forgot: %d", r.Status)
	}
	tok := resetToken(t, e, email)
	if r := e.Do(t, "POST", "/auth/password/reset", map[string]string{"token": tok, "password": "a brand new password"}); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/login", creds(email, "a brand new password")); r.Status != 200 {
		t.Fatalf("login after the reset: %d %s, want 200 (the reset lifts the lock)", r.Status, r.Body)
	}
}

// A password change answers with a new session token (and
// cookie); the token it was made with no longer works.
func TestChangePasswordRotatesToken(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	email := "rotate@example.com"
	old := e.SignupVerifyLogin(t, email, "the old password")
	r := e.Do(t, "POST", "/auth/password/change", map[string]string{"current_password": "the old password", "new_password": "the new password"}, authtest.Bearer(old)...)
	tok, _ := r.JSON["token"].(string)
	if r.Status != 200 || len(tok) != 43 || tok == old || !strings.Contains(r.Header.Get("Set-Cookie"), "session="+tok) {
		t.Fatalf("change: %d %s %v", r.Status, r.Body, r.Header)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(old)...); r.Status != 401 {
		t.Fatalf("the token the change was made with: %d", r.Status)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...); r.Status != 200 {
		t.Fatalf("the new token: %d", r.Status)
	}
}

// The token endpoints are limited per client, and a made-up
// token is refused before anything is hashed.
func TestTokenEndpointsRateLimited(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_RATELIMIT_TOKEN_IP": "5/1h"}})
	fake := func(i int) string {
		b := make([]byte, 32)
		b[0] = byte(i)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for i := 0; i < 3; i++ {
		if r := e.Do(t, "POST", "/auth/password/reset", map[string]string{"token": fake(i), "password": "some new password"}); r.Status != 400 || r.ErrorCode() != "invalid_token" {
			t.Fatalf("made-up reset token %d: %d %s", i, r.Status, r.Body)
		}
	}
	for i := 3; i < 5; i++ {
		if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": fake(i)}); r.Status != 400 {
			t.Fatalf("made-up verify token %d: %d %s", i, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "POST", "/auth/password/reset", map[string]string{"token": fake(9), "password": "some new password"}); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth bad token from one client: %d %s, want 429", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": fake(10)}); r.Status != 429 {
		t.Fatalf("verify-email over the limit: %d %s, want 429", r.Status, r.Body)
	}
}
