package httpapi_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/internal/softauthn"
)

// BenchmarkPasskeyLogin: a whole discoverable passkey login through the
// real server (begin, the software authenticator signing, finish: one
// ECDSA verification, no password hash), with its p99. Run it next to
// BenchmarkSession (docs/benchmarks.md).
func BenchmarkPasskeyLogin(b *testing.B) {
	e := authtest.Start(b, authtest.Options{Vars: map[string]string{"LOG_LEVEL": "warn", "AUTH_RATELIMIT_LOGIN_IP": "off"}})
	tok := e.SignupVerifyLogin(b, "bench-pk@example.com", "benchmark password")
	a := softauthn.New(pkOrigin)
	r := e.Do(b, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tok)...)
	reg, _, err := a.Create(r.Body)
	if err != nil {
		b.Fatal(err)
	}
	if r := e.Do(b, "POST", "/auth/passkeys/register/finish", map[string]any{"credential": reg}, authtest.Bearer(tok)...); r.Status != 201 {
		b.Fatalf("register: %d %s", r.Status, r.Body)
	}
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			r := e.Do(b, "POST", "/auth/passkeys/login/begin", map[string]any{})
			cred, err := a.Get(r.Body, nil)
			if err != nil {
				b.Fatal(err)
			}
			if r := e.Do(b, "POST", "/auth/passkeys/login/finish", map[string]any{"credential": cred}); r.Status != 200 {
				b.Fatalf("passkey login: %d %s", r.Status, r.Body)
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkSessionP99 is BenchmarkSession with its p99, for the comparison.
func BenchmarkSessionP99(b *testing.B) {
	e := authtest.Start(b, authtest.Options{Vars: map[string]string{"LOG_LEVEL": "warn"}})
	hdr := authtest.Bearer(e.SignupVerifyLogin(b, "bench@example.com", "benchmark password"))
	var mu sync.Mutex
	var lat []time.Duration
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			start := time.Now()
			if r := e.Do(b, "GET", "/auth/session", nil, hdr...); r.Status != 200 {
				b.Fatalf("session: %d", r.Status)
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
