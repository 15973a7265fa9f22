// Package config reads the authserver configuration from the environment.
//
// Every secret variable also accepts a NAME_FILE variant holding a path to a
// file with the value (the way Kubernetes mounts Secrets). A missing or
// malformed setting is reported with the variable's name and never its value.
package config

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Pepper is one server-side secret mixed into every password hash.
type Pepper struct {
	// ID names the pepper inside PHC strings; derived from the key
	// (base64 of the first 6 bytes of SHA-256(key)), so no coordination is needed.
	ID  string
	Key []byte
}

// PepperID derives the public identifier of a pepper key.
func PepperID(key []byte) string {
	sum := sha256.Sum256(key)
	return base64.RawStdEncoding.EncodeToString(sum[:6])
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

	Argon2          Argon2
	HashConcurrency int
	HashWait        time.Duration

	SessionTTL     time.Duration
	CookieName     string
	CookieSecure   bool
	VerifyTokenTTL time.Duration
	ResetTokenTTL  time.Duration

	TrustedProxies []netip.Prefix
	TrustedOrigins []string

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
}

// Getenv looks an environment variable up; os.LookupEnv fits.
type Getenv func(string) (string, bool)

// ReadFile reads a file; os.ReadFile fits.
type ReadFile func(string) ([]byte, error)

// FromEnvironment loads the configuration from the process environment.
func FromEnvironment() (*Config, error) {
	return Load(os.LookupEnv, os.ReadFile)
}

type loader struct {
	get  Getenv
	read ReadFile
	errs []error
}

func (l *loader) fail(name, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// err is every problem found, each naming its variable, or nil.
func (l *loader) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %w", errors.Join(l.errs...))
}

// raw returns the trimmed value of name, or of the file named by name_FILE
// when secretFile is true. Both set is an error.
func (l *loader) raw(name string, fileVariant bool) (string, bool) {
	v, ok := l.get(name)
	if fileVariant {
		if path, fok := l.get(name + "_FILE"); fok && path != "" {
			if ok && v != "" {
				l.fail(name, "set both %s and %s_FILE; set only one", name, name)
				return "", false
			}
			b, err := l.read(path)
			if err != nil {
				// The path is not secret; the content would be.
				l.fail(name+"_FILE", "cannot read %q: %v", path, unwrapPathErr(err))
				return "", false
			}
			return strings.TrimSpace(string(b)), true
		}
	}
	if !ok {
		return "", false
	}
	return strings.TrimSpace(v), v != ""
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (l *loader) required(name string, secret bool) string {
	n := len(l.errs)
	v, ok := l.raw(name, secret)
	if !ok && len(l.errs) == n {
		if secret {
			l.fail(name, "required (set %s or %s_FILE)", name, name)
		} else {
			l.fail(name, "required")
		}
	}
	return v
}

func (l *loader) str(name, def string, secret bool) string {
	v, ok := l.raw(name, secret)
	if !ok {
		return def
	}
	return v
}

func (l *loader) integer(name string, def, min, max int) int {
	v, ok := l.raw(name, false)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		l.fail(name, "must be an integer from %d to %d, got %q", min, max, v)
		return def
	}
	return n
}

func (l *loader) duration(name string, def, min time.Duration) time.Duration {
	v, ok := l.raw(name, false)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < min {
		l.fail(name, "must be a Go duration of at least %s (like 30m, 24h), got %q", min, v)
		return def
	}
	return d
}

func (l *loader) boolean(name string, def bool) bool {
	v, ok := l.raw(name, false)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.fail(name, "must be true or false, got %q", v)
		return def
	}
	return b
}

func (l *loader) limit(name string, def Limit) Limit {
	v, ok := l.raw(name, false)
	if !ok {
		return def
	}
	lim, err := ParseLimit(v)
	if err != nil {
		l.fail(name, "%v", err)
		return def
	}
	return lim
}

// ParseLimit parses "N/duration" (like "10/1m"); "0" or "off" disables.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return Limit{}, nil
	}
	ns, ds, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("must be N/duration like 10/1m or off, got %q", s)
	}
	n, err := strconv.Atoi(strings.TrimSpace(ns))
	if err != nil || n < 0 || n > 1_000_000 {
		return Limit{}, fmt.Errorf("count must be an integer from 0 to 1000000, got %q", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(ds))
	if err != nil || d < time.Second || d > 30*24*time.Hour {
		return Limit{}, fmt.Errorf("window must be a duration from 1s to 720h, got %q", s)
	}
	if n == 0 {
		return Limit{}, nil
	}
	return Limit{N: n, Window: d}, nil
}

// ParsePepper decodes a pepper: 64 hex characters (32 bytes).
func ParsePepper(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) != 64 {
		return nil, fmt.Errorf("must be 64 hex characters (32 bytes), got %d characters", len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, errors.New("must be 64 hex characters (32 bytes): not valid hex")
	}
	return b, nil
}

func checkDBURL(l *loader, name, v string) {
	if v == "" {
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		l.fail(name, "must be a postgres:// or postgresql:// URL with a host")
	}
}

// checkRedisURL validates REDIS_URL: a redis:// or rediss:// URL with a
// host, or go-redis's Redis Cluster form, the same with addr=host:port for
// every other seed node (redis://:pw@node-0:6379?addr=node-1:6379&...).
// Messages never contain the URL: it holds the password.
func checkRedisURL(l *loader, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		l.fail("REDIS_URL", "must be a redis:// or rediss:// URL with a host")
		return
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		l.fail("REDIS_URL", "malformed query string")
		return
	}
	addrs, cluster := q["addr"]
	if !cluster {
		return
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		l.fail("REDIS_URL", "a cluster URL (with addr=) cannot select a database: Redis Cluster has only database 0")
	}
	for i, a := range append([]string{u.Host}, addrs...) {
		h, p, err := net.SplitHostPort(a)
		if i == 0 && err != nil && u.Port() == "" {
			continue // the first node may leave the port at its default, 6379
		}
		n, perr := strconv.Atoi(p)
		if err != nil || h == "" || perr != nil || n < 1 || n > 65535 {
			l.fail("REDIS_URL", "cluster node %d: addr must be host:port", i+1)
			return
		}
	}
}

// Load builds a Config from the given environment. All problems are
// reported together, each naming its variable.
func Load(get Getenv, read ReadFile) (*Config, error) {
	l := &loader{get: get, read: read}
	c := &Config{}

	c.DatabaseURL = l.required("DATABASE_URL", true)
	checkDBURL(l, "DATABASE_URL", c.DatabaseURL)
	c.DatabaseDirectURL = l.str("DATABASE_DIRECT_URL", "", true)
	checkDBURL(l, "DATABASE_DIRECT_URL", c.DatabaseDirectURL)
	if c.DatabaseDirectURL == "" {
		c.DatabaseDirectURL = c.DatabaseURL
	}

	c.RedisURL = l.required("REDIS_URL", true)
	if c.RedisURL != "" {
		checkRedisURL(l, c.RedisURL)
	}

	// Peppers: the current one, then the older ones still accepted.
	if cur := l.required("AUTH_PEPPER", true); cur != "" {
		key, err := ParsePepper(cur)
		if err != nil {
			l.fail("AUTH_PEPPER", "%v", err)
		} else {
			c.Peppers = append(c.Peppers, Pepper{ID: PepperID(key), Key: key})
		}
	}
	if old := l.str("AUTH_OLD_PEPPERS", "", true); old != "" {
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

	if fu := l.required("FRONTEND_URL", false); fu != "" {
		u, err := url.Parse(fu)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			l.fail("FRONTEND_URL", "must be an absolute http(s) URL without query, got %q", fu)
		} else {
			u.Path = strings.TrimRight(u.Path, "/")
			c.FrontendURL = u
		}
	}

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

	c.Argon2.MemoryKiB = uint32(l.integer("AUTH_ARGON2_MEMORY_KIB", 19456, 8*1024, 4*1024*1024))
	c.Argon2.Iterations = uint32(l.integer("AUTH_ARGON2_ITERATIONS", 2, 1, 100))
	c.Argon2.Parallelism = uint8(l.integer("AUTH_ARGON2_PARALLELISM", 1, 1, 64))
	c.HashConcurrency = l.integer("AUTH_HASH_CONCURRENCY", runtime.NumCPU(), 1, 1024)
	c.HashWait = l.duration("AUTH_HASH_WAIT_TIMEOUT", 2*time.Second, time.Millisecond)

	c.SessionTTL = l.duration("AUTH_SESSION_TTL", 7*24*time.Hour, time.Minute)
	c.CookieName = l.str("AUTH_COOKIE_NAME", "session", false)
	c.CookieSecure = l.boolean("AUTH_COOKIE_SECURE", true)
	c.VerifyTokenTTL = l.duration("AUTH_VERIFY_TOKEN_TTL", 24*time.Hour, time.Minute)
	c.ResetTokenTTL = l.duration("AUTH_RESET_TOKEN_TTL", time.Hour, time.Minute)

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
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
		}
	}
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

	rl := &c.RateLimits
	rl.LoginIP = l.limit("AUTH_RATELIMIT_LOGIN_IP", Limit{N: 30, Window: time.Minute})
	rl.LoginAccount = l.limit("AUTH_RATELIMIT_LOGIN_ACCOUNT", Limit{N: 10, Window: time.Minute})
	rl.SignupIP = l.limit("AUTH_RATELIMIT_SIGNUP_IP", Limit{N: 20, Window: time.Hour})
	rl.SignupAccount = l.limit("AUTH_RATELIMIT_SIGNUP_ACCOUNT", Limit{N: 3, Window: time.Hour})
	rl.EmailIP = l.limit("AUTH_RATELIMIT_EMAIL_IP", Limit{N: 20, Window: time.Hour})
	rl.EmailAccount = l.limit("AUTH_RATELIMIT_EMAIL_ACCOUNT", Limit{N: 3, Window: time.Hour})
	rl.LockoutAfter = l.integer("AUTH_LOCKOUT_THRESHOLD", 5, 0, 1000)
	rl.LockoutBase = l.duration("AUTH_LOCKOUT_BASE", time.Minute, time.Second)
	rl.LockoutMax = l.duration("AUTH_LOCKOUT_MAX", time.Hour, time.Second)
	rl.FailureMemory = l.duration("AUTH_LOCKOUT_MEMORY", 24*time.Hour, time.Minute)
	if rl.LockoutMax < rl.LockoutBase {
		l.fail("AUTH_LOCKOUT_MAX", "must be at least AUTH_LOCKOUT_BASE (%s)", rl.LockoutBase)
	}

	c.MailPollInterval = l.duration("AUTH_MAIL_POLL_INTERVAL", time.Second, 10*time.Millisecond)
	c.MailRetryBase = l.duration("AUTH_MAIL_RETRY_BASE", 2*time.Second, 10*time.Millisecond)
	c.MailRetryMax = l.duration("AUTH_MAIL_RETRY_MAX", 5*time.Minute, 10*time.Millisecond)
	c.MailMaxAge = l.duration("AUTH_MAIL_MAX_AGE", 72*time.Hour, time.Minute)

	c.AuditRetention = l.duration("AUTH_AUDIT_RETENTION", 90*24*time.Hour, time.Hour)
	c.SweepInterval = l.duration("AUTH_SWEEP_INTERVAL", 5*time.Minute, 10*time.Millisecond)
	c.SweepBatch = l.integer("AUTH_SWEEP_BATCH", 500, 1, 100000)
	c.ShutdownTimeout = l.duration("AUTH_SHUTDOWN_TIMEOUT", 20*time.Second, 0)
	c.MaxBodyBytes = int64(l.integer("AUTH_MAX_BODY_BYTES", 16*1024, 256, 1<<20))
	c.SessionTouchEvery = l.duration("AUTH_SESSION_TOUCH_INTERVAL", time.Minute, time.Second)

	if err := l.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// PublicOrigin is the scheme://host of FRONTEND_URL.
func (c *Config) PublicOrigin() string {
	return c.FrontendURL.Scheme + "://" + c.FrontendURL.Host
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
