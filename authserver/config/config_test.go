package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const pepperHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func base() map[string]string {
	return map[string]string{
		"DATABASE_URL": "postgres://authstack:s3cretpw@db:5432/auth?sslmode=disable",
		"REDIS_URL":    "redis://:redispw@redis:6379/0",
		"AUTH_PEPPER":  pepperHex,
		"SMTP_HOST":    "smtp.example.com",
		"MAIL_FROM":    "App <noreply@example.com>",
		"FRONTEND_URL": "https://app.example.com/",
	}
}

func load(env map[string]string, files map[string]string) (*Config, error) {
	return Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		func(p string) ([]byte, error) {
			if v, ok := files[p]; ok {
				return []byte(v), nil
			}
			return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
		})
}

func TestDefaults(t *testing.T) {
	c, err := load(base(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 3000 || c.MetricsAddr != ":9090" || c.SessionTTL != 7*24*time.Hour || c.SMTP.Port != 587 ||
		c.DatabaseDirectURL != c.DatabaseURL || c.AuditRetention != 90*24*time.Hour || !c.CookieSecure ||
		c.FrontendURL.String() != "https://app.example.com" || c.PublicOrigin() != "https://app.example.com" ||
		c.VerifyTokenTTL != 24*time.Hour || c.HashConcurrency < 1 || c.RateLimits.LockoutAfter != 5 {
		t.Fatalf("defaults: %+v", c)
	}
	if len(c.Peppers) != 1 || c.Peppers[0].ID != PepperID(c.Peppers[0].Key) || len(c.Peppers[0].Key) != 32 {
		t.Fatalf("pepper: %+v", c.Peppers)
	}
}

func TestOperatorEnvironment(t *testing.T) {
	env := base()
	delete(env, "AUTH_PEPPER")
	env["AUTH_PEPPER_FILE"] = "/run/secrets/pepper"
	env["AUTH_OLD_PEPPERS_FILE"] = "/run/secrets/old"
	env["DATABASE_DIRECT_URL"] = "postgresql://authstack:pw@db-direct:5432/auth"
	env["SMTP_PORT"] = "2525"
	env["SMTP_USER"] = "user"
	env["SMTP_PASS_FILE"] = "/run/secrets/smtp"
	env["PORT"] = "3000"
	env["METRICS_ADDR"] = ":9090"
	env["LOG_LEVEL"] = "debug"
	env["AUTH_ARGON2_MEMORY_KIB"] = "65536"
	env["AUTH_ARGON2_ITERATIONS"] = "3"
	env["AUTH_ARGON2_PARALLELISM"] = "2"
	env["AUTH_SESSION_TTL"] = "12h"
	env["AUTH_TRUSTED_PROXIES"] = "10.0.0.0/8, 192.168.1.1, ::ffff:172.16.0.0/108"
	env["AUTH_TRUSTED_PROXY_HOPS"] = "2"
	env["AUTH_RATELIMIT_LOGIN_IP"] = "100/10m"
	env["AUTH_RATELIMIT_SIGNUP_IP"] = "off"
	old := strings.Repeat("ab", 32)
	files := map[string]string{"/run/secrets/pepper": pepperHex + "\n", "/run/secrets/old": old + "\n" + pepperHex + "\n", "/run/secrets/smtp": "smtp-secret\n"}
	c, err := load(env, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Peppers) != 2 || c.Peppers[1].ID != PepperID([]byte(mustHex(old))) {
		t.Fatalf("peppers: %+v (the current one repeated in the old list is deduplicated)", c.Peppers)
	}
	// Several files, as the operator mounts one per old pepper.
	env["AUTH_OLD_PEPPERS_FILE"] = "/run/secrets/old/v2, /run/secrets/old/v1"
	older := strings.Repeat("cd", 32)
	files["/run/secrets/old/v2"], files["/run/secrets/old/v1"] = old+"\n", older
	if c2, err := load(env, files); err != nil || len(c2.Peppers) != 3 || c2.Peppers[1].ID != PepperID([]byte(mustHex(old))) ||
		c2.Peppers[2].ID != PepperID([]byte(mustHex(older))) {
		t.Fatalf("peppers from two files: %+v, %v", c2, err)
	}
	env["AUTH_OLD_PEPPERS_FILE"] = "/run/secrets/old/v2,/run/secrets/old/missing"
	if _, err := load(env, files); err == nil || !strings.Contains(err.Error(), "/run/secrets/old/missing") {
		t.Fatalf("a missing old pepper file: %v", err)
	}
	env["AUTH_OLD_PEPPERS_FILE"] = "/run/secrets/old"
	if c.SMTP.Pass != "smtp-secret" || c.SMTP.Port != 2525 || c.DatabaseDirectURL != env["DATABASE_DIRECT_URL"] ||
		c.Argon2 != (Argon2{65536, 3, 2}) || c.SessionTTL != 12*time.Hour || len(c.TrustedProxies) != 3 ||
		c.TrustedProxies[1].String() != "192.168.1.1/32" || c.TrustedProxyHops != 2 ||
		// Client addresses are compared unmapped: an IPv4-mapped prefix is its IPv4 one.
		c.TrustedProxies[2].String() != "172.16.0.0/12" || c.RateLimits.LoginIP != (Limit{100, 10 * time.Minute}) ||
		c.RateLimits.SignupIP.N != 0 {
		t.Fatalf("parsed: %+v", c)
	}
}

func mustHex(s string) string {
	b, err := ParsePepper(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Errors name the variable and never echo a secret.
func TestErrorsNameVariableWithoutSecrets(t *testing.T) {
	cases := map[string]struct {
		set  map[string]string
		want string
	}{
		"missing db":     {map[string]string{"DATABASE_URL": ""}, "DATABASE_URL: required"},
		"bad db":         {map[string]string{"DATABASE_URL": "mysql://u:topsecret@h/db"}, "DATABASE_URL: must be a postgres"},
		"bad redis":      {map[string]string{"REDIS_URL": "http://:topsecret@h"}, "REDIS_URL: must be a redis"},
		"cluster addr":   {map[string]string{"REDIS_URL": "redis://:topsecret@n0:6379?addr=n1:6379&addr=n2"}, "REDIS_URL: cluster node 3: addr must be host:port"},
		"cluster port":   {map[string]string{"REDIS_URL": "redis://:topsecret@n0:6379?addr=n1:99999"}, "REDIS_URL: cluster node 2"},
		"cluster db":     {map[string]string{"REDIS_URL": "redis://:topsecret@n0:6379/3?addr=n1:6379"}, "REDIS_URL: a cluster URL (with addr=) cannot select a database"},
		"cluster query":  {map[string]string{"REDIS_URL": "redis://:topsecret@n0:6379?addr=n1:6379;x"}, "REDIS_URL: malformed query"},
		"short pepper":   {map[string]string{"AUTH_PEPPER": "topsecret"}, "AUTH_PEPPER: must be 64 hex characters"},
		"non-hex pepper": {map[string]string{"AUTH_PEPPER": strings.Repeat("zz", 32)}, "AUTH_PEPPER: must be 64 hex"},
		"both forms":     {map[string]string{"AUTH_PEPPER_FILE": "/x"}, "set both AUTH_PEPPER and AUTH_PEPPER_FILE"},
		"port":           {map[string]string{"PORT": "99999"}, "PORT: must be an integer from 1 to 65535"},
		"ttl":            {map[string]string{"AUTH_SESSION_TTL": "7 days"}, "AUTH_SESSION_TTL: must be a Go duration"},
		"argon2 memory":  {map[string]string{"AUTH_ARGON2_MEMORY_KIB": "1024"}, "AUTH_ARGON2_MEMORY_KIB"},
		"log level":      {map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		"frontend":       {map[string]string{"FRONTEND_URL": "app.example.com"}, "FRONTEND_URL"},
		"mail from":      {map[string]string{"MAIL_FROM": "not an address"}, "MAIL_FROM"},
		"smtp user only": {map[string]string{"SMTP_USER": "u"}, "SMTP_USER and SMTP_PASS must be set together"},
		"limit":          {map[string]string{"AUTH_RATELIMIT_LOGIN_IP": "10 per minute"}, "AUTH_RATELIMIT_LOGIN_IP"},
		"proxies":        {map[string]string{"AUTH_TRUSTED_PROXIES": "10.0.0.0/33"}, "AUTH_TRUSTED_PROXIES"},
		"proxy hops":     {map[string]string{"AUTH_TRUSTED_PROXY_HOPS": "17"}, "AUTH_TRUSTED_PROXY_HOPS: must be an integer from 0 to 16"},
		"smtp tls":       {map[string]string{"SMTP_TLS": "maybe"}, "SMTP_TLS"},
		"signin url":     {map[string]string{"AUTH_SIGNIN_URL": "/login"}, "AUTH_SIGNIN_URL: must be an absolute http(s) URL"},
		"redirect tld":   {map[string]string{"AUTH_REDIRECT_HOSTS": "app.example.com,*.com"}, `AUTH_REDIRECT_HOSTS: "*.com" is not a host name`},
		"redirect url":   {map[string]string{"AUTH_REDIRECT_HOSTS": "https://app.example.com"}, "AUTH_REDIRECT_HOSTS"},
		"redirect star":  {map[string]string{"AUTH_REDIRECT_HOSTS": "app.*.com"}, "AUTH_REDIRECT_HOSTS"},
		"grpc port":      {map[string]string{"AUTH_GRPC_PORT": "3000"}, "AUTH_GRPC_PORT: must differ from PORT"},
	}
	for name, c := range cases {
		env := base()
		for k, v := range c.set {
			if v == "" {
				delete(env, k)
			} else {
				env[k] = v
			}
		}
		_, err := load(env, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want it to contain %q", name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "s3cretpw") || strings.Contains(err.Error(), "redispw") {
			t.Errorf("%s: error echoes a secret: %v", name, err)
		}
	}
	// A missing _FILE names the variable and the path, not the content.
	env := base()
	delete(env, "AUTH_PEPPER")
	env["AUTH_PEPPER_FILE"] = "/nope"
	_, err := load(env, nil)
	if err == nil || !strings.Contains(err.Error(), "AUTH_PEPPER_FILE") {
		t.Fatalf("missing file: %v", err)
	}
	// All problems at once.
	_, err = load(map[string]string{}, nil)
	for _, v := range []string{"DATABASE_URL", "REDIS_URL", "AUTH_PEPPER", "SMTP_HOST", "MAIL_FROM", "FRONTEND_URL"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("empty environment: error lacks %s: %v", v, err)
		}
	}
}

func TestReadsRealFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pepper")
	if err := os.WriteFile(p, []byte(pepperHex), 0o600); err != nil {
		t.Fatal(err)
	}
	env := base()
	delete(env, "AUTH_PEPPER")
	env["AUTH_PEPPER_FILE"] = p
	c, err := Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, os.ReadFile)
	if err != nil || len(c.Peppers) != 1 {
		t.Fatalf("%v %+v", err, c)
	}
}

func TestLoadDatabase(t *testing.T) {
	get := func(m map[string]string) Getenv { return func(k string) (string, bool) { v, ok := m[k]; return v, ok } }
	u, err := LoadDatabase(get(map[string]string{"DATABASE_URL": "postgres://a@h/db"}), nil)
	if err != nil || u != "postgres://a@h/db" {
		t.Fatal(u, err)
	}
	u, err = LoadDatabase(get(map[string]string{"DATABASE_URL": "postgres://a@pooler/db", "DATABASE_DIRECT_URL": "postgres://a@direct/db"}), nil)
	if err != nil || u != "postgres://a@direct/db" {
		t.Fatal(u, err)
	}
	if _, err := LoadDatabase(get(map[string]string{}), nil); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatal(err)
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]Limit{"10/1m": {10, time.Minute}, "off": {}, "0": {}, " 5 / 30s ": {5, 30 * time.Second}} {
		got, err := ParseLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"10", "x/1m", "10/x", "10/1ms", "-1/1m"} {
		if _, err := ParseLimit(in); err == nil {
			t.Errorf("ParseLimit(%q) accepted", in)
		}
	}
}

// The Redis Cluster form the operator renders is accepted as is.
func TestRedisClusterURLAccepted(t *testing.T) {
	for _, u := range []string{
		"redis://:redispw@demo-redis-0.demo-redis.ns.svc:6379?addr=demo-redis-1.demo-redis.ns.svc%3A6379&addr=demo-redis-2.demo-redis.ns.svc%3A6379",
		"rediss://:redispw@n0?addr=n1:6380&addr=n2:6380",
		"redis://:redispw@n0:6379/0?addr=n1:6379",
	} {
		env := base()
		env["REDIS_URL"] = u
		c, err := load(env, nil)
		if err != nil || c.RedisURL != u {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// The session cookie is __Host- by default (a sibling subdomain cannot plant
// or shadow it); plain-HTTP development gets a plain name, since browsers
// drop __Host- cookies without Secure.
func TestCookieName(t *testing.T) {
	for _, c := range []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{nil, "__Host-session", false},
		{map[string]string{"AUTH_COOKIE_SECURE": "false"}, "session", false},
		{map[string]string{"AUTH_COOKIE_NAME": "app_session"}, "app_session", false},
		{map[string]string{"AUTH_COOKIE_NAME": "__Host-x", "AUTH_COOKIE_SECURE": "false"}, "", true},
	} {
		env := base()
		for k, v := range c.env {
			env[k] = v
		}
		cfg, err := load(env, nil)
		if c.wantErr {
			if err == nil || !strings.Contains(err.Error(), "AUTH_COOKIE_NAME") {
				t.Errorf("%v: error %v, want one naming AUTH_COOKIE_NAME", c.env, err)
			}
			continue
		}
		if err != nil || cfg.CookieName != c.want {
			t.Errorf("%v: cookie %q (%v), want %q", c.env, cfg.CookieName, err, c.want)
		}
	}
}

func TestSessionIdleTimeout(t *testing.T) {
	c, err := load(base(), nil)
	if err != nil || c.SessionIdleTimeout != 24*time.Hour {
		t.Fatalf("default idle timeout %s (%v)", c.SessionIdleTimeout, err)
	}
	env := base()
	env["AUTH_SESSION_IDLE_TIMEOUT"] = "0"
	if c, err := load(env, nil); err != nil || c.SessionIdleTimeout != 0 {
		t.Fatalf("0 (off): %v %v", c, err)
	}
	env["AUTH_SESSION_IDLE_TIMEOUT"] = "90s" // less than twice the 1m touch interval
	if _, err := load(env, nil); err == nil || !strings.Contains(err.Error(), "AUTH_SESSION_IDLE_TIMEOUT") {
		t.Fatalf("idle timeout below twice the touch interval: %v", err)
	}
}

func TestObservability(t *testing.T) {
	c, err := load(base(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Observability; !o.AccessLog || o.AccessLogHotSample != 0.01 || o.OTLPEndpoint != "" || o.SentryDSN != "" ||
		o.TraceSampleRatio != 1 || o.ServiceName != "authserver" || o.SentryEnvironment != "production" {
		t.Fatalf("defaults: %+v", o)
	}
	env := base()
	env["ACCESS_LOG"] = "false"
	env["ACCESS_LOG_HOT_SAMPLE"] = "0.5"
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://otel-collector:4318/"
	env["OTEL_TRACES_SAMPLER_ARG"] = "0.25"
	env["SENTRY_DSN_FILE"] = "/run/secrets/sentry"
	c, err = load(env, map[string]string{"/run/secrets/sentry": "https://key@o1.ingest.sentry.io/2\n"})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Observability; o.AccessLog || o.AccessLogHotSample != 0.5 || o.OTLPEndpoint != "http://otel-collector:4318/v1/traces" ||
		o.TraceSampleRatio != 0.25 || o.SentryDSN != "https://key@o1.ingest.sentry.io/2" {
		t.Fatalf("set: %+v", o)
	}
	env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "https://traces.example.com/custom"
	env["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
	if c, err = load(env, map[string]string{"/run/secrets/sentry": "https://key@o1.ingest.sentry.io/2"}); err != nil ||
		c.Observability.OTLPEndpoint != "https://traces.example.com/custom" || c.Observability.TraceSampleRatio != 1 {
		t.Fatalf("traces endpoint: %+v %v", c, err)
	}
	env["OTEL_SDK_DISABLED"] = "true"
	if c, err = load(env, map[string]string{"/run/secrets/sentry": "https://key@o1.ingest.sentry.io/2"}); err != nil || c.Observability.OTLPEndpoint != "" {
		t.Fatalf("OTEL_SDK_DISABLED: %+v %v", c, err)
	}

	bad := base()
	bad["ACCESS_LOG_HOT_SAMPLE"] = "2"
	bad["OTEL_TRACES_SAMPLER_ARG"] = "-1"
	bad["OTEL_TRACES_SAMPLER"] = "always_off"
	bad["OTEL_EXPORTER_OTLP_ENDPOINT"] = "otel-collector:4318"
	bad["SENTRY_DSN"] = "not a dsn with secretkey"
	_, err = load(bad, nil)
	for _, name := range []string{"ACCESS_LOG_HOT_SAMPLE", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_SAMPLER:", "OTEL_EXPORTER_OTLP_ENDPOINT", "SENTRY_DSN"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Fatalf("want an error naming %s, got %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "secretkey") {
		t.Fatalf("the error echoes the DSN: %v", err)
	}
}

func TestMFA(t *testing.T) {
	c, err := load(base(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.MFA.Methods, ",") != "totp,passkey" || c.MFA.Required || c.MFA.ChallengeTTL != 5*time.Minute ||
		c.MFA.StepUpWindow != 10*time.Minute || c.MFA.Issuer != "app.example.com" {
		t.Fatalf("defaults %+v", c.MFA)
	}
	env := base()
	env["AUTH_MFA_METHODS"], env["AUTH_MFA_MODE"], env["AUTH_STEPUP_WINDOW"] = "TOTP, totp", "required", "2m"
	if c, err = load(env, nil); err != nil || strings.Join(c.MFA.Methods, ",") != "totp" || !c.MFA.Required || c.MFA.StepUpWindow != 2*time.Minute {
		t.Fatalf("%+v %v", c.MFA, err)
	}
	for name, bad := range map[string]map[string]string{
		"AUTH_MFA_METHODS":       {"AUTH_MFA_METHODS": "sms"},
		"AUTH_MFA_MODE":          {"AUTH_MFA_MODE": "sometimes"},
		"AUTH_MFA_MODE ":         {"AUTH_MFA_MODE": "required", "AUTH_MFA_METHODS": "none"},
		"AUTH_MFA_CHALLENGE_TTL": {"AUTH_MFA_CHALLENGE_TTL": "2h"},
		"AUTH_STEPUP_WINDOW":     {"AUTH_STEPUP_WINDOW": "1s"},
		"AUTH_TOTP_ISSUER":       {"AUTH_TOTP_ISSUER": "a:b"},
	} {
		env := base()
		for k, v := range bad {
			env[k] = v
		}
		if _, err := load(env, nil); err == nil || !strings.Contains(err.Error(), strings.TrimSpace(name)) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestEdge(t *testing.T) {
	c, err := load(base(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Edge.SignInURL.String() != "https://app.example.com/login" || len(c.Edge.RedirectHosts) != 1 ||
		c.Edge.RedirectHosts[0] != "app.example.com" || c.Edge.GRPCPort != 0 {
		t.Fatalf("defaults: %+v", c.Edge)
	}
	env := base()
	env["AUTH_SIGNIN_URL"] = "https://login.example.com/in?x=1"
	env["AUTH_REDIRECT_HOSTS"] = "App.Example.com, *.apps.example.com"
	env["AUTH_GRPC_PORT"] = "9191"
	if c, err = load(env, nil); err != nil {
		t.Fatal(err)
	}
	if c.Edge.SignInURL.String() != "https://login.example.com/in?x=1" || strings.Join(c.Edge.RedirectHosts, " ") != "app.example.com *.apps.example.com" || c.Edge.GRPCPort != 9191 {
		t.Fatalf("set: %+v", c.Edge)
	}
	env["AUTH_SIGNIN_URL"] = "off"
	if c, err = load(env, nil); err != nil || c.Edge.SignInURL != nil {
		t.Fatalf("off: %+v %v", c.Edge, err)
	}
}
