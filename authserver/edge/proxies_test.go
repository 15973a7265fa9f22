package edge_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/edgecases"
)

// testApp is the protected app (edgecases.App) served on host.
type testApp struct {
	addr string
	*edgecases.App
}

func startApp(t *testing.T, host string) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	a := &testApp{addr: ln.Addr().String(), App: &edgecases.App{}}
	srv := &http.Server{Handler: a.App}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// proxyCases runs the cases every proxy must pass (edgecases.Run) from this
// process, against the authserver of e.
func proxyCases(t *testing.T, e *authtest.Env, app *testApp, p edgecases.Proxy) {
	p.Do = func(t *testing.T, url, host string, h http.Header) edgecases.Response {
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host, req.Header = host, h
		resp, err := noRedirects.Do(req)
		if err != nil {
			t.Fatalf("%s: GET %s: %v", p.Name, url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return edgecases.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	}
	p.Login = func(t *testing.T, email string) edgecases.Session {
		tok := e.SignupVerifyLogin(t, email, "edge proxy password")
		sess := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...)
		return edgecases.Session{Token: tok, UserID: sess.JSON["user"].(map[string]any)["id"].(string), Email: email}
	}
	p.Logout = func(t *testing.T, tok string) {
		if r := e.Do(t, "POST", "/auth/logout", nil, authtest.Bearer(tok)...); r.Status != 204 {
			t.Fatalf("logout: %d %s", r.Status, r.Body)
		}
	}
	p.AppSeen = func(*testing.T) []string { return app.Seen() }
	edgecases.Run(t, p)
}
