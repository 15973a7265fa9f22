// Package edgecases holds what every proxy in front of the forward-auth check
// (authserver/edge) must do, shared by the tests that run the proxies as host
// processes (authserver/edge) and as pods on the real node (test/realnode):
// the protected test app, which answers with the X-Auth-* headers it got, and
// the cases a proxy must pass with the check in its path.
package edgecases

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// BrowserAccept is what a browser navigating sends.
const BrowserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// Forged is the X-Auth-User-Id a client sends to pass for someone else.
const Forged = "forged-admin-id"

// App is the protected app: it answers every request with a JSON object of
// the X-Auth-* headers it got, and remembers every X-Auth-User-Id it saw.
type App struct {
	mu   sync.Mutex
	seen []string
}

func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	got := map[string][]string{}
	for k, v := range r.Header {
		if strings.HasPrefix(k, "X-Auth-") {
			got[k] = v
		}
	}
	a.mu.Lock()
	a.seen = append(a.seen, r.Header.Values("X-Auth-User-Id")...)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(got)
}

// Seen is every X-Auth-User-Id the app saw.
func (a *App) Seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.seen)
}

// Response is a proxy's answer, not followed if it redirects.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Session is a signed-in user.
type Session struct{ Token, UserID, Email string }

// Proxy is a proxy under test: where browsers' and API clients' requests go
// (the same place for Traefik; two servers for ingress-nginx, which turns every
// 401 into a redirect when auth-signin is set), the Host they ask for, and how
// the test sends a request and talks to the authserver.
type Proxy struct {
	Name               string
	BrowserURL, APIURL string
	Host               string
	SigninHost         string
	JSONErrors         bool   // the proxy passes the check's JSON 401 body on
	Cookie             string // the session cookie's name (AUTH_COOKIE_NAME)

	// Do sends a GET to url with Host and these headers, from wherever
	// clients of the proxy are.
	Do func(t *testing.T, url, host string, header http.Header) Response
	// Login signs a new user with this email in; Logout ends the session.
	Login  func(t *testing.T, email string) Session
	Logout func(t *testing.T, token string)
	// AppSeen is every X-Auth-User-Id the app saw.
	AppSeen func(t *testing.T) []string
}

func (p Proxy) get(t *testing.T, base, path string, hdr ...string) (Response, map[string][]string) {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(hdr); i += 2 {
		h.Add(hdr[i], hdr[i+1])
	}
	r := p.Do(t, base+path, p.Host, h)
	var app map[string][]string
	if r.Status == 200 {
		if err := json.Unmarshal(r.Body, &app); err != nil {
			t.Fatalf("%s: GET %s: the app's answer: %v %s", p.Name, path, err, r.Body)
		}
	}
	return r, app
}

// Run runs the cases every proxy must pass with the check in the path.
func Run(t *testing.T, p Proxy) {
	t.Helper()
	// No session: a browser is sent to sign in, with the way back.
	r, _ := p.get(t, p.BrowserURL, "/orders?id=7", "Accept", BrowserAccept, "X-Auth-User-Id", Forged)
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.Status != 302 || loc == nil || loc.Host != p.SigninHost || loc.Query().Get("rd") != "http://"+p.Host+"/orders?id=7" {
		t.Fatalf("%s: browser without a session: %d Location %q", p.Name, r.Status, r.Header.Get("Location"))
	}
	// No session: an API call gets 401.
	r, _ = p.get(t, p.APIURL, "/api/orders", "Accept", "application/json", "X-Auth-User-Id", Forged)
	if r.Status != 401 || (p.JSONErrors && !strings.Contains(string(r.Body), `"code":"unauthorized"`)) {
		t.Fatalf("%s: API call without a session: %d %s", p.Name, r.Status, r.Body)
	}

	s := p.Login(t, p.Name+"@example.com")
	for name, cred := range map[string][]string{
		"cookie": {"Cookie", p.Cookie + "=" + s.Token, "Accept", BrowserAccept},
		"bearer": {"Authorization", "Bearer " + s.Token, "Accept", "application/json"},
	} {
		base := p.BrowserURL
		if name == "bearer" {
			base = p.APIURL
		}
		// The client's own X-Auth-* headers never reach the app.
		r, app := p.get(t, base, "/orders", append(cred, "X-Auth-User-Id", Forged, "X-Auth-Email", "root@example.com",
			"X-Auth-Session-Id", "forged", "X-Auth-Level", "mfa", "X-Auth-Time", "1")...)
		if r.Status != 200 || !slices.Equal(app["X-Auth-User-Id"], []string{s.UserID}) ||
			!slices.Equal(app["X-Auth-Email"], []string{s.Email}) ||
			len(app["X-Auth-Session-Id"]) != 1 || app["X-Auth-Session-Id"][0] == "forged" ||
			!slices.Equal(app["X-Auth-Level"], []string{"password"}) ||
			len(app["X-Auth-Time"]) != 1 || app["X-Auth-Time"][0] == "1" {
			t.Fatalf("%s, %s: %d, the app saw %v", p.Name, name, r.Status, app)
		}
	}
	if slices.Contains(p.AppSeen(t), Forged) {
		t.Fatalf("%s: the app saw the forged X-Auth-User-Id", p.Name)
	}

	// Logout: the next request is refused.
	p.Logout(t, s.Token)
	if r, _ := p.get(t, p.BrowserURL, "/orders", "Cookie", p.Cookie+"="+s.Token, "Accept", BrowserAccept); r.Status != 302 {
		t.Fatalf("%s: browser after logout: %d", p.Name, r.Status)
	}
	if r, _ := p.get(t, p.APIURL, "/orders", "Authorization", "Bearer "+s.Token); r.Status != 401 {
		t.Fatalf("%s: API call after logout: %d", p.Name, r.Status)
	}
}
