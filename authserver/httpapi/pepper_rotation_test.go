package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/store"
)

// replica is one authserver behind a Service: a roll takes it out of rotation (the lock),
// restarts it with new variables, and puts it back, as the kubelet and the endpoints
// controller do with a pod.
type replica struct {
	mu  sync.RWMutex
	env *authtest.Env
}

func (r *replica) restart(t *testing.T, pepper, old string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.env.Vars["AUTH_PEPPER"] = pepper
	r.env.Vars["AUTH_OLD_PEPPERS"] = old
	if old == "" {
		delete(r.env.Vars, "AUTH_OLD_PEPPERS")
	}
	r.env.Restart(t)
}

func pepperID(t *testing.T, hexKey string) string {
	t.Helper()
	k, err := config.ParsePepper(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return config.PepperID(k)
}

// TestPepperRotationUnderLoad is the operator's rotation (docs/operations.md, "Rotate the
// pepper") on real servers: two replicas over one PostgreSQL (through pgbouncer) and
// Redis, logins running on both the whole time. The roll stages the new pepper as an old
// one on every replica first, then makes it current: not one login fails, the counts
// move to the new id as users log in, a user who never logged in keeps the old id, and
// after a forced retirement that user gets a 401 like a wrong password (never a 500) and
// a working forgot-password path. A replica that never got the new pepper refuses a
// rehashed user: why the roll stages it first.
func TestPepperRotationUnderLoad(t *testing.T) {
	t.Parallel()
	noLimits := map[string]string{"AUTH_RATELIMIT_LOGIN_IP": "0", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "0"}
	e1 := authtest.Start(t, authtest.Options{Vars: noLimits})
	e2 := e1.Replica(t)
	oldPepper, newPepper := e1.Vars["AUTH_PEPPER"], authtest.Pepper()
	oldID, newID := pepperID(t, oldPepper), pepperID(t, newPepper)

	const users = 6
	pw := func(i int) string { return fmt.Sprintf("password of user %d", i) }
	email := func(i int) string { return fmt.Sprintf("rotate-%d@example.com", i) }
	for i := range users {
		e1.SignupVerifyLogin(t, email(i), pw(i))
	}
	dormant := users - 1 // never logs in during the rotation
	ctx := context.Background()
	counts := func() (old, cur int64) {
		u, err := store.CountPeppers(ctx, e1.Store.Pool)
		if err != nil {
			t.Fatal(err)
		}
		return u.PasswordHashes[oldID], u.PasswordHashes[newID]
	}
	if o, n := counts(); o != users || n != 0 {
		t.Fatalf("before: old %d new %d, want %d and 0", o, n, users)
	}

	replicas := []*replica{{env: e1}, {env: e2}}
	var logins, failures atomic.Int64
	var failMsg atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := w; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				r := replicas[n%2]
				if !r.mu.TryRLock() { // rolling: the Service sends to the other one
					r = replicas[(n+1)%2]
					r.mu.RLock()
				}
				i := n % dormant
				body, _ := json.Marshal(map[string]string{"email": email(i), "password": pw(i)})
				resp, err := client.Post(r.env.BaseURL+"/auth/login", "application/json", bytes.NewReader(body))
				r.mu.RUnlock()
				logins.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
					status := 0
					if resp != nil {
						status = resp.StatusCode
					}
					failMsg.Store(fmt.Sprintf("login of user %d: status %d, %v", i, status, err))
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	during := func(what string, f func()) {
		t.Helper()
		before := logins.Load()
		f()
		// Each phase overlaps logins on both sides of it.
		waitFor(t, "logins during "+what, 30*time.Second, func() bool { return logins.Load() >= before+2*users })
	}
	// 1. Stage: every replica accepts the new pepper, still hashes with the old one.
	during("staging", func() {
		for _, r := range replicas {
			r.restart(t, oldPepper, newPepper)
		}
	})
	// 2. Promote: the new pepper hashes, the old one verifies.
	during("promotion", func() {
		for _, r := range replicas {
			r.restart(t, newPepper, oldPepper)
		}
	})
	// The counts move as users log in (rehash after the response).
	waitFor(t, "the active users rehashed", 30*time.Second, func() bool {
		o, n := counts()
		return o == 1 && n == users-1
	})
	close(stop)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d logins failed during the rotation; last: %v", f, logins.Load(), failMsg.Load())
	}
	t.Logf("%d logins, none failed", logins.Load())

	// Why stage first: a replica still on the old pepper alone refuses a rehashed user.
	unstaged := e1.Replica(t)
	unstaged.Vars["AUTH_PEPPER"] = oldPepper
	delete(unstaged.Vars, "AUTH_OLD_PEPPERS")
	unstaged.Restart(t)
	if r := unstaged.Do(t, "POST", "/auth/login", map[string]string{"email": email(0), "password": pw(0)}); r.Status != 401 {
		t.Fatalf("login of a rehashed user on a replica without the new pepper: %d, want 401", r.Status)
	}
	unstaged.Stop(t)

	// 3. Retire with force: the dormant user's hash needs the dropped pepper.
	for _, r := range replicas {
		r.restart(t, newPepper, "")
	}
	if r := e1.Do(t, "POST", "/auth/login", map[string]string{"email": email(0), "password": pw(0)}); r.Status != 200 {
		t.Fatalf("rehashed user after retirement: %d %s", r.Status, r.Body)
	}
	r := e2.Do(t, "POST", "/auth/login", map[string]string{"email": email(dormant), "password": pw(dormant)})
	if r.Status != 401 || r.ErrorCode() != "invalid_credentials" {
		t.Fatalf("dormant user after a forced retirement: %d %s, want 401 invalid_credentials", r.Status, r.Body)
	}
	if !strings.Contains(e2.Logs(), "retired pepper") {
		t.Errorf("the refusal does not say the pepper was retired:\n%s", e2.Logs())
	}
	if strings.Contains(e2.Logs(), email(dormant)) {
		t.Errorf("the log holds the full email")
	}
	// The reset path: forgot, the email, a new password, a login.
	if r := e2.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": email(dormant)}); r.Status != 202 {
		t.Fatalf("forgot: %d %s", r.Status, r.Body)
	}
	var link string
	waitFor(t, "the reset email", 15*time.Second, func() bool {
		for _, m := range e2.Mail.Messages(t) {
			if strings.Contains(m.Text, "/reset-password?token=") && strings.Contains(strings.Join(m.To, ","), email(dormant)) {
				link = m.Text
				return true
			}
		}
		return false
	})
	if r := e2.Do(t, "POST", "/auth/password/reset", map[string]string{"token": authtest.TokenFromMail(t, link), "password": "a fresh password"}); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	if r := e1.Do(t, "POST", "/auth/login", map[string]string{"email": email(dormant), "password": "a fresh password"}); r.Status != 200 {
		t.Fatalf("login after the reset: %d %s", r.Status, r.Body)
	}
	if o, n := counts(); o != 0 || n != users {
		t.Fatalf("after the reset: old %d new %d, want 0 and %d", o, n, users)
	}
}
