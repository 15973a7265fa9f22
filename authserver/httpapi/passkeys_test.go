package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/authserver/internal/softauthn"
)

// The pages' origin and rpId in authtest: FRONTEND_URL https://app.authstack.test.
const pkOrigin = "https://app.authstack.test"

func passkeyEnv(t *testing.T) *authtest.Env {
	// Every test here logs in from 127.0.0.1 many times.
	return authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_RATELIMIT_LOGIN_IP": "1000/1m"}})
}

// pkRegister registers a passkey of a on the session tok and returns it.
func pkRegister(t *testing.T, e *authtest.Env, tok string, a *softauthn.Authenticator, name string) (*softauthn.Credential, map[string]any) {
	t.Helper()
	c, r := pkRegisterFinish(t, e, tok, a, name)
	return c, r.JSON["passkey"].(map[string]any)
}

// pkRegisterFinish registers a passkey of a on the session tok and returns
// the finish response.
func pkRegisterFinish(t *testing.T, e *authtest.Env, tok string, a *softauthn.Authenticator, name string) (*softauthn.Credential, *authtest.Response) {
	t.Helper()
	r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tok)...)
	if r.Status != 200 {
		t.Fatalf("register/begin: %d %s", r.Status, r.Body)
	}
	cred, c, err := a.Create(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	r = e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"name": name, "credential": cred}, authtest.Bearer(tok)...)
	if r.Status != 201 {
		t.Fatalf("register/finish: %d %s", r.Status, r.Body)
	}
	return c, r
}

// recoveryCodes returns the recovery_codes of a response.
func recoveryCodes(t *testing.T, r *authtest.Response) []string {
	t.Helper()
	raw, ok := r.JSON["recovery_codes"].([]any)
	if !ok {
		t.Fatalf("no recovery_codes array: %s", r.Body)
	}
	out := make([]string, len(raw))
	for i, c := range raw {
		out[i] = c.(string)
	}
	return out
}

// A passkey as the first factor comes with ten recovery codes, shown once
// (a password reset keeps factors: without them a lost device locks the
// account for good); one completes a later login challenge, once; a second
// passkey issues none.
func TestPasskeyFirstFactorIssuesRecoveryCodes(t *testing.T) {
	t.Parallel()
	e := passkeyEnv(t)
	email := "pk-recovery@example.com"
	tok := e.SignupVerifyLogin(t, email, "correct-horse-9")
	a := softauthn.New(pkOrigin)
	ac, r := pkRegisterFinish(t, e, tok, a, "Phone")
	codes := recoveryCodes(t, r)
	if len(codes) != 10 {
		t.Fatalf("first passkey: %d recovery codes, want 10: %s", len(codes), r.Body)
	}
	if s := e.Do(t, "GET", "/auth/mfa", nil, authtest.Bearer(tok)...); s.Status != 200 || s.JSON["recovery_codes_remaining"] != float64(10) {
		t.Fatalf("factors after the first passkey: %d %s", s.Status, s.Body)
	}

	// A second passkey (step-up done by the first) leaves the codes alone.
	_, r = pkRegisterFinish(t, e, pkToken(t, e, a, ac), softauthn.New(pkOrigin), "Laptop")
	if c := recoveryCodes(t, r); len(c) != 0 {
		t.Fatalf("second passkey: %d new recovery codes: %s", len(c), r.Body)
	}

	// The device is lost: a recovery code answers the password step, once.
	ch := passwordStep(t, e, email, "correct-horse-9", "mfa_required")
	if r := secondStep(t, e, ch, "recovery_code", codes[0]); r.Status != 200 || r.JSON["token"] == nil {
		t.Fatalf("recovery code after the first passkey: %d %s", r.Status, r.Body)
	}
	ch = passwordStep(t, e, email, "correct-horse-9", "mfa_required")
	if r := secondStep(t, e, ch, "recovery_code", codes[0]); r.Status != 401 || r.ErrorCode() != "invalid_code" {
		t.Fatalf("the same recovery code again: %d %s", r.Status, r.Body)
	}
	if r := secondStep(t, e, ch, "recovery_code", codes[1]); r.Status != 200 {
		t.Fatalf("another recovery code: %d %s", r.Status, r.Body)
	}
}

// pkLoginBegin returns the options of a discoverable login.
func pkLoginBegin(t *testing.T, e *authtest.Env) []byte {
	t.Helper()
	r := e.Do(t, "POST", "/auth/passkeys/login/begin", map[string]any{})
	if r.Status != 200 {
		t.Fatalf("login/begin: %d %s", r.Status, r.Body)
	}
	return r.Body
}

// pkLogin logs in with a discoverable passkey of a (c, or the first one).
func pkLogin(t *testing.T, e *authtest.Env, a *softauthn.Authenticator, c *softauthn.Credential) *authtest.Response {
	t.Helper()
	cred, err := a.Get(pkLoginBegin(t, e), c)
	if err != nil {
		t.Fatal(err)
	}
	return e.Do(t, "POST", "/auth/passkeys/login/finish", map[string]any{"credential": cred})
}

// pkToken logs in with a passkey and returns the session token.
func pkToken(t *testing.T, e *authtest.Env, a *softauthn.Authenticator, c *softauthn.Credential) string {
	t.Helper()
	r := pkLogin(t, e, a, c)
	if r.Status != 200 {
		t.Fatalf("passkey login: %d %s", r.Status, r.Body)
	}
	return r.JSON["token"].(string)
}

// Register two passkeys, log in with each without an email, list, rename,
// remove: a removed passkey logs nobody in, the other still does.
func TestPasskeyLifecycle(t *testing.T) {
	t.Parallel()
	e := passkeyEnv(t)
	tok := e.SignupVerifyLogin(t, "pk-owner@example.com", "correct-horse-9")
	phone, laptop := softauthn.New(pkOrigin), softauthn.New(pkOrigin)
	pc, pj := pkRegister(t, e, tok, phone, "Phone")
	// Now the account has a factor: the password session may no longer
	// change factors (step-up), a passkey session may.
	if r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tok)...); r.Status != 403 || r.ErrorCode() != "reauthentication_required" {
		t.Fatalf("second registration on the password session: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "DELETE", "/auth/passkeys/"+pj["id"].(string), nil, authtest.Bearer(tok)...); r.Status != 403 || r.ErrorCode() != "reauthentication_required" {
		t.Fatalf("removal on the password session: %d %s", r.Status, r.Body)
	}
	tok = pkToken(t, e, phone, pc)
	lc, lj := pkRegister(t, e, tok, laptop, "")
	if pj["name"] != "Phone" || lj["name"] != "Passkey" || pj["backed_up"] != true || pj["last_used_at"] != nil {
		t.Fatalf("registered: %v / %v", pj, lj)
	}

	// The creation options: discoverable, user verification required, the
	// account's passkeys excluded (the authenticator refuses a second one).
	r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tok)...)
	var opts struct {
		PublicKey struct {
			RP                     struct{ ID string }
			AuthenticatorSelection struct {
				ResidentKey      string `json:"residentKey"`
				UserVerification string `json:"userVerification"`
			} `json:"authenticatorSelection"`
			Exclude []struct{ ID string } `json:"excludeCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(r.Body, &opts); err != nil {
		t.Fatal(err)
	}
	if o := opts.PublicKey; o.RP.ID != "app.authstack.test" || o.AuthenticatorSelection.ResidentKey != "required" ||
		o.AuthenticatorSelection.UserVerification != "required" || len(o.Exclude) != 2 {
		t.Fatalf("creation options: %s", r.Body)
	}

	for _, c := range []struct {
		a *softauthn.Authenticator
		c *softauthn.Credential
	}{{phone, pc}, {laptop, lc}} {
		r := pkLogin(t, e, c.a, c.c)
		if r.Status != 200 || r.JSON["token"] == nil || !strings.Contains(r.Header.Get("Set-Cookie"), "session=") {
			t.Fatalf("passkey login: %d %s", r.Status, r.Body)
		}
		s := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(r.JSON["token"].(string))...)
		if s.Status != 200 || s.JSON["user"].(map[string]any)["email"] != "pk-owner@example.com" || !strings.Contains(string(s.Body), `"auth_level":"passkey"`) {
			t.Fatalf("session of the passkey login: %d %s", s.Status, s.Body)
		}
	}

	r = e.Do(t, "PATCH", "/auth/passkeys/"+pj["id"].(string), map[string]string{"name": "  Old phone "}, authtest.Bearer(tok)...)
	if r.Status != 200 || r.JSON["passkey"].(map[string]any)["name"] != "Old phone" {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PATCH", "/auth/passkeys/"+pj["id"].(string), map[string]string{"name": "a\x07b"}, authtest.Bearer(tok)...); r.Status != 400 || r.ErrorCode() != "invalid_name" {
		t.Fatalf("control character in a name: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "PUT", "/auth/passkeys/"+pj["id"].(string), map[string]string{"name": "x"}, authtest.Bearer(tok)...); r.Status != 405 || r.Header.Get("Allow") != "PATCH, DELETE" {
		t.Fatalf("PUT on a passkey: %d %v", r.Status, r.Header)
	}
	r = e.Do(t, "GET", "/auth/passkeys", nil, authtest.Bearer(tok)...)
	list := r.JSON["passkeys"].([]any)
	if r.Status != 200 || len(list) != 2 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}
	for _, p := range list {
		if p.(map[string]any)["last_used_at"] == nil {
			t.Fatalf("a used passkey without last_used_at: %s", r.Body)
		}
	}

	if r := e.Do(t, "DELETE", "/auth/passkeys/"+pj["id"].(string), nil, authtest.Bearer(tok)...); r.Status != 204 {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "DELETE", "/auth/passkeys/"+pj["id"].(string), nil, authtest.Bearer(tok)...); r.Status != 404 {
		t.Fatalf("remove again: %d %s", r.Status, r.Body)
	}
	if r := pkLogin(t, e, phone, pc); r.Status != 401 || r.ErrorCode() != "invalid_credentials" {
		t.Fatalf("login with a removed passkey: %d %s", r.Status, r.Body)
	}
	if r := pkLogin(t, e, laptop, lc); r.Status != 200 {
		t.Fatalf("login with the passkey kept: %d %s", r.Status, r.Body)
	}

	// Another account cannot see, rename or remove them.
	other := e.SignupVerifyLogin(t, "pk-other@example.com", "correct-horse-9")
	if r := e.Do(t, "GET", "/auth/passkeys", nil, authtest.Bearer(other)...); r.Status != 200 || len(r.JSON["passkeys"].([]any)) != 0 {
		t.Fatalf("another account's list: %d %s", r.Status, r.Body)
	}
	for _, m := range []string{"PATCH", "DELETE"} {
		if r := e.Do(t, m, "/auth/passkeys/"+lj["id"].(string), map[string]string{"name": "mine"}, authtest.Bearer(other)...); r.Status != 404 {
			t.Fatalf("%s of another account's passkey: %d %s", m, r.Status, r.Body)
		}
	}

	for kind, want := range map[string]int{"PASSKEY_REGISTERED": 2, "PASSKEY_RENAMED": 1, "PASSKEY_REMOVED": 1} {
		if n := auditCount(t, e, kind); n != want {
			t.Errorf("%d %s audit rows, want %d", n, kind, want)
		}
	}
	m := e.MetricsText(t)
	for _, line := range []string{
		`passkey_ceremonies_total{ceremony="register",outcome="ok"} 2`,
		`passkey_ceremonies_total{ceremony="login",outcome="ok"} 4`,
		`passkey_ceremonies_total{ceremony="login",outcome="fail"} 1`,
		`auth_events_total{kind="PASSKEY_REMOVED"} 1`,
	} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
}

// The login options are the same for everyone: no email is asked, no
// credential listed, so they tell nothing about any account.
func TestPasskeyLoginOptionsRevealNothing(t *testing.T) {
	t.Parallel()
	e := passkeyEnv(t)
	tok := e.SignupVerifyLogin(t, "pk-enum@example.com", "correct-horse-9")
	pkRegister(t, e, tok, softauthn.New(pkOrigin), "Phone")
	shape := func(b []byte) string {
		var o map[string]map[string]any
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatal(err)
		}
		delete(o["publicKey"], "challenge")
		s, _ := json.Marshal(o)
		return string(s)
	}
	anon := shape(pkLoginBegin(t, e))
	r := e.Do(t, "POST", "/auth/passkeys/login/begin", map[string]any{}, authtest.Bearer(tok)...)
	if withSession := shape(r.Body); withSession != anon || strings.Contains(anon, "allowCredentials") {
		t.Fatalf("login options differ or list credentials:\n%s\n%s", anon, withSession)
	}
	if !strings.Contains(anon, `"userVerification":"required"`) {
		t.Fatalf("discoverable login without required user verification: %s", anon)
	}
	if r := e.Do(t, "POST", "/auth/passkeys/login/begin", map[string]any{"email": "pk-enum@example.com"}); r.Status != 400 {
		t.Fatalf("an email in the login options request: %d %s", r.Status, r.Body)
	}
}

// What an attacker can try against the ceremonies, each refused by the real
// go-webauthn verification or by the rules around it.
func TestPasskeyAttacksRefused(t *testing.T) {
	t.Parallel()
	e := passkeyEnv(t)
	tokA := e.SignupVerifyLogin(t, "pk-alice@example.com", "correct-horse-9")
	tokB := e.SignupVerifyLogin(t, "pk-bob@example.com", "correct-horse-9")
	alice, bob := softauthn.New(pkOrigin), softauthn.New(pkOrigin)
	ac, _ := pkRegister(t, e, tokA, alice, "Alice's phone")
	bc, _ := pkRegister(t, e, tokB, bob, "Bob's phone")
	// Sessions that may change factors (step-up).
	tokA, tokB = pkToken(t, e, alice, ac), pkToken(t, e, bob, bc)
	finish := func(cred []byte) *authtest.Response {
		return e.Do(t, "POST", "/auth/passkeys/login/finish", map[string]any{"credential": json.RawMessage(cred)})
	}

	t.Run("replayed challenge", func(t *testing.T) {
		cred, err := alice.Get(pkLoginBegin(t, e), ac)
		if err != nil {
			t.Fatal(err)
		}
		if r := finish(cred); r.Status != 200 {
			t.Fatalf("first use: %d %s", r.Status, r.Body)
		}
		if r := finish(cred); r.Status != 401 || r.ErrorCode() != "invalid_credentials" {
			t.Fatalf("the same assertion again: %d %s", r.Status, r.Body)
		}
		// A fresh signature over a used challenge is refused too.
		var o struct {
			PublicKey struct{ Challenge, RPID string }
		}
		opts := pkLoginBegin(t, e)
		_ = json.Unmarshal(opts, &o)
		first, _ := alice.Get(opts, ac)
		if r := finish(first); r.Status != 200 {
			t.Fatalf("login: %d %s", r.Status, r.Body)
		}
		again, _ := alice.Assert(ac, o.PublicKey.Challenge, "app.authstack.test")
		if r := finish(again); r.Status != 401 {
			t.Fatalf("a new assertion over a used challenge: %d %s", r.Status, r.Body)
		}
		// A registration's challenge is single use as well.
		r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tokA)...)
		reg, _, _ := softauthn.New(pkOrigin).Create(r.Body)
		if r := e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"credential": reg}, authtest.Bearer(tokA)...); r.Status != 201 {
			t.Fatalf("register: %d %s", r.Status, r.Body)
		}
		if r := e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"credential": reg}, authtest.Bearer(tokA)...); r.Status != 400 || r.ErrorCode() != "invalid_passkey" {
			t.Fatalf("the same registration again: %d %s", r.Status, r.Body)
		}
	})

	t.Run("a login challenge cannot finish a registration", func(t *testing.T) {
		opts := pkLoginBegin(t, e)
		var o struct{ PublicKey struct{ Challenge string } }
		_ = json.Unmarshal(opts, &o)
		fake := []byte(`{"publicKey":{"challenge":"` + o.PublicKey.Challenge + `","rp":{"id":"app.authstack.test"},"user":{"id":"AAAA"}}}`)
		reg, _, _ := softauthn.New(pkOrigin).Create(fake)
		if r := e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"credential": reg}, authtest.Bearer(tokA)...); r.Status != 400 {
			t.Fatalf("registration with a login challenge: %d %s", r.Status, r.Body)
		}
	})

	t.Run("Alice's passkey claiming Bob's user handle", func(t *testing.T) {
		forged := *ac
		forged.UserHandle = bc.UserHandle
		cred, _ := alice.Get(pkLoginBegin(t, e), &forged)
		if r := finish(cred); r.Status != 401 {
			t.Fatalf("Alice's key with Bob's user handle: %d %s", r.Status, r.Body)
		}
		// Bob's credential id with Alice's key: the signature is not Bob's.
		stolen := *ac
		stolen.ID, stolen.UserHandle = bc.ID, bc.UserHandle
		cred, _ = alice.Get(pkLoginBegin(t, e), &stolen)
		if r := finish(cred); r.Status != 401 {
			t.Fatalf("Bob's credential id signed by Alice: %d %s", r.Status, r.Body)
		}
	})

	t.Run("a registration is bound to the session that began it", func(t *testing.T) {
		r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tokA)...)
		reg, _, _ := softauthn.New(pkOrigin).Create(r.Body)
		if r := e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"credential": reg}, authtest.Bearer(tokB)...); r.Status != 400 {
			t.Fatalf("Bob finishing Alice's registration: %d %s", r.Status, r.Body)
		}
		// Another session of Alice's (a stolen one, say) cannot finish it either.
		r = e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tokA)...)
		reg, _, _ = softauthn.New(pkOrigin).Create(r.Body)
		if r := e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"credential": reg}, authtest.Bearer(pkToken(t, e, alice, ac))...); r.Status != 400 {
			t.Fatalf("another session of Alice finishing her registration: %d %s", r.Status, r.Body)
		}
	})

	t.Run("credential id collision", func(t *testing.T) {
		// Bob registers a key of his own under Alice's credential id: refused,
		// and Alice's passkey still logs her in.
		mallory := softauthn.New(pkOrigin)
		mallory.NextID = ac.ID
		r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tokB)...)
		reg, _, _ := mallory.Create(r.Body)
		if r := e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"credential": reg}, authtest.Bearer(tokB)...); r.Status != 409 || r.ErrorCode() != "passkey_exists" {
			t.Fatalf("a second registration of Alice's credential id: %d %s", r.Status, r.Body)
		}
		if r := pkLogin(t, e, alice, ac); r.Status != 200 || r.JSON["user"].(map[string]any)["email"] != "pk-alice@example.com" {
			t.Fatalf("Alice after the collision: %d %s", r.Status, r.Body)
		}
	})

	for _, c := range []struct {
		name string
		bad  func(a *softauthn.Authenticator)
	}{
		{"wrong origin", func(a *softauthn.Authenticator) { a.Origin = "https://app.authstack.test.evil.example" }},
		{"sibling origin", func(a *softauthn.Authenticator) { a.Origin = "https://other.authstack.test" }},
		{"wrong rpId", func(a *softauthn.Authenticator) { a.RPID = "evil.example" }},
		{"parent rpId", func(a *softauthn.Authenticator) { a.RPID = "authstack.test" }},
		{"no user verification", func(a *softauthn.Authenticator) { a.NoUV = true }},
		{"a registration's client data", func(a *softauthn.Authenticator) { a.Type = "webauthn.create" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			bad := &softauthn.Authenticator{Origin: pkOrigin, Credentials: alice.Credentials}
			c.bad(bad)
			if r := pkLogin(t, e, bad, ac); r.Status != 401 {
				t.Fatalf("login: %d %s", r.Status, r.Body)
			}
			r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tokA)...)
			if c.name == "a registration's client data" {
				bad.Type = "webauthn.get"
			}
			reg, _, _ := bad.Create(r.Body)
			if r := e.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"credential": reg}, authtest.Bearer(tokA)...); r.Status != 400 || r.ErrorCode() != "invalid_passkey" {
				t.Fatalf("registration: %d %s", r.Status, r.Body)
			}
		})
	}

	t.Run("sign count that goes back", func(t *testing.T) {
		tok := e.SignupVerifyLogin(t, "pk-key@example.com", "correct-horse-9")
		key := softauthn.New(pkOrigin)
		key.Counting = true
		kc, kj := pkRegister(t, e, tok, key, "Security key")
		if r := pkLogin(t, e, key, kc); r.Status != 200 {
			t.Fatalf("login with counter %d: %d %s", kc.Counter, r.Status, r.Body)
		}
		clone := &softauthn.Authenticator{Origin: pkOrigin, Counting: true}
		cc := *kc
		cc.Counter = 0 // a copy of the key, one use behind
		if r := pkLogin(t, e, clone, &cc); r.Status != 401 {
			t.Fatalf("clone with counter %d: %d %s", cc.Counter, r.Status, r.Body)
		}
		r := e.Do(t, "GET", "/auth/passkeys", nil, authtest.Bearer(tok)...)
		if p := r.JSON["passkeys"].([]any)[0].(map[string]any); p["id"] != kj["id"] || p["clone_warning"] != true {
			t.Fatalf("passkey after a counter regression: %s", r.Body)
		}
		if n := auditCount(t, e, "PASSKEY_CLONE_WARNING"); n != 1 {
			t.Fatalf("%d PASSKEY_CLONE_WARNING rows", n)
		}
		if r := pkLogin(t, e, key, kc); r.Status != 200 {
			t.Fatalf("the original key, counter moving on: %d %s", r.Status, r.Body)
		}
	})

	t.Run("malformed credentials", func(t *testing.T) {
		for _, body := range []string{
			`{"credential":null}`, `{"credential":{}}`, `{"credential":"x"}`, `{"credential":[1,2]}`,
			`{"credential":{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}}`,
		} {
			r := e.Do(t, "POST", "/auth/passkeys/login/finish", body)
			if r.Status != 400 && r.Status != 401 {
				t.Errorf("login/finish %s: %d %s", body, r.Status, r.Body)
			}
			r = e.Do(t, "POST", "/auth/passkeys/register/finish", body, authtest.Bearer(tokA)...)
			if r.Status != 400 {
				t.Errorf("register/finish %s: %d %s", body, r.Status, r.Body)
			}
		}
	})
}

// A ceremony begun on one replica finishes on another: the challenge lives
// in PostgreSQL, not in the memory of the pod that made it.
func TestPasskeyCeremonyFinishedOnAnotherReplica(t *testing.T) {
	t.Parallel()
	e := passkeyEnv(t)
	other := e.Replica(t)
	tok := e.SignupVerifyLogin(t, "pk-replica@example.com", "correct-horse-9")
	a := softauthn.New(pkOrigin)
	r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(tok)...)
	reg, c, err := a.Create(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if r := other.Do(t, "POST", "/auth/passkeys/register/finish", map[string]any{"credential": reg}, authtest.Bearer(tok)...); r.Status != 201 {
		t.Fatalf("registration finished on the other replica: %d %s", r.Status, r.Body)
	}
	cred, _ := a.Get(pkLoginBegin(t, other), c)
	if r := e.Do(t, "POST", "/auth/passkeys/login/finish", map[string]any{"credential": cred}); r.Status != 200 {
		t.Fatalf("login finished on the first replica: %d %s", r.Status, r.Body)
	}
	if r := other.Do(t, "POST", "/auth/passkeys/login/finish", map[string]any{"credential": cred}); r.Status != 401 {
		t.Fatalf("the same login again on the other replica: %d %s", r.Status, r.Body)
	}
}

// A passkey completes the password step's challenge; only a passkey of the
// challenge's own account, answering a ceremony begun for that challenge.
func TestPasskeySecondFactor(t *testing.T) {
	t.Parallel()
	e := passkeyEnv(t)
	pwTok := e.SignupVerifyLogin(t, "pk-2fa@example.com", "correct-horse-9")
	other := e.SignupVerifyLogin(t, "pk-2fa-other@example.com", "correct-horse-9")
	a, b := softauthn.New(pkOrigin), softauthn.New(pkOrigin)
	ac, _ := pkRegister(t, e, pwTok, a, "Phone")
	bc, _ := pkRegister(t, e, other, b, "Phone")

	ch := passwordStep(t, e, "pk-2fa@example.com", "correct-horse-9", "mfa_required")
	r := e.Do(t, "POST", "/auth/login/mfa/passkey/begin", map[string]string{"challenge": ch})
	if r.Status != 200 || !strings.Contains(string(r.Body), b64url(ac.ID)) || strings.Contains(string(r.Body), b64url(bc.ID)) ||
		!strings.Contains(string(r.Body), `"userVerification":"preferred"`) {
		t.Fatalf("second-factor options: %d %s", r.Status, r.Body)
	}
	cred, err := a.Get(r.Body, nil)
	if err != nil {
		t.Fatal(err)
	}
	r = e.Do(t, "POST", "/auth/login/mfa/passkey/finish", map[string]any{"challenge": ch, "credential": cred})
	if r.Status != 200 {
		t.Fatalf("second factor: %d %s", r.Status, r.Body)
	}
	if s := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(r.JSON["token"].(string))...); !strings.Contains(string(s.Body), `"auth_level":"mfa"`) {
		t.Fatalf("session after the second factor: %s", s.Body)
	}
	if r := e.Do(t, "POST", "/auth/login/mfa/passkey/finish", map[string]any{"challenge": ch, "credential": cred}); r.Status != 401 {
		t.Fatalf("the used challenge again: %d %s", r.Status, r.Body)
	}

	t.Run("another account's passkey", func(t *testing.T) {
		ch := passwordStep(t, e, "pk-2fa@example.com", "correct-horse-9", "mfa_required")
		r := e.Do(t, "POST", "/auth/login/mfa/passkey/begin", map[string]string{"challenge": ch})
		var o struct {
			PublicKey struct{ Challenge, RPID string }
		}
		_ = json.Unmarshal(r.Body, &o)
		forged, _ := b.Assert(bc, o.PublicKey.Challenge, o.PublicKey.RPID)
		if r := e.Do(t, "POST", "/auth/login/mfa/passkey/finish", map[string]any{"challenge": ch, "credential": forged}); r.Status != 401 || r.ErrorCode() != "invalid_code" {
			t.Fatalf("Bob's passkey for Alice's challenge: %d %s", r.Status, r.Body)
		}
		// Bob's ceremony, Bob's passkey, Alice's challenge.
		chB := passwordStep(t, e, "pk-2fa-other@example.com", "correct-horse-9", "mfa_required")
		r = e.Do(t, "POST", "/auth/login/mfa/passkey/begin", map[string]string{"challenge": chB})
		cred, _ := b.Get(r.Body, nil)
		if r := e.Do(t, "POST", "/auth/login/mfa/passkey/finish", map[string]any{"challenge": ch, "credential": cred}); r.Status != 401 {
			t.Fatalf("an assertion for Bob's challenge used on Alice's: %d %s", r.Status, r.Body)
		}
		// Alice's ceremony for one of her challenges does not complete another.
		ch2 := passwordStep(t, e, "pk-2fa@example.com", "correct-horse-9", "mfa_required")
		r = e.Do(t, "POST", "/auth/login/mfa/passkey/begin", map[string]string{"challenge": ch2})
		cred, _ = a.Get(r.Body, nil)
		if r := e.Do(t, "POST", "/auth/login/mfa/passkey/finish", map[string]any{"challenge": ch, "credential": cred}); r.Status != 401 {
			t.Fatalf("an assertion for one challenge used on another of the same account: %d %s", r.Status, r.Body)
		}
		// A discoverable-login ceremony does not complete a challenge either.
		cred, _ = a.Get(pkLoginBegin(t, e), ac)
		if r := e.Do(t, "POST", "/auth/login/mfa/passkey/finish", map[string]any{"challenge": ch, "credential": cred}); r.Status != 401 {
			t.Fatalf("a login ceremony's assertion as the second factor: %d %s", r.Status, r.Body)
		}
	})

	t.Run("no options without a challenge", func(t *testing.T) {
		for _, body := range []string{`{}`, `{"challenge":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`, `{"challenge":"x"}`} {
			if r := e.Do(t, "POST", "/auth/login/mfa/passkey/begin", body); r.Status != 400 && r.Status != 401 {
				t.Fatalf("begin %s: %d %s", body, r.Status, r.Body)
			}
		}
	})

	t.Run("step-up with a passkey", func(t *testing.T) {
		// The password-only session of an account that now has a factor.
		if r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(pwTok)...); r.Status != 403 {
			t.Fatalf("before the step-up: %d %s", r.Status, r.Body)
		}
		r := e.Do(t, "POST", "/auth/reauthenticate/passkey/begin", map[string]any{}, authtest.Bearer(pwTok)...)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"userVerification":"required"`) {
			t.Fatalf("reauthenticate/begin: %d %s", r.Status, r.Body)
		}
		cred, _ := a.Get(r.Body, nil)
		r = e.Do(t, "POST", "/auth/reauthenticate/passkey/finish", map[string]any{"credential": cred}, authtest.Bearer(other)...)
		if r.Status != 401 {
			t.Fatalf("Alice's step-up assertion on Bob's session: %d %s", r.Status, r.Body)
		}
		r = e.Do(t, "POST", "/auth/reauthenticate/passkey/begin", map[string]any{}, authtest.Bearer(pwTok)...)
		cred, _ = a.Get(r.Body, nil)
		r = e.Do(t, "POST", "/auth/reauthenticate/passkey/finish", map[string]any{"credential": cred}, authtest.Bearer(pwTok)...)
		if r.Status != 200 || r.JSON["auth_level"] != "passkey" {
			t.Fatalf("reauthenticate/finish: %d %s", r.Status, r.Body)
		}
		if r := e.Do(t, "POST", "/auth/passkeys/register/begin", map[string]any{}, authtest.Bearer(pwTok)...); r.Status != 200 {
			t.Fatalf("after the step-up: %d %s", r.Status, r.Body)
		}
	})
	if n := auditCount(t, e, "MFA_FAIL"); n < 4 {
		t.Fatalf("%d MFA_FAIL audit rows for the refused assertions", n)
	}
}

// With a second factor required, a user without one enrols a passkey with
// the password step's challenge and gets a session at level mfa.
func TestPasskeyEnrollmentWhenRequired(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{Vars: map[string]string{"AUTH_MFA_MODE": "required"}})
	email := "pk-enrol@example.com"
	if r := e.Do(t, "POST", "/auth/signup", creds(email, "correct-horse-9")); r.Status != 202 {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	tok := authtest.TokenFromMail(t, e.Mail.WaitForMessage(t, email, 15*time.Second).Text)
	if r := e.Do(t, "POST", "/auth/verify-email", map[string]string{"token": tok}); r.Status != 200 {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	ch := passwordStep(t, e, email, "correct-horse-9", "mfa_enrollment_required")
	a := softauthn.New(pkOrigin)
	r := e.Do(t, "POST", "/auth/login/mfa/passkey/register/begin", map[string]string{"challenge": ch})
	if r.Status != 200 {
		t.Fatalf("register/begin with the challenge: %d %s", r.Status, r.Body)
	}
	reg, c, err := a.Create(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	r = e.Do(t, "POST", "/auth/login/mfa/passkey/register/finish", map[string]any{"challenge": ch, "credential": reg, "name": "Laptop"})
	if r.Status != 200 || r.JSON["token"] == nil {
		t.Fatalf("register/finish with the challenge: %d %s", r.Status, r.Body)
	}
	codes := recoveryCodes(t, r)
	if len(codes) != 10 {
		t.Fatalf("enrolled passkey: %d recovery codes, want 10: %s", len(codes), r.Body)
	}
	if s := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(r.JSON["token"].(string))...); !strings.Contains(string(s.Body), `"auth_level":"mfa"`) {
		t.Fatalf("session after enrolment: %s", s.Body)
	}
	if r := e.Do(t, "POST", "/auth/login/mfa/passkey/register/begin", map[string]string{"challenge": ch}); r.Status != 401 {
		t.Fatalf("the used enrolment challenge: %d %s", r.Status, r.Body)
	}
	// The next login asks for the passkey, which answers it.
	ch = passwordStep(t, e, email, "correct-horse-9", "mfa_required")
	r = e.Do(t, "POST", "/auth/login/mfa/passkey/begin", map[string]string{"challenge": ch})
	cred, _ := a.Get(r.Body, c)
	if r := e.Do(t, "POST", "/auth/login/mfa/passkey/finish", map[string]any{"challenge": ch, "credential": cred}); r.Status != 200 {
		t.Fatalf("second factor after enrolment: %d %s", r.Status, r.Body)
	}
	// So does a recovery code of the enrolment, once.
	ch = passwordStep(t, e, email, "correct-horse-9", "mfa_required")
	if r := secondStep(t, e, ch, "recovery_code", codes[0]); r.Status != 200 {
		t.Fatalf("recovery code after enrolment: %d %s", r.Status, r.Body)
	}
	ch = passwordStep(t, e, email, "correct-horse-9", "mfa_required")
	if r := secondStep(t, e, ch, "recovery_code", codes[0]); r.Status != 401 {
		t.Fatalf("the same recovery code again: %d %s", r.Status, r.Body)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
