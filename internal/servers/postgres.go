package servers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// AppUser is the non-superuser role that owns the databases handed out.
const AppUser = "authstack"

// Postgres is a running PostgreSQL server on 127.0.0.1, tuned for tests
// (fsync off), with a superuser "postgres" and a login role AppUser, both
// authenticating with scram-sha-256 passwords.
type Postgres struct {
	dir           string
	port          int
	superPassword string
	password      string
	proc          *process
}

// RandomSecret returns n random bytes, hex encoded.
func RandomSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// StartPostgres runs initdb in a fresh directory and starts postgres on a
// free port. When we are root it runs as the postgres OS user.
func StartPostgres(ctx context.Context) (*Postgres, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var p *Postgres
		p, err = startPostgres(ctx)
		if err == nil {
			return p, nil
		}
		if !isAddrInUse(err) {
			break
		}
	}
	return nil, err
}

func startPostgres(ctx context.Context) (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := unprivilegedUser()
	if err != nil {
		return nil, err
	}
	dir, err := makeDir("pg", cred)
	if err != nil {
		return nil, err
	}
	p := &Postgres{dir: dir, superPassword: RandomSecret(16), password: RandomSecret(16)}
	fail := func(err error) (*Postgres, error) {
		p.Close()
		return nil, err
	}
	pwfile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.superPassword+"\n"), 0o600); err != nil {
		return fail(fmt.Errorf("writing the initdb password file: %w", err))
	}
	if err := chownTree(dir, cred); err != nil {
		return fail(fmt.Errorf("chowning %s: %w", dir, err))
	}
	data := filepath.Join(dir, "data")
	initdb := &process{
		name: "initdb", path: filepath.Join(bin, "initdb"), dir: dir, cred: cred,
		logPath: filepath.Join(dir, "initdb.log"), deathSg: syscall.SIGKILL, stopSg: syscall.SIGKILL,
		args: []string{"-D", data, "-U", "postgres", "--pwfile", pwfile, "-A", "scram-sha-256",
			"-E", "UTF8", "--locale=C", "--no-sync"},
	}
	if err := initdb.start(); err != nil {
		return fail(err)
	}
	select {
	case <-initdb.done:
	case <-time.After(2 * time.Minute):
		initdb.stop()
	}
	if _, werr := initdb.exited(); werr != nil {
		return fail(fmt.Errorf("initdb failed (%v); log %s:\n%s", werr, initdb.logPath, initdb.logTail()))
	}
	os.Remove(pwfile)

	port, err := FreePort()
	if err != nil {
		return fail(err)
	}
	p.port = port
	p.proc = &process{
		name: "postgres", path: filepath.Join(bin, "postgres"), dir: dir, cred: cred,
		logPath: filepath.Join(dir, "postgres.log"), deathSg: syscall.SIGQUIT, stopSg: syscall.SIGINT,
		args: []string{"-D", data, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=" + dir,
			"-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
			"-c", "max_connections=200", "-c", "shared_buffers=64MB",
			"-c", "password_encryption=scram-sha-256"},
	}
	if err := p.proc.start(); err != nil {
		return fail(err)
	}
	err = p.proc.waitReady(60*time.Second, func() error {
		c, err := pgx.Connect(ctx, p.AdminURL("postgres"))
		if err != nil {
			return err
		}
		return c.Close(ctx)
	})
	if err != nil {
		return fail(err)
	}
	c, err := pgx.Connect(ctx, p.AdminURL("postgres"))
	if err != nil {
		return fail(fmt.Errorf("connecting as superuser: %w", err))
	}
	defer c.Close(ctx)
	// The password is hex, so quoting it literally is safe.
	if _, err := c.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN CREATEDB PASSWORD '%s'", AppUser, p.password)); err != nil {
		return fail(fmt.Errorf("creating role %s: %w", AppUser, err))
	}
	return p, nil
}

// Addr is host:port of the server.
func (p *Postgres) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// Port is the TCP port of the server.
func (p *Postgres) Port() int { return p.port }

// Pid is the postmaster's process id.
func (p *Postgres) Pid() int { return p.proc.pid() }

// LogPath is the file holding the server's output.
func (p *Postgres) LogPath() string { return filepath.Join(p.dir, "postgres.log") }

// AdminURL is a superuser URL for database db.
func (p *Postgres) AdminURL(db string) string {
	return p.url("postgres", p.superPassword, db)
}

// URL is the AppUser URL for database db.
func (p *Postgres) URL(db string) string {
	return p.url(AppUser, p.password, db)
}

// Password is AppUser's password.
func (p *Postgres) Password() string { return p.password }

func (p *Postgres) url(user, pw, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pw), Host: p.Addr(), Path: "/" + db,
		RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDatabase creates an empty database owned by AppUser and returns its
// AppUser URL. name must be a plain identifier.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	c, err := pgx.Connect(ctx, p.AdminURL("postgres"))
	if err != nil {
		return "", fmt.Errorf("connecting to create database %s: %w", name, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgx.Identifier{name}.Sanitize(), AppUser)); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	return p.URL(name), nil
}

// DropDatabase drops a database, disconnecting its sessions.
func (p *Postgres) DropDatabase(ctx context.Context, name string) error {
	c, err := pgx.Connect(ctx, p.AdminURL("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to drop database %s: %w", name, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
		return fmt.Errorf("dropping database %s: %w", name, err)
	}
	return nil
}

// Close stops the server and removes its directory.
func (p *Postgres) Close() {
	if p.proc != nil {
		p.proc.stop()
	}
	os.RemoveAll(p.dir)
}
