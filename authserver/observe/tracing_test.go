package observe_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/testservers"
)

// A login is one trace in a real Jaeger with the request, the hashing slot
// wait, the hash, the PostgreSQL queries and the Redis commands; a caller's
// traceparent is continued; no exported span holds a secret.
func TestTracesInJaeger(t *testing.T) {
	t.Parallel()
	j := testservers.Jaeger(t)
	service := "authserver-trace-test"
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": j.OTLPEndpoint(),
		"OTEL_SERVICE_NAME":           service,
	}})
	email, pw := "trace.user@example.com", "trace test passphrase"
	tok := e.SignupVerifyLogin(t, email, pw)

	// The trace id of the login, from its access log line.
	var loginTrace string
	for _, line := range strings.Split(e.Logs(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "http request" && m["route"] == "/auth/login" && m["status"] == float64(200) {
			loginTrace, _ = m["trace_id"].(string)
		}
	}
	if len(loginTrace) != 32 {
		t.Fatalf("no trace id in the login's access line:\n%s", e.Logs())
	}

	parentTrace, parentSpan := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	if r := e.Do(t, "GET", "/auth/session", nil, append(authtest.Bearer(tok), "traceparent", "00-"+parentTrace+"-"+parentSpan+"-01")...); r.Status != 200 {
		t.Fatalf("session: %d %s", r.Status, r.Body)
	}
	// A route that takes any method (here the 405 of /auth/session) names
	// the request's method in its span.
	otherTrace := "5bf92f3577b34da6a3ce929d0e0e4737"
	if r := e.Do(t, "PUT", "/auth/session", nil, "traceparent", "00-"+otherTrace+"-"+parentSpan+"-01"); r.Status != 405 {
		t.Fatalf("PUT /auth/session: %d %s", r.Status, r.Body)
	}
	e.Stop(t) // flushes the last spans

	var spans []testservers.JaegerSpan
	has := func(pred func(testservers.JaegerSpan) bool) bool {
		for _, s := range spans {
			if pred(s) {
				return true
			}
		}
		return false
	}
	named := func(name string) func(testservers.JaegerSpan) bool {
		return func(s testservers.JaegerSpan) bool { return s.OperationName == name }
	}
	db := func(system string) func(testservers.JaegerSpan) bool {
		return func(s testservers.JaegerSpan) bool {
			v, ok := s.Tag("db.system.name")
			if !ok {
				v, _ = s.Tag("db.system")
			}
			return v == system
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		spans, _ = j.Trace(t, loginTrace)
		if has(named("POST /auth/login")) && has(named("password.slot_wait")) && has(named("password.argon2id")) &&
			has(db("postgresql")) && has(db("redis")) {
			break
		}
		if time.Now().After(deadline) {
			names := []string{}
			for _, s := range spans {
				names = append(names, s.OperationName)
			}
			t.Fatalf("the login's trace %s lacks spans; has %v", loginTrace, names)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, s := range spans {
		if s.TraceID != loginTrace {
			t.Fatalf("span %s in trace %s, want %s", s.OperationName, s.TraceID, loginTrace)
		}
	}
	login := spans[0]
	for _, s := range spans {
		if s.OperationName == "POST /auth/login" {
			login = s
		}
	}
	if route, _ := login.Tag("http.route"); route != "/auth/login" {
		t.Fatalf("http.route = %v", route)
	}

	spans, _ = j.Trace(t, parentTrace)
	var sess *testservers.JaegerSpan
	for i, s := range spans {
		if s.OperationName == "GET /auth/session" {
			sess = &spans[i]
		}
	}
	if sess == nil || len(sess.References) == 0 || sess.References[0].SpanID != parentSpan {
		t.Fatalf("the traceparent was not continued: %+v", spans)
	}
	// The request span's attributes: method, route, status; never the path.
	code, _ := sess.Tag("http.response.status_code")
	method, _ := sess.Tag("http.request.method")
	if _, hasPath := sess.Tag("url.path"); fmt.Sprint(code) != "200" || method != "GET" || hasPath {
		t.Fatalf("session span tags %+v", sess.Tags)
	}

	other, _ := j.Trace(t, otherTrace)
	if len(other) != 1 {
		t.Fatalf("the 405's trace: %+v", other)
	}
	method, _ = other[0].Tag("http.request.method")
	route, _ := other[0].Tag("http.route")
	code, _ = other[0].Tag("http.response.status_code")
	if other[0].OperationName != "/auth/session" || method != "PUT" || route != "/auth/session" || fmt.Sprint(code) != "405" {
		t.Fatalf("the 405's span: %s %+v", other[0].OperationName, other[0].Tags)
	}

	all, raw := j.Traces(t, service)
	if !has(db("redis")) || len(all) < 10 {
		t.Fatalf("only %d spans for %s", len(all), service)
	}
	spans = all
	if !has(named("outbox send")) {
		t.Fatalf("no outbox send span")
	}
	for _, secret := range []string{tok, pw, email, "trace.user", e.Vars["AUTH_PEPPER"], e.Redis.Password()} {
		if secret != "" && strings.Contains(raw, secret) {
			t.Fatalf("an exported span contains %q", secret)
		}
	}
}
