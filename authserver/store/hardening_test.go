package store_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/internal/dbtest"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// execAll runs each statement on a new connection to dbURL.
func execAll(t *testing.T, dbURL string, sql ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(ctx)
	for _, s := range sql {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func dbName(dbURL string) string {
	u, _ := url.Parse(dbURL)
	return strings.TrimPrefix(u.Path, "/")
}

// Another role that may create in public (every role on PostgreSQL 14 and
// older) plants overloads that an untyped parameter would prefer (text) of
// the functions the store calls with parameters: the store's own function,
// a built-in inside it, make_interval and the migration lock. None of them
// may run: each would run as the authserver's role, and the login's would
// receive every verified password hash.
func TestOverloadsOfAnotherRoleAreNotTaken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := testservers.Postgres(t)
	dbURL, st := dbtest.On(t, pg)
	admin := pg.AdminURL(dbName(dbURL))
	role := "planter_" + strings.ToLower(dbName(dbURL)[len(dbName(dbURL))-6:])
	execAll(t, admin, "CREATE ROLE "+role+" LOGIN PASSWORD 'p'", "GRANT CREATE ON SCHEMA public TO "+role)
	t.Cleanup(func() { execAll(t, admin, "DROP OWNED BY "+role, "DROP ROLE "+role) })
	u, _ := url.Parse(dbURL)
	u.User = url.UserPassword(role, "p")
	execAll(t, u.String(),
		`CREATE TABLE public.ran (what text, who text)`,
		`GRANT INSERT, SELECT ON public.ran TO PUBLIC`,
		`CREATE FUNCTION public.open_password_session(
		    a uuid, b text, c text, d text, e text, f text, g text, h text,
		    OUT user_id text, OUT email text, OUT password_hash text, OUT email_verified boolean,
		    OUT user_created_at timestamptz, OUT session_id text, OUT created_at timestamptz,
		    OUT last_seen_at timestamptz, OUT auth_at timestamptz)
		LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.ran VALUES ('open_password_session: ' || b, current_user); END $$`,
		`CREATE FUNCTION public.jsonb_build_object(a text, b text, c text, d text) RETURNS jsonb
		LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.ran VALUES ('jsonb_build_object', current_user); RETURN '{}'; END $$`,
		`CREATE FUNCTION public.make_interval(secs text) RETURNS interval
		LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.ran VALUES ('make_interval', current_user); RETURN interval '1 s'; END $$`,
		`CREATE FUNCTION public.pg_advisory_xact_lock(k text) RETURNS void
		LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.ran VALUES ('pg_advisory_xact_lock', current_user); END $$`)

	usr, _, err := store.InsertUser(ctx, st.Pool, "planted@example.com", "$argon2id$hash")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenPasswordSession(ctx, st.Pool, usr.PasswordHash, newSession(usr.ID), "LOGIN_SUCCESS"); err != nil {
		t.Fatalf("open: %v", err)
	}
	if _, err := store.RequestReset(ctx, st.Pool, "planted@example.com", []byte("token-hash"), time.Hour,
		store.Mail{Kind: "reset"}, store.Who{IP: "192.0.2.1"}); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if _, err := store.Migrate(ctx, dbURL); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	rows, err := st.Pool.Query(ctx, "SELECT what || ' as ' || who FROM public.ran")
	if err != nil {
		t.Fatal(err)
	}
	ran, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ran) > 0 {
		t.Fatalf("another role's functions ran: %q %v", ran, err)
	}
}

// A statement log with parameters (log_min_duration_statement = 0) never
// holds a password hash a login verified.
func TestStatementLogNeverHoldsThePasswordHash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := testservers.Postgres(t)
	dbURL, _ := dbtest.On(t, pg)
	execAll(t, pg.AdminURL(dbName(dbURL)), "ALTER DATABASE "+dbName(dbURL)+" SET log_min_duration_statement = 0")
	st, err := store.Open(ctx, dbURL) // new sessions: the setting applies
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	marker := "$argon2id$v=19$m=8192,t=1,p=1$MARKER-" + dbName(dbURL)
	u, _, err := store.InsertUser(ctx, st.Pool, "logged@example.com", "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.UpdatePasswordHash(ctx, st.Pool, u.ID, marker); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(pg.Server().LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenPasswordSession(ctx, st.Pool, marker, newSession(u.ID), "LOGIN_SUCCESS"); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(pg.Server().LogPath())
	if err != nil {
		t.Fatal(err)
	}
	logged := string(after[len(before):])
	if !strings.Contains(logged, "open_password_session") {
		t.Fatalf("the statement was not logged, the test proves nothing:\n%s", logged)
	}
	if strings.Contains(logged, "MARKER-"+dbName(dbURL)) {
		t.Fatalf("the server log holds the password hash:\n%s", logged)
	}
}

// The documented in-place restore (authserver restore postgres --force:
// pg_restore --clean --if-exists) of a backup taken before migrations 0006 and
// 0007 leaves their objects in place (--clean drops only the archive's), and the
// migrate init container then runs them again: they must apply over them.
func TestMigrateAfterAnInPlaceRestoreOfAnOlderBackup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := testservers.Postgres(t)
	old, _ := dbtest.On(t, pg)
	// The database as a release before 0006 left it.
	execAll(t, old, "DROP FUNCTION open_password_session", "DROP TABLE drill_canary",
		"DELETE FROM schema_migrations WHERE version >= 6")
	dump := filepath.Join(t.TempDir(), "old.dump")
	if out, err := exec.Command("pg_dump", "--format=custom", "--file="+dump, "--dbname="+old).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	live, st := dbtest.On(t, pg)
	if out, err := exec.Command("pg_restore", "--no-password", "--dbname="+live, "--no-owner", "--exit-on-error",
		"--single-transaction", "--clean", "--if-exists", dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v %s", err, out)
	}
	if v, err := st.SchemaVersion(ctx); err != nil || v != 5 {
		t.Fatalf("schema version after the restore %d, %v; want 5", v, err)
	}
	if _, err := store.Migrate(ctx, live); err != nil {
		t.Fatalf("migrate after the in-place restore: %v", err)
	}
	u, _, err := store.InsertUser(ctx, st.Pool, "restored@example.com", "h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.OpenPasswordSession(ctx, st.Pool, "h", newSession(u.ID), "LOGIN_SUCCESS"); err != nil {
		t.Fatalf("login after the restore: %v", err)
	}
}
