package resources

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
)

// spec.authServer.mfa reaches the authserver: rendered to env and loaded by
// the authserver's own configuration loader as the spec says.
func TestMFASpecReachesTheAuthServer(t *testing.T) {
	for _, c := range []struct {
		name     string
		mfa      authv1alpha1.MFASpec
		methods  []string
		required bool
		stepUp   time.Duration
	}{
		{"unset: the authserver defaults", authv1alpha1.MFASpec{}, []string{"totp", "passkey"}, false, 10 * time.Minute},
		{"required totp", authv1alpha1.MFASpec{Methods: []authv1alpha1.MFAMethod{"totp"}, Mode: "required",
			StepUpWindow: &metav1.Duration{Duration: 15 * time.Minute}}, []string{"totp"}, true, 15 * time.Minute},
		{"none offered", authv1alpha1.MFASpec{Methods: []authv1alpha1.MFAMethod{}, Mode: "optional"}, []string{}, false, 10 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := sampleStack()
			s.Spec.AuthServer.MFA = c.mfa
			cfg := loadRenderedConfig(t, s)
			if !slices.Equal(cfg.MFA.Methods, c.methods) || cfg.MFA.Required != c.required || cfg.MFA.StepUpWindow != c.stepUp {
				t.Fatalf("authserver MFA %+v, want methods %v required %v step-up %s", cfg.MFA, c.methods, c.required, c.stepUp)
			}
		})
	}
}

// spec.authServer.passkeys reaches the authserver's relying party; unset,
// the authserver derives it from spec.frontendURL.
func TestPasskeysSpecReachesTheAuthServer(t *testing.T) {
	for _, c := range []struct {
		name    string
		spec    authv1alpha1.PasskeysSpec
		rpID    string
		origins []string
	}{
		{"unset: from frontendURL", authv1alpha1.PasskeysSpec{}, "app.example.com", []string{"https://app.example.com"}},
		{"parent domain, two origins", authv1alpha1.PasskeysSpec{RPID: "example.com", Origins: []string{"https://app.example.com", "https://login.example.com"}},
			"example.com", []string{"https://app.example.com", "https://login.example.com"}},
		{"parent domain alone", authv1alpha1.PasskeysSpec{RPID: "example.com"}, "example.com", []string{"https://app.example.com"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := sampleStack()
			s.Spec.AuthServer.Passkeys = c.spec
			cfg := loadRenderedConfig(t, s)
			if cfg.WebAuthn.RPID != c.rpID || !slices.Equal(cfg.WebAuthn.Origins, c.origins) {
				t.Fatalf("relying party %+v, want %s %v", cfg.WebAuthn, c.rpID, c.origins)
			}
		})
	}
}
