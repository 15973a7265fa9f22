package service

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/internal/softauthn"
)

// BenchmarkPasskeyAssertionVerify: go-webauthn's verification of one
// discoverable assertion (parse, ECDSA P-256, origin, rpId, flags), the CPU
// a passkey login costs besides its three small queries. No server.
func BenchmarkPasskeyAssertionVerify(b *testing.B) {
	wa, err := newWebAuthn(config.WebAuthn{RPID: "app.example.com", RPName: "bench", Origins: []string{"https://app.example.com"}, Timeout: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	a := softauthn.New("https://app.example.com")
	u := &waUser{handle: []byte("0123456789abcdef0123456789abcdef"), name: "bench"}
	creation, sd, err := wa.BeginRegistration(u)
	if err != nil {
		b.Fatal(err)
	}
	opts, _ := json.Marshal(creation)
	reg, c, err := a.Create(opts)
	if err != nil {
		b.Fatal(err)
	}
	parsedReg, err := protocol.ParseCredentialCreationResponseBytes(reg)
	if err != nil {
		b.Fatal(err)
	}
	cred, err := wa.CreateCredential(u, *sd, parsedReg)
	if err != nil {
		b.Fatal(err)
	}
	u.creds = []webauthn.Credential{*cred}
	assertion, lsd, err := wa.BeginDiscoverableLogin()
	if err != nil {
		b.Fatal(err)
	}
	lopts, _ := json.Marshal(assertion)
	resp, err := a.Get(lopts, c)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := wa.ValidatePasskeyLogin(func(_, _ []byte) (webauthn.User, error) { return u, nil }, *lsd, parsed); err != nil {
				b.Fatal(err)
			}
		}
	})
}
