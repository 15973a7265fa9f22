package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/leanauth/authstack/internal/servers"
)

// stack is everything authbench starts: PostgreSQL, Redis, mailpit,
// optionally pgbouncer, the authserver and the floor server.
type stack struct {
	dir      string
	pg       *servers.Postgres
	redis    *servers.Redis
	mail     *servers.Mailpit
	bouncer  *servers.PgBouncer
	auth     *servers.Process
	floor    *servers.Process
	authAddr string
	grpcAddr string // the ext_authz gRPC Check
	grpcFlr  string // the floor's ext_authz Check (one Redis GET, floor.go)
	metrics  string // URL of the authserver's /metrics
	flrAddr  string
	client   *http.Client
	closers  []func()
}

func (s *stack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

type stackOptions struct {
	authserverBin string
	pgbouncer     bool
	argon2        argon2Params
	extraEnv      []string
	keepLogs      bool
}

// startStack starts the servers and the authserver (migrated), and the
// floor server. Everything listens on 127.0.0.1 only.
func startStack(ctx context.Context, o stackOptions) (*stack, error) {
	s := &stack{client: &http.Client{Timeout: 30 * time.Second}}
	dir, err := os.MkdirTemp("", "authbench-")
	if err != nil {
		return nil, err
	}
	s.dir = dir
	if o.keepLogs {
		slog.Info("keeping the authserver logs", "dir", dir)
	} else {
		s.closers = append(s.closers, func() { os.RemoveAll(dir) })
	}
	fail := func(err error) (*stack, error) { s.close(); return nil, err }

	slog.Info("starting PostgreSQL")
	if s.pg, err = servers.StartPostgres(ctx); err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, s.pg.Close)
	dbURL, err := s.pg.CreateDatabase(ctx, "authbench")
	if err != nil {
		return fail(err)
	}
	slog.Info("starting Redis and mailpit")
	if s.redis, err = servers.StartRedis(servers.DefaultRedisConf(servers.RandomSecret(16))); err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, s.redis.Close)
	if s.mail, err = servers.StartMailpit(); err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, s.mail.Close)
	appDB := dbURL
	if o.pgbouncer {
		slog.Info("starting pgbouncer (transaction pooling)")
		ini, auth, err := servers.PgBouncerConfigFor(dbURL)
		if err != nil {
			return fail(err)
		}
		if s.bouncer, err = servers.StartPgBouncer(ini, auth); err != nil {
			return fail(err)
		}
		s.closers = append(s.closers, s.bouncer.Close)
		appDB = s.bouncer.URLFor(dbURL)
	}

	port, err := servers.FreePort()
	if err != nil {
		return fail(err)
	}
	mport, err := servers.FreePort()
	if err != nil {
		return fail(err)
	}
	s.authAddr = "127.0.0.1:" + strconv.Itoa(port)
	gport, err := servers.FreePort()
	if err != nil {
		return fail(err)
	}
	s.grpcAddr = "127.0.0.1:" + strconv.Itoa(gport)
	s.metrics = "http://127.0.0.1:" + strconv.Itoa(mport) + "/metrics"
	env := []string{
		"DATABASE_URL=" + appDB,
		"DATABASE_DIRECT_URL=" + dbURL,
		"REDIS_URL=" + s.redis.URL(),
		"AUTH_PEPPER=" + servers.RandomSecret(32),
		"SMTP_HOST=127.0.0.1",
		"SMTP_PORT=" + strconv.Itoa(s.mail.SMTPPort()),
		"SMTP_TLS=none",
		"MAIL_FROM=AuthBench <bench@example.test>",
		"FRONTEND_URL=http://app.example.test",
		"HOST=127.0.0.1",
		"PORT=" + strconv.Itoa(port),
		"AUTH_GRPC_PORT=" + strconv.Itoa(gport),
		"METRICS_ADDR=127.0.0.1:" + strconv.Itoa(mport),
		"LOG_LEVEL=warn",
		"AUTH_COOKIE_SECURE=false",
		"AUTH_MAIL_POLL_INTERVAL=100ms",
		"AUTH_ARGON2_MEMORY_KIB=" + strconv.Itoa(int(o.argon2.memoryKiB)),
		"AUTH_ARGON2_ITERATIONS=" + strconv.Itoa(int(o.argon2.iterations)),
		"AUTH_ARGON2_PARALLELISM=" + strconv.Itoa(int(o.argon2.parallelism)),
		// The benchmark measures throughput, not the abuse limits.
		"AUTH_RATELIMIT_LOGIN_IP=off",
		"AUTH_RATELIMIT_LOGIN_ACCOUNT=off",
		"AUTH_RATELIMIT_SIGNUP_IP=off",
		"AUTH_RATELIMIT_SIGNUP_ACCOUNT=off",
		"AUTH_RATELIMIT_EMAIL_IP=off",
		"AUTH_RATELIMIT_EMAIL_ACCOUNT=off",
	}
	env = append(env, o.extraEnv...)

	slog.Info("running authserver migrate")
	mig, err := servers.StartProcess("authserver migrate", o.authserverBin, []string{"migrate"}, env, filepath.Join(dir, "migrate.log"))
	if err != nil {
		return fail(err)
	}
	if ended, err := mig.Wait(2 * time.Minute); !ended || err != nil {
		mig.Stop()
		return fail(fmt.Errorf("authserver migrate failed (%v); log:\n%s", err, servers.LogTail(mig.LogPath())))
	}

	slog.Info("starting authserver serve", "addr", s.authAddr)
	if s.auth, err = servers.StartProcess("authserver", o.authserverBin, []string{"serve"}, env, filepath.Join(dir, "authserver.log")); err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, s.auth.Stop)
	if err := s.auth.WaitReady(60*time.Second, func() error { return s.expect("GET", "/health", "", 200, nil) }); err != nil {
		return fail(err)
	}

	fport, err := servers.FreePort()
	if err != nil {
		return fail(err)
	}
	s.flrAddr = "127.0.0.1:" + strconv.Itoa(fport)
	fgport, err := servers.FreePort()
	if err != nil {
		return fail(err)
	}
	s.grpcFlr = "127.0.0.1:" + strconv.Itoa(fgport)
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	if s.floor, err = servers.StartProcess("floor", self, []string{"floor", "-addr", s.flrAddr, "-grpc-addr", s.grpcFlr, "-redis", s.redis.URL()}, nil, filepath.Join(dir, "floor.log")); err != nil {
		return fail(err)
	}
	s.closers = append(s.closers, s.floor.Stop)
	if err := s.floor.WaitReady(20*time.Second, func() error {
		resp, err := s.client.Get("http://" + s.flrAddr + "/floor")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}); err != nil {
		return fail(err)
	}
	return s, nil
}

// expect sends a request to the authserver and checks the status; the JSON
// answer is decoded into out when non-nil.
func (s *stack) expect(method, path, body string, want int, out any, hdr ...string) error {
	req, err := http.NewRequest(method, "http://"+s.authAddr+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decoding %q: %w", method, path, b, err)
		}
	}
	return nil
}

var verifyLink = regexp.MustCompile(`verify-email\?token=([^\s"'<>&]+)`)

type user struct{ email, password string }

// createUsers signs n users up over HTTP, reads each verification email
// from mailpit and verifies the address.
func (s *stack) createUsers(ctx context.Context, n int) ([]user, error) {
	users := make([]user, n)
	for i := range users {
		users[i] = user{email: fmt.Sprintf("bench%d-%s@example.test", i, servers.RandomSecret(3)),
			password: "Bench-" + servers.RandomSecret(8)}
		body, _ := json.Marshal(map[string]string{"email": users[i].email, "password": users[i].password})
		if err := s.expect("POST", "/auth/signup", string(body), 202, nil); err != nil {
			return nil, fmt.Errorf("signing up: %w", err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	pending := map[string]bool{}
	for _, u := range users {
		pending[strings.ToLower(u.email)] = true
	}
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no verification email within 60 s for %d users; authserver log:\n%s", len(pending), servers.LogTail(s.auth.LogPath()))
		}
		sums, err := s.mail.Summaries(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range sums {
			if len(m.To) == 0 || !pending[strings.ToLower(m.To[0])] {
				continue
			}
			full, err := s.mail.Message(ctx, m.ID)
			if err != nil {
				return nil, err
			}
			match := verifyLink.FindStringSubmatch(full.Text)
			if match == nil {
				match = verifyLink.FindStringSubmatch(full.HTML)
			}
			if match == nil {
				return nil, fmt.Errorf("no verify-email link in the email to %s (subject %q)", m.To[0], full.Subject)
			}
			tok, err := url.QueryUnescape(match[1])
			if err != nil {
				return nil, fmt.Errorf("decoding the token in the email: %w", err)
			}
			body, _ := json.Marshal(map[string]string{"token": tok})
			if err := s.expect("POST", "/auth/verify-email", string(body), 200, nil); err != nil {
				return nil, fmt.Errorf("verifying %s: %w", m.To[0], err)
			}
			delete(pending, strings.ToLower(m.To[0]))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return users, nil
}

// login logs u in and returns the session token.
func (s *stack) login(u user) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": u.email, "password": u.password})
	var out struct{ Token string }
	if err := s.expect("POST", "/auth/login", string(body), 200, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", fmt.Errorf("login answer has no token")
	}
	return out.Token, nil
}

// sessionBody returns the exact body of GET /auth/session for token, so
// that the floor serves the same bytes.
func (s *stack) sessionBody(token string) ([]byte, error) {
	req, _ := http.NewRequest("GET", "http://"+s.authAddr+"/auth/session", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET /auth/session: %d %s", resp.StatusCode, b)
	}
	return b, nil
}

// buildAuthserver builds ./cmd/authserver into dir (run from the repo root).
func buildAuthserver(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "authserver")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/authserver")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building ./cmd/authserver (run authbench from the repository root, or pass -authserver): %w", err)
	}
	return out, nil
}

// logProblems counts the authserver's ERROR and WARN log lines and returns
// the first of each, to show in the report.
func (s *stack) logProblems() (errs, warns int, firstErr, firstWarn string) {
	b, err := os.ReadFile(s.auth.LogPath())
	if err != nil {
		return 0, 0, "", ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(line, `"level":"ERROR"`):
			errs++
			if firstErr == "" {
				firstErr = line
			}
		case strings.Contains(line, `"level":"WARN"`):
			warns++
			if firstWarn == "" {
				firstWarn = line
			}
		}
	}
	return errs, warns, firstErr, firstWarn
}
