package edge_test

import (
	"testing"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/edgecases"
	"github.com/leanauth/authstack/internal/servers"
)

// Debian's nginx, configured as ingress-nginx configures the auth-url,
// auth-signin and auth-response-headers annotations, in front of the app.
func TestNginxForwardAuth(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{NoPooler: true})
	app := startApp(t, "127.0.0.1")
	auth := servers.NginxAuth{AuthURL: e.BaseURL + "/auth/check", Headers: []string{"X-Auth-User-Id", "X-Auth-Email", "X-Auth-Session-Id", "X-Auth-Level", "X-Auth-Time"}}
	api, err := servers.StartNginx(app.addr, auth)
	if err != nil {
		t.Fatalf("starting nginx (hack/test-deps.sh installs it): %v", err)
	}
	t.Cleanup(api.Close)
	auth.SigninURL = "https://login.edge.test/signin"
	browser, err := servers.StartNginx(app.addr, auth)
	if err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	t.Cleanup(browser.Close)
	proxyCases(t, e, app, edgecases.Proxy{Name: "nginx", BrowserURL: "http://" + browser.Addr(), APIURL: "http://" + api.Addr(),
		Host: "shop.edge.test", SigninHost: "login.edge.test", Cookie: "session"})
}
