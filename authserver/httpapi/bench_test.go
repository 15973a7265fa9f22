package httpapi_test

import (
	"testing"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/testservers"
)

// BenchmarkLogin: logins through the real server with the default argon2
// parameters (one verified user, rate limits off).
func BenchmarkLogin(b *testing.B) {
	e := authtest.Start(b, authtest.Options{Vars: map[string]string{
		"AUTH_ARGON2_MEMORY_KIB": "19456", "AUTH_ARGON2_ITERATIONS": "2", "LOG_LEVEL": "info",
		"AUTH_RATELIMIT_LOGIN_IP": "off", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "off",
	}})
	e.SignupVerifyLogin(b, "bench@example.com", "benchmark password")
	body := map[string]string{"email": "bench@example.com", "password": "benchmark password"}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := e.Do(b, "POST", "/auth/login", body); r.Status != 200 {
				b.Fatalf("login: %d", r.Status)
			}
		}
	})
}

// BenchmarkSession: GET /auth/session through the real server.
func BenchmarkSession(b *testing.B) {
	e := authtest.Start(b, authtest.Options{Vars: map[string]string{"LOG_LEVEL": "info"}})
	tok := e.SignupVerifyLogin(b, "bench@example.com", "benchmark password")
	hdr := authtest.Bearer(tok)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := e.Do(b, "GET", "/auth/session", nil, hdr...); r.Status != 200 {
				b.Fatalf("session: %d", r.Status)
			}
		}
	})
}

// BenchmarkSessionTraced: BenchmarkSession with every request traced (100 %
// sampling) and exported to a real Jaeger: the tracing overhead of the hot
// path (docs/benchmarks.md, "Tracing overhead").
func BenchmarkSessionTraced(b *testing.B) {
	j := testservers.Jaeger(b)
	e := authtest.Start(b, authtest.Options{Vars: map[string]string{"LOG_LEVEL": "info",
		"OTEL_EXPORTER_OTLP_ENDPOINT": j.OTLPEndpoint(), "OTEL_TRACES_SAMPLER_ARG": "1"}})
	tok := e.SignupVerifyLogin(b, "bench@example.com", "benchmark password")
	hdr := authtest.Bearer(tok)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := e.Do(b, "GET", "/auth/session", nil, hdr...); r.Status != 200 {
				b.Fatalf("session: %d", r.Status)
			}
		}
	})
}

// BenchmarkCheck: GET /auth/check as a proxy's forward-auth subrequest sends it
// (Bearer session token, Accept: application/json), through the real server.
func BenchmarkCheck(b *testing.B) {
	e := authtest.Start(b, authtest.Options{Vars: map[string]string{"LOG_LEVEL": "info"}})
	tok := e.SignupVerifyLogin(b, "bench@example.com", "benchmark password")
	hdr := append(authtest.Bearer(tok), "Accept", "application/json")
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := e.Do(b, "GET", "/auth/check", nil, hdr...); r.Status != 200 {
				b.Fatalf("check: %d", r.Status)
			}
		}
	})
}
