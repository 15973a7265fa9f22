package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

// accessLines returns the access log lines of logs, decoded.
func accessLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, `"msg":"http request"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("access log line is not JSON: %v: %s", err, line)
		}
		out = append(out, m)
	}
	return out
}

func findAccess(lines []map[string]any, method, route string, status int) map[string]any {
	for _, l := range lines {
		if l["method"] == method && l["route"] == route && l["status"] == float64(status) {
			return l
		}
	}
	return nil
}

// One line per request with its fields, the client IP as the limiter sees
// it (through a trusted proxy), the caller's request id, and never a
// token, cookie, password, email or query string; the hot path sampled.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"ACCESS_LOG_HOT_SAMPLE": "1",
		"AUTH_TRUSTED_PROXIES":  "127.0.0.1/32",
	}})
	email, pw := "access.log.user@example.com", "access log passphrase 42"
	tok := e.SignupVerifyLogin(t, email, pw)

	xff := []string{"X-Forwarded-For", "203.0.113.7", "X-Request-Id", "req-abc.123"}
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw + "wrong"}, xff...); r.Status != 401 {
		t.Fatalf("wrong password: %d %s", r.Status, r.Body)
	}
	r := e.Do(t, "GET", "/auth/session", nil, append(xff[:2:2], authtest.Bearer(tok)...)...)
	if r.Status != 200 {
		t.Fatalf("session: %d %s", r.Status, r.Body)
	}
	id := r.Header.Get("X-Request-Id")
	if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Fatalf("generated X-Request-Id = %q, want 16 hex characters", id)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...); r.Header.Get("X-Request-Id") == id {
		t.Fatalf("two requests got the same X-Request-Id %q", id)
	}
	if r := e.Do(t, "GET", "/auth/check?token="+tok+"&secret=query-secret-77", nil, "Cookie", "session="+tok); r.Status != 200 {
		t.Fatalf("check by cookie: %d %s", r.Status, r.Body)
	}
	// A forged id (a line break, a secret-length value) is replaced.
	if r := e.Do(t, "GET", "/health", nil, "X-Request-Id", strings.Repeat("x", 65)); len(r.Header.Get("X-Request-Id")) != 16 {
		t.Fatalf("overlong X-Request-Id kept: %q", r.Header.Get("X-Request-Id"))
	}

	logs := e.Logs()
	lines := accessLines(t, logs)
	fail := findAccess(lines, "POST", "/auth/login", 401)
	if fail == nil {
		t.Fatalf("no access line for the failed login:\n%s", logs)
	}
	if fail["client_ip"] != "203.0.113.7" || fail["request_id"] != "req-abc.123" || fail["level"] != "INFO" {
		t.Fatalf("failed login line: %v", fail)
	}
	if d, ok := fail["duration_ms"].(float64); !ok || d <= 0 {
		t.Fatalf("duration_ms = %v", fail["duration_ms"])
	}
	if b, ok := fail["bytes"].(float64); !ok || b < 20 {
		t.Fatalf("bytes = %v", fail["bytes"])
	}
	if _, ok := fail["trace_id"]; ok {
		t.Fatalf("trace_id without tracing: %v", fail)
	}
	sess := findAccess(lines, "GET", "/auth/session", 200)
	if sess == nil || sess["client_ip"] != "203.0.113.7" || len(sess["request_id"].(string)) != 16 {
		t.Fatalf("session line: %v\n%s", sess, logs)
	}
	if findAccess(lines, "GET", "/auth/check", 200) == nil || findAccess(lines, "POST", "/auth/signup", 202) == nil ||
		findAccess(lines, "POST", "/auth/verify-email", 200) == nil || findAccess(lines, "GET", "/health", 200) == nil {
		t.Fatalf("missing access lines:\n%s", logs)
	}
	for _, secret := range []string{tok, pw, email, "access.log.user", "query-secret-77", "token="} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log contains %q:\n%s", secret, logs)
		}
	}

	// Sampled to nothing, the hot path is silent; the rest still logs.
	e.Vars["ACCESS_LOG_HOT_SAMPLE"] = "0"
	e.Restart(t)
	e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...)
	e.Do(t, "GET", "/auth/check", nil, authtest.Bearer(tok)...)
	e.Do(t, "GET", "/auth/check", nil, authtest.Bearer("not-a-token")...)
	e.Do(t, "GET", "/no/such/endpoint", nil)
	lines = accessLines(t, e.Logs())
	if len(lines) != 1 || lines[0]["route"] != "unmatched" || lines[0]["status"] != float64(404) || lines[0]["method"] != "GET" {
		t.Fatalf("with ACCESS_LOG_HOT_SAMPLE=0, want only the 404 line, got %v", lines)
	}

	// Off: no line at all, no request id.
	e.Vars["ACCESS_LOG"] = "false"
	e.Restart(t)
	if r := e.Do(t, "GET", "/no/such/endpoint", nil); r.Header.Get("X-Request-Id") != "" {
		t.Fatalf("X-Request-Id with the access log off")
	}
	if lines := accessLines(t, e.Logs()); len(lines) != 0 {
		t.Fatalf("ACCESS_LOG=false still logs: %v", lines)
	}
}
