package config

import (
	"slices"
	"strings"
	"testing"
)

func TestWebAuthnRelyingParty(t *testing.T) {
	for _, c := range []struct {
		name    string
		env     map[string]string
		rpID    string
		origins []string
		errVar  string
	}{
		{"from FRONTEND_URL", nil, "app.example.com", []string{"https://app.example.com"}, ""},
		{"port kept in the origin", map[string]string{"FRONTEND_URL": "http://localhost:8080/app"}, "localhost", []string{"http://localhost:8080"}, ""},
		{"IP address: passkeys off", map[string]string{"FRONTEND_URL": "http://127.0.0.1:8080"}, "", []string{"http://127.0.0.1:8080"}, ""},
		{"parent domain and two front ends", map[string]string{"AUTH_WEBAUTHN_RP_ID": "Example.com",
			"AUTH_WEBAUTHN_ORIGINS": "https://app.example.com, https://login.example.com"},
			"example.com", []string{"https://app.example.com", "https://login.example.com"}, ""},
		{"origin on another site", map[string]string{"AUTH_WEBAUTHN_ORIGINS": "https://app.example.com,https://evil.test"}, "", nil, "AUTH_WEBAUTHN_ORIGINS"},
		{"suffix that is not a parent", map[string]string{"AUTH_WEBAUTHN_RP_ID": "ple.com"}, "", nil, "AUTH_WEBAUTHN_ORIGINS"},
		{"rp id with a scheme", map[string]string{"AUTH_WEBAUTHN_RP_ID": "https://example.com"}, "", nil, "AUTH_WEBAUTHN_RP_ID"},
		{"rp id an IP address", map[string]string{"AUTH_WEBAUTHN_RP_ID": "10.0.0.1"}, "", nil, "AUTH_WEBAUTHN_RP_ID"},
		{"origin with a path", map[string]string{"AUTH_WEBAUTHN_ORIGINS": "https://app.example.com/login"}, "", nil, "AUTH_WEBAUTHN_ORIGINS"},
		{"timeout too long", map[string]string{"AUTH_WEBAUTHN_TIMEOUT": "2h"}, "", nil, "AUTH_WEBAUTHN_TIMEOUT"},
	} {
		env := base()
		for k, v := range c.env {
			env[k] = v
		}
		cfg, err := load(env, nil)
		if c.errVar != "" {
			if err == nil || !strings.Contains(err.Error(), c.errVar) {
				t.Errorf("%s: error %v, want one naming %s", c.name, err, c.errVar)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if cfg.WebAuthn.RPID != c.rpID || !slices.Equal(cfg.WebAuthn.Origins, c.origins) || cfg.WebAuthn.RPName == "" || cfg.WebAuthn.Timeout == 0 {
			t.Errorf("%s: %+v, want rp id %q origins %v", c.name, cfg.WebAuthn, c.rpID, c.origins)
		}
	}
}
