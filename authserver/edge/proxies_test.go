package edge_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/leanauth/authstack/authserver/internal/authtest"
)

const browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

// testApp is the protected app: it answers every request with the X-Auth-*
// headers it got, and remembers every value of X-Auth-User-Id it ever saw.
type testApp struct {
	addr string
	mu   sync.Mutex
	seen []string
}

func startApp(t *testing.T, host string) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	a := &testApp{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

func (a *testApp) sawValue(v string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Contains(a.seen, v)
}

// edge is a proxy under test: where browsers' and API clients' requests go
// (the same place for Traefik; two Ingresses for ingress-nginx, which turns
// every 401 into a redirect when auth-signin is set), and the Host they ask for.
type edge struct {
	name               string
	browserURL, apiURL string
	host               string
	signinHost         string
	jsonErrors         bool // the proxy passes the check's JSON 401 body on
}

type result struct {
	status int
	header http.Header
	app    map[string][]string // what the app saw, on 200
	body   []byte
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (p edge) get(t *testing.T, base, path string, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = p.host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s: GET %s: %v", p.name, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &r.app); err != nil {
			t.Fatalf("%s: GET %s: the app's answer: %v %s", p.name, path, err, b)
		}
	}
	return r
}

// proxyCases are the cases every proxy must pass with the check in the path.
func proxyCases(t *testing.T, e *authtest.Env, app *testApp, p edge) {
	const forged = "forged-admin-id"
	// No session: a browser is sent to sign in, with the way back.
	r := p.get(t, p.browserURL, "/orders?id=7", "Accept", browserAccept, "X-Auth-User-Id", forged)
	loc, _ := url.Parse(r.header.Get("Location"))
	if r.status != 302 || loc == nil || loc.Host != p.signinHost || loc.Query().Get("rd") != "http://"+p.host+"/orders?id=7" {
		t.Fatalf("%s: browser without a session: %d Location %q", p.name, r.status, r.header.Get("Location"))
	}
	// No session: an API call gets 401.
	r = p.get(t, p.apiURL, "/api/orders", "Accept", "application/json", "X-Auth-User-Id", forged)
	if r.status != 401 || (p.jsonErrors && !strings.Contains(string(r.body), `"code":"unauthorized"`)) {
		t.Fatalf("%s: API call without a session: %d %s", p.name, r.status, r.body)
	}

	tok := e.SignupVerifyLogin(t, p.name+"@example.com", "edge proxy password")
	sess := e.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...)
	uid := sess.JSON["user"].(map[string]any)["id"].(string)
	for name, cred := range map[string][]string{
		"cookie": {"Cookie", "session=" + tok, "Accept", browserAccept},
		"bearer": {"Authorization", "Bearer " + tok, "Accept", "application/json"},
	} {
		base := p.browserURL
		if name == "bearer" {
			base = p.apiURL
		}
		// The client's own X-Auth-* headers never reach the app.
		r := p.get(t, base, "/orders", append(cred, "X-Auth-User-Id", forged, "X-Auth-Email", "root@example.com", "X-Auth-Session-Id", "forged")...)
		if r.status != 200 || !slices.Equal(r.app["X-Auth-User-Id"], []string{uid}) ||
			!slices.Equal(r.app["X-Auth-Email"], []string{p.name + "@example.com"}) || len(r.app["X-Auth-Session-Id"]) != 1 || r.app["X-Auth-Session-Id"][0] == "forged" {
			t.Fatalf("%s, %s: %d, the app saw %v", p.name, name, r.status, r.app)
		}
	}
	if app.sawValue(forged) {
		t.Fatalf("%s: the app saw the forged X-Auth-User-Id", p.name)
	}

	// Logout: the next request is refused.
	if r := e.Do(t, "POST", "/auth/logout", nil, authtest.Bearer(tok)...); r.Status != 204 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := p.get(t, p.browserURL, "/orders", "Cookie", "session="+tok, "Accept", browserAccept); r.status != 302 {
		t.Fatalf("%s: browser after logout: %d", p.name, r.status)
	}
	if r := p.get(t, p.apiURL, "/orders", "Authorization", "Bearer "+tok); r.status != 401 {
		t.Fatalf("%s: API call after logout: %d", p.name, r.status)
	}
}
