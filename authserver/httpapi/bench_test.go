package httpapi_test

import (
	"syscall"
	"testing"
	"time"

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

// BenchmarkSession: GET /auth/session through the real server. cpu-ns/op is
// this process's CPU time per request (client and server), which other load
// on the machine moves less than ns/op; BenchmarkSessionTraced's minus this
// one's is what tracing costs a session check.
func BenchmarkSession(b *testing.B) {
	benchSession(b, map[string]string{"LOG_LEVEL": "info"})
}

// BenchmarkSessionTraced: BenchmarkSession with every request traced (100 %
// sampling) and exported to a real Jaeger: the tracing overhead of the hot
// path (docs/benchmarks.md, "Tracing overhead").
func BenchmarkSessionTraced(b *testing.B) {
	j := testservers.Jaeger(b)
	benchSession(b, map[string]string{"LOG_LEVEL": "info",
		"OTEL_EXPORTER_OTLP_ENDPOINT": j.OTLPEndpoint(), "OTEL_TRACES_SAMPLER_ARG": "1"})
}

func benchSession(b *testing.B, vars map[string]string) {
	e := authtest.Start(b, authtest.Options{Vars: vars})
	tok := e.SignupVerifyLogin(b, "bench@example.com", "benchmark password")
	hdr := authtest.Bearer(tok)
	b.ReportAllocs()
	b.ResetTimer()
	c0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r := e.Do(b, "GET", "/auth/session", nil, hdr...); r.Status != 200 {
				b.Fatalf("session: %d", r.Status)
			}
		}
	})
	b.ReportMetric(float64(cpuTime()-c0)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
