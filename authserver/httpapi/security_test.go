package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

// Signup, resend and forgot answer the same for known and unknown
// addresses; login answers the same for an unknown address and a wrong
// password. (Their timing: TestTimingTellsNothing.)
func TestNoAccountEnumeration(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_RATELIMIT_LOGIN_IP": "off", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "off", "AUTH_LOCKOUT_THRESHOLD": "0",
		"AUTH_RATELIMIT_SIGNUP_IP": "off", "AUTH_RATELIMIT_EMAIL_IP": "off",
	}})
	known, pw := "known@example.com", "known user password"
	e.SignupVerifyLogin(t, known, pw)

	same := func(what string, a, b *authtest.Response) {
		t.Helper()
		if a.Status != b.Status || !bytes.Equal(a.Body, b.Body) {
			t.Errorf("%s: known %d %s, unknown %d %s", what, a.Status, a.Body, b.Status, b.Body)
		}
	}
	body := func(email string) map[string]string {
		return map[string]string{"email": email, "password": "another password 1"}
	}
	same("signup", e.Do(t, "POST", "/auth/signup", body(known)), e.Do(t, "POST", "/auth/signup", body("nobody1@example.com")))
	same("resend", e.Do(t, "POST", "/auth/resend-verification", map[string]string{"email": known}),
		e.Do(t, "POST", "/auth/resend-verification", map[string]string{"email": "nobody2@example.com"}))
	same("forgot", e.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": known}),
		e.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": "nobody3@example.com"}))
	same("login", e.Do(t, "POST", "/auth/login", body(known)), e.Do(t, "POST", "/auth/login", body("nobody4@example.com")))

	// The existing account got an "account exists" email, not a verification.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var subjects []string
		for _, m := range e.Mail.Messages(t) {
			for _, to := range m.To {
				if to == known {
					subjects = append(subjects, m.Subject)
				}
			}
		}
		if strings.Contains(strings.Join(subjects, "|"), "Sign-up attempt") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no account-exists email to %s; got %q", known, subjects)
		}
		time.Sleep(50 * time.Millisecond)
	}

}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func TestLockoutAndRateLimits(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_LOCKOUT_THRESHOLD": "3", "AUTH_LOCKOUT_BASE": "2s", "AUTH_LOCKOUT_MAX": "10s",
		"AUTH_RATELIMIT_LOGIN_ACCOUNT": "off", "AUTH_RATELIMIT_LOGIN_IP": "7/1m",
		"AUTH_RATELIMIT_EMAIL_ACCOUNT": "2/1h", "AUTH_RATELIMIT_SIGNUP_IP": "4/1h",
	}})
	email, pw := "locked@example.com", "the right password"
	e.SignupVerifyLogin(t, email, pw) // login 1 of the IP limit

	// Three wrong passwords lock the account.
	for i := 0; i < 3; i++ {
		if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": "wrong password!"}); r.Status != 401 {
			t.Fatalf("wrong password %d: %d %s", i, r.Status, r.Body)
		}
	}
	// Locked: even the right password gets 429 with Retry-After.
	r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw})
	if r.Status != 429 || r.ErrorCode() != "rate_limited" {
		t.Fatalf("locked login: %d %s", r.Status, r.Body)
	}
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if kinds := auditKinds(t, e.Store); kinds["LOCKOUT"] != 1 {
		t.Fatalf("LOCKOUT audit rows: %v", kinds)
	}
	// After the lock expires the right password works and resets the count.
	time.Sleep(time.Duration(ra)*time.Second + 100*time.Millisecond)
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw}); r.Status != 200 {
		t.Fatalf("login after the lock: %d %s", r.Status, r.Body)
	}
	// 5 logins counted so far from this IP (a refused locked attempt is not
	// counted); with a limit of 7 the 8th is refused.
	e.Do(t, "POST", "/auth/login", map[string]string{"email": "other1@example.com", "password": "whatever pw 1"})
	e.Do(t, "POST", "/auth/login", map[string]string{"email": "other2@example.com", "password": "whatever pw 2"})
	r = e.Do(t, "POST", "/auth/login", map[string]string{"email": "other3@example.com", "password": "whatever pw 3"})
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("IP limit: %d %s", r.Status, r.Body)
	}
	// A client behind an untrusted proxy cannot dodge it with X-Forwarded-For.
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": "other4@example.com", "password": "whatever pw 4"}, "X-Forwarded-For", "198.51.100.7"); r.Status != 429 {
		t.Fatalf("X-Forwarded-For from an untrusted peer was honoured: %d", r.Status)
	}

	// Per-account limit on emails: the third forgot for one address is refused.
	for i := 0; i < 2; i++ {
		if r := e.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": email}); r.Status != 202 {
			t.Fatalf("forgot %d: %d", i, r.Status)
		}
	}
	if r := e.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": email}); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("third forgot: %d %s", r.Status, r.Body)
	}
	// Signup per IP: 1 used by SignupVerifyLogin, 3 more pass, then 429.
	for i := 0; i < 3; i++ {
		if r := e.Do(t, "POST", "/auth/signup", map[string]string{"email": fmt.Sprintf("s%d@example.com", i), "password": "signup password"}); r.Status != 202 {
			t.Fatalf("signup %d: %d %s", i, r.Status, r.Body)
		}
	}
	if r := e.Do(t, "POST", "/auth/signup", map[string]string{"email": "s9@example.com", "password": "signup password"}); r.Status != 429 {
		t.Fatalf("signup over the IP limit: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(e.MetricsText(t), `http_requests_total{method="POST",route="/auth/login",status_code="429"} 3`) {
		t.Error("429s not counted by route")
	}
}

func TestTrustedProxyForwardedFor(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{NoPooler: true, Vars: map[string]string{
		"AUTH_TRUSTED_PROXIES": "127.0.0.0/8", "AUTH_RATELIMIT_LOGIN_IP": "2/1m", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "off",
	}})
	login := func(ip string) int {
		return e.Do(t, "POST", "/auth/login", map[string]string{"email": "x@example.com", "password": "some password"}, "X-Forwarded-For", ip).Status
	}
	if login("203.0.113.1") != 401 || login("203.0.113.1") != 401 || login("203.0.113.1") != 429 {
		t.Fatal("per-IP limit not applied to the forwarded client address")
	}
	if s := login("203.0.113.2"); s != 401 {
		t.Fatalf("another forwarded client was limited: %d", s)
	}
	ctx := context.Background()
	var ip string
	if err := e.Store.Pool.QueryRow(ctx, "SELECT ip FROM audit_logs WHERE kind = 'LOGIN_FAIL' ORDER BY id LIMIT 1").Scan(&ip); err != nil || ip != "203.0.113.1" {
		t.Fatalf("audit ip %q %v", ip, err)
	}
}

// Someone who knows the address cannot keep its owner out: failures lock
// the failing client (an IPv6 client by its /64) out of the account, and
// the owner on another client logs in.
func TestAttackerCannotLockOutOwner(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{NoPooler: true, Vars: map[string]string{
		"AUTH_TRUSTED_PROXIES": "127.0.0.0/8", "AUTH_LOCKOUT_THRESHOLD": "3", "AUTH_LOCKOUT_BASE": "1m",
	}})
	email, pw := "owner@example.com", "the owners password"
	e.SignupVerifyLogin(t, email, pw)
	login := func(ip, pw string) *authtest.Response {
		return e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw}, "X-Forwarded-For", ip)
	}
	for i := 0; i < 3; i++ {
		if r := login("2001:db8:bad::1", "attackers guess!"); r.Status != 401 {
			t.Fatalf("attacker's guess %d: %d %s", i, r.Status, r.Body)
		}
	}
	// The attacker is locked out, on every address of its /64, even with the right password.
	if r := login("2001:db8:bad::2", pw); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("attacker's /64 after the lock: %d %s", r.Status, r.Body)
	}
	// The owner is not.
	if r := login("198.51.100.20", pw); r.Status != 200 {
		t.Fatalf("owner locked out by someone else: %d %s", r.Status, r.Body)
	}
}
