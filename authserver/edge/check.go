// Package edge decides forward-auth requests: whether the request a proxy is
// about to send to an app carries a valid session, and if not, whether the
// client is a browser to send to the sign-in page or an API client to refuse.
// The HTTP check (httpapi, GET /auth/check) and the Envoy ext_authz gRPC
// Check (authserver/extauthz) both ask Decide, so they cannot disagree.
package edge

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
)

// The headers a successful check hands the proxy to set on the request to
// the app. Every header of the request starting with HeaderPrefix is the
// check's to set: a client's own are removed (gRPC) or overwritten (proxies
// that copy the response headers), never believed.
const (
	HeaderPrefix    = "X-Auth-"
	UserIDHeader    = "X-Auth-User-Id"
	EmailHeader     = "X-Auth-Email"
	SessionIDHeader = "X-Auth-Session-Id"
	LevelHeader     = "X-Auth-Level" // how the session last authenticated
	TimeHeader      = "X-Auth-Time"  // when, in Unix seconds
)

// ReturnParam is the query parameter of the sign-in URL that carries the URL
// the browser asked for (as ingress-nginx and oauth2-proxy name it).
const ReturnParam = "rd"

// Outcome is what the proxy is told to do.
type Outcome int

const (
	Allow  Outcome = iota // pass the request on, with the session's headers
	SignIn                // a browser without a session: redirect to Location
	Deny                  // no session: refuse with Err (401)
	Fail                  // the check itself failed: Err (503)
)

// Request is what a proxy tells about the request it checks.
type Request struct {
	Authorization string
	Cookies       []string // the Cookie header lines
	Accept        string
	// URL returns the absolute URL the client asked for, as the proxy
	// reports it, or "" when unknown (or URL is nil). Asked only when a
	// browser is sent to sign in: allowed requests never build it.
	URL func() string
	// NoRedirect: the proxy cannot pass a redirect on (nginx), refuse with 401.
	NoRedirect bool
	// Levels are the authentication levels the route requires (session.Level*;
	// none or "" for any session). The session must meet every one: a proxy
	// that asks for one may also pass on a level the client sent (a query
	// string, a header), and the client must not lower what the proxy asked.
	Levels []string
}

// Decision is the answer; Session is set for Allow (and for a Deny of a
// session below the required level), Location for SignIn, Err (a
// *service.Error) for Deny and Fail.
type Decision struct {
	Outcome  Outcome
	Session  session.Info
	Location string
	Err      error
}

// Checker makes the decisions.
type Checker struct {
	Authenticate func(ctx context.Context, tok string) (session.Info, error)
	CookieName   string
	// SignInURL receives browsers without a session; nil: they get 401 too.
	SignInURL *url.URL
	// RedirectHosts are the hosts the URL passed to the sign-in page may
	// point at (HostAllowed): anything else is dropped, so the sign-in page
	// cannot be made to send a user to another site.
	RedirectHosts []string
}

// NewChecker is the checker cfg describes; authenticate is
// service.Service.Authenticate.
func NewChecker(authenticate func(ctx context.Context, tok string) (session.Info, error), cfg *config.Config) *Checker {
	return &Checker{Authenticate: authenticate, CookieName: cfg.CookieName,
		SignInURL: cfg.Edge.SignInURL, RedirectHosts: cfg.Edge.RedirectHosts}
}

// Decide checks the request's session: a Bearer session token first, then
// the cookie. An Authorization header that is not one of our tokens (the
// app's own JWT, Basic auth, an opaque token we do not know even if shaped
// like ours) does not decide: the cookie does.
func (c *Checker) Decide(ctx context.Context, r Request) Decision {
	err := error(service.ErrUnauthorized)
	var info session.Info
	bearer := BearerToken(r.Authorization)
	if bearer != "" {
		info, err = c.Authenticate(ctx, bearer)
	}
	if errors.Is(err, service.ErrUnauthorized) {
		if tok, ok := CookieValue(r.Cookies, c.CookieName); ok && tok != "" && tok != bearer {
			info, err = c.Authenticate(ctx, tok)
		}
	}
	switch {
	case err == nil && !levelsMet(info.Level, r.Levels):
		return Decision{Outcome: Deny, Session: info, Err: service.ErrLevelTooLow}
	case err == nil:
		return Decision{Outcome: Allow, Session: info}
	case !errors.Is(err, service.ErrUnauthorized):
		return Decision{Outcome: Fail, Err: err}
	case c.SignInURL != nil && !r.NoRedirect && IsBrowser(r.Accept):
		original := ""
		if r.URL != nil {
			original = r.URL()
		}
		return Decision{Outcome: SignIn, Location: c.signInLocation(original)}
	}
	return Decision{Outcome: Deny, Err: service.ErrUnauthorized}
}

// signInLocation is the sign-in URL, with the original URL in ReturnParam
// when it is an absolute http(s) URL on an allowed host.
func (c *Checker) signInLocation(original string) string {
	u := *c.SignInURL
	if ret := c.returnURL(original); ret != "" {
		q := u.Query()
		q.Set(ReturnParam, ret)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// maxReturnURL bounds the URL carried to the sign-in page (browsers and
// proxies cut Location headers far longer than this).
const maxReturnURL = 4096

func (c *Checker) returnURL(raw string) string {
	if raw == "" || len(raw) > maxReturnURL {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || u.Host == "" || u.Opaque != "" {
		return ""
	}
	if !HostAllowed(c.RedirectHosts, u.Hostname()) {
		return ""
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// HostAllowed reports whether host matches one of the patterns: a host name
// (exactly, case-insensitively) or "*.example.com" (any subdomain of
// example.com at any depth, not example.com itself).
func HostAllowed(patterns []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return false
	}
	for _, p := range patterns {
		if suffix, ok := strings.CutPrefix(p, "*"); ok {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}

// IsBrowser reports whether the Accept header is a browser navigation's
// (text/html); fetch and XHR send */* or application/json and get a 401.
func IsBrowser(accept string) bool {
	return strings.Contains(strings.ToLower(accept), "text/html")
}

// OriginalURL is the URL the client asked for, from the headers Traefik's
// ForwardAuth sends: X-Forwarded-Proto, -Host and -Uri. Clients can forge
// them; the result is only ever used after the RedirectHosts check.
func OriginalURL(get func(string) string) string {
	uri, proto, host := get("X-Forwarded-Uri"), get("X-Forwarded-Proto"), get("X-Forwarded-Host")
	if strings.HasPrefix(uri, "/") && proto != "" && host != "" {
		return proto + "://" + host + uri
	}
	return ""
}

// FromNginx reports whether a check request comes from nginx's auth_request
// (ingress-nginx's auth-url): it sends X-Original-URL. nginx turns any answer
// but 2xx, 401 and 403 into a 500, so it gets 401 and its own auth-signin
// sends browsers to sign in.
func FromNginx(get func(string) string) bool { return get("X-Original-Url") != "" }

// BearerToken returns the session token of an "Authorization: Bearer"
// header, or "" when the header holds no well-formed session token.
func BearerToken(h string) string {
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		if tok := strings.TrimSpace(h[7:]); session.WellFormed(tok) {
			return tok
		}
	}
	return ""
}

// CookieValue finds the first cookie called name in Cookie header lines.
func CookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && k == name {
				if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
					v = v[1 : len(v)-1]
				}
				return v, true
			}
		}
	}
	return "", false
}

// levelsMet tells whether a session authenticated at have meets every
// required level (an empty one asks for nothing; an unknown one is never met).
func levelsMet(have string, want []string) bool {
	for _, w := range want {
		if w != "" && !session.Satisfies(have, w) {
			return false
		}
	}
	return true
}
