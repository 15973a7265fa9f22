package httpapi_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/store"
)

// The whole flow through the real HTTP server, with the database reached
// through pgbouncer in transaction mode and the email read from the SMTP server.
func TestSignupVerifyLoginSessionLogoutFlow(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	email, pw := "Alice@Example.com", "a long enough passphrase"

	r := e.Do(t, "POST", "/auth/signup", map[string]string{"email": email, "password": pw})
	if r.Status != 202 || r.JSON["status"] != "verification_sent" {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	// Not verified yet: a correct password gets 403, a wrong one 401.
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw}); r.Status != 403 || r.ErrorCode() != "email_not_verified" {
		t.Fatalf("login before verification: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw + "x"}); r.Status != 401 || r.ErrorCode() != "invalid_credentials" {
		t.Fatalf("wrong password before verification: %d %s", r.Status, r.Body)
	}

	msg := e.Mail.WaitForMessage(t, "alice@example.com", 15*time.Second)
	if !strings.Contains(msg.Subject, "Confirm") || !strings.Contains(msg.Text, "https://app.authstack.test/verify-email?token=") ||
		!strings.Contains(msg.HTML, "https://app.authstack.test/verify-email?token=") {
		t.Fatalf("unexpected verification email: %+v", msg)
	}
	if msg.From != "noreply@authstack.test" && !strings.Contains(msg.From, "noreply@authstack.test") {
		t.Fatalf("From = %q", msg.From)
	}
	tok := authtest.TokenFromMail(t, msg.Text)

	// Only the hash of the token is stored.
	var n int
	if err := e.Store.Pool.QueryRow(context.Background(), "SELECT count(*) FROM email_tokens WHERE token_hash = $1::bytea", []byte(tok)).Scan(&n); err != nil || n != 0 {
		t.Fatalf("token stored in plain text? n=%d err=%v", n, err)
	}

	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": tok}); r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": tok}); r.Status != 400 || r.ErrorCode() != "invalid_token" {
		t.Fatalf("second use of a verification token: %d %s", r.Status, r.Body)
	}

	r = e.Do(t, "POST", "/auth/login", map[string]string{"email": "alice@example.com", "password": pw}, "User-Agent", "flow-test/1")
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	token, _ := r.JSON["token"].(string)
	user, _ := r.JSON["user"].(map[string]any)
	if len(token) != 43 || user["email"] != "alice@example.com" || user["email_verified"] != true || user["id"] == "" {
		t.Fatalf("login body: %s", r.Body)
	}
	if exp, err := time.Parse(time.RFC3339, r.JSON["expires_at"].(string)); err != nil || time.Until(exp) < 6*24*time.Hour {
		t.Fatalf("expires_at %v (%v)", r.JSON["expires_at"], err)
	}
	cookie := r.Header.Get("Set-Cookie")
	for _, want := range []string{"session=" + token, "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Fatalf("cookie %q lacks %q", cookie, want)
		}
	}

	// The session, by bearer token and by cookie.
	r = e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(token)...)
	if r.Status != 200 {
		t.Fatalf("session: %d %s", r.Status, r.Body)
	}
	sess := r.JSON["session"].(map[string]any)
	if r.JSON["user"].(map[string]any)["id"] != user["id"] || sess["id"] == "" || sess["created_at"] == "" {
		t.Fatalf("session body: %s", r.Body)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, "Cookie", "session="+token); r.Status != 200 {
		t.Fatalf("session by cookie: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "GET", "/auth/check", nil, authtest.Bearer(token)...)
	if r.Status != 200 || r.Header.Get("X-Auth-User-Id") != user["id"] || r.Header.Get("X-Auth-Email") != "alice@example.com" {
		t.Fatalf("check: %d %v", r.Status, r.Header)
	}
	if r := e.Do(t, "GET", "/auth/check", nil); r.Status != 401 {
		t.Fatalf("check without a session: %d", r.Status)
	}

	// A second login makes a new session with a new id.
	r2 := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw})
	token2 := r2.JSON["token"].(string)
	if token2 == token {
		t.Fatal("same token on a second login")
	}
	r = e.Do(t, "GET", "/auth/sessions", nil, authtest.Bearer(token)...)
	list, _ := r.JSON["sessions"].([]any)
	if r.Status != 200 || len(list) != 2 {
		t.Fatalf("sessions: %d %s", r.Status, r.Body)
	}
	var otherID string
	currents := 0
	for _, x := range list {
		m := x.(map[string]any)
		if m["current"] == true {
			currents++
			if m["id"] != sess["id"] || m["user_agent"] != "flow-test/1" || m["ip"] != "127.0.0.1" {
				t.Fatalf("current session: %v", m)
			}
		} else {
			otherID = m["id"].(string)
		}
	}
	if currents != 1 || otherID == "" {
		t.Fatalf("sessions list: %s", r.Body)
	}

	// Cookie-authenticated state changes from another site are refused.
	if r := e.Do(t, "POST", "/auth/logout", nil, "Cookie", "session="+token, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); r.Status != 403 || r.ErrorCode() != "csrf_rejected" {
		t.Fatalf("cross-site cookie logout: %d %s", r.Status, r.Body)
	}

	// Revoke the other session; it stops working at once.
	if r := e.Do(t, "DELETE", "/auth/sessions/"+otherID, nil, authtest.Bearer(token)...); r.Status != 204 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(token2)...); r.Status != 401 {
		t.Fatalf("revoked session still valid: %d", r.Status)
	}
	if r := e.Do(t, "DELETE", "/auth/sessions/"+otherID, nil, authtest.Bearer(token)...); r.Status != 404 {
		t.Fatalf("revoking twice: %d", r.Status)
	}
	if r := e.Do(t, "DELETE", "/auth/sessions/not-a-uuid", nil, authtest.Bearer(token)...); r.Status != 404 {
		t.Fatalf("revoking a malformed id: %d", r.Status)
	}

	// Logout with the cookie from the frontend's origin.
	r = e.Do(t, "POST", "/auth/logout", nil, "Cookie", "session="+token, "Origin", "https://app.authstack.test", "Sec-Fetch-Site", "same-site")
	if r.Status != 204 || !strings.Contains(r.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(token)...); r.Status != 401 || r.ErrorCode() != "unauthorized" {
		t.Fatalf("session after logout: %d %s", r.Status, r.Body)
	}

	// The audit log recorded the story.
	kinds := auditKinds(t, e.Store)
	for _, k := range []string{"SIGNUP", "VERIFY_SENT", "EMAIL_VERIFIED", "LOGIN_SUCCESS", "LOGIN_FAIL", "SESSION_REVOKED", "LOGOUT"} {
		if kinds[k] == 0 {
			t.Errorf("no %s audit row; have %v", k, kinds)
		}
	}
	// Metrics by route pattern, never by raw path.
	m := e.MetricsText(t)
	for _, want := range []string{
		`http_requests_total{method="DELETE",route="/auth/sessions/{id}",status_code="204"} 1`,
		`http_requests_total{method="POST",route="/auth/login",status_code="200"} 2`,
		`auth_events_total{kind="LOGIN_SUCCESS"} 2`,
		`email_events_total{kind="VERIFY_SENT"} 1`,
		"http_request_duration_seconds_bucket", "go_goroutines", "redis_sessions_active",
		// The pools and Redis memory of the dashboard's panels (config/monitoring).
		`db_pool_connections{state="idle"}`, "db_pool_acquires_total", "db_pool_max_connections",
		`redis_pool_connections{state="total"}`, "redis_pool_timeouts_total", "redis_memory_max_bytes",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !regexp.MustCompile(`\nredis_memory_used_bytes [1-9]`).MatchString(m) {
		t.Error("redis_memory_used_bytes was not read from the running Redis")
	}
	if strings.Contains(m, otherID) {
		t.Error("a raw path leaked into metric labels")
	}
	// No secret in the logs.
	logs := e.Logs()
	for _, secret := range []string{pw, token, token2, tok, e.Vars["AUTH_PEPPER"]} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain a secret %q", secret[:6])
		}
	}
}

func auditKinds(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	rows, err := st.Pool.Query(context.Background(), "SELECT kind, count(*)::int4 FROM audit_logs GROUP BY kind")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int32
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = int(n)
	}
	return out
}

var _ = http.StatusOK
