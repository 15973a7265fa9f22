package app

import (
	"context"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/internal/servers"
	"github.com/leanauth/authstack/internal/testservers"
)

// TestOneShotCommandsWaitForTheDatabase: each command the operator runs as a Job or
// an init container (migrate, peppers, db-role) reaches a database whose port
// refuses connections for its first two seconds, instead of failing its attempt
// (a failed rotation Job on the real node, when its pod's address was not yet
// admitted by the NetworkPolicy). The backup commands wait the same way
// (authserver/backup/reachable.go, store.Connect); a wrong password fails at once.
func TestOneShotCommandsWaitForTheDatabase(t *testing.T) {
	pg := testservers.Postgres(t)
	url := pg.NewDatabase(t)
	// db-role runs as the managed database's owner, a superuser (initdb's role).
	owner, role := "lateown_"+servers.RandomSecret(4), "late_"+servers.RandomSecret(4)
	admin := func(sql string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, pg.AdminURL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	admin("CREATE ROLE " + owner + " LOGIN SUPERUSER PASSWORD 'owner-pw'")
	t.Cleanup(func() { admin("DROP ROLE IF EXISTS " + role); admin("DROP ROLE IF EXISTS " + owner) })
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.UserPassword(owner, "owner-pw")
	ownerURL := u.String()
	const wait = 2 * time.Second
	for _, args := range [][]string{
		{"migrate"},
		{"peppers"},
		{"db-role", "prepare", role, owner},
		{"db-role", "retire", role},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			db := url
			if args[0] == "db-role" {
				db = ownerURL
			}
			late := strings.Replace(db, pg.Addr(), testservers.LateProxy(t, pg.Addr(), wait), 1)
			t.Setenv("DATABASE_URL", late)
			t.Setenv("DB_ROLE_PASSWORD", "late-role-password")
			start := time.Now()
			var stdout, stderr strings.Builder
			if code := Main(args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d after %s:\n%s", code, time.Since(start).Round(time.Millisecond), stderr.String())
			}
			if took := time.Since(start); took < wait {
				t.Fatalf("done in %s, before the port opened: the test reached the database another way", took)
			}
		})
	}

	// A database that answers "no" is not waited for: a wrong password fails at once.
	u.User = neturl.UserPassword(owner, "wrong")
	t.Setenv("DATABASE_URL", u.String())
	start := time.Now()
	var stderr strings.Builder
	if code := Main([]string{"peppers"}, &strings.Builder{}, &stderr); code == 0 || !strings.Contains(stderr.String(), "28P01") {
		t.Fatalf("a wrong password: exit %d, %s", code, stderr.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a wrong password failed after %s: it was retried", took)
	}
}
