// Package httpapi is the HTTP face of the authserver: routes on a
// net/http ServeMux with method patterns, thin handlers over the service,
// JSON errors, metrics by route pattern, CSRF protection for cookie
// sessions, and the OpenAPI document of the contract.
package httpapi

import (
	"context"
	_ "embed"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/edge"
	"github.com/leanauth/authstack/authserver/metrics"
	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
)

// OpenAPI is the OpenAPI 3 document of the API, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Check is one readiness check result; Err nil means ok. A failed
// Degrades check (Redis) only degrades: /ready still answers 200, with
// status "degraded", because the server works without it.
type Check struct {
	Name     string
	Err      error
	Degrades bool
}

// Options configure the server.
type Options struct {
	Service *service.Service
	Metrics *metrics.Metrics // may be nil
	Config  *config.Config
	Ready   func(ctx context.Context) []Check
	Version string
	Logger  *slog.Logger
	// Tracing, when set, gives every request a span named by its route
	// pattern and continues a W3C traceparent from the caller.
	Tracing trace.TracerProvider
}

// Route is one served method and pattern.
type Route struct {
	Method  string
	Pattern string
}

// Server routes and serves the API.
type Server struct {
	svc      *service.Service
	metrics  *metrics.Metrics
	cfg      *config.Config
	ready    func(ctx context.Context) []Check
	version  string
	log      *slog.Logger
	mux      *http.ServeMux
	routes   []Route
	allow    map[string]string // pattern -> its methods (the Allow header of a 405); written only before serving (New, Handle)
	started  time.Time
	draining atomic.Bool
	cop      *http.CrossOriginProtection
	tracing  trace.TracerProvider
	edge     *edge.Checker
}

// New builds the server and its routes.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{svc: o.Service, metrics: o.Metrics, cfg: o.Config, ready: o.Ready, version: o.Version,
		log: o.Logger, mux: http.NewServeMux(), started: time.Now(), cop: http.NewCrossOriginProtection(), tracing: o.Tracing}
	if o.Config.FrontendURL != nil {
		_ = s.cop.AddTrustedOrigin(o.Config.PublicOrigin())
	}
	s.edge = edge.NewChecker(o.Service.Authenticate, o.Config)
	for _, origin := range o.Config.TrustedOrigins {
		_ = s.cop.AddTrustedOrigin(origin)
	}
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "csrf_rejected", "cross-origin request with a session cookie refused", 0)
	}))

	s.handle("POST", "/auth/signup", s.sameOrigin(s.hashing(s.signup)))
	s.handle("POST", "/auth/verify-email", s.sameOrigin(s.verifyEmail))
	s.handle("POST", "/auth/resend-verification", s.sameOrigin(s.resendVerification))
	s.handle("POST", "/auth/login", s.sameOrigin(s.hashing(s.login)))
	s.handle("GET", "/auth/session", s.authed(s.getSession))
	s.handle("POST", "/auth/logout", s.authed(s.logout))
	s.handle("POST", "/auth/logout-all", s.authed(s.logoutAll))
	s.handle("GET", "/auth/sessions", s.authed(s.listSessions))
	s.handle("DELETE", "/auth/sessions/{id}", s.authed(s.revokeSession))
	s.handle("POST", "/auth/password/forgot", s.sameOrigin(s.forgotPassword))
	s.handle("POST", "/auth/password/reset", s.sameOrigin(s.hashing(s.resetPassword)))
	s.handle("POST", "/auth/password/change", s.hashing(s.authed(s.changePassword)))
	s.handle("GET", "/auth/check", s.check)
	s.handleEveryMethod(checkPrefixPattern, s.check)
	s.handle("POST", "/auth/passkeys/register/begin", s.authed(s.passkeyRegisterBegin))
	s.handle("POST", "/auth/passkeys/register/finish", s.authed(s.passkeyRegisterFinish))
	s.handle("GET", "/auth/passkeys", s.authed(s.listPasskeys))
	s.handle("PATCH", "/auth/passkeys/{id}", s.authed(s.renamePasskey))
	s.handle("DELETE", "/auth/passkeys/{id}", s.authed(s.removePasskey))
	s.handle("POST", "/auth/passkeys/login/begin", s.sameOrigin(s.passkeyLoginBegin))
	s.handle("POST", "/auth/passkeys/login/finish", s.sameOrigin(s.passkeyLoginFinish))
	s.handle("POST", "/auth/login/mfa/passkey/begin", s.sameOrigin(s.passkeyChallengeBegin(func(ctx context.Context, ch string) (any, error) {
		return s.svc.BeginPasskeySecondFactor(ctx, ch)
	})))
	s.handle("POST", "/auth/login/mfa/passkey/finish", s.sameOrigin(s.passkeySecondFactorFinish))
	s.handle("POST", "/auth/login/mfa/passkey/register/begin", s.sameOrigin(s.passkeyChallengeBegin(func(ctx context.Context, ch string) (any, error) {
		return s.svc.BeginPasskeyEnrollment(ctx, ch)
	})))
	s.handle("POST", "/auth/login/mfa/passkey/register/finish", s.sameOrigin(s.passkeyEnrollFinish))
	s.handle("POST", "/auth/reauthenticate/passkey/begin", s.authed(s.passkeyReauthBegin))
	s.handle("POST", "/auth/reauthenticate/passkey/finish", s.authed(s.passkeyReauthFinish))
	s.handle("POST", "/auth/login/mfa", s.sameOrigin(s.loginSecondFactor))
	s.handle("POST", "/auth/login/mfa/totp/enroll", s.sameOrigin(s.enrollTOTPWithChallenge))
	s.handle("POST", "/auth/login/mfa/totp/confirm", s.sameOrigin(s.confirmTOTPWithChallenge))
	s.handle("GET", "/auth/mfa", s.authed(s.mfaStatus))
	s.handle("POST", "/auth/mfa/totp/enroll", s.authed(s.enrollTOTP))
	s.handle("POST", "/auth/mfa/totp/confirm", s.authed(s.confirmTOTP))
	s.handle("DELETE", "/auth/mfa/totp", s.authed(s.removeTOTP))
	s.handle("POST", "/auth/mfa/recovery-codes", s.authed(s.regenerateRecoveryCodes))
	s.handle("POST", "/auth/reauthenticate", s.hashing(s.authed(s.reauthenticate)))
	s.handle("GET", "/health", s.health)
	s.handle("GET", "/ready", s.readiness)
	s.handle("GET", "/openapi.yaml", s.openapi)

	notFound := s.instrument("ANY", "unmatched", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint", 0)
	})
	s.mux.Handle("/", notFound)
	return s
}

// Routes lists the served routes.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// Handler is the root handler.
func (s *Server) Handler() http.Handler { return s.mux }

// SetDraining makes /ready fail so load balancers stop sending traffic
// while in-flight requests finish.
func (s *Server) SetDraining() { s.draining.Store(true) }

func (s *Server) handle(method, pattern string, h http.HandlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Pattern: pattern})
	s.mux.Handle(method+" "+pattern, s.instrument(method, pattern, h))
	// Same path, other method: a JSON 405 instead of the mux's plain text,
	// registered once per path (several methods can share one).
	if method == "GET" {
		method = "GET, HEAD"
	}
	if s.allow == nil {
		s.allow = map[string]string{}
	}
	if prev, ok := s.allow[pattern]; ok {
		s.allow[pattern] = prev + ", " + method
		return
	}
	s.allow[pattern] = method
	s.mux.Handle(pattern, s.instrument("ANY", pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", s.allow[pattern])
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method "+r.Method+" not allowed here", 0)
	}))
}

// handleEveryMethod serves pattern whatever the method: Envoy's HTTP
// ext_authz (Envoy Gateway's extAuth.http, the HTTPRoute ExternalAuth
// filter) calls the check with the client's method at the check's path
// followed by the client's.
func (s *Server) handleEveryMethod(pattern string, h http.HandlerFunc) {
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		s.routes = append(s.routes, Route{Method: m, Pattern: pattern})
		s.mux.Handle(m+" "+pattern, s.instrument(m, pattern, h))
	}
	s.mux.Handle(pattern, s.instrument("ANY", pattern, h))
}

// Handle serves h at method and pattern like the API's own routes (metrics,
// access log, panic recovery, a 405 for other methods). Call it before the
// server serves: the hosted pages (authserver/ui) mount themselves with it.
func (s *Server) Handle(method, pattern string, h http.HandlerFunc) { s.handle(method, pattern, h) }

// CheckOrigin is the cross-origin (CSRF) check of the API: nil when r is
// same-origin, from a trusted origin, or not from a browser.
func (s *Server) CheckOrigin(r *http.Request) error { return s.cop.Check(r) }

// Client is who sent r: its address (X-Forwarded-For only from trusted
// proxies) and user agent.
func (s *Server) Client(r *http.Request) service.Client { return s.client(r) }

// statusWriter remembers the status code and counts the body bytes.
type statusWriter struct {
	http.ResponseWriter
	status    int
	bytes     int
	requestID [1]string // the X-Request-Id header's value (accesslog.go)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument adds metrics by route pattern, panic recovery, the headers
// every response carries, the access log (accesslog.go) and, with tracing
// on, a span named by the route pattern.
func (s *Server) instrument(method, pattern string, h http.HandlerFunc) http.Handler {
	var rm *metrics.RouteMetrics
	var byMethod sync.Map // for method-less fallbacks: method -> *metrics.RouteMetrics
	if s.metrics != nil && method != "ANY" {
		rm = s.metrics.Route(method, pattern)
	}
	access := s.accessLogger(method, pattern)
	tr := s.requestTracer(method, pattern) // tracing.go; nil when tracing is off
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var span trace.Span
		if tr != nil {
			r, span = tr.start(r)
		}
		sw := &statusWriter{ResponseWriter: w}
		hdr := w.Header()
		hdr["Cache-Control"] = noStore
		hdr["X-Content-Type-Options"] = nosniff
		reqID := access.requestID(sw, r)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(r.Context(), "handler panic", "route", pattern, "panic", p)
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "internal", "internal error", 0)
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			if s.metrics != nil {
				obs := rm
				if obs == nil {
					m := standardMethod(r.Method)
					v, ok := byMethod.Load(m)
					if !ok {
						v, _ = byMethod.LoadOrStore(m, s.metrics.Route(m, pattern))
					}
					obs = v.(*metrics.RouteMetrics)
				}
				obs.Observe(status, elapsed.Seconds())
			}
			access.log(r, status, sw.bytes, elapsed, reqID)
			if span != nil {
				tr.end(span, r, status)
			}
		}()
		h(sw, r)
	})
}

// client extracts the caller's IP (honouring X-Forwarded-For only from
// trusted proxies) and user agent.
func (s *Server) client(r *http.Request) service.Client {
	return service.Client{IP: ClientIP(r, s.cfg.TrustedProxies, s.cfg.TrustedProxyHops), UserAgent: r.UserAgent()}
}

// ClientIP returns the address of the client: the peer, or, when the peer
// is a trusted proxy, an X-Forwarded-For entry. With hops > 0 it is the
// hops-th entry from the right (what the outermost of that many appending
// proxies saw; the left-most entry when there are fewer), whether or not
// its address is in trusted: a client on a private address (an in-cluster
// caller, a LoadBalancer that hides clients behind node addresses) cannot
// then be mistaken for a proxy and have the entry it wrote itself
// believed. With hops 0 it is the right-most entry that is not in trusted.
func ClientIP(r *http.Request, trusted []netip.Prefix, hops int) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var peer netip.Addr
	if err == nil {
		peer = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		peer = a.Unmap()
	} else {
		return r.RemoteAddr
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if len(trusted) == 0 || !isTrusted(peer) {
		return peer.String()
	}
	n := 0
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		parts := strings.Split(values[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := parseHop(strings.TrimSpace(parts[j]))
			if err != nil {
				return peer.String()
			}
			a = a.Unmap()
			n++
			if hops > 0 && n == hops || hops == 0 && !isTrusted(a) {
				return a.String()
			}
			peer = a
		}
	}
	return peer.String()
}

// parseHop parses an X-Forwarded-For entry: an address, or an address and
// port as some proxies write it.
func parseHop(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return a, err
		}
		a = ap.Addr()
	}
	return a, nil
}

// token returns the session token of r and whether it came from the cookie.
// An Authorization header that does not hold a session token (an app's own
// JWT, Basic auth, forwarded by a proxy to /auth/check) is not ours: the
// cookie decides then.
func (s *Server) token(r *http.Request) (tok string, fromCookie bool) {
	if tok := edge.BearerToken(r.Header.Get("Authorization")); tok != "" {
		return tok, false
	}
	if c, err := r.Cookie(s.cfg.CookieName); err == nil {
		return c.Value, true
	}
	return "", false
}

// sameOrigin applies the cross-origin check to the public state-changing
// routes (login, signup and the email-token flows) as authed does to
// cookie-authenticated ones: a page of another site cannot log a visitor
// into an account of its choosing or send requests in their name.
func (s *Server) sameOrigin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "csrf_rejected", "cross-origin request refused", 0)
			return
		}
		h(w, r)
	}
}

type authedHandler func(w http.ResponseWriter, r *http.Request, cur session.Info)

// authed requires a valid session; unsafe methods with a cookie session
// must pass cross-origin (CSRF) protection.
func (s *Server) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, fromCookie := s.token(r)
		if tok == "" {
			s.fail(w, r, service.ErrUnauthorized)
			return
		}
		cur, err := s.authenticate(w, r, tok, fromCookie)
		if errors.Is(err, service.ErrUnauthorized) && !fromCookie {
			// An app's own opaque bearer token can have the shape of ours
			// (32 random bytes, base64url): unknown to us, the cookie decides.
			if c, cerr := r.Cookie(s.cfg.CookieName); cerr == nil && c.Value != tok {
				cur, err = s.authenticate(w, r, c.Value, true)
			}
		}
		if errors.Is(err, errCSRF) {
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		h(w, r, cur)
	}
}

// errCSRF: authenticate refused the request and wrote the 403.
var errCSRF = errors.New("cross-origin request refused")

// authenticate validates tok; a cookie's token only after the cross-origin
// check of unsafe methods (the 403 is written here, errCSRF returned).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, tok string, fromCookie bool) (session.Info, error) {
	if fromCookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := s.cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "csrf_rejected", "cross-origin request with a session cookie refused", 0)
			return session.Info{}, errCSRF
		}
	}
	return s.svc.Authenticate(r.Context(), tok)
}

func standardMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return m
	}
	return "OTHER"
}
