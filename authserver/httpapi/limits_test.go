package httpapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/ratelimit"
)

// A login refused by the client's own login-ip limit (no password checked,
// so no failure recorded and never a lock) does not spend the account's
// soft limit either: were it counted there, one address could keep the
// victim at 429 each window anew without ever being locked, where
// docs/security.md says it takes fresh addresses "each locked after five
// failures".
func TestLoginsOverTheIPLimitDoNotSpendTheAccountLimit(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_TRUSTED_PROXIES":         "127.0.0.1/32",
		"AUTH_RATELIMIT_LOGIN_IP":      "3/1m",
		"AUTH_RATELIMIT_LOGIN_ACCOUNT": "10/1m",
		"AUTH_LOCKOUT_THRESHOLD":       "5",
	}})
	victim, pw := "soft-limit-victim@example.com", "the victims passphrase"
	e.SignupVerifyLogin(t, victim, pw)
	attacker := []string{"X-Forwarded-For", "203.0.113.7"}
	// The attacker spends its own per-IP allowance on made-up addresses...
	for i := 0; i < 3; i++ {
		if r := e.Do(t, "POST", "/auth/login", creds(fmt.Sprintf("nobody%d@example.com", i), "whatever guess"), attacker...); r.Status != 401 {
			t.Fatalf("made-up login %d: %d %s", i, r.Status, r.Body)
		}
	}
	// ...then sends logins for the victim that are refused before any password check.
	for i := 0; i < 12; i++ {
		if r := e.Do(t, "POST", "/auth/login", creds(victim, "not even checked"), attacker...); r.Status != 429 {
			t.Fatalf("attacker's login %d over its IP limit: %d %s", i, r.Status, r.Body)
		}
	}
	rdb, err := newRedis(e)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	fails, err := rdb.HLen(context.Background(), "authstack:rl:acct:"+ratelimit.AccountKey(victim)).Result()
	if err != nil {
		t.Fatal(err)
	}
	r := e.Do(t, "POST", "/auth/login", creds(victim, pw), "X-Forwarded-For", "198.51.100.20")
	if r.Status != 200 {
		t.Fatalf("the victim, from another network, with the right password: %d %s (Retry-After %q); the attacker had %d failures recorded against the account (no lock possible) and no password of its was checked",
			r.Status, r.Body, r.Header.Get("Retry-After"), fails)
	}
}

// Resend-verification requests for a verified address send nothing; they
// must not spend the per-address limit of password resets, or three cheap
// requests an hour from anywhere would shut the owner's reset, the way out
// of every lock (docs/security.md).
func TestResendsDoNotSpendTheOwnersResets(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_TRUSTED_PROXIES": "127.0.0.1/32"}})
	victim := "reset-blocked@example.com"
	e.SignupVerifyLogin(t, victim, "the victims passphrase")
	for i := 0; i < 3; i++ {
		if r := e.Do(t, "POST", "/auth/resend-verification", map[string]string{"email": victim}, "X-Forwarded-For", "203.0.113.7"); r.Status != 202 {
			t.Fatalf("attacker's resend %d: %d %s", i, r.Status, r.Body)
		}
	}
	r := e.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": victim}, "X-Forwarded-For", "198.51.100.20")
	if r.Status != 202 {
		t.Fatalf("the owner's password/forgot after three resends by a stranger (no email sent to the owner by them): %d %s (Retry-After %q)",
			r.Status, r.Body, r.Header.Get("Retry-After"))
	}
}
