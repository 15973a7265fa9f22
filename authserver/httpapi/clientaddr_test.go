package httpapi_test

import (
	"testing"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

// A client on a private address (an in-cluster pod, a VPN client, every
// client behind a LoadBalancer that replaces their addresses with a node's)
// writes the owner's address into X-Forwarded-For before its own, which the
// proxy appends. With the operator's default trusted proxies (every private
// range) and no hop count, its own address is taken for a proxy and the
// forged entry is believed: it locks the owner out and escapes its own lock
// (docs/security.md, "Client addresses", says so). With
// AUTH_TRUSTED_PROXY_HOPS=1 its own address counts, whatever it writes.
func TestPrivateClientCannotPoseAsTheOwner(t *testing.T) {
	t.Parallel()
	// The operator's default, with 127.0.0.0/8 added for the test's proxy
	// (the ingress controller's pod: this process).
	const trusted = "127.0.0.0/8,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
	const owner, attacker = "198.51.100.20", "10.244.1.7"
	for _, hops := range []string{"", "1"} {
		t.Run("hops="+hops, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"AUTH_TRUSTED_PROXIES": trusted, "AUTH_LOCKOUT_THRESHOLD": "3", "AUTH_LOCKOUT_BASE": "1m"}
			if hops != "" {
				vars["AUTH_TRUSTED_PROXY_HOPS"] = hops
			}
			e := authtest.Start(t, authtest.Options{NoPooler: true, Vars: vars})
			email, pw := "owner@example.com", "the owners password"
			e.SignupVerifyLogin(t, email, pw)
			login := func(xff, pw string) int {
				return e.Do(t, "POST", "/auth/login", creds(email, pw), "X-Forwarded-For", xff).Status
			}
			for i := 0; i < 3; i++ {
				if s := login(owner+", "+attacker, "attackers guess!"); s != 401 {
					t.Fatalf("attacker's guess %d: %d", i, s)
				}
			}
			ownerStatus := login(owner, pw)
			// Locked out after 3 failures, the attacker guesses again with
			// another address written before its own.
			againStatus := login("203.0.113.2, "+attacker, "attackers guess!")
			if hops == "" {
				if ownerStatus != 429 || againStatus != 401 {
					t.Fatalf("without hops the forged entry is believed (documented): owner %d, want 429; attacker again %d, want 401", ownerStatus, againStatus)
				}
				return
			}
			if ownerStatus != 200 {
				t.Fatalf("the owner on %s, locked out by a client on %s that wrote their address: %d", owner, attacker, ownerStatus)
			}
			if againStatus != 429 {
				t.Fatalf("the client on %s, locked out after 3 failures, guessed again behind another written address: %d", attacker, againStatus)
			}
		})
	}
}
