package httpapi_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/mfa"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// BenchmarkSecondFactor: the second step of a login (POST /auth/login/mfa
// with a TOTP code: challenge read and claim, secret decrypted, code
// checked, step recorded, session written and cached) next to the session
// check (GET /auth/session), on one server, reporting p50 and p99. A code
// works once per user and time step, so the second step runs over many
// users, each with a challenge made beforehand; no password is hashed in
// the timed part (docs/benchmarks.md, "Second factor").
func BenchmarkSecondFactor(b *testing.B) {
	e := authtest.Start(b, authtest.Options{Vars: map[string]string{
		"LOG_LEVEL": "info", "AUTH_RATELIMIT_LOGIN_IP": "off", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "off",
	}})
	tok := e.SignupVerifyLogin(b, "bench@example.com", "benchmark password")
	a, _ := enrollTOTP(b, e, tok)
	var hash string
	if err := e.Store.Pool.QueryRow(context.Background(), "SELECT password_hash FROM users WHERE email = 'bench@example.com'").Scan(&hash); err != nil {
		b.Fatal(err)
	}
	pepper, err := config.ParsePepper(e.Vars["AUTH_PEPPER"])
	if err != nil {
		b.Fatal(err)
	}
	keys, err := mfa.NewKeyring([]string{config.PepperID(pepper)}, [][]byte{pepper})
	if err != nil {
		b.Fatal(err)
	}

	run := func(b *testing.B, do func(i int) int) {
		var mu sync.Mutex
		var lat []time.Duration
		var next int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				mu.Lock()
				i := int(next)
				next++
				mu.Unlock()
				start := time.Now()
				if s := do(i); s != 200 {
					b.Errorf("status %d", s)
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		b.StopTimer()
		slices.Sort(lat)
		if len(lat) > 0 {
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		}
	}

	b.Run("session", func(b *testing.B) {
		hdr := authtest.Bearer(tok)
		run(b, func(int) int { return e.Do(b, "GET", "/auth/session", nil, hdr...).Status })
	})
	b.Run("totp", func(b *testing.B) {
		// b.N users with the bench user's secret (sealed for each: the
		// ciphertext is bound to its user id), each with a challenge.
		type user struct{ challenge, code string }
		users := make([]user, b.N)
		ctx := context.Background()
		code := a.code()
		step := mfa.Step(time.Now())
		for i := range users {
			u, _, err := store.InsertUser(ctx, e.Store.Pool, fmt.Sprintf("b%d-%d@example.com", b.N, i), hash)
			if err != nil {
				b.Fatal(err)
			}
			_ = store.MarkEmailVerified(ctx, e.Store.Pool, u.ID)
			enc, kid := keys.Seal(u.ID, a.secret)
			if _, err := e.Store.Pool.Exec(ctx, `INSERT INTO user_totp (user_id, secret_enc, key_id, confirmed_at, last_step) VALUES ($1, $2, $3, now(), $4)`,
				u.ID, enc, kid, step-2); err != nil {
				b.Fatal(err)
			}
			ct, h := session.NewToken()
			if _, err := store.InsertChallenge(ctx, e.Store.Pool, h[:], u.ID, store.ChallengeMFA, hash, time.Hour); err != nil {
				b.Fatal(err)
			}
			users[i] = user{ct, code}
		}
		run(b, func(i int) int {
			return e.Do(b, "POST", "/auth/login/mfa", map[string]string{"challenge": users[i].challenge, "method": "totp", "code": users[i].code}).Status
		})
	})
}
