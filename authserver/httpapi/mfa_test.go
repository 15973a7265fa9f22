package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/mfa"
)

// authenticator plays the user's authenticator app: it hands out the code
// of a time step the server accepts now (the current one or the next) and
// never one it already used, waiting for the clock when both are used.
type authenticator struct {
	t      testing.TB
	secret string
	last   int64
}

func (a *authenticator) code() string {
	a.t.Helper()
	for mfa.Step(time.Now())+1 <= a.last {
		time.Sleep(200 * time.Millisecond) // TOTP is made of wall-clock steps
	}
	s := max(a.last+1, mfa.Step(time.Now()))
	a.last = s
	c, err := mfa.Code(a.secret, time.Unix(s*mfa.Period, 0))
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

// wrong is a code that is not the secret's in any accepted step.
func (a *authenticator) wrong() string {
	cur := mfa.Step(time.Now())
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", n)
		ok := true
		for s := cur - 2; s <= cur+2; s++ {
			if x, _ := mfa.Code(a.secret, time.Unix(s*mfa.Period, 0)); x == c {
				ok = false
			}
		}
		if ok {
			return c
		}
	}
}

// enrollTOTP enrols TOTP with a fresh session token and returns the
// authenticator and the recovery codes.
func enrollTOTP(t testing.TB, e *authtest.Env, tok string) (*authenticator, []string) {
	t.Helper()
	r := e.Do(t, "POST", "/auth/mfa/totp/enroll", nil, authtest.Bearer(tok)...)
	if r.Status != 200 {
		t.Fatalf("enroll: %d %s", r.Status, r.Body)
	}
	secret := r.JSON["secret"].(string)
	uri, qr := r.JSON["otpauth_uri"].(string), r.JSON["qr_png"].(string)
	if !strings.HasPrefix(uri, "otpauth://totp/") || !strings.Contains(uri, "secret="+secret) {
		t.Fatalf("otpauth uri %q", uri)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(qr, "data:image/png;base64,"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(strings.NewReader(string(raw))); err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	a := &authenticator{t: t, secret: secret}
	if r := e.Do(t, "POST", "/auth/mfa/totp/confirm", map[string]string{"code": a.wrong()}, authtest.Bearer(tok)...); r.Status != 401 || r.ErrorCode() != "invalid_code" {
		t.Fatalf("confirm with a wrong code: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "POST", "/auth/mfa/totp/confirm", map[string]string{"code": a.code()}, authtest.Bearer(tok)...)
	if r.Status != 200 || r.JSON["auth_level"] != "mfa" {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	var codes []string
	for _, c := range r.JSON["recovery_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes", len(codes))
	}
	return a, codes
}

// passwordStep logs in with the password and expects a challenge.
func passwordStep(t *testing.T, e *authtest.Env, email, pw, status string) string {
	t.Helper()
	r := e.Do(t, "POST", "/auth/login", creds(email, pw))
	if r.Status != 202 || r.JSON["status"] != status || r.Header.Get("Set-Cookie") != "" || r.JSON["token"] != nil {
		t.Fatalf("password step: %d %v %s", r.Status, r.Header, r.Body)
	}
	return r.JSON["challenge"].(string)
}

func secondStep(t *testing.T, e *authtest.Env, challenge, method, code string) *authtest.Response {
	t.Helper()
	return e.Do(t, "POST", "/auth/login/mfa", map[string]string{"challenge": challenge, "method": method, "code": code})
}

func auditCount(t *testing.T, e *authtest.Env, kind string) int {
	t.Helper()
	var n int
	if err := e.Store.Pool.QueryRow(context.Background(), "SELECT count(*) FROM audit_logs WHERE kind = $1", kind).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The whole TOTP life over HTTP on two replicas: enrolment (QR code,
// confirmation), two-step login, a code accepted once across replicas, a
// challenge used once, recovery codes used once, the level passed upstream
// and required by /auth/check, step-up before removal and password change,
// re-authentication, removal.
func TestTOTPEndToEnd(t *testing.T) {
	t.Parallel()
	// The per-account limit (10 a minute) would stop this test's pace;
	// TestSecondFactorGuessingLocksOut covers the limits.
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_RATELIMIT_LOGIN_ACCOUNT": "off"}})
	other := e.Replica(t)
	email, pw := "totp@example.com", "a totp passphrase"
	tok := e.SignupVerifyLogin(t, email, pw)
	r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...)
	if s := r.JSON["session"].(map[string]any); r.Status != 200 || s["auth_level"] != "password" || s["auth_time"] == nil {
		t.Fatalf("session: %d %s", r.Status, r.Body)
	}
	a, codes := enrollTOTP(t, e, tok)
	if r := e.Do(t, "POST", "/auth/mfa/totp/enroll", nil, authtest.Bearer(tok)...); r.Status != 409 || r.ErrorCode() != "already_enrolled" {
		t.Fatalf("second enrolment: %d %s", r.Status, r.Body)
	}
	// The confirming session now counts as multi-factor, on every replica.
	r = other.Do(t, "GET", "/auth/check?level=mfa", nil, authtest.Bearer(tok)...)
	if r.Status != 200 || r.Header.Get("X-Auth-Level") != "mfa" || r.Header.Get("X-Auth-Time") == "" {
		t.Fatalf("check after enrolment: %d %v", r.Status, r.Header)
	}

	// Two steps now; a code works once, whichever replica sees it.
	ch := passwordStep(t, e, email, pw, "mfa_required")
	code := a.code()
	r = secondStep(t, e, ch, "totp", code)
	if r.Status != 200 || r.JSON["token"] == nil || !strings.Contains(r.Header.Get("Set-Cookie"), "session=") {
		t.Fatalf("second step: %d %s", r.Status, r.Body)
	}
	mfaTok := r.JSON["token"].(string)
	if r := secondStep(t, other, ch, "totp", a.wrong()); r.Status != 401 || r.ErrorCode() != "invalid_challenge" {
		t.Fatalf("challenge used twice: %d %s", r.Status, r.Body)
	}
	ch2 := passwordStep(t, other, email, pw, "mfa_required")
	if r := secondStep(t, other, ch2, "totp", code); r.Status != 401 || r.ErrorCode() != "invalid_code" {
		t.Fatalf("replayed code on the other replica: %d %s", r.Status, r.Body)
	}
	// A recovery code works once (any case, dashes or not).
	if r := secondStep(t, other, ch2, "recovery_code", strings.ToUpper(strings.ReplaceAll(codes[0], "-", ""))); r.Status != 200 {
		t.Fatalf("recovery code: %d %s", r.Status, r.Body)
	}
	ch3 := passwordStep(t, e, email, pw, "mfa_required")
	if r := secondStep(t, e, ch3, "recovery_code", codes[0]); r.Status != 401 || r.ErrorCode() != "invalid_code" {
		t.Fatalf("recovery code used twice: %d %s", r.Status, r.Body)
	}
	if n := auditCount(t, e, "RECOVERY_CODE_USED"); n != 1 {
		t.Fatalf("%d RECOVERY_CODE_USED rows", n)
	}
	// Nonsense in the second step: 4xx, never a session.
	for _, body := range []map[string]string{
		{"challenge": "short", "method": "totp", "code": "123456"},
		{"challenge": ch3, "method": "passkey", "code": "x"},
		{"challenge": ch3, "method": "sms", "code": "123456"},
		{"challenge": ch3, "method": "totp", "code": "１２３４５６"},
	} {
		if r := e.Do(t, "POST", "/auth/login/mfa", body); r.Status/100 != 4 || r.JSON["token"] != nil {
			t.Fatalf("%v: %d %s", body, r.Status, r.Body)
		}
	}

	// The level upstream: the old password session does not meet mfa.
	r = e.Do(t, "GET", "/auth/check", nil, "X-Auth-Require-Level", "mfa", "Authorization", "Bearer "+mfaTok)
	if r.Status != 200 || r.Header.Get("X-Auth-Level") != "mfa" {
		t.Fatalf("check mfa session: %d %v", r.Status, r.Header)
	}
	// tok as if the enrolment had happened in another session: password only.
	setSessionAuth(t, e, tok, "password", time.Now())
	if r := e.Do(t, "GET", "/auth/check?level=mfa", nil, authtest.Bearer(tok)...); r.Status != 403 || r.ErrorCode() != "insufficient_auth_level" || r.Header.Get("X-Auth-Level") != "password" {
		t.Fatalf("check password session for mfa: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/check?level=password", nil, authtest.Bearer(tok)...); r.Status != 200 {
		t.Fatalf("check password session for password: %d", r.Status)
	}

	// Step-up: a password session of a user with a factor changes nothing.
	stepUp := func(tok, want string) {
		t.Helper()
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"DELETE", "/auth/mfa/totp", nil},
			{"POST", "/auth/mfa/recovery-codes", nil},
			{"POST", "/auth/mfa/totp/enroll", nil},
			{"POST", "/auth/password/change", map[string]string{"current_password": pw, "new_password": "another passphrase"}},
		} {
			if r := e.Do(t, c.method, c.path, c.body, authtest.Bearer(tok)...); r.ErrorCode() != want {
				t.Fatalf("%s %s: %d %s, want %s", c.method, c.path, r.Status, r.Body, want)
			}
		}
	}
	stepUp(tok, "reauthentication_required")
	if r := e.Do(t, "POST", "/auth/reauthenticate", map[string]string{"password": pw}, authtest.Bearer(tok)...); r.Status != 403 || r.ErrorCode() != "mfa_required" {
		t.Fatalf("re-authentication with the password alone: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/reauthenticate", map[string]string{"method": "totp", "code": a.wrong()}, authtest.Bearer(tok)...); r.Status != 401 || r.ErrorCode() != "invalid_code" {
		t.Fatalf("re-authentication with a wrong code: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "POST", "/auth/reauthenticate", map[string]string{"method": "totp", "code": a.code()}, authtest.Bearer(tok)...)
	if r.Status != 200 || r.JSON["auth_level"] != "mfa" {
		t.Fatalf("re-authentication: %d %s", r.Status, r.Body)
	}
	// Recent and mfa on the other replica too (the cache entry was replaced).
	if r := other.Do(t, "GET", "/auth/check?level=mfa", nil, authtest.Bearer(tok)...); r.Status != 200 {
		t.Fatalf("check after re-authentication: %d", r.Status)
	}
	// An mfa authentication older than the step-up window is not enough.
	setSessionAuth(t, e, tok, "mfa", time.Now().Add(-time.Hour))
	stepUp(tok, "reauthentication_required")
	if r := e.Do(t, "POST", "/auth/reauthenticate", map[string]string{"method": "recovery_code", "code": codes[1]}, authtest.Bearer(tok)...); r.Status != 200 {
		t.Fatalf("re-authentication with a recovery code: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "POST", "/auth/mfa/recovery-codes", nil, authtest.Bearer(tok)...)
	if r.Status != 200 || len(r.JSON["recovery_codes"].([]any)) != 10 {
		t.Fatalf("new recovery codes: %d %s", r.Status, r.Body)
	}
	ch4 := passwordStep(t, e, email, pw, "mfa_required")
	if r := secondStep(t, e, ch4, "recovery_code", codes[2]); r.Status != 401 || r.ErrorCode() != "invalid_code" {
		t.Fatalf("a replaced recovery code: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "DELETE", "/auth/mfa/totp", nil, authtest.Bearer(tok)...); r.Status != 204 {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "GET", "/auth/mfa", nil, authtest.Bearer(tok)...)
	if r.Status != 200 || r.JSON["totp"].(map[string]any)["enabled"] != false || r.JSON["recovery_codes_remaining"] != float64(0) {
		t.Fatalf("status after removal: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/login", creds(email, pw)); r.Status != 200 || r.JSON["token"] == nil {
		t.Fatalf("login after removal: %d %s", r.Status, r.Body)
	}
	for kind, want := range map[string]int{"MFA_ENROLLED": 1, "MFA_REMOVED": 1, "RECOVERY_CODES_REGENERATED": 1, "RECOVERY_CODE_USED": 2, "REAUTHENTICATED": 2} {
		if n := auditCount(t, e, kind); n != want {
			t.Errorf("%d %s rows, want %d", n, kind, want)
		}
	}
	if n := auditCount(t, e, "MFA_FAIL"); n < 3 {
		t.Errorf("%d MFA_FAIL rows", n)
	}
	metrics := e.MetricsText(t)
	for _, want := range []string{`auth_second_factor_total{method="totp",result="ok"}`, `auth_second_factor_total{method="recovery_code",result="invalid"}`,
		`auth_events_total{kind="MFA_ENROLLED"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// No secret, code or recovery code in the logs.
	logs := e.Logs() + other.Logs()
	for _, secret := range append([]string{a.secret, code}, codes...) {
		if strings.Contains(logs, secret) {
			t.Fatalf("the logs hold %q", secret)
		}
	}
}

// setSessionAuth rewrites how and when a session authenticated, in
// PostgreSQL, and drops its Redis copy (the next check reads the row).
func setSessionAuth(t *testing.T, e *authtest.Env, tok, level string, at time.Time) {
	t.Helper()
	h := sha256.Sum256([]byte(tok))
	if _, err := e.Store.Pool.Exec(context.Background(), "UPDATE sessions SET auth_method = $2, auth_at = $3 WHERE token_hash = $1", h[:], level, at); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: e.Redis.Addr(), Password: e.Redis.Password()})
	defer rdb.Close()
	if err := rdb.Del(context.Background(), "authstack:session:"+hex.EncodeToString(h[:])).Err(); err != nil {
		t.Fatal(err)
	}
}

// Guessing second-factor codes: one challenge takes at most 5 attempts,
// and every wrong code counts towards the client's lockout of the account,
// across challenges (a correct password does not reset the count: else
// whoever holds the password could guess codes without end, one fresh
// challenge at a time); locked, the password step is refused too.
func TestSecondFactorGuessingLocksOut(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_LOCKOUT_THRESHOLD": "8", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "100/1m",
	}})
	email, pw := "guess@example.com", "a guessed passphrase"
	a, _ := enrollTOTP(t, e, e.SignupVerifyLogin(t, email, pw))
	ch := passwordStep(t, e, email, pw, "mfa_required")
	for i := 0; i < 5; i++ {
		if r := secondStep(t, e, ch, "totp", a.wrong()); r.Status != 401 || r.ErrorCode() != "invalid_code" {
			t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	// The challenge is spent, even for the right code.
	if r := secondStep(t, e, ch, "totp", a.code()); r.Status != 401 || r.ErrorCode() != "invalid_challenge" {
		t.Fatalf("sixth attempt on one challenge: %d %s", r.Status, r.Body)
	}
	ch = passwordStep(t, e, email, pw, "mfa_required")
	for i := 0; i < 3; i++ {
		if r := secondStep(t, e, ch, "recovery_code", "aaaa-bbbb-cccc-dddd"); r.Status != 401 || r.ErrorCode() != "invalid_code" {
			t.Fatalf("recovery guess %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if r := secondStep(t, e, ch, "totp", a.code()); r.Status != 429 || r.ErrorCode() != "rate_limited" {
		t.Fatalf("after 8 wrong codes: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/login", creds(email, pw)); r.Status != 429 {
		t.Fatalf("password step while locked: %d %s", r.Status, r.Body)
	}
	if n := auditCount(t, e, "LOCKOUT"); n < 1 {
		t.Fatalf("%d LOCKOUT rows", n)
	}
}

// One TOTP code and one recovery code each open one session, however many
// requests race with them on two replicas (the step and the code are taken
// by one conditional UPDATE in PostgreSQL).
func TestSecondFactorRacesAcrossReplicas(t *testing.T) {
	t.Parallel()
	// The losers' failures and the pace would hit the lockout and limits: off here.
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_RATELIMIT_LOGIN_ACCOUNT": "off", "AUTH_RATELIMIT_LOGIN_IP": "off", "AUTH_LOCKOUT_THRESHOLD": "0"}})
	other := e.Replica(t)
	email, pw := "race@example.com", "a racing passphrase"
	a, codes := enrollTOTP(t, e, e.SignupVerifyLogin(t, email, pw))
	const n = 8
	race := func(method, code string) {
		t.Helper()
		chs := make([]string, n)
		for i := range chs {
			chs[i] = passwordStep(t, e, email, pw, "mfa_required")
		}
		var wg sync.WaitGroup
		status := make([]int, n)
		for i := range chs {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				srv := e
				if i%2 == 1 {
					srv = other
				}
				status[i] = secondStep(t, srv, chs[i], method, code).Status
			}(i)
		}
		wg.Wait()
		ok := 0
		for _, s := range status {
			if s == 200 {
				ok++
			} else if s != 401 {
				t.Fatalf("%s race: status %d", method, s)
			}
		}
		if ok != 1 {
			t.Fatalf("%s: %d sessions from one code (%v)", method, ok, status)
		}
	}
	race("totp", a.code())
	race("recovery_code", codes[3])
}

// With a second factor required, a user without one gets, after the right
// password, a challenge that can only enrol a factor: no session before
// the enrolment is confirmed, and the challenge works once.
func TestRequiredSecondFactorEnrolment(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_MFA_MODE": "required", "AUTH_MFA_METHODS": "totp"}})
	email, pw := "required@example.com", "a required passphrase"
	if r := e.Do(t, "POST", "/auth/signup", creds(email, pw)); r.Status != 202 {
		t.Fatal(r.Status)
	}
	tok := authtest.TokenFromMail(t, e.Mail.WaitForMessage(t, email, 15*time.Second).Text)
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": tok}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	r := e.Do(t, "POST", "/auth/login", creds(email, pw))
	if r.Status != 202 || r.JSON["status"] != "mfa_enrollment_required" || fmt.Sprint(r.JSON["methods"]) != "[totp]" {
		t.Fatalf("password step: %d %s", r.Status, r.Body)
	}
	ch := r.JSON["challenge"].(string)
	// The enrolment challenge is no second factor and no session.
	if r := secondStep(t, e, ch, "recovery_code", "aaaa-bbbb-cccc-dddd"); r.Status != 400 || r.ErrorCode() != "mfa_method_not_allowed" {
		t.Fatalf("second step with an enrolment challenge: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(ch)...); r.Status != 401 {
		t.Fatalf("challenge as a session: %d", r.Status)
	}
	r = e.Do(t, "POST", "/auth/login/mfa/totp/enroll", map[string]string{"challenge": ch})
	if r.Status != 200 {
		t.Fatalf("enrol with the challenge: %d %s", r.Status, r.Body)
	}
	a := &authenticator{t: t, secret: r.JSON["secret"].(string)}
	if r := e.Do(t, "POST", "/auth/login/mfa/totp/confirm", map[string]string{"challenge": ch, "code": a.wrong()}); r.Status != 401 || r.ErrorCode() != "invalid_code" {
		t.Fatalf("confirm with a wrong code: %d %s", r.Status, r.Body)
	}
	r = e.Do(t, "POST", "/auth/login/mfa/totp/confirm", map[string]string{"challenge": ch, "code": a.code()})
	if r.Status != 200 || r.JSON["token"] == nil || len(r.JSON["recovery_codes"].([]any)) != 10 {
		t.Fatalf("confirm with the challenge: %d %s", r.Status, r.Body)
	}
	sess := r.JSON["token"].(string)
	if r := e.Do(t, "GET", "/auth/check?level=mfa", nil, authtest.Bearer(sess)...); r.Status != 200 {
		t.Fatalf("session after enrolment: %d", r.Status)
	}
	if r := e.Do(t, "POST", "/auth/login/mfa/totp/enroll", map[string]string{"challenge": ch}); r.Status != 401 || r.ErrorCode() != "invalid_challenge" {
		t.Fatalf("enrolment challenge used twice: %d %s", r.Status, r.Body)
	}
	// From now on the factor is asked for.
	ch = passwordStep(t, e, email, pw, "mfa_required")
	if r := secondStep(t, e, ch, "totp", a.code()); r.Status != 200 {
		t.Fatalf("second step: %d %s", r.Status, r.Body)
	}
	// An mfa challenge cannot enrol another factor.
	ch = passwordStep(t, e, email, pw, "mfa_required")
	if r := e.Do(t, "POST", "/auth/login/mfa/totp/enroll", map[string]string{"challenge": ch}); r.Status != 400 {
		t.Fatalf("enrol with an mfa challenge: %d %s", r.Status, r.Body)
	}
}

// A pepper rotation keeps TOTP working: the old pepper (AUTH_OLD_PEPPERS)
// still decrypts the secret, the first use re-encrypts it under the new
// one, and after that the old pepper can go.
func TestTOTPSurvivesPepperRotation(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_RATELIMIT_LOGIN_ACCOUNT": "off"}})
	email, pw := "rotate@example.com", "a rotating passphrase"
	a, _ := enrollTOTP(t, e, e.SignupVerifyLogin(t, email, pw))
	keyID := func() string {
		var k string
		if err := e.Store.Pool.QueryRow(context.Background(), "SELECT t.key_id FROM user_totp t JOIN users u ON u.id = t.user_id WHERE u.email = $1", email).Scan(&k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	before := keyID()
	e.Vars["AUTH_OLD_PEPPERS"] = e.Vars["AUTH_PEPPER"]
	e.Vars["AUTH_PEPPER"] = authtest.Pepper()
	e.Restart(t)
	if r := secondStep(t, e, passwordStep(t, e, email, pw, "mfa_required"), "totp", a.code()); r.Status != 200 {
		t.Fatalf("TOTP after the rotation: %d %s", r.Status, r.Body)
	}
	if after := keyID(); after == before {
		t.Fatalf("the secret is still encrypted under the old pepper %s", before)
	}
	delete(e.Vars, "AUTH_OLD_PEPPERS")
	e.Restart(t) // the password hash was rehashed with the new pepper by the login above
	if r := secondStep(t, e, passwordStep(t, e, email, pw, "mfa_required"), "totp", a.code()); r.Status != 200 {
		t.Fatalf("TOTP once the old pepper is gone: %d %s", r.Status, r.Body)
	}
}
