package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

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
	return c, r.JSON["passkey"].(map[string]any)
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

// Register two passkeys, log in with each without an email, list, rename,
// remove: a removed passkey logs nobody in, the other still does.
func TestPasskeyLifecycle(t *testing.T) {
	t.Parallel()
	e := passkeyEnv(t)
	tok := e.SignupVerifyLogin(t, "pk-owner@example.com", "correct-horse-9")
	phone, laptop := softauthn.New(pkOrigin), softauthn.New(pkOrigin)
	pc, pj := pkRegister(t, e, tok, phone, "Phone")
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
		if s.Status != 200 || s.JSON["user"].(map[string]any)["email"] != "pk-owner@example.com" {
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
		`passkey_ceremonies_total{ceremony="login",outcome="ok"} 3`,
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
	ac, aj := pkRegister(t, e, tokA, alice, "Alice's phone")
	bc, _ := pkRegister(t, e, tokB, bob, "Bob's phone")
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
	_ = aj
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
