// Package config reads the authserver configuration from the environment.
//
// Every secret variable also accepts a NAME_FILE variant holding a path to a
// file with the value (the way Kubernetes mounts Secrets). A missing or
// malformed setting is reported with the variable's name and never its value.
package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"time"
)

// Pepper is one server-side secret mixed into every password hash.
type Pepper struct {
	// ID names the pepper inside PHC strings; derived from the key
	// (base64 of the first 6 bytes of SHA-256(key)), so no coordination is needed.
	ID  string
	Key []byte
}

// Argon2 holds the argon2id cost parameters.
type Argon2 struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// Limit is "at most N events per Window"; N == 0 disables the limit.
type Limit struct {
	N      int
	Window time.Duration
}

// String renders the limit in the form it is configured in ("10/1m0s").
func (l Limit) String() string {
	if l.N == 0 {
		return "off"
	}
	return fmt.Sprintf("%d/%s", l.N, l.Window)
}

// RateLimits are the per-IP and per-account limits of the public endpoints.
type RateLimits struct {
	LoginIP       Limit
	LoginAccount  Limit
	SignupIP      Limit
	SignupAccount Limit
	EmailIP       Limit // resend-verification and password/forgot
	EmailAccount  Limit
	TokenIP       Limit         // verify-email and password/reset
	LockoutAfter  int           // consecutive failures that lock an account
	LockoutBase   time.Duration // first lock duration, doubled per further failure
	LockoutMax    time.Duration
	FailureMemory time.Duration // how long the failure counter is remembered
}

// SMTP describes the outgoing mail server.
type SMTP struct {
	Host string
	Port int
	User string
	Pass string
	// TLS is "auto" (STARTTLS when offered, implicit TLS on port 465),
	// "starttls" (required), "tls" (implicit) or "none".
	TLS                string
	InsecureSkipVerify bool
	From               string
}

// Config is the whole authserver configuration.
type Config struct {
	DatabaseURL       string
	DatabaseDirectURL string // for migrations; equals DatabaseURL when unset
	RedisURL          string

	Peppers []Pepper // Peppers[0] hashes new passwords

	SMTP        SMTP
	FrontendURL *url.URL

	LogLevel    slog.Level
	Host        string // listen host; empty means every interface
	Port        int
	MetricsAddr string // empty disables the metrics listener
	Pprof       bool   // net/http/pprof on the metrics listener (AUTH_DEBUG_PPROF; profiling, as authbench does)

	Argon2          Argon2
	HashConcurrency int
	HashWait        time.Duration
	HashQueue       int // requests admitted beyond HashConcurrency (waiting for a slot or before their hash)

	SessionTTL time.Duration
	// SessionIdleTimeout ends a session unused this long (0: never); it is
	// enforced within SessionTouchEvery (last use is recorded that often).
	SessionIdleTimeout time.Duration
	CookieName         string
	CookieSecure       bool
	VerifyTokenTTL     time.Duration
	ResetTokenTTL      time.Duration

	TrustedProxies []netip.Prefix
	// TrustedProxyHops, when > 0, is how many proxies in front append to
	// X-Forwarded-For (AUTH_TRUSTED_PROXY_HOPS): the client is that entry
	// from the right, whatever its address. 0: the right-most entry that is
	// not in TrustedProxies.
	TrustedProxyHops int
	TrustedOrigins   []string

	Edge Edge

	RateLimits RateLimits

	MailPollInterval time.Duration
	MailRetryBase    time.Duration
	MailRetryMax     time.Duration
	MailMaxAge       time.Duration

	AuditRetention    time.Duration
	SweepInterval     time.Duration
	SweepBatch        int
	ShutdownTimeout   time.Duration
	MaxBodyBytes      int64
	SessionTouchEvery time.Duration

	Observability Observability

	UI       UI
	WebAuthn WebAuthn
	MFA      MFA
}

// WebAuthn is the passkey relying party (docs/authserver.md, "Passkeys").
type WebAuthn struct {
	// RPID is the relying party id: a host name that every origin's host
	// equals or is a subdomain of. Empty: passkeys are off (FRONTEND_URL is
	// an IP address, which browsers refuse as an rpId, and none was set).
	RPID    string
	RPName  string
	Origins []string // scheme://host[:port] the browser may report
	// Timeout bounds a ceremony: its challenge is refused after it.
	Timeout time.Duration
}

// MFA is the second-factor policy (docs/authserver.md, "Second factors").
type MFA struct {
	// Methods are the factors a user may enrol ("totp", "passkey"). A
	// factor enrolled before its method was withdrawn still works and is
	// still asked for: withdrawing a method never makes an account weaker.
	Methods []string
	// Required: a user without a factor must enrol one after the password
	// step before any session is opened.
	Required bool
	// ChallengeTTL is the lifetime of the challenge between the password
	// step and the second factor.
	ChallengeTTL time.Duration
	// StepUpWindow: changing the password or the factors needs an
	// authentication this recent (with a second factor, if the user has one).
	StepUpWindow time.Duration
	// Issuer is the name authenticator apps show next to the account.
	Issuer string
}

// Offers tells whether users may enrol method.
func (m MFA) Offers(method string) bool {
	for _, x := range m.Methods {
		if x == method {
			return true
		}
	}
	return false
}

// Edge is forward auth: what /auth/check and the Envoy ext_authz gRPC
// Check answer a request without a session (docs/edge-auth.md).
type Edge struct {
	// SignInURL receives browsers without a session; nil: they get 401.
	SignInURL *url.URL
	// RedirectHosts are the host patterns ("app.example.com",
	// "*.example.com") the URL handed to the sign-in page may point at.
	RedirectHosts []string
	// GRPCPort serves envoy.service.auth.v3.Authorization; 0: off.
	GRPCPort int
}

// Observability is the access log, the trace export and the error
// reporting (docs/monitoring.md).
type Observability struct {
	AccessLog bool
	// AccessLogHotSample is the share of GET /auth/session and /auth/check
	// requests that get an access log line (5xx always do).
	AccessLogHotSample float64

	// OTLPEndpoint is the full OTLP/HTTP traces URL; empty: no tracing.
	OTLPEndpoint string
	// TraceSampleRatio is the share of new traces (without a sampled
	// parent) that are recorded.
	TraceSampleRatio float64
	ServiceName      string

	SentryDSN         string // empty: no error reporting
	SentryEnvironment string
}

// FromEnvironment loads the configuration from the process environment.
func FromEnvironment() (*Config, error) {
	return Load(os.LookupEnv, os.ReadFile)
}

// Load builds a Config from the given environment, one section at a time
// (sections.go). All problems are reported together, each naming its
// variable.
func Load(get Getenv, read ReadFile) (*Config, error) {
	l := &loader{get: get, read: read}
	c := &Config{}
	for _, section := range []func(*loader, *Config){
		loadDatabase, loadRedis, loadPeppers, loadSMTP, loadHTTP, loadLogging,
		loadArgon2, loadSessions, loadRateLimits, loadMail, loadHousekeeping, loadObservability, loadWebAuthn, loadMFA, loadUI, loadEdge,
	} {
		section(l, c)
	}
	if err := l.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// PublicOrigin is the scheme://host of FRONTEND_URL.
func (c *Config) PublicOrigin() string {
	return c.FrontendURL.Scheme + "://" + c.FrontendURL.Host
}

// LoadObservability reads only the observability variables (ACCESS_LOG*,
// OTEL_*, SENTRY_*): what the one-shot subcommands (migrate, backup,
// restore) need to report their failures.
func LoadObservability(get Getenv, read ReadFile) (Observability, error) {
	l := &loader{get: get, read: read}
	c := &Config{}
	loadObservability(l, c)
	return c.Observability, l.err()
}

// LoadDatabase reads only what migrations need: DATABASE_DIRECT_URL, else
// DATABASE_URL (each with a _FILE variant). It returns the URL to migrate with.
func LoadDatabase(get Getenv, read ReadFile) (string, error) {
	l := &loader{get: get, read: read}
	direct := l.str("DATABASE_DIRECT_URL", "", true)
	checkDBURL(l, "DATABASE_DIRECT_URL", direct)
	if direct == "" && len(l.errs) == 0 {
		direct = l.required("DATABASE_URL", true)
		checkDBURL(l, "DATABASE_URL", direct)
	}
	if err := l.err(); err != nil {
		return "", err
	}
	return direct, nil
}
