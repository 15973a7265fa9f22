package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// spec.authServer.passkeys rules; the cases join rejectCases
// (validation_test.go) so that TestRejects runs them and
// TestEveryRuleIsCovered counts them.

const (
	msgPasskeyRPID    = "authServer.passkeys.rpID must be a lower-case host name without scheme, port or IP address"
	msgPasskeyOrigins = "authServer.passkeys.origins must be on authServer.passkeys.rpID or a subdomain of it"
)

func init() {
	p := "authServer.passkeys."
	f := "spec.authServer.passkeys"
	rejectCases = append(rejectCases,
		rejectCase{name: "passkeys rpID with a scheme", set: map[string]any{p + "rpID": "https://example.com"}, field: f + ".rpID", kind: kindCEL, msg: msgPasskeyRPID},
		rejectCase{name: "passkeys rpID with a port", set: map[string]any{p + "rpID": "example.com:443"}, field: f + ".rpID", kind: kindCEL, msg: msgPasskeyRPID},
		rejectCase{name: "passkeys rpID an IP address", set: map[string]any{p + "rpID": "10.0.0.1"}, field: f + ".rpID", kind: kindCEL, msg: msgPasskeyRPID},
		rejectCase{name: "passkeys rpID upper case", set: map[string]any{p + "rpID": "Example.com"}, field: f + ".rpID", kind: kindCEL, msg: msgPasskeyRPID},
		rejectCase{name: "passkeys rpID too long", set: map[string]any{p + "rpID": strings.Repeat("a", 254)}, field: f + ".rpID", kind: kindMaxLength},
		rejectCase{name: "passkeys origin with a path", set: map[string]any{p + "origins": []any{"https://app.example.com/login"}}, field: f + ".origins[0]", kind: kindPattern},
		rejectCase{name: "passkeys origin off the rpID", set: map[string]any{p + "rpID": "example.com", p + "origins": []any{"https://app.example.com", "https://example.com.evil.test"}}, field: f, kind: kindCEL, msg: msgPasskeyOrigins},
		rejectCase{name: "passkeys origin on a suffix that is no parent", set: map[string]any{p + "rpID": "ample.com", p + "origins": []any{"https://example.com"}}, field: f, kind: kindCEL, msg: msgPasskeyOrigins},
	)
}

func TestPasskeysAccepts(t *testing.T) {
	for name, set := range map[string]map[string]any{
		"parent domain, two origins": {"authServer.passkeys.rpID": "example.com",
			"authServer.passkeys.origins": []any{"https://app.example.com", "https://login.example.com:8443"}},
		"the origin's own host": {"authServer.passkeys.rpID": "app.example.com", "authServer.passkeys.origins": []any{"https://app.example.com"}},
		"localhost over http":   {"authServer.passkeys.rpID": "localhost", "authServer.passkeys.origins": []any{"http://localhost:8080"}},
		"origins alone":         {"authServer.passkeys.origins": []any{"https://app.example.com"}},
	} {
		t.Run(name, func(t *testing.T) {
			spec := minimalSpec()
			for p, v := range set {
				setPath(spec, p, v)
			}
			if err := k8sClient.Create(context.Background(), authStack("good", spec), client.DryRunAll); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}
