package testservers

import (
	"context"
	"fmt"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

func TestPostgresDatabasesAreIsolatedAndDropped(t *testing.T) {
	t.Parallel()
	pg := Postgres(t)
	if Postgres(t) != pg {
		t.Fatal("Postgres is not shared")
	}
	ctx := context.Background()
	var name string
	t.Run("db", func(t *testing.T) {
		u := pg.NewDatabase(t)
		if !strings.HasPrefix(u, "postgres://authstack:") || !strings.Contains(u, pg.Addr()) || !strings.HasSuffix(u, "?sslmode=disable") {
			t.Fatalf("unexpected URL shape %q", u)
		}
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "CREATE TABLE x (id int); INSERT INTO x VALUES (1)"); err != nil {
			t.Fatalf("authstack cannot create tables in its database: %v", err)
		}
		if err := c.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		var super bool
		if err := c.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || super {
			t.Fatalf("authstack must not be a superuser (super=%v err=%v)", super, err)
		}
	})
	// The subtest's cleanup dropped the database (even with a connection open).
	admin, err := pgx.Connect(ctx, pg.AdminURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var n int
	if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %q still exists after cleanup (n=%d err=%v)", name, n, err)
	}
	// A wrong password is refused (scram is enforced on TCP).
	bad := strings.Replace(pg.AdminURL("postgres"), "postgres:", "postgres:x", 1)
	if c, err := pgx.Connect(ctx, bad); err == nil {
		c.Close(ctx)
		t.Fatal("connected with a wrong password")
	}
}

func TestPgBouncerTransactionMode(t *testing.T) {
	t.Parallel()
	pg := Postgres(t)
	u := pg.NewDatabase(t)
	b := PgBouncer(t, u)
	if !strings.Contains(b.URL(), b.Addr()) || strings.Contains(b.URL(), pg.Addr()) {
		t.Fatalf("pgbouncer URL %q does not point at %s", b.URL(), b.Addr())
	}
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	// pgbouncer 1.18 in transaction mode has no prepared statements.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting through pgbouncer: %v", err)
	}
	defer c.Close(ctx)
	var one int
	if err := c.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 through pgbouncer: %v %d", err, one)
	}
	// A transaction works in transaction pooling mode.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE t (v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO t VALUES ('a')"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// It really goes through pgbouncer: PostgreSQL sees pgbouncer's socket, not ours.
	var port int
	if err := c.QueryRow(ctx, "SELECT inet_client_port()").Scan(&port); err != nil {
		t.Fatal(err)
	}
	if local := c.PgConn().Conn().LocalAddr().String(); strings.HasSuffix(local, fmt.Sprintf(":%d", port)) {
		t.Fatalf("PostgreSQL sees our own socket (%s): not going through pgbouncer", local)
	}
	// A wrong password is refused by pgbouncer.
	bad := strings.Replace(b.URL(), "authstack:", "authstack:x", 1)
	if c2, err := pgx.Connect(ctx, bad); err == nil {
		c2.Close(ctx)
		t.Fatal("pgbouncer accepted a wrong password")
	}
}

func TestRedisPasswordAndRestart(t *testing.T) {
	t.Parallel()
	r := Redis(t)
	if r.Password() == "" || !strings.HasPrefix(r.URL(), "redis://:"+r.Password()+"@"+r.Addr()) {
		t.Fatalf("unexpected URL %q", r.URL())
	}
	ctx := context.Background()
	noPw := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1})
	defer noPw.Close()
	if err := noPw.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without a password: want NOAUTH, got %v", err)
	}
	opt, err := redis.ParseURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING with the password: %v", err)
	}
	r.Stop(t)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded while stopped")
	}
	r.Start(t)
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
}

func TestRedisWithConfig(t *testing.T) {
	t.Parallel()
	conf := "appendonly yes\nrequirepass s3cret-pw\nrename-command FLUSHALL \"\"\nmaxmemory 32mb\n"
	r := RedisWithConfig(t, conf)
	if r.Password() != "s3cret-pw" {
		t.Fatalf("password %q", r.Password())
	}
	opt, _ := redis.ParseURL(r.URL())
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	if err := c.FlushAll(ctx).Err(); err == nil {
		t.Fatal("FLUSHALL was not disabled by the given config")
	}
	aof, err := c.ConfigGet(ctx, "appendonly").Result()
	if err != nil || aof["appendonly"] != "yes" {
		t.Fatalf("appendonly %v %v", aof, err)
	}
	// With AOF on, data survives a restart.
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Stop(t)
	r.Start(t)
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after restart: %q %v", v, err)
	}

	open := RedisWithConfig(t, "save \"\"\n")
	if open.Password() != "" || strings.Contains(open.URL(), "@") {
		t.Fatalf("no-password URL %q", open.URL())
	}
}

func TestMailpitReceivesAndSurvivesRestart(t *testing.T) {
	t.Parallel()
	m := Mailpit(t)
	addr := fmt.Sprintf("%s:%d", m.SMTPHost(), m.SMTPPort())
	send := func(to, subject string) error {
		body := "From: AuthStack <noreply@example.test>\r\nTo: " + to + "\r\nSubject: " + subject +
			"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello " + to + "\r\n"
		return smtp.SendMail(addr, smtp.PlainAuth("", "user", "pass", m.SMTPHost()), "noreply@example.test", []string{to}, []byte(body))
	}
	if err := send("alice@example.test", "first"); err != nil {
		t.Fatalf("sending: %v", err)
	}
	msg := m.WaitForMessage(t, "Alice@Example.test", 10*time.Second)
	if msg.Subject != "first" || msg.From != "noreply@example.test" || !strings.Contains(msg.Text, "hello alice@example.test") {
		t.Fatalf("unexpected message %+v", msg)
	}
	m.Stop(t)
	if err := send("bob@example.test", "while down"); err == nil {
		t.Fatal("SMTP accepted mail while stopped")
	}
	m.Start(t)
	if err := send("bob@example.test", "second"); err != nil {
		t.Fatalf("sending after restart: %v", err)
	}
	m.WaitForMessage(t, "bob@example.test", 10*time.Second)
	msgs := m.Messages(t)
	if len(msgs) != 2 || msgs[0].Subject != "first" || msgs[1].Subject != "second" || msgs[1].To[0] != "bob@example.test" {
		t.Fatalf("want [first second] kept across the restart, got %+v", msgs)
	}
}

func TestFreePort(t *testing.T) {
	seen := map[int]bool{}
	for i := 0; i < 5; i++ {
		p := FreePort(t)
		if p <= 0 || p > 65535 {
			t.Fatalf("bad port %d", p)
		}
		seen[p] = true
	}
	if len(seen) < 2 {
		t.Fatal("FreePort keeps returning the same port")
	}
}
