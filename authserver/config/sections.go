package config

import (
	"log/slog"

	"net/mail"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
)

// The sections of Load, one per concern; each reads its variables into c
// and reports its problems to l.

// loadDatabase: DATABASE_URL (pooled) and DATABASE_DIRECT_URL (migrations).
func loadDatabase(l *loader, c *Config) {
	c.DatabaseURL = l.required("DATABASE_URL", true)
	checkDBURL(l, "DATABASE_URL", c.DatabaseURL)
	c.DatabaseDirectURL = l.str("DATABASE_DIRECT_URL", "", true)
	checkDBURL(l, "DATABASE_DIRECT_URL", c.DatabaseDirectURL)
	if c.DatabaseDirectURL == "" {
		c.DatabaseDirectURL = c.DatabaseURL
	}
}

func loadRedis(l *loader, c *Config) {
	c.RedisURL = l.required("REDIS_URL", true)
	if c.RedisURL != "" {
		checkRedisURL(l, c.RedisURL)
	}
}

// loadPeppers: the current one, then the older ones still accepted.
func loadPeppers(l *loader, c *Config) {
	if cur := l.required("AUTH_PEPPER", true); cur != "" {
		key, err := ParsePepper(cur)
		if err != nil {
			l.fail("AUTH_PEPPER", "%v", err)
		} else {
			c.Peppers = append(c.Peppers, Pepper{ID: PepperID(key), Key: key})
		}
	}
	if old := oldPeppers(l); old != "" {
		fields := strings.FieldsFunc(old, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' || r == '\r' || r == '\t' })
		for i, f := range fields {
			key, err := ParsePepper(f)
			if err != nil {
				l.fail("AUTH_OLD_PEPPERS", "entry %d %v", i+1, err)
				continue
			}
			id := PepperID(key)
			dup := false
			for _, p := range c.Peppers {
				if p.ID == id {
					dup = true
				}
			}
			if !dup {
				c.Peppers = append(c.Peppers, Pepper{ID: id, Key: key})
			}
		}
	}
}

// oldPeppers reads AUTH_OLD_PEPPERS, or the files AUTH_OLD_PEPPERS_FILE names: one, or
// several separated by commas (the operator mounts each old pepper's Secret key as its
// own file, controllers/resources/pepperrotation.go).
func oldPeppers(l *loader) string {
	paths, ok := l.get("AUTH_OLD_PEPPERS_FILE")
	if !ok || !strings.Contains(paths, ",") {
		return l.str("AUTH_OLD_PEPPERS", "", true)
	}
	if v, set := l.get("AUTH_OLD_PEPPERS"); set && v != "" {
		l.fail("AUTH_OLD_PEPPERS", "set both AUTH_OLD_PEPPERS and AUTH_OLD_PEPPERS_FILE; set only one")
		return ""
	}
	var all []string
	for _, path := range strings.Split(paths, ",") {
		if path = strings.TrimSpace(path); path == "" {
			continue
		}
		b, err := l.read(path)
		if err != nil {
			l.fail("AUTH_OLD_PEPPERS_FILE", "cannot read %q: %v", path, unwrapPathErr(err))
			return ""
		}
		all = append(all, strings.TrimSpace(string(b)))
	}
	return strings.Join(all, "\n")
}

// loadSMTP: the mail server and the sender address.
func loadSMTP(l *loader, c *Config) {
	c.SMTP.Host = l.required("SMTP_HOST", false)
	c.SMTP.Port = l.integer("SMTP_PORT", 587, 1, 65535)
	c.SMTP.User = l.str("SMTP_USER", "", true)
	c.SMTP.Pass = l.str("SMTP_PASS", "", true)
	if (c.SMTP.User == "") != (c.SMTP.Pass == "") {
		l.fail("SMTP_USER", "SMTP_USER and SMTP_PASS must be set together (or both left empty for no AUTH)")
	}
	c.SMTP.TLS = strings.ToLower(l.str("SMTP_TLS", "auto", false))
	switch c.SMTP.TLS {
	case "auto", "starttls", "tls", "none":
	default:
		l.fail("SMTP_TLS", "must be auto, starttls, tls or none, got %q", c.SMTP.TLS)
	}
	c.SMTP.InsecureSkipVerify = l.boolean("SMTP_TLS_INSECURE_SKIP_VERIFY", false)
	c.SMTP.From = l.required("MAIL_FROM", false)
	if c.SMTP.From != "" {
		if _, err := mail.ParseAddress(c.SMTP.From); err != nil {
			l.fail("MAIL_FROM", "must be an address like \"App <noreply@example.com>\", got %q", c.SMTP.From)
		}
	}
}

// loadHTTP: the listeners, the public origin, who may forward requests or
// send cookies cross-origin, and the bounds of a request's life.
func loadHTTP(l *loader, c *Config) {
	if fu := l.required("FRONTEND_URL", false); fu != "" {
		u, err := url.Parse(fu)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			l.fail("FRONTEND_URL", "must be an absolute http(s) URL without query, got %q", fu)
		} else {
			u.Path = strings.TrimRight(u.Path, "/")
			c.FrontendURL = u
		}
	}

	c.Host = l.str("HOST", "", false)
	if c.Host != "" {
		if _, err := netip.ParseAddr(strings.Trim(c.Host, "[]")); err != nil && strings.ContainsAny(c.Host, ":/ ") {
			l.fail("HOST", "must be an IP address or host name, got %q", c.Host)
		}
	}
	c.Port = l.integer("PORT", 3000, 1, 65535)
	c.MetricsAddr = l.str("METRICS_ADDR", ":9090", false)
	if c.MetricsAddr == "off" || c.MetricsAddr == "0" {
		c.MetricsAddr = ""
	}
	c.Pprof = l.boolean("AUTH_DEBUG_PPROF", false)

	if tp := l.str("AUTH_TRUSTED_PROXIES", "", false); tp != "" {
		for _, f := range strings.FieldsFunc(tp, func(r rune) bool { return r == ',' || r == ' ' }) {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				a, aerr := netip.ParseAddr(f)
				if aerr != nil {
					l.fail("AUTH_TRUSTED_PROXIES", "%q is not a CIDR or IP address", f)
					continue
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				// Client addresses are unmapped before they are compared.
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
	}
	c.TrustedProxyHops = l.integer("AUTH_TRUSTED_PROXY_HOPS", 0, 0, 16)
	if to := l.str("AUTH_TRUSTED_ORIGINS", "", false); to != "" {
		for _, f := range strings.FieldsFunc(to, func(r rune) bool { return r == ',' || r == ' ' }) {
			u, err := url.Parse(f)
			if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
				l.fail("AUTH_TRUSTED_ORIGINS", "%q is not an origin like https://app.example.com", f)
				continue
			}
			c.TrustedOrigins = append(c.TrustedOrigins, u.Scheme+"://"+u.Host)
		}
	}

	c.ShutdownTimeout = l.duration("AUTH_SHUTDOWN_TIMEOUT", 20*time.Second, 0)
	c.MaxBodyBytes = int64(l.integer("AUTH_MAX_BODY_BYTES", 16*1024, 256, 1<<20))
}

func loadLogging(l *loader, c *Config) {
	switch lv := strings.ToLower(l.str("LOG_LEVEL", "info", false)); lv {
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "info":
		c.LogLevel = slog.LevelInfo
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		l.fail("LOG_LEVEL", "must be debug, info, warn or error, got %q", lv)
	}
}

// loadArgon2: the cost of one hash and how many run at once.
func loadArgon2(l *loader, c *Config) {
	c.Argon2.MemoryKiB = uint32(l.integer("AUTH_ARGON2_MEMORY_KIB", 19456, 8*1024, 4*1024*1024))
	c.Argon2.Iterations = uint32(l.integer("AUTH_ARGON2_ITERATIONS", 2, 1, 100))
	c.Argon2.Parallelism = uint8(l.integer("AUTH_ARGON2_PARALLELISM", 1, 1, 64))
	// GOMAXPROCS, not NumCPU: since Go 1.25 it follows the container's CPU limit.
	c.HashConcurrency = l.integer("AUTH_HASH_CONCURRENCY", runtime.GOMAXPROCS(0), 1, 1024)
	c.HashWait = l.duration("AUTH_HASH_WAIT_TIMEOUT", 2*time.Second, time.Millisecond)
	// Places for requests waiting for a slot: beyond them a request that
	// would hash is shed before its body is read (docs/benchmarks.md).
	c.HashQueue = l.integer("AUTH_HASH_QUEUE", 32*c.HashConcurrency, 0, 1<<16)
}

// loadSessions: sessions, their cookie, and the emailed tokens.
func loadSessions(l *loader, c *Config) {
	c.SessionTTL = l.duration("AUTH_SESSION_TTL", 7*24*time.Hour, time.Minute)
	c.CookieSecure = l.boolean("AUTH_COOKIE_SECURE", true)
	// __Host-: browsers accept the cookie only from this host, Secure, with
	// Path=/ and no Domain, so a sibling subdomain cannot plant or shadow it.
	// Browsers refuse the prefix without Secure (plain-HTTP development).
	defCookie := "__Host-session"
	if !c.CookieSecure {
		defCookie = "session"
	}
	c.CookieName = l.str("AUTH_COOKIE_NAME", defCookie, false)
	for _, prefix := range []string{"__Host-", "__Secure-"} {
		if strings.HasPrefix(c.CookieName, prefix) && !c.CookieSecure {
			l.fail("AUTH_COOKIE_NAME", "a %s cookie needs AUTH_COOKIE_SECURE=true (browsers drop it otherwise)", prefix)
		}
	}
	c.VerifyTokenTTL = l.duration("AUTH_VERIFY_TOKEN_TTL", 24*time.Hour, time.Minute)
	c.ResetTokenTTL = l.duration("AUTH_RESET_TOKEN_TTL", time.Hour, time.Minute)
	c.SessionTouchEvery = l.duration("AUTH_SESSION_TOUCH_INTERVAL", time.Minute, time.Second)
	c.SessionIdleTimeout = l.duration("AUTH_SESSION_IDLE_TIMEOUT", 24*time.Hour, 0)
	if c.SessionIdleTimeout != 0 && c.SessionIdleTimeout < 2*c.SessionTouchEvery {
		l.fail("AUTH_SESSION_IDLE_TIMEOUT", "must be 0 (off) or at least twice AUTH_SESSION_TOUCH_INTERVAL (%s)", c.SessionTouchEvery)
	}
}

// loadRateLimits: the per-IP and per-account limits and the lockout.
func loadRateLimits(l *loader, c *Config) {
	rl := &c.RateLimits
	rl.LoginIP = l.limit("AUTH_RATELIMIT_LOGIN_IP", Limit{N: 30, Window: time.Minute})
	rl.LoginAccount = l.limit("AUTH_RATELIMIT_LOGIN_ACCOUNT", Limit{N: 10, Window: time.Minute})
	rl.SignupIP = l.limit("AUTH_RATELIMIT_SIGNUP_IP", Limit{N: 20, Window: time.Hour})
	rl.SignupAccount = l.limit("AUTH_RATELIMIT_SIGNUP_ACCOUNT", Limit{N: 3, Window: time.Hour})
	rl.EmailIP = l.limit("AUTH_RATELIMIT_EMAIL_IP", Limit{N: 20, Window: time.Hour})
	rl.EmailAccount = l.limit("AUTH_RATELIMIT_EMAIL_ACCOUNT", Limit{N: 3, Window: time.Hour})
	rl.TokenIP = l.limit("AUTH_RATELIMIT_TOKEN_IP", Limit{N: 30, Window: time.Hour})
	rl.LockoutAfter = l.integer("AUTH_LOCKOUT_THRESHOLD", 5, 0, 1000)
	rl.LockoutBase = l.duration("AUTH_LOCKOUT_BASE", time.Minute, time.Second)
	rl.LockoutMax = l.duration("AUTH_LOCKOUT_MAX", time.Hour, time.Second)
	rl.FailureMemory = l.duration("AUTH_LOCKOUT_MEMORY", 24*time.Hour, time.Minute)
	if rl.LockoutMax < rl.LockoutBase {
		l.fail("AUTH_LOCKOUT_MAX", "must be at least AUTH_LOCKOUT_BASE (%s)", rl.LockoutBase)
	}
}

// loadMail: the outbox worker.
func loadMail(l *loader, c *Config) {
	c.MailPollInterval = l.duration("AUTH_MAIL_POLL_INTERVAL", time.Second, 10*time.Millisecond)
	c.MailRetryBase = l.duration("AUTH_MAIL_RETRY_BASE", 2*time.Second, 10*time.Millisecond)
	c.MailRetryMax = l.duration("AUTH_MAIL_RETRY_MAX", 5*time.Minute, 10*time.Millisecond)
	c.MailMaxAge = l.duration("AUTH_MAIL_MAX_AGE", 72*time.Hour, time.Minute)
}

// loadHousekeeping: the sweeper of expired rows and old audit entries.
func loadHousekeeping(l *loader, c *Config) {
	c.AuditRetention = l.duration("AUTH_AUDIT_RETENTION", 90*24*time.Hour, time.Hour)
	c.SweepInterval = l.duration("AUTH_SWEEP_INTERVAL", 5*time.Minute, 10*time.Millisecond)
	c.SweepBatch = l.integer("AUTH_SWEEP_BATCH", 500, 1, 100000)
}

// loadObservability: the access log, OpenTelemetry trace export (the
// standard OTEL_* variables) and Sentry error reporting.
func loadObservability(l *loader, c *Config) {
	o := &c.Observability
	o.AccessLog = l.boolean("ACCESS_LOG", true)
	o.AccessLogHotSample = l.ratio("ACCESS_LOG_HOT_SAMPLE", 0.01)

	// As the OTLP exporter specification says: the signal-specific variable
	// is the whole URL, the general one a base that /v1/traces is added to.
	if v := l.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", false); v != "" {
		o.OTLPEndpoint = v
	} else if v := l.str("OTEL_EXPORTER_OTLP_ENDPOINT", "", false); v != "" {
		o.OTLPEndpoint = strings.TrimRight(v, "/") + "/v1/traces"
	}
	if o.OTLPEndpoint != "" {
		if u, err := url.Parse(o.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.fail("OTEL_EXPORTER_OTLP_ENDPOINT", "must be an http(s) URL of an OTLP/HTTP receiver, got %q", o.OTLPEndpoint)
		}
	}
	if l.boolean("OTEL_SDK_DISABLED", false) {
		o.OTLPEndpoint = ""
	}
	o.TraceSampleRatio = l.ratio("OTEL_TRACES_SAMPLER_ARG", 1)
	switch s := l.str("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", false); s {
	case "parentbased_traceidratio":
	case "parentbased_always_on":
		o.TraceSampleRatio = 1
	default:
		l.fail("OTEL_TRACES_SAMPLER", "must be parentbased_traceidratio or parentbased_always_on, got %q", s)
	}
	o.ServiceName = l.str("OTEL_SERVICE_NAME", "authserver", false)

	o.SentryDSN = l.str("SENTRY_DSN", "", true)
	if o.SentryDSN != "" {
		// The DSN carries the project key: never echo it.
		if u, err := url.Parse(o.SentryDSN); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User == nil {
			l.fail("SENTRY_DSN", "must be a Sentry DSN like https://key@o0.ingest.sentry.io/0")
		}
	}
	o.SentryEnvironment = l.str("SENTRY_ENVIRONMENT", "production", false)
}

// loadEdge: forward auth (after loadHTTP: the defaults derive from
// FRONTEND_URL, and the gRPC port must differ from PORT).
func loadEdge(l *loader, c *Config) {
	e := &c.Edge
	switch v := l.str("AUTH_SIGNIN_URL", "", false); {
	case strings.EqualFold(v, "off"):
	case v != "":
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
			l.fail("AUTH_SIGNIN_URL", "must be an absolute http(s) URL without a fragment, or off, got %q", v)
		} else {
			e.SignInURL = u
		}
	case c.FrontendURL != nil:
		u := *c.FrontendURL
		u.Path += "/login"
		e.SignInURL = &u
	}
	if v := l.str("AUTH_REDIRECT_HOSTS", "", false); v != "" {
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			p, err := ParseHostPattern(f)
			if err != nil {
				l.fail("AUTH_REDIRECT_HOSTS", "%v", err)
				continue
			}
			e.RedirectHosts = append(e.RedirectHosts, p)
		}
	} else if c.FrontendURL != nil {
		e.RedirectHosts = []string{strings.ToLower(c.FrontendURL.Hostname())}
	}
	e.GRPCPort = l.integer("AUTH_GRPC_PORT", 0, 0, 65535)
	if e.GRPCPort != 0 && e.GRPCPort == c.Port {
		l.fail("AUTH_GRPC_PORT", "must differ from PORT (%d)", c.Port)
	}
}

// loadWebAuthn: the passkey relying party. By default its id is
// FRONTEND_URL's host name and its only origin FRONTEND_URL's origin;
// AUTH_WEBAUTHN_RP_ID and AUTH_WEBAUTHN_ORIGINS override them (the pages on
// a parent domain, several front ends). Runs after loadHTTP.
func loadWebAuthn(l *loader, c *Config) {
	w := &c.WebAuthn
	w.RPName = l.str("AUTH_WEBAUTHN_RP_NAME", "AuthStack", false)
	w.Timeout = l.duration("AUTH_WEBAUTHN_TIMEOUT", 5*time.Minute, 30*time.Second)
	if w.Timeout > time.Hour {
		l.fail("AUTH_WEBAUTHN_TIMEOUT", "must be at most 1h, got %s", w.Timeout)
	}
	explicit := l.str("AUTH_WEBAUTHN_RP_ID", "", false)
	w.RPID = strings.ToLower(explicit)
	if w.RPID == "" && c.FrontendURL != nil {
		if h := strings.ToLower(c.FrontendURL.Hostname()); !isIP(h) && protocol.ValidateRPID(h) == nil {
			w.RPID = h
		}
	}
	if explicit != "" && (isIP(w.RPID) || strings.ContainsAny(w.RPID, ":/ ") || strings.Trim(w.RPID, ".") != w.RPID ||
		protocol.ValidateRPID(w.RPID) != nil) {
		l.fail("AUTH_WEBAUTHN_RP_ID", "must be a host name (no scheme, port or IP address), got %q", explicit)
		return
	}
	if o := l.str("AUTH_WEBAUTHN_ORIGINS", "", false); o != "" {
		for _, f := range strings.FieldsFunc(o, func(r rune) bool { return r == ',' || r == ' ' }) {
			u, err := url.Parse(f)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				l.fail("AUTH_WEBAUTHN_ORIGINS", "%q is not an origin like https://app.example.com", f)
				continue
			}
			w.Origins = append(w.Origins, u.Scheme+"://"+strings.ToLower(u.Host))
		}
	} else if c.FrontendURL != nil {
		w.Origins = []string{c.FrontendURL.Scheme + "://" + strings.ToLower(c.FrontendURL.Host)}
	}
	if w.RPID == "" {
		return
	}
	// A browser refuses a ceremony whose rpId is not the origin's host or a
	// parent of it: such a setting would only fail later, in every browser.
	for _, o := range w.Origins {
		u, _ := url.Parse(o)
		if h := strings.ToLower(u.Hostname()); h != w.RPID && !strings.HasSuffix(h, "."+w.RPID) {
			l.fail("AUTH_WEBAUTHN_ORIGINS", "origin %q is not on the relying party id %q (AUTH_WEBAUTHN_RP_ID, default FRONTEND_URL's host) or a subdomain of it", o, w.RPID)
		}
	}
}

func isIP(h string) bool {
	_, err := netip.ParseAddr(strings.Trim(h, "[]"))
	return err == nil
}

// loadMFA: second factors (after loadHTTP: the issuer defaults to the
// FRONTEND_URL host).
func loadMFA(l *loader, c *Config) {
	m := &c.MFA
	m.Methods = []string{}
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(l.str("AUTH_MFA_METHODS", "totp,passkey", false), func(r rune) bool { return r == ',' || r == ' ' }) {
		f = strings.ToLower(f)
		switch {
		case f == "none":
		case f != "totp" && f != "passkey":
			l.fail("AUTH_MFA_METHODS", "must list totp and/or passkey (or be none), got %q", f)
		case !seen[f]:
			seen[f] = true
			m.Methods = append(m.Methods, f)
		}
	}
	switch mode := strings.ToLower(l.str("AUTH_MFA_MODE", "optional", false)); mode {
	case "optional":
	case "required":
		m.Required = true
		if len(m.Methods) == 0 {
			l.fail("AUTH_MFA_MODE", "required needs at least one method in AUTH_MFA_METHODS")
		}
	default:
		l.fail("AUTH_MFA_MODE", "must be optional or required, got %q", mode)
	}
	m.ChallengeTTL = l.duration("AUTH_MFA_CHALLENGE_TTL", 5*time.Minute, 30*time.Second)
	if m.ChallengeTTL > time.Hour {
		l.fail("AUTH_MFA_CHALLENGE_TTL", "must be at most 1h, got %s", m.ChallengeTTL)
	}
	m.StepUpWindow = l.duration("AUTH_STEPUP_WINDOW", 10*time.Minute, 30*time.Second)
	def := "AuthStack"
	if c.FrontendURL != nil {
		def = c.FrontendURL.Hostname()
	}
	m.Issuer = l.str("AUTH_TOTP_ISSUER", def, false)
	if strings.ContainsAny(m.Issuer, ":") || len(m.Issuer) > 100 {
		l.fail("AUTH_TOTP_ISSUER", "must be at most 100 characters without a colon")
	}
}
