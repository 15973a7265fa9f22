package resources

import (
	"testing"

	authv1alpha1 "github.com/leanauth/authstack/api/v1alpha1"
	"github.com/leanauth/authstack/authserver/config"
)

// spec.authServer.ui reaches the authserver: rendered to env and loaded by
// the authserver's own configuration loader as the spec says.
func TestUISpecReachesTheAuthServer(t *testing.T) {
	for _, c := range []struct {
		name string
		ui   authv1alpha1.UISpec
		want config.UI
	}{
		{"unset: off, default branding", authv1alpha1.UISpec{},
			config.UI{ProductName: "AuthStack", PrimaryColor: "#1f5fbf", BackgroundColor: "#f6f7f9"}},
		{"on, email links, branded", authv1alpha1.UISpec{Enabled: true, EmailLinks: true, Branding: authv1alpha1.UIBranding{
			ProductName: "Acme", LogoURL: "https://cdn.example.com/logo.svg", PrimaryColor: "#aa0000", BackgroundColor: "#ffffff"}},
			config.UI{Enabled: true, EmailLinks: true, ProductName: "Acme", LogoURL: "https://cdn.example.com/logo.svg",
				LogoOrigin: "https://cdn.example.com", PrimaryColor: "#aa0000", BackgroundColor: "#ffffff"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := sampleStack()
			s.Spec.AuthServer.UI = c.ui
			cfg := loadRenderedConfig(t, s)
			if cfg.UI != c.want {
				t.Fatalf("authserver UI %+v, want %+v", cfg.UI, c.want)
			}
		})
	}
}
