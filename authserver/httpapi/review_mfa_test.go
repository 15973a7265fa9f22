package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/internal/softauthn"
)

// Garbage to every endpoint of the second factor, the step-up and
// passkeys, with and without a session and with a live challenge: always a
// JSON 4xx, never a 5xx.
func TestMFAEndpointsRefuseGarbage(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{
		"AUTH_RATELIMIT_LOGIN_IP": "off", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "off", "AUTH_LOCKOUT_THRESHOLD": "0",
	}})
	email, pw := "garbage@example.com", "a garbage passphrase"
	tok := e.SignupVerifyLogin(t, email, pw)
	enrollTOTP(t, e, tok)
	ch := passwordStep(t, e, email, pw, "mfa_required")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	cdj := func(typ, chal string) string {
		return b64(fmt.Sprintf(`{"type":%q,"challenge":%q,"origin":%q}`, typ, chal, pkOrigin))
	}
	creds := []string{
		`"x"`, `1`, `null`, `[]`, `{}`, `{"id":"%%%","rawId":"%%%","type":"public-key","response":{}}`,
		`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"!!!!"}}`,
		`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"` + b64("not json") + `","authenticatorData":"AAAA","signature":"AAAA"}}`,
		`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"` + cdj("webauthn.get", "") + `","authenticatorData":"","signature":""}}`,
		`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"` + cdj("webauthn.get", strings.Repeat("A", 43)) + `","authenticatorData":"AAAA","signature":"AAAA","userHandle":"AAAA"}}`,
		`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"` + cdj("webauthn.create", strings.Repeat("A", 43)) + `","attestationObject":"AAAA"}}`,
		`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"` + cdj("webauthn.create", strings.Repeat("A", 43)) + `","attestationObject":"` + b64("\xa0") + `"}}`,
	}
	bodies := []string{"", "null", "[]", "{", `"str"`, "123", `{"challenge":123}`, `{"challenge":null}`, `{"challenge":""}`,
		`{"challenge":"` + ch + `"}`, `{"challenge":"` + ch + `","method":"totp","code":123}`,
		`{"challenge":"` + ch + `","method":"nope","code":"1"}`, `{"challenge":"` + ch + `","method":"","code":""}`,
		`{"challenge":"` + ch + `","method":"recovery_code","code":"` + strings.Repeat("é", 300) + `"}`,
		`{"challenge":"` + ch + `","method":"totp","code":"\u0000"}`,
		`{"challenge":"` + strings.Repeat("A", 43) + `","method":"totp","code":"000000"}`,
		`{"challenge":"` + strings.Repeat("A", 10000) + `"}`,
		`{"password":123}`, `{"password":""}`, `{"method":"totp"}`, `{"method":"passkey","code":"x"}`, `{"method":"recovery_code","code":""}`,
		`{"code":[]}`, `{"code":""}`, `{"name":"` + strings.Repeat("x", 100) + `"}`, `{"name":"\u0007"}`, `{"name":{}}`,
		`{"unknown":1}`, `{"challenge":"` + ch + `","unknown":1}`,
		"{\"challenge\":\"" + strings.Repeat("x", 2<<20) + "\"}",
	}
	for _, c := range creds {
		bodies = append(bodies, `{"credential":`+c+`}`, `{"challenge":"`+ch+`","credential":`+c+`}`, `{"challenge":"`+ch+`","credential":`+c+`,"name":"n"}`)
	}
	endpoints := []struct{ method, path string }{
		{"POST", "/auth/login/mfa"}, {"POST", "/auth/login/mfa/totp/enroll"}, {"POST", "/auth/login/mfa/totp/confirm"},
		{"POST", "/auth/login/mfa/passkey/begin"}, {"POST", "/auth/login/mfa/passkey/finish"},
		{"POST", "/auth/login/mfa/passkey/register/begin"}, {"POST", "/auth/login/mfa/passkey/register/finish"},
		{"POST", "/auth/passkeys/login/begin"}, {"POST", "/auth/passkeys/login/finish"},
		{"POST", "/auth/passkeys/register/begin"}, {"POST", "/auth/passkeys/register/finish"},
		{"PATCH", "/auth/passkeys/not-a-uuid"}, {"PATCH", "/auth/passkeys/00000000-0000-0000-0000-000000000000"},
		{"DELETE", "/auth/passkeys/%00"}, {"DELETE", "/auth/passkeys/00000000-0000-0000-0000-000000000000"},
		{"POST", "/auth/reauthenticate"}, {"POST", "/auth/reauthenticate/passkey/begin"}, {"POST", "/auth/reauthenticate/passkey/finish"},
		{"POST", "/auth/mfa/totp/enroll"}, {"POST", "/auth/mfa/totp/confirm"}, {"DELETE", "/auth/mfa/totp"},
		{"POST", "/auth/mfa/recovery-codes"}, {"GET", "/auth/mfa"}, {"GET", "/auth/check?level=%ff"},
	}
	for _, ep := range endpoints {
		for _, auth := range [][]string{nil, authtest.Bearer(tok), authtest.Bearer(ch)} {
			for _, b := range bodies {
				r := e.Do(t, ep.method, ep.path, b, auth...)
				if r.Status >= 500 || (r.Status >= 400 && r.ErrorCode() == "") {
					t.Errorf("%s %s %.120q (auth %v): %d %.300s", ep.method, ep.path, b, auth != nil, r.Status, r.Body)
				}
			}
		}
	}
	if strings.Contains(e.Logs(), ch) {
		t.Error("the login challenge is in the logs")
	}
}

// /auth/check: the level a proxy requires cannot be lowered by the client.
// A proxy that sets X-Auth-Require-Level may forward the client's query
// string (Envoy's HTTP ext_authz appends the request path and query), and
// a query may repeat "level": every requirement given must be met.
func TestCheckRequiredLevelCannotBeWeakened(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	tok := e.SignupVerifyLogin(t, "weaken@example.com", "a weakened passphrase")
	for _, c := range []struct {
		query, header string
		want          int
	}{
		{"", "", 200},
		{"?level=password", "", 200},
		{"", "password", 200},
		{"?level=mfa", "", 403},
		{"", "mfa", 403},
		{"?level=password", "mfa", 403},
		{"?level=mfa", "password", 403},
		{"?level=password&level=mfa", "", 403},
		{"?level=bogus", "", 403},
	} {
		h := append(authtest.Bearer(tok), "X-Auth-Require-Level", c.header)
		r := e.Do(t, "GET", "/auth/check"+c.query, nil, h...)
		if r.Status != c.want {
			t.Errorf("check%s with X-Auth-Require-Level %q: %d, want %d", c.query, c.header, r.Status, c.want)
		}
		if c.want == 403 && (r.ErrorCode() != "insufficient_auth_level" || r.Header.Get("X-Auth-User-Id") != "") {
			t.Errorf("check%s with X-Auth-Require-Level %q: %s %v", c.query, c.header, r.Body, r.Header)
		}
	}
}

// An enrolment challenge has 5 attempts like any challenge: enrolling
// takes one, and so does each confirmation (a wrong code also counts
// towards the lockout), so a pending secret's codes cannot be guessed
// without end with one challenge.
func TestEnrollmentChallengeAttemptsAreCounted(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_MFA_MODE": "required", "AUTH_MFA_METHODS": "totp",
		"AUTH_RATELIMIT_LOGIN_ACCOUNT": "off", "AUTH_LOCKOUT_THRESHOLD": "20"}})
	email, pw := "enrol-guess@example.com", "an enrolment passphrase"
	if r := e.Do(t, "POST", "/auth/signup", creds(email, pw)); r.Status != 202 {
		t.Fatal(r.Status)
	}
	vt := authtest.TokenFromMail(t, e.Mail.WaitForMessage(t, email, 15*time.Second).Text)
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": vt}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	ch := passwordStep(t, e, email, pw, "mfa_enrollment_required")
	r := e.Do(t, "POST", "/auth/login/mfa/totp/enroll", map[string]string{"challenge": ch})
	if r.Status != 200 {
		t.Fatalf("enrol: %d %s", r.Status, r.Body)
	}
	a := &authenticator{t: t, secret: r.JSON["secret"].(string)}
	fails := auditCount(t, e, "MFA_FAIL")
	for i := 0; i < 4; i++ {
		if r := e.Do(t, "POST", "/auth/login/mfa/totp/confirm", map[string]string{"challenge": ch, "code": a.wrong()}); r.Status != 401 || r.ErrorCode() != "invalid_code" {
			t.Fatalf("wrong confirmation %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if n := auditCount(t, e, "MFA_FAIL") - fails; n != 4 {
		t.Errorf("%d MFA_FAIL rows for 4 wrong confirmations", n)
	}
	if r := e.Do(t, "POST", "/auth/login/mfa/totp/confirm", map[string]string{"challenge": ch, "code": a.code()}); r.Status != 401 || r.ErrorCode() != "invalid_challenge" {
		t.Fatalf("sixth attempt on one enrolment challenge: %d %s", r.Status, r.Body)
	}
	// A new challenge enrols (the right code at the first attempt).
	ch = passwordStep(t, e, email, pw, "mfa_enrollment_required")
	if r := e.Do(t, "POST", "/auth/login/mfa/totp/enroll", map[string]string{"challenge": ch}); r.Status != 200 {
		t.Fatalf("enrol again: %d %s", r.Status, r.Body)
	} else {
		a = &authenticator{t: t, secret: r.JSON["secret"].(string)}
	}
	if r := e.Do(t, "POST", "/auth/login/mfa/totp/confirm", map[string]string{"challenge": ch, "code": a.code()}); r.Status != 200 {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
}

// Removing the last second factor ends the recovery codes whichever
// factor it is (a passkey as well as TOTP): codes kept past it would come
// back to life with the next factor, which would then show none.
func TestRemovingLastFactorEndsRecoveryCodes(t *testing.T) {
	t.Parallel()
	e := passkeyEnv(t)
	tok := e.SignupVerifyLogin(t, "last-factor@example.com", "a last-factor passphrase")
	enrollTOTP(t, e, tok)
	_, pj := pkRegister(t, e, tok, softauthn.New(pkOrigin), "Phone")
	if r := e.Do(t, "DELETE", "/auth/mfa/totp", nil, authtest.Bearer(tok)...); r.Status != 204 {
		t.Fatalf("remove TOTP: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/mfa", nil, authtest.Bearer(tok)...); r.JSON["recovery_codes_remaining"] != 10.0 {
		t.Fatalf("codes while a passkey remains: %s", r.Body)
	}
	if r := e.Do(t, "DELETE", "/auth/passkeys/"+pj["id"].(string), nil, authtest.Bearer(tok)...); r.Status != 204 {
		t.Fatalf("remove the passkey: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/mfa", nil, authtest.Bearer(tok)...); r.JSON["recovery_codes_remaining"] != 0.0 {
		t.Fatalf("codes after the last factor went: %s", r.Body)
	}
	enrollTOTP(t, e, tok) // fails unless the new factor comes with 10 new codes
}

// An enrolment challenge only stands in for a second factor while the
// user has none. One taken (with a stolen password) before the owner
// enrolled must not enrol a second factor afterwards: that would open an
// mfa session past the owner's new factor. Both ways: owner passkey then
// TOTP with the stale challenge, owner TOTP then a passkey.
func TestStaleEnrollmentChallengeCannotAddFactor(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_MFA_MODE": "required",
		"AUTH_RATELIMIT_LOGIN_IP": "1000/1m", "AUTH_RATELIMIT_LOGIN_ACCOUNT": "off"}})
	signup := func(email, pw string) {
		if r := e.Do(t, "POST", "/auth/signup", creds(email, pw)); r.Status != 202 {
			t.Fatalf("signup: %d %s", r.Status, r.Body)
		}
		vt := authtest.TokenFromMail(t, e.Mail.WaitForMessage(t, email, 15*time.Second).Text)
		if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": vt}); r.Status != 200 {
			t.Fatalf("verify: %d %s", r.Status, r.Body)
		}
	}
	passkeyEnrol := func(ch string) *authtest.Response {
		r := e.Do(t, "POST", "/auth/login/mfa/passkey/register/begin", map[string]string{"challenge": ch})
		if r.Status != 200 {
			return r
		}
		reg, _, err := softauthn.New(pkOrigin).Create(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		return e.Do(t, "POST", "/auth/login/mfa/passkey/register/finish", map[string]any{"challenge": ch, "credential": reg})
	}

	// The owner enrols a passkey; the stale challenge tries TOTP.
	email, pw := "stale-1@example.com", "a stale passphrase"
	signup(email, pw)
	stale := passwordStep(t, e, email, pw, "mfa_enrollment_required")
	if r := passkeyEnrol(passwordStep(t, e, email, pw, "mfa_enrollment_required")); r.Status != 200 {
		t.Fatalf("owner's passkey enrolment: %d %s", r.Status, r.Body)
	}
	r := e.Do(t, "POST", "/auth/login/mfa/totp/enroll", map[string]string{"challenge": stale})
	if r.Status == 200 {
		a := &authenticator{t: t, secret: r.JSON["secret"].(string)}
		r = e.Do(t, "POST", "/auth/login/mfa/totp/confirm", map[string]string{"challenge": stale, "code": a.code()})
	}
	if r.Status != 401 || r.ErrorCode() != "invalid_challenge" {
		t.Errorf("TOTP enrolment with a challenge older than the owner's passkey: %d %s", r.Status, r.Body)
	}

	// The owner enrols TOTP; the stale challenge tries a passkey.
	email = "stale-2@example.com"
	signup(email, pw)
	stale = passwordStep(t, e, email, pw, "mfa_enrollment_required")
	ch := passwordStep(t, e, email, pw, "mfa_enrollment_required")
	r = e.Do(t, "POST", "/auth/login/mfa/totp/enroll", map[string]string{"challenge": ch})
	a := &authenticator{t: t, secret: r.JSON["secret"].(string)}
	if r := e.Do(t, "POST", "/auth/login/mfa/totp/confirm", map[string]string{"challenge": ch, "code": a.code()}); r.Status != 200 {
		t.Fatalf("owner's TOTP enrolment: %d %s", r.Status, r.Body)
	}
	if r := passkeyEnrol(stale); r.Status != 401 || r.ErrorCode() != "invalid_challenge" {
		t.Errorf("passkey enrolment with a challenge older than the owner's TOTP: %d %s", r.Status, r.Body)
	}
}
