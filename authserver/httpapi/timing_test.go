package httpapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/password"
)

// The response time of login, signup, resend-verification and
// forgot does not tell whether an address is registered or verified, also
// right after the argon2 parameters and the pepper changed (the accounts
// then hold hashes with the old settings). Each case interleaves requests
// for a known address with requests for unknown ones, alternating which goes
// first; the median of the paired differences must stay under 5% of one
// hash, timed alongside under the same load (in one sample of two: see
// measure).
//
// Not parallel: it measures time, so it runs alone in this package.
func TestTimingTellsNothing(t *testing.T) {
	const mem, iters = "19456", "2" // the default cost: a skipped or extra hash shows
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_RATELIMIT_LOGIN_IP": "off", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "off", "AUTH_LOCKOUT_THRESHOLD": "0",
		"AUTH_RATELIMIT_SIGNUP_IP": "off", "AUTH_RATELIMIT_SIGNUP_ACCOUNT": "off",
		"AUTH_RATELIMIT_EMAIL_IP": "off", "AUTH_RATELIMIT_EMAIL_ACCOUNT": "off",
		"AUTH_ARGON2_MEMORY_KIB": mem, "AUTH_ARGON2_ITERATIONS": iters,
	}})
	verified, unverified, withTOTP := "verified@example.com", "unverified@example.com", "totp@example.com"
	e.SignupVerifyLogin(t, verified, "the verified password")
	enrollTOTP(t, e, e.SignupVerifyLogin(t, withTOTP, "the totp password"))
	if r := e.Do(t, "POST", "/auth/signup", creds(unverified, "the unverified password")); r.Status != 202 {
		t.Fatal(r.Status)
	}
	h, err := password.New(config.Argon2{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}, []config.Pepper{{ID: "x", Key: make([]byte, 32)}}, 1, -1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ghost := 0
	// sample interleaves pairs requests for known with requests for fresh
	// unknown addresses (alternating which goes first) and one hash every
	// fourth pair; it returns the median paired difference and the median hash.
	sample := func(name string, pairs int, req func(email string) *authtest.Response, known string) (diff, hash time.Duration) {
		t.Helper()
		var diffs, hashes []time.Duration
		timed := func(email string) time.Duration {
			start := time.Now()
			r := req(email)
			d := time.Since(start)
			if r.Status >= 500 {
				t.Fatalf("%s %s: %d %s", name, email, r.Status, r.Body)
			}
			return d
		}
		for i := 0; i < pairs; i++ {
			if i%4 == 0 {
				start := time.Now()
				_, _ = h.Hash(context.Background(), "time one hash")
				hashes = append(hashes, time.Since(start))
			}
			ghost++
			unknown := fmt.Sprintf("ghost%d@example.com", ghost)
			var dk, du time.Duration
			if i%2 == 0 {
				dk = timed(known)
				du = timed(unknown)
			} else {
				du = timed(unknown)
				dk = timed(known)
			}
			diffs = append(diffs, dk-du)
		}
		diff, hash = median(diffs), median(hashes)
		if diff < 0 {
			diff = -diff
		}
		t.Logf("%s: median paired difference %s over %d pairs, one hash %s (%.1f%%)", name, diff, pairs, hash, 100*float64(diff)/float64(hash))
		return diff, hash
	}
	// measure fails a case only when two samples both exceed 5% of a hash,
	// the second with twice the pairs: a burst of load from other processes
	// on a shared machine can push one median over, hardly two in a row,
	// while a branch that differs (a skipped or extra hash, a statement
	// more) shows in every sample.
	measure := func(name string, pairs int, req func(email string) *authtest.Response, known string) {
		t.Helper()
		if diff, hash := sample(name, pairs, req, known); diff <= hash/20 {
			return
		}
		if diff, hash := sample(name+" (again)", 2*pairs, req, known); diff > hash/20 {
			t.Errorf("%s: known and unknown addresses differ by %s in median, more than 5%% of one hash (%s), in two samples", name, diff, hash)
		}
	}
	post := func(path string, body func(email string) any) func(string) *authtest.Response {
		return func(email string) *authtest.Response { return e.Do(t, "POST", path, body(email)) }
	}
	login := post("/auth/login", func(em string) any { return creds(em, "a wrong password") })
	signup := post("/auth/signup", func(em string) any { return creds(em, "a signup password") })
	resend := post("/auth/resend-verification", func(em string) any { return map[string]string{"email": em} })
	forgot := post("/auth/password/forgot", func(em string) any { return map[string]string{"email": em} })

	const pairs = 121 // fewer let the load of a busy 2-core machine through the median
	measure("login, verified", pairs, login, verified)
	measure("login, unverified", pairs, login, unverified)
	// Whether a second factor is enrolled is read only after the password
	// verified: a wrong password tells nothing about it.
	measure("login, verified with TOTP", pairs, login, withTOTP)
	measure("signup, verified", pairs, signup, verified)
	measure("signup, unverified", pairs, signup, unverified)
	measure("resend, unverified", pairs, resend, unverified)
	measure("resend, verified", pairs, resend, verified)
	measure("forgot, verified", pairs, forgot, verified)
	measure("forgot, unverified", pairs, forgot, unverified)

	// New pepper and cheaper parameters: the accounts keep hashes with the
	// old ones until their owners log in.
	old := e.Vars["AUTH_PEPPER"]
	e.Vars["AUTH_PEPPER"] = authtest.Pepper()
	e.Vars["AUTH_OLD_PEPPERS"] = old
	e.Vars["AUTH_ARGON2_ITERATIONS"] = "1"
	e.Restart(t)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(e.Logs(), "argon2 parameter sets of stored hashes read"); {
		if time.Now().After(deadline) {
			t.Fatal("the server did not read the parameter sets of the stored hashes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	measure("login after a parameter and pepper change, verified", pairs, login, verified)
	measure("login after a parameter and pepper change, unverified", pairs, login, unverified)
}
