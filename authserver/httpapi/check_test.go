package httpapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// GET /auth/check as a forward-auth endpoint: browsers without a session are
// sent to the sign-in page with the URL they asked for (only on an allowed
// host), API clients get a JSON 401, a session gets 200 and its headers,
// and a logged-out session is refused.
func TestCheckForwardAuth(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{NoPooler: true, Vars: map[string]string{
		"AUTH_SIGNIN_URL":     "https://login.authstack.test/signin",
		"AUTH_REDIRECT_HOSTS": "*.apps.authstack.test",
	}})
	e.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	traefik := []string{"X-Forwarded-Proto", "https", "X-Forwarded-Host", "shop.apps.authstack.test", "X-Forwarded-Uri", "/cart?item=7"}

	r := e.Do(t, "GET", "/auth/check", nil, append([]string{"Accept", browserAccept}, traefik...)...)
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.Status != 302 || loc == nil || loc.Host != "login.authstack.test" || loc.Query().Get("rd") != "https://shop.apps.authstack.test/cart?item=7" {
		t.Fatalf("browser without a session: %d Location %q", r.Status, r.Header.Get("Location"))
	}
	// A host off the list: the sign-in page, without the way back.
	r = e.Do(t, "GET", "/auth/check", nil, "Accept", browserAccept, "X-Forwarded-Proto", "https", "X-Forwarded-Host", "evil.example", "X-Forwarded-Uri", "/phish")
	if r.Status != 302 || r.Header.Get("Location") != "https://login.authstack.test/signin" {
		t.Fatalf("browser, foreign host: %d %q", r.Status, r.Header.Get("Location"))
	}
	// nginx's auth_request cannot pass a redirect on: 401, its auth-signin redirects.
	r = e.Do(t, "GET", "/auth/check", nil, "Accept", browserAccept, "X-Original-URL", "https://shop.apps.authstack.test/cart")
	if r.Status != 401 || r.Header.Get("Location") != "" {
		t.Fatalf("browser through nginx: %d %q", r.Status, r.Header.Get("Location"))
	}
	for _, accept := range []string{"application/json", "*/*", ""} {
		r := e.Do(t, "GET", "/auth/check", nil, append([]string{"Accept", accept}, traefik...)...)
		if r.Status != 401 || r.ErrorCode() != "unauthorized" || r.Header.Get("Location") != "" {
			t.Fatalf("API call (Accept %q) without a session: %d %s", accept, r.Status, r.Body)
		}
	}

	tok := e.SignupVerifyLogin(t, "edge@example.com", "edge check password")
	sess := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...)
	uid := sess.JSON["user"].(map[string]any)["id"].(string)
	sid := sess.JSON["session"].(map[string]any)["id"].(string)
	for name, cred := range map[string][]string{"bearer": authtest.Bearer(tok), "cookie": {"Cookie", "other=1; session=" + tok}} {
		r := e.Do(t, "GET", "/auth/check", nil, append(append([]string{"Accept", browserAccept}, cred...), traefik...)...)
		if r.Status != 200 || r.Header.Get("X-Auth-User-Id") != uid || r.Header.Get("X-Auth-Email") != "edge@example.com" || r.Header.Get("X-Auth-Session-Id") != sid {
			t.Fatalf("%s: %d %v", name, r.Status, r.Header)
		}
	}
	// Envoy's HTTP ext_authz: the client's method and path after the check's,
	// its Host.
	envoy := func(method string, hdr ...string) *http.Response {
		req, _ := http.NewRequest(method, e.BaseURL+"/auth/check/cart/items?x=1", nil)
		req.Host = "shop.apps.authstack.test"
		req.Header.Set("X-Forwarded-Proto", "https")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := e.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := envoy("DELETE", "Authorization", "Bearer "+tok); resp.StatusCode != 200 || resp.Header.Get("X-Auth-User-Id") != uid {
		t.Fatalf("Envoy HTTP check with a session: %d %v", resp.StatusCode, resp.Header)
	}
	resp := envoy("POST", "Accept", browserAccept)
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != 302 || loc.Query().Get("rd") != "https://shop.apps.authstack.test/cart/items?x=1" {
		t.Fatalf("Envoy HTTP check, browser: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	if r := e.Do(t, "POST", "/auth/logout", nil, authtest.Bearer(tok)...); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "GET", "/auth/check", nil, authtest.Bearer(tok)...); r.Status != 401 {
		t.Fatalf("check after logout: %d", r.Status)
	}
	if r := e.Do(t, "GET", "/auth/check", nil, "Accept", browserAccept, "Cookie", "session="+tok); r.Status != 302 {
		t.Fatalf("browser check after logout: %d", r.Status)
	}
}
