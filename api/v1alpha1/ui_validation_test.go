package v1alpha1_test

import (
	"context"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// spec.authServer.ui rules; the cases join rejectCases (validation_test.go)
// so that TestRejects runs them and TestEveryRuleIsCovered counts them.
// Branding lands in HTML and CSS: what could leave its context is refused
// by the API server, as by the authserver (authserver/config/ui.go).

const msgUIEmailLinks = "authServer.ui.emailLinks needs authServer.ui.enabled"

func init() {
	u := "authServer.ui."
	f := "spec.authServer.ui"
	rejectCases = append(rejectCases,
		rejectCase{name: "ui emailLinks without enabled", set: map[string]any{u + "emailLinks": true}, field: f, kind: kindCEL, msg: msgUIEmailLinks},
		rejectCase{name: "ui primaryColor not #rrggbb", set: map[string]any{u + "branding.primaryColor": "#fff;}body{display:none"}, field: f + ".branding.primaryColor", kind: kindPattern},
		rejectCase{name: "ui backgroundColor a name", set: map[string]any{u + "branding.backgroundColor": "red"}, field: f + ".branding.backgroundColor", kind: kindPattern},
		rejectCase{name: "ui productName with markup", set: map[string]any{u + "branding.productName": "<script>x</script>"}, field: f + ".branding.productName", kind: kindPattern},
		rejectCase{name: "ui productName empty", set: map[string]any{u + "branding.productName": ""}, field: f + ".branding.productName", kind: kindMinLength},
		rejectCase{name: "ui productName too long", set: map[string]any{u + "branding.productName": strings.Repeat("x", 65)}, field: f + ".branding.productName", kind: kindMaxLength},
		rejectCase{name: "ui logoURL javascript", set: map[string]any{u + "branding.logoURL": "javascript:alert(1)"}, field: f + ".branding.logoURL", kind: kindPattern},
		rejectCase{name: "ui logoURL too long", set: map[string]any{u + "branding.logoURL": "https://a.example/" + strings.Repeat("x", 2048)}, field: f + ".branding.logoURL", kind: kindMaxLength},
	)
}

func TestUIAccepts(t *testing.T) {
	for name, set := range map[string]map[string]any{
		"enabled with email links": {"authServer.ui.enabled": true, "authServer.ui.emailLinks": true},
		"full branding": {"authServer.ui.enabled": true, "authServer.ui.branding.productName": "Acme Cloud & Co",
			"authServer.ui.branding.logoURL": "https://cdn.example.com:8443/logo.svg?v=2", "authServer.ui.branding.primaryColor": "#1F5FBF",
			"authServer.ui.branding.backgroundColor": "#ffffff"},
		"logo on the origin": {"authServer.ui.branding.logoURL": "/static/logo.png"},
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

// Values the API server accepts but the authserver would refuse to start
// with must not exist: each rejected logo the config test lists is refused
// here too.
func TestUIRejectsWhatTheAuthServerRefuses(t *testing.T) {
	for _, logo := range []string{"http://cdn.example.com/logo.png", "//cdn.example.com/logo.png", "https://cdn.example.com/a b.png",
		"https://x.example.com/a.png'); x", "https://user@cdn.example.com/l.png", "data:image/svg+xml,<svg onload=alert(1)>",
		"https://a.example.com;script-src *", `/logo.png")`} {
		spec := minimalSpec()
		setPath(spec, "authServer.ui.branding.logoURL", logo)
		if err := k8sClient.Create(context.Background(), authStack("bad-logo", spec), client.DryRunAll); err == nil {
			t.Errorf("logoURL %q accepted", logo)
		}
	}
}
