package backup

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/internal/servers"
	"github.com/leanauth/authstack/internal/testservers"
)

// A declared restore whose pod dies after pg_restore committed and before the
// sessions were revoked (OOM, node loss, a failed connection in afterRestore)
// is retried by its Job. The retry must not take a restore marker that came
// with the backup's data (any backup of a stack that was itself restored holds
// one) for its own: it would report "already restored" and leave every
// restored session valid, sessions revoked after the backup among them.
func TestOnceRetryAfterCrashDoesNotTrustTheBackupsMarker(t *testing.T) {
	ctx := context.Background()
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	seed(t, src, 3)
	// The stack was bootstrapped from a backup once: its database holds a marker.
	if _, err := afterRestore(ctx, src, "stacks/prod/postgres/20250101T000000Z.dump.gz.gpg", false, true); err != nil {
		t.Fatal(err)
	}
	s3, key := newStorage(t)
	e := s3Env(s3, "backups", "stacks/prod", key).with("DATABASE_URL", src)
	if r := runCLI(t, e, "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup exit %d", r.code)
	}

	// The first attempt of the declared restore: pg_restore commits, then the pod dies.
	target := pg.NewDatabase(t)
	cfg := loadRestore(t, e)
	keys, err := loadPrivateKeys(cfg.PrivateKeyFile, cfg.PassphraseFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := newStore(cfg.S3)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trustOf(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := resolve(ctx, st, KindPostgres, "", "", tr)
	if err != nil {
		t.Fatal(err)
	}
	var size, raw int64
	path, err := fetchDecrypted(ctx, st, a, keys, t.TempDir(), &size, &raw)
	if err != nil {
		t.Fatal(err)
	}
	obj := a.key
	defer os.Remove(path)
	bin, err := exec.LookPath(cfg.PgRestore)
	if err != nil {
		t.Fatal(err)
	}
	if err := pgRestore(ctx, bin, path, obj, target, false, true); err != nil {
		t.Fatal(err)
	}

	// The Job's retry.
	res, err := RestorePostgres(ctx, cfg, RestoreOptions{TargetURL: target, Once: true, RevokeSessions: true})
	conn, cerr := pgx.Connect(ctx, target)
	if cerr != nil {
		t.Fatal(cerr)
	}
	defer conn.Close(ctx)
	var sessions int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	t.Logf("retry: %+v, %v; %d restored sessions left", res, err, sessions)
	if res.AlreadyRestored && sessions > 0 {
		t.Fatalf("the retry reported %q as already restored (the backup's own marker) with %d restored sessions still valid", res.Object, sessions)
	}
	if err == nil && sessions > 0 {
		t.Fatalf("the retry succeeded with %d restored sessions still valid", sessions)
	}
}

// The stale-scratch cleanup drops only names a drill makes
// (authstack_drill_<unix seconds>_<8 hex>): a database of the stack's role
// that merely starts like one (someone's copy, a name typed by hand) is kept.
func TestDropStaleKeepsDatabasesADrillDidNotName(t *testing.T) {
	ctx := context.Background()
	pg := testservers.Postgres(t)
	admin, err := pgx.Connect(ctx, pg.AdminURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) }) // after the drops below (LIFO)
	old := strconv.FormatInt(time.Now().Add(-5*time.Hour).Unix(), 10)
	keep := []string{ScratchPrefix + old + "_customer_copy", ScratchPrefix + old + "_0123abcd_x"}
	stale := ScratchPrefix + old + "_0123abcd"
	for _, db := range append([]string{stale}, keep...) {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+" OWNER "+servers.AppUser); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize())
		})
	}
	conn, err := pgx.Connect(ctx, pg.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := dropStale(ctx, conn, time.Now()); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, db := range scratchDatabases(t, pg) {
		got[db] = true
	}
	if got[stale] {
		t.Errorf("the stale scratch database %s was kept", stale)
	}
	for _, db := range keep {
		if !got[db] {
			t.Errorf("%s, not a name a drill makes, was dropped", db)
		}
	}
}
