// Package testservers starts real PostgreSQL, Redis, pgbouncer and SMTP
// (mailpit) servers on loopback free ports for tests. Import it only from
// _test.go files. Install the binaries with hack/test-deps.sh; a missing
// binary fails the test (never skips it) with a message naming that script.
//
// Each server is stopped at t.Cleanup, except the PostgreSQL server, which
// is shared by the whole test binary and dies with it (parent-death signal);
// each test gets its own database from it.
package testservers

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leanauth/authstack/internal/servers"
)

// FreePort returns a free loopback TCP port.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := servers.FreePort()
	if err != nil {
		t.Fatalf("testservers: %v", err)
	}
	return p
}

func fatal(t testing.TB, what string, err error) {
	t.Helper()
	t.Fatalf("testservers: starting %s: %v", what, err)
}

// ---------------------------------------------------------------- PostgreSQL

// PostgresServer is the PostgreSQL server shared by the test binary.
type PostgresServer struct {
	srv *servers.Postgres
}

var (
	pgOnce sync.Once
	pgSrv  *PostgresServer
	pgErr  error
)

// Postgres returns the PostgreSQL server shared by the whole test binary,
// started on first use. It is never stopped by a test: it dies with the test
// binary. Use NewDatabase for an isolated database per test.
func Postgres(t testing.TB) *PostgresServer {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var s *servers.Postgres
		s, pgErr = servers.StartPostgres(ctx)
		if pgErr == nil {
			pgSrv = &PostgresServer{srv: s}
		}
	})
	if pgErr != nil {
		fatal(t, "PostgreSQL", pgErr)
	}
	return pgSrv
}

// Addr is 127.0.0.1:port.
func (p *PostgresServer) Addr() string { return p.srv.Addr() }

// AdminURL is a superuser ("postgres") URL for database db.
func (p *PostgresServer) AdminURL(db string) string { return p.srv.AdminURL(db) }

// Server is the underlying server (for the password of the authstack role, the log path...).
func (p *PostgresServer) Server() *servers.Postgres { return p.srv }

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// NewDatabase creates a fresh empty database with a unique name, owned by the
// role "authstack", and returns its URL
// postgres://authstack:<pw>@127.0.0.1:<port>/<db>?sslmode=disable.
// The database is dropped (WITH FORCE) at t.Cleanup.
func (p *PostgresServer) NewDatabase(t testing.TB) string {
	t.Helper()
	base := strings.Trim(nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(base) > 40 {
		base = base[:40]
	}
	name := "t_" + base + "_" + servers.RandomSecret(5)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u, err := p.srv.CreateDatabase(ctx, name)
	if err != nil {
		t.Fatalf("testservers: %v\npostgres log tail:\n%s", err, tail(p.srv.LogPath()))
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.srv.DropDatabase(ctx, name); err != nil {
			t.Errorf("testservers: %v", err)
		}
	})
	return u
}

// ---------------------------------------------------------------- Redis

// RedisServer is a redis-server owned by one test.
type RedisServer struct {
	srv *servers.Redis
}

// Redis starts a fresh redis-server (no persistence, requirepass with a
// random password) on a free port; stopped at t.Cleanup.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	return RedisWithConfig(t, servers.DefaultRedisConf(servers.RandomSecret(16)))
}

// RedisWithConfig starts redis-server from a full redis.conf text; port,
// bind, dir, pidfile, unixsocket, daemonize and logfile lines are appended so
// it runs on a free loopback port in a temp dir. Stopped at t.Cleanup.
func RedisWithConfig(t testing.TB, conf string) *RedisServer {
	t.Helper()
	s, err := servers.StartRedis(conf)
	if err != nil {
		fatal(t, "redis-server", err)
	}
	t.Cleanup(s.Close)
	return &RedisServer{srv: s}
}

// URL is redis://:<pw>@127.0.0.1:port/0 (no password part when the
// configuration has none).
func (r *RedisServer) URL() string { return r.srv.URL() }

// Addr is 127.0.0.1:port.
func (r *RedisServer) Addr() string { return r.srv.Addr() }

// Password is the default user's password ("" when none).
func (r *RedisServer) Password() string { return r.srv.Password() }

// Server is the underlying server.
func (r *RedisServer) Server() *servers.Redis { return r.srv }

// Stop stops the server (for outage tests); Start brings it back.
func (r *RedisServer) Stop(t testing.TB) {
	t.Helper()
	r.srv.Stop()
}

// Start starts the server again on the same port with the same config.
func (r *RedisServer) Start(t testing.TB) {
	t.Helper()
	if err := r.srv.Start(); err != nil {
		fatal(t, "redis-server again", err)
	}
}

// ---------------------------------------------------------------- pgbouncer

// PgBouncerServer is a pgbouncer owned by one test.
type PgBouncerServer struct {
	srv *servers.PgBouncer
	url string
}

// PgBouncer starts pgbouncer (transaction pooling, scram-sha-256 with the
// URL's password in its auth file) in front of the database at databaseURL;
// stopped at t.Cleanup.
func PgBouncer(t testing.TB, databaseURL string) *PgBouncerServer {
	t.Helper()
	ini, auth, err := servers.PgBouncerConfigFor(databaseURL)
	if err != nil {
		fatal(t, "pgbouncer", err)
	}
	b := PgBouncerWithConfig(t, ini, auth)
	b.url = b.srv.URLFor(databaseURL)
	return b
}

// PgBouncerWithConfig starts pgbouncer from a full pgbouncer.ini text and an
// auth file's content. listen_addr, listen_port, logfile, pidfile,
// unix_socket_dir, auth_file and user are replaced so that it runs on a free
// loopback port in a temp dir. URL() then uses the auth file's first user and
// the ini's first [databases] entry. Stopped at t.Cleanup.
func PgBouncerWithConfig(t testing.TB, ini, authFile string) *PgBouncerServer {
	t.Helper()
	s, err := servers.StartPgBouncer(ini, authFile)
	if err != nil {
		fatal(t, "pgbouncer", err)
	}
	t.Cleanup(s.Close)
	return &PgBouncerServer{srv: s, url: s.URL()}
}

// URL is the database through pgbouncer:
// postgres://...@127.0.0.1:<bouncerport>/<db>?sslmode=disable.
func (b *PgBouncerServer) URL() string { return b.url }

// Addr is 127.0.0.1:port.
func (b *PgBouncerServer) Addr() string { return b.srv.Addr() }

// Server is the underlying server (log path...).
func (b *PgBouncerServer) Server() *servers.PgBouncer { return b.srv }

// ---------------------------------------------------------------- mailpit

// Message is one received email.
type Message = servers.Message

// MailServer is a mailpit (SMTP + HTTP API) owned by one test.
type MailServer struct {
	srv *servers.Mailpit
}

// Mailpit starts a real SMTP server (mailpit, accepting any or no
// authentication, no TLS) with its HTTP API, both on free loopback ports;
// stopped at t.Cleanup. extra are more mailpit flags.
func Mailpit(t testing.TB, extra ...string) *MailServer {
	t.Helper()
	s, err := servers.StartMailpit(extra...)
	if err != nil {
		fatal(t, "mailpit", err)
	}
	t.Cleanup(s.Close)
	return &MailServer{srv: s}
}

// SMTPHost is "127.0.0.1".
func (m *MailServer) SMTPHost() string { return "127.0.0.1" }

// SMTPPort is the SMTP port.
func (m *MailServer) SMTPPort() int { return m.srv.SMTPPort() }

// Server is the underlying server (API URL, log path...).
func (m *MailServer) Server() *servers.Mailpit { return m.srv }

// Messages returns every received message with its bodies, oldest first.
func (m *MailServer) Messages(t testing.TB) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := m.srv.Messages(ctx)
	if err != nil {
		t.Fatalf("testservers: listing mail: %v", err)
	}
	return msgs
}

// WaitForMessage waits for the first message addressed to `to` (To, Cc or
// Bcc, case-insensitive) and returns it with its bodies; fatal on timeout.
func (m *MailServer) WaitForMessage(t testing.TB, to string, timeout time.Duration) Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		sums, err := m.srv.Summaries(ctx)
		if err == nil {
			for _, s := range sums {
				if hasAddr(s.To, to) {
					msg, err := m.srv.Message(ctx, s.ID)
					cancel()
					if err != nil {
						t.Fatalf("testservers: reading mail %s: %v", s.ID, err)
					}
					return msg
				}
			}
		}
		cancel()
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("testservers: no email to %s within %s (last API error: %v; %d messages received)", to, timeout, lastErr, len(sums))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasAddr(list []string, a string) bool {
	for _, x := range list {
		if strings.EqualFold(x, a) {
			return true
		}
	}
	return false
}

// Stop stops mailpit (for "SMTP down" tests); messages are kept in its
// database file and are still there after Start.
func (m *MailServer) Stop(t testing.TB) {
	t.Helper()
	m.srv.Stop()
}

// Start starts mailpit again on the same ports with the same messages.
func (m *MailServer) Start(t testing.TB) {
	t.Helper()
	if err := m.srv.Start(); err != nil {
		fatal(t, "mailpit again", err)
	}
}

func tail(path string) string {
	return fmt.Sprintf("%s:\n%s", path, servers.LogTail(path))
}
