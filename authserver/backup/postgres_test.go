package backup

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/leanauth/authstack/authserver/backup/result"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/testservers"
)

// seed migrates url and inserts users (some verified), their sessions and
// audit rows through the store package.
func seed(t testing.TB, url string, users int) {
	t.Helper()
	ctx := context.Background()
	if _, err := store.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for i := 0; i < users; i++ {
			u, _, err := store.InsertUser(ctx, tx, fmt.Sprintf("user%04d@example.com", i),
				fmt.Sprintf("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$%040d", i))
			if err != nil {
				return err
			}
			if i%3 == 0 {
				if err := store.MarkEmailVerified(ctx, tx, u.ID); err != nil {
					return err
				}
			}
			for j := 0; j < 2; j++ {
				s := &store.Session{TokenHash: []byte(fmt.Sprintf("token-%d-%d-%s", i, j, strings.Repeat("x", 20))), UserID: u.ID,
					ExpiresAt: time.Now().Add(24 * time.Hour), IP: "192.0.2.1", UserAgent: "test/1.0 ünïcode"}
				if err := store.InsertSession(ctx, tx, s); err != nil {
					return err
				}
			}
			if err := store.InsertAudit(ctx, tx, store.AuditEntry{UserID: u.ID, Kind: "signup", IP: "192.0.2.1",
				Details: map[string]any{"n": i}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seeding: %v", err)
	}
}

var keyPattern = regexp.MustCompile(`^stacks/prod/postgres/\d{8}T\d{6}Z\.dump\.gz\.gpg$`)

func TestPostgresBackupRestoreRoundTrip(t *testing.T) {
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	const users = 2000
	seed(t, src, users)
	want := tableRows(t, src)
	if len(want["users"]) != users || len(want["sessions"]) != 2*users || len(want["audit_logs"]) != users {
		t.Fatalf("seed: %d users, %d sessions, %d audit rows", len(want["users"]), len(want["sessions"]), len(want["audit_logs"]))
	}

	s3, key := newStorage(t)
	e := s3Env(s3, "backups", "/stacks/prod/", key).with("DATABASE_URL", src)

	resultFile := filepath.Join(t.TempDir(), "termination-log")
	start := time.Now()
	r := runCLI(t, e.with("BACKUP_RESULT_FILE", resultFile), "backup", "postgres")
	backupTook := time.Since(start)
	if r.code != 0 {
		t.Fatalf("backup exit %d", r.code)
	}
	if r.log["msg"] != "backup done" || r.log["size_bytes"] == nil || r.log["duration_ms"] == nil {
		t.Fatalf("report line: %v", r.log)
	}
	if strings.Contains(r.stderr, pg.Server().Password()) || strings.Contains(r.stderr, s3.SecretKey()) {
		t.Fatal("a secret is in the log")
	}
	c := s3.Client(t)
	// The backup and its signature object (sign.go).
	objs := objects(t, c, "backups")
	if len(objs) != 2 || !keyPattern.MatchString(objs[0].Key) || objs[0].Key != r.log["object"] || objs[1].Key != objs[0].Key+sigSuffix {
		t.Fatalf("objects %v, report %v", keysOf(objs), r.log["object"])
	}
	if int64(r.log["size_bytes"].(float64)) != objs[0].Size {
		t.Fatalf("reported size %v, stored %d", r.log["size_bytes"], objs[0].Size)
	}
	// The result file (the CronJob's termination message) has the same facts.
	b, err := os.ReadFile(resultFile)
	res, ok := result.Parse(string(b))
	if err != nil || !ok || !res.OK || !res.Stored || res.Object != objs[0].Key || res.SizeBytes != objs[0].Size {
		t.Fatalf("result file %q: %v", b, err)
	}

	// Stock gpg sees a public-key-encrypted, integrity-protected message to
	// our key, and decrypts it to a gzip of a pg_dump custom archive.
	blob := download(t, c, "backups", objs[0].Key)
	enc := filepath.Join(t.TempDir(), "b.gpg")
	os.WriteFile(enc, blob, 0o600)
	packets := string(runGPG(t, key.home, nil, "--list-packets", enc))
	if !strings.Contains(packets, ":pubkey enc packet:") || !strings.Contains(packets, ":encrypted data packet:") || !strings.Contains(packets, "mdc_method: 2") {
		t.Fatalf("not an OpenPGP public-key encrypted message with MDC:\n%s", packets)
	}
	plain := runGPG(t, key.home, nil, "--decrypt", enc)
	gz, err := gzip.NewReader(bytes.NewReader(plain))
	if err != nil {
		t.Fatalf("gpg output is not gzip: %v", err)
	}
	dump, err := io.ReadAll(gz)
	if err != nil || !bytes.HasPrefix(dump, []byte("PGDMP")) {
		t.Fatalf("not a pg_dump custom archive (%v): %q", err, dump[:min(16, len(dump))])
	}
	if int64(r.log["raw_bytes"].(float64)) != int64(len(dump)) {
		t.Fatalf("raw_bytes %v, dump is %d bytes", r.log["raw_bytes"], len(dump))
	}

	// Restore (newest backup, no --object) into a fresh database: row for row equal.
	dst := pg.NewDatabase(t)
	start = time.Now()
	r = runCLI(t, e.with("DATABASE_URL", ""), "restore", "postgres", "--target-url", dst, "--keep-sessions")
	restoreTook := time.Since(start)
	if r.code != 0 {
		t.Fatalf("restore exit %d", r.code)
	}
	got := tableRows(t, dst)
	if !reflect.DeepEqual(got, want) {
		for tbl := range want {
			if !reflect.DeepEqual(got[tbl], want[tbl]) {
				t.Errorf("table %s differs after restore: %d rows, want %d", tbl, len(got[tbl]), len(want[tbl]))
			}
		}
		t.Fatal("restored data differs")
	}
	// Sequences come back too: the next audit id continues after the last one.
	var nextID, maxID int64
	conn, err := pgx.Connect(context.Background(), dst)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), "SELECT max(id) FROM audit_logs").Scan(&maxID); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), "INSERT INTO audit_logs (kind) VALUES ('after-restore') RETURNING id").Scan(&nextID); err != nil {
		t.Fatal(err)
	}
	if nextID <= maxID {
		t.Fatalf("sequence not restored: next id %d, max %d", nextID, maxID)
	}
	t.Logf("seed %d users/%d sessions/%d audit rows: dump %v bytes, stored %d bytes; backup %s, restore %s",
		users, 2*users, users, r.log["raw_bytes"], objs[0].Size, backupTook.Round(time.Millisecond), restoreTook.Round(time.Millisecond))

	// The target is no longer empty: restore refuses without --force ...
	r = runCLI(t, e, "restore", "postgres", "--target-url", dst, "--object", objs[0].Key)
	if r.code == 0 || !strings.Contains(r.log["error"].(string), "--force") {
		t.Fatalf("restore into a non-empty database: exit %d, %v", r.code, r.log["error"])
	}
	// ... and with --force replaces the objects: the extra row is gone.
	r = runCLI(t, e, "restore", "postgres", "--target-url", dst, "--object", objs[0].Key, "--force", "--keep-sessions")
	if r.code != 0 {
		t.Fatalf("restore --force exit %d", r.code)
	}
	if got := tableRows(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatal("restored data differs after --force")
	}
}

// shortConnectWait makes a closed database port fail after a second.
func shortConnectWait(t *testing.T) {
	old := store.ConnectWait
	store.ConnectWait = time.Second
	t.Cleanup(func() { store.ConnectWait = old })
}

func TestRestoreFailuresSayWhatToDo(t *testing.T) {
	shortConnectWait(t) // the "down" cases would wait a minute
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	seed(t, src, 3)
	s3, key := newStorage(t)
	e := s3Env(s3, "backups", "p", key).with("DATABASE_URL", src)
	if r := runCLI(t, e, "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup exit %d", r.code)
	}
	dst := pg.NewDatabase(t)
	other := newGPGKey(t)

	cases := []struct {
		name string
		env  env
		args []string
		want string
	}{
		{"wrong private key", e.with("BACKUP_PRIVATE_KEY_FILE", other.privateFile), []string{"--target-url", dst}, "not encrypted to the key in BACKUP_PRIVATE_KEY_FILE"},
		{"public key given as private", e.with("BACKUP_PRIVATE_KEY_FILE", key.publicFile), []string{"--target-url", dst}, "export the private key"},
		{"missing object", e, []string{"--target-url", dst, "--object", "p/postgres/20200101T000000Z.dump.gz.gpg"}, "pass an existing key to --object"},
		{"empty prefix", e.with("S3_PREFIX", "elsewhere"), []string{"--target-url", dst}, "no postgres backup under"},
		{"no target", e.with("DATABASE_URL", ""), nil, "pass --target-url or set DATABASE_URL"},
		{"unreachable target", e, []string{"--target-url", strings.Replace(dst, pg.Addr(), "127.0.0.1:1", 1)}, "check --target-url/DATABASE_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.env, append([]string{"restore", "postgres"}, tc.args...)...)
			if r.code == 0 {
				t.Fatal("restore succeeded")
			}
			msg, _ := r.log["error"].(string)
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not say %q", msg, tc.want)
			}
			if strings.Contains(r.stderr, pg.Server().Password()) {
				t.Fatal("password in the log")
			}
		})
	}
	if rows := tableRows(t, dst); len(rows) != 0 {
		t.Fatalf("failed restores left tables behind: %v", rows)
	}
}

func TestBackupFailuresLeaveNoObject(t *testing.T) {
	shortConnectWait(t) // the "down" cases would wait a minute
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	seed(t, src, 50)
	s3, key := newStorage(t)
	e := s3Env(s3, "backups", "p", key).with("DATABASE_URL", src)
	c := s3.Client(t)

	noObject := func(t *testing.T) {
		t.Helper()
		if objs := objects(t, c, "backups"); len(objs) != 0 {
			t.Fatalf("objects left: %v", keysOf(objs))
		}
		if ups := incompleteUploads(t, c, "backups"); len(ups) != 0 {
			t.Fatalf("multipart uploads left open: %v", ups)
		}
	}
	badPassword := strings.Replace(src, ":"+pg.Server().Password()+"@", ":wrong-password@", 1)
	if badPassword == src {
		t.Fatal("could not build a wrong-password URL")
	}
	cases := []struct {
		name string
		env  env
		code int
		want []string
	}{
		{"database refuses the password", e.with("DATABASE_URL", badPassword), 1, []string{"connecting to", "password authentication failed", "check DATABASE_URL"}},
		{"database down", e.with("DATABASE_URL", strings.Replace(src, pg.Addr(), "127.0.0.1:1", 1)), 1, []string{"connecting to", "connection refused", "check DATABASE_URL"}},
		{"wrong bucket", e.with("S3_BUCKET", "no-such-bucket"), 1, []string{`bucket "no-such-bucket" does not exist`, "fix S3_BUCKET"}},
		{"wrong S3 secret", e.with("AWS_SECRET_ACCESS_KEY", "wrong"), 1, []string{"S3 refused the credentials"}},
		{"public key file missing", e.with("BACKUP_PUBLIC_KEY_FILE", "/nonexistent/key.asc"), 1, []string{"BACKUP_PUBLIC_KEY_FILE", "mount the key file"}},
		{"private key given as public", e.with("BACKUP_PUBLIC_KEY_FILE", key.privateFile), 1, []string{"holds a private key"}},
		{"missing settings", env{"DATABASE_URL": src}, 2, []string{"S3_BUCKET: required", "BACKUP_PUBLIC_KEY_FILE: required"}},
		{"bad retention", e.with("BACKUP_RETENTION_DAYS", "0"), 2, []string{"BACKUP_RETENTION_DAYS: must be"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.env, "backup", "postgres")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d", r.code, tc.code)
			}
			msg, _ := r.log["error"].(string)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(r.stderr, pg.Server().Password()) || strings.Contains(r.stderr, s3.SecretKey()) {
				t.Fatal("a secret is in the log")
			}
			noObject(t)
		})
	}

	t.Run("S3 stopped", func(t *testing.T) {
		s3.Stop(t)
		r := runCLI(t, e, "backup", "postgres")
		s3.Start(t)
		if r.code != 1 || !strings.Contains(r.log["error"].(string), "cannot reach S3") {
			t.Fatalf("exit %d, %v", r.code, r.log["error"])
		}
		noObject(t)
	})

	t.Run("control: an unfinished multipart upload is seen", func(t *testing.T) {
		core := minio.Core{Client: c}
		id, err := core.NewMultipartUpload(context.Background(), "backups", "p/postgres/control", minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ups := incompleteUploads(t, c, "backups"); len(ups) != 1 {
			t.Fatalf("the open upload is not listed: %v; the no-partial-object checks would not see one", ups)
		}
		if err := core.AbortMultipartUpload(context.Background(), "backups", "p/postgres/control", id); err != nil {
			t.Fatal(err)
		}
		noObject(t)
	})

	t.Run("dump fails after the upload started", func(t *testing.T) {
		// A pg_dump that streams 20 MiB (more than one part) and then fails:
		// the parts already uploaded are aborted, no object is completed.
		fake := filepath.Join(t.TempDir(), "pg_dump")
		os.WriteFile(fake, []byte("#!/bin/sh\nhead -c 20971520 /dev/urandom\necho 'pg_dump: error: query failed: connection lost' >&2\nexit 1\n"), 0o755)
		r := runCLI(t, e.with("PG_DUMP", fake), "backup", "postgres")
		if r.code != 1 || !strings.Contains(r.log["error"].(string), "connection lost") {
			t.Fatalf("exit %d, %v", r.code, r.log["error"])
		}
		noObject(t)
	})
}

func TestRetentionDeletesExactlyTheExpired(t *testing.T) {
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	s3, key := newStorage(t)
	c := s3.Client(t)
	now := time.Date(2026, 6, 30, 3, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	put := func(k string) {
		if _, err := c.PutObject(context.Background(), "backups", k, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	name := func(kind string, age time.Duration) string {
		return "p/" + kind + "/" + now.Add(-age).Format(timeLayout) + suffixes[kind]
	}
	keep := []string{
		name(KindPostgres, day),
		name(KindPostgres, 29*day+23*time.Hour),
		name(KindPostgres, 30*day), // exactly 30 days: not older than the limit
		name(KindRedis, 90*day),    // other kind: its own job's retention
		"p/postgres/README.txt",    // not named by the tool
		"p/postgres/20200101T000000Z.dump.gz.gpg.partial",
		"other/postgres/" + now.Add(-90*day).Format(timeLayout) + ".dump.gz.gpg", // other prefix
	}
	expired := []string{
		name(KindPostgres, 30*day+time.Second),
		name(KindPostgres, 31*day),
		name(KindPostgres, 400*day),
	}
	for _, k := range append(append([]string{}, keep...), expired...) {
		put(k)
	}
	// Signature objects go with their backup, also one whose backup is gone;
	// a kept backup's stays.
	put(expired[0] + sigSuffix)
	put(name(KindPostgres, 500*day) + sigSuffix)
	put(keep[0] + sigSuffix)
	keep = append(keep, keep[0]+sigSuffix)
	cfg := loadBackup(t, s3Env(s3, "backups", "p", key).with("DATABASE_URL", src, "BACKUP_RETENTION_DAYS", "30"), KindPostgres)
	cfg.Now = func() time.Time { return now }
	res, err := Backup(context.Background(), cfg, KindPostgres)
	if err != nil {
		t.Fatal(err)
	}
	if res.Object != name(KindPostgres, 0) {
		t.Fatalf("object %s", res.Object)
	}
	// A second run in the same second gets the next second's name.
	cfg.RetentionDays = 3650
	res2, err := Backup(context.Background(), cfg, KindPostgres)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Object != name(KindPostgres, -time.Second) {
		t.Fatalf("second object %s", res2.Object)
	}
	for _, k := range []string{res2.Object, res2.Object + sigSuffix} {
		if err := c.RemoveObject(context.Background(), "backups", k, minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	gotDeleted := append([]string{}, res.Expired...)
	wantDeleted := append([]string{}, expired...)
	sort.Strings(gotDeleted)
	sort.Strings(wantDeleted)
	if !reflect.DeepEqual(gotDeleted, wantDeleted) {
		t.Fatalf("deleted %v, want %v", gotDeleted, wantDeleted)
	}
	wantLeft := append(append([]string{}, keep...), res.Object, res.Object+sigSuffix)
	sort.Strings(wantLeft)
	if got := keysOf(objects(t, c, "backups")); !reflect.DeepEqual(got, wantLeft) {
		t.Fatalf("left %v, want %v", got, wantLeft)
	}
}

// TestRestoreInPlaceIntoReadOnlyDatabase follows the runbook's in-place path:
// writes stopped with default_transaction_read_only, then restore --force
// with the setting turned off for the restore's own connection.
func TestRestoreInPlaceIntoReadOnlyDatabase(t *testing.T) {
	pg := testservers.Postgres(t)
	db := pg.NewDatabase(t)
	seed(t, db, 20)
	want := tableRows(t, db)
	s3, key := newStorage(t)
	e := s3Env(s3, "backups", "p", key).with("DATABASE_URL", db)
	if r := runCLI(t, e, "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup exit %d", r.code)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	conn.QueryRow(ctx, "SELECT current_database()").Scan(&name)
	// The damage: a user deleted after the backup. Then writes are stopped.
	if _, err := conn.Exec(ctx, "DELETE FROM users WHERE email = 'user0003@example.com'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	r := runCLI(t, e, "restore", "postgres", "--target-url", db, "--force")
	if r.code == 0 || !strings.Contains(r.log["error"].(string), "add options=-c%20default_transaction_read_only%3Doff to --target-url") {
		t.Fatalf("restore into a read-only database: exit %d, %v", r.code, r.log["error"])
	}
	r = runCLI(t, e, "restore", "postgres", "--force", "--keep-sessions", "--target-url", db+"&options=-c%20default_transaction_read_only%3Doff")
	if r.code != 0 {
		t.Fatalf("restore with the read-only setting off: exit %d", r.code)
	}
	if got := tableRows(t, db); !reflect.DeepEqual(got, want) {
		t.Fatal("in-place restore did not bring the data back")
	}
}

// An in-place restore (--force) of a backup from before a migration that added
// tables referring to older ones cannot drop the backup's tables: it fails
// naming the cause and the way out, changes nothing, and the way out works.
func TestRestoreInPlaceOfAnOlderSchemaSaysWhatToDo(t *testing.T) {
	pg := testservers.Postgres(t)
	old := pg.NewDatabase(t)
	seed(t, old, 5)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	// The database as a release before passkeys (0005) left it.
	for _, q := range []string{"DROP FUNCTION open_password_session", "DROP TABLE drill_canary, webauthn_challenges, passkeys, webauthn_users",
		"DELETE FROM schema_migrations WHERE version >= 5"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close(ctx)
	want := tableRows(t, old)
	s3, key := newStorage(t)
	e := s3Env(s3, "backups", "p", key).with("DATABASE_URL", old)
	if r := runCLI(t, e, "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup exit %d", r.code)
	}

	live := pg.NewDatabase(t)
	seed(t, live, 3)
	before := tableRows(t, live)
	r := runCLI(t, e, "restore", "postgres", "--target-url", live, "--force", "--keep-sessions")
	if r.code == 0 || !strings.Contains(r.log["error"].(string), "restore into a new empty database instead") {
		t.Fatalf("in-place restore of an older schema: exit %d, %v", r.code, r.log["error"])
	}
	if got := tableRows(t, live); !reflect.DeepEqual(got, before) {
		t.Fatal("the failed restore changed the target")
	}
	fresh := pg.NewDatabase(t)
	if r := runCLI(t, e, "restore", "postgres", "--target-url", fresh, "--keep-sessions"); r.code != 0 {
		t.Fatalf("restore into a new database: exit %d", r.code)
	}
	if got := tableRows(t, fresh); !reflect.DeepEqual(got, want) {
		t.Fatal("restored data differs")
	}
	if _, err := store.Migrate(ctx, fresh); err != nil {
		t.Fatalf("migrating the restored older schema: %v", err)
	}
}

func TestToolMessagesDropRowData(t *testing.T) {
	var b tailBuffer
	b.Write([]byte("pg_restore: while PROCESSING TOC:\npg_restore: from TOC entry 3 ; TABLE DATA public users authstack\n" +
		"pg_restore: error: COPY failed for table \"users\": ERROR:  duplicate key value violates unique constraint \"users_email_key\"\n" +
		"DETAIL:  Key (email)=(alice@example.com) already exists.\nCONTEXT:  COPY users, line 1: \"1\talice@example.com\t$argon2id$v=19$secret\"\n"))
	got := b.String()
	if strings.Contains(got, "alice@example.com") || strings.Contains(got, "argon2id") || !strings.Contains(got, "duplicate key value") {
		t.Fatalf("%q", got)
	}
}
