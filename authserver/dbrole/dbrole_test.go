package dbrole_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/dbrole"
	"github.com/leanauth/authstack/internal/servers"
	"github.com/leanauth/authstack/internal/testservers"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// as is url with another user and password.
func as(raw, user, password string) string {
	u, _ := url.Parse(raw)
	u.User = url.UserPassword(user, password)
	return u.String()
}

func exec(t *testing.T, raw string, sql ...string) {
	t.Helper()
	conn, err := pgx.Connect(ctx(t), raw)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(context.Background())
	for _, s := range sql {
		if _, err := conn.Exec(ctx(t), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func loginError(t *testing.T, raw string) error {
	t.Helper()
	conn, err := pgx.Connect(ctx(t), raw)
	if err == nil {
		conn.Close(context.Background())
	}
	return err
}

func queryString(t *testing.T, raw, sql string) string {
	t.Helper()
	conn, err := pgx.Connect(ctx(t), raw)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(ctx(t), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// The managed database's rotation, as the operator's Jobs run it, on a real
// PostgreSQL: the owner (a superuser, like the managed database's initdb role)
// hands over to a second role, which creates a table (owned by the owner), and back;
// each retired role no longer logs in, and its open session is ended.
func TestAlternatingRoles(t *testing.T) {
	pg := testservers.Postgres(t)
	suffix := servers.RandomSecret(4)
	owner, second := "own_"+suffix, "own_"+suffix+"_b"
	admin := pg.AdminURL("postgres")
	exec(t, admin, "CREATE ROLE "+owner+" LOGIN SUPERUSER PASSWORD 'first'")
	t.Cleanup(func() {
		exec(t, admin, "DROP OWNED BY "+second, "DROP ROLE IF EXISTS "+second, "DROP ROLE IF EXISTS "+owner)
	})
	ownerURL := as(admin, owner, "first")
	exec(t, ownerURL, "CREATE TABLE t_"+suffix+" (v int)")
	t.Cleanup(func() { exec(t, admin, "DROP TABLE IF EXISTS t_"+suffix) })

	// Generation 1: the second role, created.
	if err := dbrole.Prepare(ctx(t), ownerURL, owner, second, "pw1"); err != nil {
		t.Fatalf("prepare %s: %v", second, err)
	}
	secondURL := as(admin, second, "pw1")
	exec(t, secondURL, "INSERT INTO t_"+suffix+" VALUES (1)", "CREATE TABLE t2_"+suffix+" (v int)")
	t.Cleanup(func() { exec(t, admin, "DROP TABLE IF EXISTS t2_"+suffix) })
	if got := queryString(t, admin, "SELECT tableowner FROM pg_tables WHERE tablename = 't2_"+suffix+"'"); got != owner {
		t.Errorf("a table the second role created is owned by %q, want %q", got, owner)
	}
	// An open session of the owner is ended when it is retired.
	open, err := pgx.Connect(ctx(t), ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close(context.Background())
	if err := dbrole.Retire(ctx(t), secondURL, owner); err != nil {
		t.Fatalf("retire %s: %v", owner, err)
	}
	if err := loginError(t, ownerURL); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("the retired owner logs in: %v", err)
	}
	if err := open.Ping(ctx(t)); err == nil {
		t.Errorf("the retired role's open session still works")
	}

	// Generation 2: back to the owner, with a new password; the second role retires.
	if err := dbrole.Prepare(ctx(t), secondURL, owner, owner, "pw2"); err != nil {
		t.Fatalf("prepare %s: %v", owner, err)
	}
	ownerURL = as(admin, owner, "pw2")
	if err := dbrole.Retire(ctx(t), ownerURL, second); err != nil {
		t.Fatalf("retire %s: %v", second, err)
	}
	if err := loginError(t, secondURL); err == nil {
		t.Errorf("the retired second role logs in")
	}
	// Generation 3: the second role again (it exists now), new password.
	if err := dbrole.Prepare(ctx(t), ownerURL, owner, second, "pw3"); err != nil {
		t.Fatalf("prepare %s again: %v", second, err)
	}
	if got := queryString(t, as(admin, second, "pw3"), "SELECT current_user::text"); got != owner {
		t.Errorf("the second role acts as %q, want %q", got, owner)
	}
	if err := dbrole.Retire(ctx(t), ownerURL, owner); err == nil {
		t.Errorf("retired the role it logs in as")
	}
}

// The verifier is what PostgreSQL itself stores for a password (same salt and count).
func TestVerifierMatchesPostgres(t *testing.T) {
	pg := testservers.Postgres(t)
	role := "verif_" + servers.RandomSecret(4)
	admin := pg.AdminURL("postgres")
	exec(t, admin, "SET password_encryption = 'scram-sha-256'", "CREATE ROLE "+role+" LOGIN PASSWORD 's3cret-pw'")
	t.Cleanup(func() { exec(t, admin, "DROP ROLE IF EXISTS "+role) })
	stored := queryString(t, admin, "SELECT rolpassword FROM pg_authid WHERE rolname = '"+role+"'")
	var iter int
	var salt64 string
	head, _, _ := strings.Cut(strings.TrimPrefix(stored, "SCRAM-SHA-256$"), "$")
	iterS, salt64, _ := strings.Cut(head, ":")
	for _, c := range iterS {
		iter = iter*10 + int(c-'0')
	}
	salt, err := base64Decode(salt64)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dbrole.Verifier("s3cret-pw", salt, iter)
	if err != nil {
		t.Fatal(err)
	}
	if got != stored {
		t.Errorf("verifier %q, PostgreSQL stored %q", got, stored)
	}
}

// The command never prints the password, also when it fails.
func TestMainNeverPrintsThePassword(t *testing.T) {
	pg := testservers.Postgres(t)
	env := map[string]string{"DATABASE_URL": as(pg.AdminURL("postgres"), "nobody_here", "x"), "DB_ROLE_PASSWORD": "very-secret-value"}
	var out, errb bytes.Buffer
	code := dbrole.Main(ctx(t), []string{"prepare", "r", "o"}, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &out, &errb)
	if code != 1 {
		t.Errorf("exit %d, want 1 (stderr %s)", code, errb.String())
	}
	if s := out.String() + errb.String(); strings.Contains(s, "very-secret-value") || !strings.Contains(s, "connecting as role nobody_here") {
		t.Errorf("output: %s", s)
	}
	if code := dbrole.Main(ctx(t), []string{"rotate"}, func(string) (string, bool) { return "", false }, &out, &errb); code != 2 {
		t.Errorf("bad usage: exit %d, want 2", code)
	}
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
