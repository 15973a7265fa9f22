package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Redis stopped mid-test: /ready stays 200 and reports "degraded" (a cache
// outage is not an outage), sessions still validate from
// PostgreSQL, logins still work, a revocation still takes effect; then
// everything recovers and sessions are re-cached.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	email, pw := "redis-outage@example.com", "survives redis outages"
	tok := e.SignupVerifyLogin(t, email, pw)
	tok2 := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw}).JSON["token"].(string)
	if r := e.Do(t, "GET", "/ready", nil); r.Status != 200 || r.JSON["status"] != "ready" {
		t.Fatalf("ready before: %d %s", r.Status, r.Body)
	}

	e.Redis.Stop(t)
	r := e.Do(t, "GET", "/ready", nil)
	checks, _ := r.JSON["checks"].(map[string]any)
	if r.Status != 200 || r.JSON["status"] != "degraded" || checks["redis"] == "ok" || checks["postgres"] != "ok" || checks["schema"] != "ok" {
		t.Fatalf("ready with redis down: %d %s", r.Status, r.Body)
	}
	if m := e.MetricsText(t); !strings.Contains(m, "\nredis_up 0\n") {
		t.Error("redis_up is not 0 with redis down")
	}
	if !strings.Contains(e.Logs(), "running degraded") {
		t.Error("the degraded mode is not logged")
	}
	if r := e.Do(t, "GET", "/health", nil); r.Status != 200 {
		t.Fatalf("health depends on redis: %d", r.Status)
	}
	for i := 0; i < 3; i++ {
		if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...); r.Status != 200 {
			t.Fatalf("session with redis down: %d %s", r.Status, r.Body)
		}
	}
	// Login works (rate limits fail open) and revocation works.
	r = e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw})
	if r.Status != 200 {
		t.Fatalf("login with redis down: %d %s", r.Status, r.Body)
	}
	tok3 := r.JSON["token"].(string)
	if r := e.Do(t, "POST", "/auth/logout", nil, authtest.Bearer(tok2)...); r.Status != 204 {
		t.Fatalf("logout with redis down: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok2)...); r.Status != 401 {
		t.Fatalf("revoked session valid with redis down: %d", r.Status)
	}

	e.Redis.Start(t)
	waitFor(t, "ready after redis restart", 15*time.Second, func() bool { return e.Do(t, "GET", "/ready", nil).JSON["status"] == "ready" })
	for _, tk := range []string{tok, tok3} {
		waitFor(t, "session valid after redis restart", 5*time.Second, func() bool {
			return e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tk)...).Status == 200
		})
	}
	// Re-cached in the new (empty) Redis: the session key exists again.
	rdb, err := newRedis(e)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	waitFor(t, "session re-cached", 5*time.Second, func() bool {
		e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...)
		e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok3)...)
		keys, _ := rdb.Keys(context.Background(), "authstack:session:*").Result()
		return len(keys) >= 2
	})
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok2)...); r.Status != 401 {
		t.Fatalf("revoked session came back: %d", r.Status)
	}
}

// SMTP down when the email is queued, then back: the request succeeds at
// once and the email arrives exactly once.
func TestSMTPOutageDeliversOnce(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	e.Mail.Stop(t)
	email := "smtp-outage@example.com"
	start := time.Now()
	r := e.Do(t, "POST", "/auth/signup", map[string]string{"email": email, "password": "mail comes later"})
	if r.Status != 202 {
		t.Fatalf("signup with SMTP down: %d %s", r.Status, r.Body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("signup waited for SMTP: %s", d)
	}
	// The worker retries (and fails) a few times while SMTP is down.
	waitFor(t, "a failed attempt", 10*time.Second, func() bool {
		var attempts int32
		var lastErr string
		_ = e.Store.Pool.QueryRow(context.Background(), "SELECT attempts, last_error FROM outbox WHERE to_addr = $1", email).Scan(&attempts, &lastErr)
		return attempts >= 2 && lastErr != ""
	})
	e.Mail.Start(t)
	msg := e.Mail.WaitForMessage(t, email, 20*time.Second)
	if !strings.Contains(msg.Text, "/verify-email?token=") {
		t.Fatalf("email: %+v", msg)
	}
	// Exactly once, even after more worker cycles.
	time.Sleep(1500 * time.Millisecond)
	count := 0
	for _, m := range e.Mail.Messages(t) {
		for _, to := range m.To {
			if to == email {
				count++
			}
		}
	}
	if count != 1 {
		t.Fatalf("%d emails delivered, want exactly 1", count)
	}
	var sent bool
	var textBody string
	if err := e.Store.Pool.QueryRow(context.Background(), "SELECT sent_at IS NOT NULL, text_body FROM outbox WHERE to_addr = $1", email).Scan(&sent, &textBody); err != nil || !sent || textBody != "" {
		t.Fatalf("outbox row after delivery: sent=%v body=%q err=%v", sent, textBody, err)
	}
	m := e.MetricsText(t)
	if !strings.Contains(m, `email_events_total{kind="SEND_RETRY"}`) || !strings.Contains(m, `email_events_total{kind="VERIFY_SENT"} 1`) {
		t.Errorf("email metrics:\n%s", grep(m, "email_events"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestPasswordResetRevokesSessions(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	email, pw := "reset@example.com", "original password"
	tok1 := e.SignupVerifyLogin(t, email, pw)
	tok2 := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw}).JSON["token"].(string)

	if r := e.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": email}); r.Status != 202 {
		t.Fatalf("forgot: %d", r.Status)
	}
	var resetMail authtest.Response
	waitFor(t, "reset email", 15*time.Second, func() bool {
		for _, m := range e.Mail.Messages(t) {
			if strings.Contains(m.Text, "/reset-password?token=") {
				resetMail.Body = []byte(m.Text)
				return true
			}
		}
		return false
	})
	rt := authtest.TokenFromMail(t, string(resetMail.Body))
	if r := e.Do(t, "POST", "/auth/password/reset", map[string]string{"token": rt, "password": "short"}); r.Status != 400 || r.ErrorCode() != "invalid_password" {
		t.Fatalf("reset with a short password: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/password/reset", map[string]string{"token": rt, "password": "brand new password"}); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	for _, tk := range []string{tok1, tok2} {
		if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tk)...); r.Status != 401 {
			t.Fatalf("session survived a password reset: %d", r.Status)
		}
	}
	if r := e.Do(t, "POST", "/auth/password/reset", map[string]string{"token": rt, "password": "another new password"}); r.Status != 400 {
		t.Fatalf("reset token reused: %d", r.Status)
	}
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw}); r.Status != 401 {
		t.Fatalf("old password still works: %d", r.Status)
	}
	r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": "brand new password"})
	if r.Status != 200 {
		t.Fatalf("new password: %d %s", r.Status, r.Body)
	}
	tok3 := r.JSON["token"].(string)
	tok4 := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": "brand new password"}).JSON["token"].(string)

	// Change: wrong current password refused; success ends every session,
	// the one it was made with too, and answers with a new one.
	if r := e.Do(t, "POST", "/auth/password/change", map[string]string{"current_password": "nope nope nope", "new_password": "third password here"}, authtest.Bearer(tok3)...); r.Status != 401 {
		t.Fatalf("change with a wrong current password: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "POST", "/auth/password/change", map[string]string{"current_password": "brand new password", "new_password": "third password here"}, authtest.Bearer(tok3)...)
	if r.Status != 200 {
		t.Fatalf("change: %d %s", r.Status, r.Body)
	}
	for _, tk := range []string{tok3, tok4} {
		if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tk)...); r.Status != 401 {
			t.Fatalf("a session from before the change survived it: %d", r.Status)
		}
	}
	tok3 = r.JSON["token"].(string)
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok3)...); r.Status != 200 {
		t.Fatalf("the session the change answered with: %d", r.Status)
	}
	// Logout everywhere.
	if r := e.Do(t, "POST", "/auth/logout-all", nil, authtest.Bearer(tok3)...); r.Status != 204 {
		t.Fatalf("logout-all: %d", r.Status)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok3)...); r.Status != 401 {
		t.Fatalf("session survived logout-all: %d", r.Status)
	}
	kinds := auditKinds(t, e.Store)
	for _, k := range []string{"PASSWORD_RESET_REQUESTED", "PASSWORD_RESET", "PASSWORD_CHANGED", "LOGOUT"} {
		if kinds[k] == 0 {
			t.Errorf("no %s audit row: %v", k, kinds)
		}
	}
}

// A new pepper (the old one kept as AUTH_OLD_PEPPERS) and new argon2
// parameters: logins still work and rehash to the newest pepper and params.
func TestPepperRotationRehashesOnLogin(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	email, pw := "rotate@example.com", "rotate my pepper"
	e.SignupVerifyLogin(t, email, pw)
	hashOf := func() string {
		var h string
		if err := e.Store.Pool.QueryRow(context.Background(), "SELECT password_hash FROM users WHERE email = $1", email).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	before := hashOf()
	old := e.Vars["AUTH_PEPPER"]

	e.Vars["AUTH_PEPPER"] = authtest.Pepper()
	e.Vars["AUTH_OLD_PEPPERS"] = old
	e.Vars["AUTH_ARGON2_MEMORY_KIB"] = "9216"
	e.Restart(t)
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw}); r.Status != 200 {
		t.Fatalf("login after rotation: %d %s", r.Status, r.Body)
	}
	// The rehash runs after the response (an extra hash on the response
	// path of known accounts only would show in its timing).
	after := hashOf()
	for deadline := time.Now().Add(10 * time.Second); after == before && time.Now().Before(deadline); after = hashOf() {
		time.Sleep(20 * time.Millisecond)
	}
	if after == before || !strings.HasPrefix(after, "$argon2id$v=19$m=9216,t=1,p=1,keyid=") {
		t.Fatalf("not rehashed: before %q after %q", before, after)
	}
	if keyID(before) == keyID(after) {
		t.Fatalf("pepper id unchanged: %q", keyID(after))
	}
	// Drop the old pepper: the rehashed password no longer needs it.
	delete(e.Vars, "AUTH_OLD_PEPPERS")
	e.Restart(t)
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw}); r.Status != 200 {
		t.Fatalf("login with only the new pepper: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw + "!"}); r.Status != 401 {
		t.Fatalf("wrong password after rotation: %d", r.Status)
	}
}

func keyID(phc string) string {
	i := strings.Index(phc, "keyid=")
	if i < 0 {
		return ""
	}
	rest := phc[i+6:]
	return rest[:strings.IndexByte(rest, '$')]
}

// Two replicas and a Redis that is first paused (SIGSTOP), then killed
// (SIGKILL) and restarted from a snapshot that still holds a revoked
// session's cache entry: /ready stays 200 (degraded) on both, sessions
// validate from PostgreSQL, and a logout answered while Redis was gone is
// honoured by both replicas after Redis comes back with the old entry,
// even though the replica that answered it exited meanwhile.
func TestRevocationSurvivesRedisPauseAndLossTwoReplicas(t *testing.T) {
	t.Parallel()
	e1 := authtest.Start(t, authtest.Options{})
	e2 := e1.Replica(t)
	replicas := []*authtest.Env{e1, e2}
	email, pw := "two-replicas@example.com", "survives redis losing writes"
	e1.SignupVerifyLogin(t, email, pw)
	login := func(e *authtest.Env) string {
		r := e.Do(t, "POST", "/auth/login", map[string]string{"email": email, "password": pw})
		if r.Status != 200 {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		return r.JSON["token"].(string)
	}
	tokA, tokB, tokC := login(e1), login(e2), login(e1)
	status := func(e *authtest.Env, tok string) int {
		return e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...).Status
	}
	expect := func(tok string, want int, what string) {
		t.Helper()
		for i, e := range replicas {
			if got := status(e, tok); got != want {
				t.Fatalf("%s on replica %d: %d, want %d", what, i+1, got, want)
			}
		}
	}
	for _, tok := range []string{tokA, tokB, tokC} {
		expect(tok, 200, "cached session")
	}
	rdb, err := newRedis(e1)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()

	// Paused Redis.
	pid := e1.Redis.Server().Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for i, e := range replicas {
		if r := e.Do(t, "GET", "/ready", nil); r.Status != 200 || r.JSON["status"] != "degraded" {
			t.Fatalf("replica %d ready with redis paused: %d %s", i+1, r.Status, r.Body)
		}
	}
	expect(tokC, 200, "session with redis paused")
	if r := e2.Do(t, "POST", "/auth/logout", nil, authtest.Bearer(tokA)...); r.Status != 204 {
		t.Fatalf("logout with redis paused: %d %s", r.Status, r.Body)
	}
	expect(tokA, 401, "logged-out session with redis paused")
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for _, e := range replicas {
		waitFor(t, "ready after redis resumed", 15*time.Second, func() bool { return e.Do(t, "GET", "/ready", nil).JSON["status"] == "ready" })
	}
	expect(tokA, 401, "logged-out session after redis resumed")
	expect(tokC, 200, "session after redis resumed")

	// Killed Redis, restarted from a snapshot that holds tokB's entry.
	keyB := "authstack:session:" + hashHex(tokB)
	if v, err := rdb.Get(ctx, keyB).Result(); err != nil || !strings.HasPrefix(v, "2|") {
		t.Fatalf("tokB not cached before the snapshot: %q %v", v, err)
	}
	if err := rdb.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(e1.Redis.Server().Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e1.Redis.Stop(t) // reaps it
	if r := e1.Do(t, "POST", "/auth/logout", nil, authtest.Bearer(tokB)...); r.Status != 204 {
		t.Fatalf("logout with redis killed: %d %s", r.Status, r.Body)
	}
	expect(tokB, 401, "logged-out session with redis killed")
	expect(tokC, 200, "session with redis killed")
	// The replica that answered the logout exits before Redis is back (its
	// in-memory retry of the cache write dies with it).
	if err := e1.Stop(t); err != nil {
		t.Fatal(err)
	}
	e1.Redis.Start(t)
	if v, err := rdb.Get(ctx, keyB).Result(); err != nil || !strings.HasPrefix(v, "2|") {
		t.Fatalf("the restarted redis does not hold the old entry (test premise): %q %v", v, err)
	}
	e1.Restart(t) // a new pod
	// Each replica must answer 401 from a Redis read (a keyspace hit), not
	// only from its PostgreSQL fallback while Redis is paused in its client.
	hits := func() int64 {
		s, err := rdb.Info(ctx, "stats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "keyspace_hits:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		t.Fatal("no keyspace_hits in INFO")
		return 0
	}
	for i, e := range replicas {
		waitFor(t, fmt.Sprintf("replica %d reading redis again", i+1), 15*time.Second, func() bool {
			before := hits()
			if got := status(e, tokB); got != 401 {
				t.Fatalf("replica %d honours a session logged out while redis was down: %d", i+1, got)
			}
			return hits() > before
		})
	}
	expect(tokC, 200, "session after redis came back")
}

func hashHex(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// Queued verification and reset emails expire with their links (the worker
// gives up on them then, TestRejectedAndExpiredMessagesAreNotRetried).
func TestQueuedMailsExpireWithTheirLinks(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_VERIFY_TOKEN_TTL": "3h", "AUTH_RESET_TOKEN_TTL": "20m"}})
	email := "expiring-links@example.com"
	e.SignupVerifyLogin(t, email, "expiring links pw")
	if r := e.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": email}); r.Status != 202 {
		t.Fatalf("forgot: %d %s", r.Status, r.Body)
	}
	for kind, ttl := range map[string]time.Duration{"verify": 3 * time.Hour, "reset": 20 * time.Minute} {
		var secs float64
		if err := e.Store.Pool.QueryRow(context.Background(),
			"SELECT extract(epoch FROM expires_at - created_at) FROM outbox WHERE kind = $1 ORDER BY id LIMIT 1", kind).Scan(&secs); err != nil {
			t.Fatalf("%s email: %v", kind, err)
		}
		if d := time.Duration(secs * float64(time.Second)); d < ttl-time.Minute || d > ttl+time.Minute {
			t.Errorf("%s email expires %s after it was queued, want its link's %s", kind, d, ttl)
		}
	}
}
