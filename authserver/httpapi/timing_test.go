package httpapi_test

import (
	"context"
	"fmt"
	"math"
	"slices"
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
// first; the median of the paired differences must stay under 5% of the
// hashing work of one request, timed alongside under the same load (see
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
	// work times the hashing work of one request as the server does it:
	// one derivation now, two after the parameter change below.
	work, err := password.New(config.Argon2{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}, []config.Pepper{{ID: "x", Key: make([]byte, 32)}}, 1, -1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ghost := 0
	// measure runs rounds of 60 pairs: a request for known and one for a
	// fresh unknown address (alternating which goes first), and the hashing
	// work of one request timed every fourth pair, under the same load.
	// After each round from the second on, the 99% confidence interval of
	// the median paired difference decides: inside ±5% of the median work,
	// the case passes; wholly outside, it fails; otherwise another round, up
	// to maxPairs, where the median itself decides. A quiet machine decides
	// in two rounds; a loaded one (other packages' tests on the same 2
	// cores widen the differences fourfold) takes more rounds instead of
	// failing on noise, while a branch that differs (a skipped or extra
	// derivation: a third of the work or more) fails in two.
	const round, maxPairs = 60, 600
	measure := func(name string, req func(email string) *authtest.Response, known string) {
		t.Helper()
		var diffs, works []time.Duration
		timed := func(email string) time.Duration {
			start := time.Now()
			r := req(email)
			d := time.Since(start)
			if r.Status >= 500 {
				t.Fatalf("%s %s: %d %s", name, email, r.Status, r.Body)
			}
			return d
		}
		for {
			for range round {
				if len(diffs)%4 == 0 {
					start := time.Now()
					_ = work.VerifyDummy(context.Background(), "time one request's hashing")
					works = append(works, time.Since(start))
				}
				ghost++
				unknown := fmt.Sprintf("ghost%d@example.com", ghost)
				var dk, du time.Duration
				if len(diffs)%2 == 0 {
					dk = timed(known)
					du = timed(unknown)
				} else {
					du = timed(unknown)
					dk = timed(known)
				}
				diffs = append(diffs, dk-du)
			}
			if len(diffs) < 2*round {
				continue
			}
			lo, mid, hi := medianInterval(diffs)
			limit := median(works) / 20
			t.Logf("%s: median paired difference %s (99%% interval %s to %s) over %d pairs, limit %s (5%% of the hashing work)", name, mid, lo, hi, len(diffs), limit)
			switch {
			case -limit < lo && hi < limit:
				return
			case lo > limit || hi < -limit || len(diffs) >= maxPairs && (mid > limit || mid < -limit):
				t.Errorf("%s: known and unknown addresses differ by %s in median over %d pairs, more than 5%% of the hashing work (%s)", name, mid, len(diffs), 20*limit)
				return
			case len(diffs) >= maxPairs:
				return
			}
		}
	}
	post := func(path string, body func(email string) any) func(string) *authtest.Response {
		return func(email string) *authtest.Response { return e.Do(t, "POST", path, body(email)) }
	}
	login := post("/auth/login", func(em string) any { return creds(em, "a wrong password") })
	signup := post("/auth/signup", func(em string) any { return creds(em, "a signup password") })
	resend := post("/auth/resend-verification", func(em string) any { return map[string]string{"email": em} })
	forgot := post("/auth/password/forgot", func(em string) any { return map[string]string{"email": em} })

	measure("login, verified", login, verified)
	measure("login, unverified", login, unverified)
	// Whether a second factor is enrolled is read only after the password
	// verified: a wrong password tells nothing about it.
	measure("login, verified with TOTP", login, withTOTP)
	measure("signup, verified", signup, verified)
	measure("signup, unverified", signup, unverified)
	measure("resend, unverified", resend, unverified)
	measure("resend, verified", resend, verified)
	measure("forgot, verified", forgot, verified)
	measure("forgot, unverified", forgot, unverified)

	// New pepper and cheaper parameters: the accounts keep hashes with the
	// old ones until their owners log in.
	old := e.Vars["AUTH_PEPPER"]
	e.Vars["AUTH_PEPPER"] = authtest.Pepper()
	e.Vars["AUTH_OLD_PEPPERS"] = old
	e.Vars["AUTH_ARGON2_ITERATIONS"] = "1"
	oldHash, err := work.Hash(context.Background(), "a password hashed with the old parameters")
	if err != nil {
		t.Fatal(err)
	}
	if work, err = password.New(config.Argon2{MemoryKiB: 19456, Iterations: 1, Parallelism: 1}, []config.Pepper{{ID: "x", Key: make([]byte, 32)}}, 1, -1, time.Minute); err != nil {
		t.Fatal(err)
	}
	work.RememberParams(oldHash) // as the server reads the stored hashes' parameter sets at start
	e.Restart(t)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(e.Logs(), "argon2 parameter sets of stored hashes read"); {
		if time.Now().After(deadline) {
			t.Fatal("the server did not read the parameter sets of the stored hashes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	measure("login after a parameter and pepper change, verified", login, verified)
	measure("login after a parameter and pepper change, unverified", login, unverified)
}

// medianInterval returns the median of ds and the bounds of its 99%
// confidence interval: the order statistics n/2 ∓ 1.29·√n (the binomial's
// normal approximation, 2.58 standard deviations of the count below the
// median), clamped to ds.
func medianInterval(ds []time.Duration) (lo, mid, hi time.Duration) {
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	n := len(s)
	k := int(math.Ceil(1.29 * math.Sqrt(float64(n))))
	return s[max(0, n/2-k)], s[n/2], s[min(n-1, n/2+k)]
}
