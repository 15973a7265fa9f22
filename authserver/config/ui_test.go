package config

import (
	"strings"
	"testing"
)

func TestUIDefaultsAndLinks(t *testing.T) {
	c, err := load(base(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.UI.Enabled || c.UI.EmailLinks || c.UI.ProductName != "AuthStack" || c.EmailLinkBase().String() != "https://app.example.com" {
		t.Fatalf("defaults: %+v %s", c.UI, c.EmailLinkBase())
	}
	env := base()
	env["FRONTEND_URL"] = "https://app.example.com/portal"
	env["AUTH_UI_ENABLED"] = "true"
	env["AUTH_UI_EMAIL_LINKS"] = "true"
	env["AUTH_UI_LOGO_URL"] = "https://cdn.example.com:8443/logo.svg"
	env["AUTH_UI_PRODUCT_NAME"] = "Acme Cloud & Co"
	if c, err = load(env, nil); err != nil {
		t.Fatal(err)
	}
	if got := c.EmailLinkBase().String(); got != "https://app.example.com/auth/ui" {
		t.Fatalf("email links go to %s", got)
	}
	if c.UI.LogoOrigin != "https://cdn.example.com:8443" || c.UI.ProductName != "Acme Cloud & Co" {
		t.Fatalf("branding: %+v", c.UI)
	}
}

// Every branding value lands in HTML or CSS: anything that could leave its
// context is refused at start, naming the variable.
func TestUIBrandingRefusesInjection(t *testing.T) {
	for name, bad := range map[string][]string{
		"AUTH_UI_PRIMARY_COLOR":    {"red", "#fff", "#1f5fbf;}body{display:none", "url(x)"},
		"AUTH_UI_BACKGROUND_COLOR": {"#12345g", "expression(alert(1))"},
		"AUTH_UI_PRODUCT_NAME":     {"<script>alert(1)</script>", `a" onload="x`, "tab\there", strings.Repeat("x", 65)},
		"AUTH_UI_LOGO_URL": {"javascript:alert(1)", "http://cdn.example.com/logo.png", "//cdn.example.com/logo.png",
			"https://cdn.example.com/a b.png", "https://x.example.com/a.png'); x", "https://user@cdn.example.com/l.png",
			"data:image/svg+xml,<svg onload=alert(1)>", "https://a.example.com;script-src *", "/logo.png\")"},
		"AUTH_UI_EMAIL_LINKS": {"true"}, // without AUTH_UI_ENABLED
	} {
		for _, v := range bad {
			env := base()
			env[name] = v
			_, err := load(env, nil)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: want an error naming it, got %v", name, v, err)
			}
		}
	}
	for _, ok := range []string{"/static/logo.svg", "https://cdn.example.com/logo.png?v=2"} {
		env := base()
		env["AUTH_UI_LOGO_URL"] = ok
		if _, err := load(env, nil); err != nil {
			t.Errorf("logo %q refused: %v", ok, err)
		}
	}
}
