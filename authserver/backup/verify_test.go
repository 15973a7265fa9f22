package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/leanauth/authstack/authserver/backup/result"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/store"
	"github.com/leanauth/authstack/internal/servers"
	"github.com/leanauth/authstack/internal/testservers"
)

const (
	drillPepper      = "6a1f0c3e9b2d4f5a7c8e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a"
	drillOtherPepper = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// writeCanary writes the drill canary with pepperHex, as `authserver migrate` does.
func writeCanary(t *testing.T, dbURL, pepperHex string) {
	t.Helper()
	ctx := context.Background()
	key, err := config.ParsePepper(pepperHex)
	if err != nil {
		t.Fatal(err)
	}
	p := config.Pepper{ID: config.PepperID(key), Key: key}
	h, err := password.New(password.CanaryParams, []config.Pepper{p}, 1, -1, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(ctx, password.CanaryPassword(p))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := store.SetDrillCanaryHash(ctx, conn, hash); err != nil {
		t.Fatal(err)
	}
}

// scratchDatabases lists the drill's scratch databases on the server.
func scratchDatabases(t *testing.T, pg *testservers.PostgresServer) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.AdminURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'authstack\_drill\_%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// drill runs `authserver backup verify` and returns its result line and log.
func drill(t *testing.T, e env) (result.Result, cliResult) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "termination-log")
	r := runCLI(t, e.with("BACKUP_RESULT_FILE", file), "backup", "verify")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no result file: %v", err)
	}
	res, ok := result.Parse(string(b))
	if !ok || res.Kind != result.KindVerify {
		t.Fatalf("result file %q", b)
	}
	return res, r
}

// TestRestoreDrill: `authserver backup verify` on a real PostgreSQL and S3
// server. A good backup passes; a corrupted object, a backup encrypted to
// another key, row counts that differ from the manifest, another pepper and a
// role without CREATEDB each fail with their reason and a message that says
// what to do. No run leaves a scratch database or a temp file behind, and a
// scratch database left by a killed drill is dropped by the next one.
func TestRestoreDrill(t *testing.T) {
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	seed(t, src, 40)
	writeCanary(t, src, drillPepper)
	s3, key := newStorage(t)
	otherKey := newGPGKey(t)
	// The pepper as the drill Job gets it: a file (AUTH_PEPPER_FILE).
	pepperDir := t.TempDir()
	pepperFile, otherPepperFile := filepath.Join(pepperDir, "pepper"), filepath.Join(pepperDir, "other")
	os.WriteFile(pepperFile, []byte(drillPepper+"\n"), 0o600)
	os.WriteFile(otherPepperFile, []byte(drillOtherPepper), 0o600)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the decrypted dump is kept while restoring (after the gpg homes)
	e := s3Env(s3, "backups", "drills", key).with("DATABASE_URL", src, "AUTH_PEPPER_FILE", pepperFile)
	if r := runCLI(t, e, "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup: exit %d", r.code)
	}
	c := s3.Client(t)
	good := objects(t, c, "backups")[0]

	// A scratch database left over by a drill killed 5 hours ago (SIGKILL:
	// no cleanup ran) is dropped by the next drill; a recent one (a drill
	// running now) is not.
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.AdminURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	stale := ScratchPrefix + strconv.FormatInt(time.Now().Add(-5*time.Hour).Unix(), 10) + "_deadbeef"
	running := ScratchPrefix + strconv.FormatInt(time.Now().Unix(), 10) + "_1badcafe"
	for _, db := range []string{stale, running} {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db+" OWNER "+servers.AppUser); err != nil {
			t.Fatal(err)
		}
	}

	leftovers := func(name string, allow ...string) {
		t.Helper()
		dbs := strings.Join(scratchDatabases(t, pg), ",")
		if dbs != strings.Join(allow, ",") {
			t.Errorf("%s: scratch databases left: %s", name, dbs)
		}
		if files, _ := os.ReadDir(tmp); len(files) > 0 {
			t.Errorf("%s: %d temp files left in TMPDIR", name, len(files))
		}
	}

	res, r := drill(t, e)
	if r.code != 0 || !res.OK || res.Reason != result.ReasonDrillSucceeded || res.Object != good.Key {
		t.Fatalf("good backup: exit %d, %+v", r.code, res)
	}
	// 40 users, 80 sessions, 40 audit rows, schema_migrations, the canary...
	if res.Rows < 40+80+40+1 || res.Tables < 5 || res.BackupTime == "" || res.RestoreMS <= 0 {
		t.Errorf("good backup: facts %+v", res)
	}
	if r.log["msg"] != "drill done" || r.log["backup_age_s"] == nil || strings.Contains(r.stderr, pg.Server().Password()) || strings.Contains(r.stderr, drillPepper) {
		t.Errorf("log line %v", r.log)
	}
	leftovers("good backup", running)
	if _, err := admin.Exec(ctx, "DROP DATABASE "+running); err != nil {
		t.Fatal(err)
	}

	stat, err := c.StatObject(ctx, "backups", good.Key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body := download(t, c, "backups", good.Key)
	goodSig := download(t, c, "backups", good.Key+sigSuffix)
	// resign signs the object as it is now with the stack's key: what a backup
	// Job that recorded other counts than it dumped (a bug) would have signed.
	resign := func() {
		t.Helper()
		signer, err := loadSigningKey(key.signingFile)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.StatObject(ctx, "backups", good.Key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hs := newHashSize()
		hs.Write(download(t, c, "backups", good.Key))
		raw := int64(0)
		fmt.Sscanf(string(goodSig)[strings.Index(string(goodSig), "raw-size "):], "raw-size %d", &raw)
		b := sign(statement{Name: strings.TrimPrefix(good.Key, "drills/"), Size: hs.n, SHA512: hs.hex(), RawSize: raw, Manifest: manifestDigest(info.UserMetadata)}, signer)
		if _, err := c.PutObject(ctx, "backups", good.Key+sigSuffix, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(name string, b []byte, meta map[string]string) {
		t.Helper()
		if _, err := c.PutObject(ctx, "backups", good.Key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{UserMetadata: meta}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	manifestOf := func() string {
		for k, v := range stat.UserMetadata {
			if strings.EqualFold(k, manifestMeta) {
				return v
			}
		}
		t.Fatalf("no manifest in %v", stat.UserMetadata)
		return ""
	}
	goodMeta := map[string]string{manifestMeta: manifestOf()}

	// Counts that differ from what is restored: a manifest sealed with one
	// more user than the dump holds.
	pub, err := loadPublicKeys(key.publicFile)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := loadPrivateKeys(key.privateFile, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := openManifest(goodMeta, priv)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows["public.users"] != 40 || m.Rows["public.sessions"] != 80 {
		t.Fatalf("manifest counts %v", m.Rows)
	}
	m.Rows["public.users"]++
	forged, err := sealManifest(m, pub)
	if err != nil {
		t.Fatal(err)
	}

	corrupt := bytes.Clone(body)
	corrupt[len(corrupt)/2] ^= 0xff

	cases := []struct {
		name   string
		setup  func()
		env    env
		reason string
		says   []string
	}{
		// Altered after the backup: refused before it is decrypted (sign_test.go has the attacks).
		{"corrupted object", func() { put("corrupt", corrupt, goodMeta) }, e,
			result.ReasonBackupNotAuthentic, []string{good.Key, "not the ones signed"}},
		{"row counts differ", func() { put("forged", body, map[string]string{manifestMeta: forged}); resign() }, e,
			result.ReasonRowCountMismatch, []string{"public.users: 40 restored, 41 dumped"}},
		{"another pepper", func() { put("good", body, goodMeta); resign() }, e.with("AUTH_PEPPER_FILE", otherPepperFile),
			result.ReasonCanaryMismatch, []string{"pepper id", "not among the stack's peppers"}},
		{"a role without CREATEDB", nil, e.with("DATABASE_URL", noCreateDBRole(t, pg, src)),
			result.ReasonScratchDatabaseUnavailable, []string{"may not create", "CREATEDB"}},
		{"a canary that does not verify", func() {
			// The right pepper id, another password: a tampered or damaged hash.
			k, _ := config.ParsePepper(drillPepper)
			h, _ := password.New(password.CanaryParams, []config.Pepper{{ID: config.PepperID(k), Key: k}}, 1, -1, time.Minute)
			bad, _ := h.Hash(ctx, "not the canary password")
			conn, err := pgx.Connect(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			if err := store.SetDrillCanaryHash(ctx, conn, bad); err != nil {
				t.Fatal(err)
			}
			if r := runCLI(t, e, "backup", "postgres"); r.code != 0 {
				t.Fatalf("backup: exit %d", r.code)
			}
		}, e, result.ReasonCanaryMismatch, []string{"does not verify with the stack's pepper"}},
		{"encrypted to another key", func() {
			c.RemoveObject(ctx, "backups", good.Key, minio.RemoveObjectOptions{})
			if r := runCLI(t, e.with("BACKUP_PUBLIC_KEY_FILE", otherKey.publicFile), "backup", "postgres"); r.code != 0 {
				t.Fatalf("backup to the other key: exit %d", r.code)
			}
		}, e, result.ReasonBackupUnreadable, []string{"not encrypted to the key in BACKUP_PRIVATE_KEY_FILE"}},
	}
	for _, tc := range cases {
		if tc.setup != nil {
			tc.setup()
		}
		res, r := drill(t, tc.env)
		if r.code != 1 || res.OK || res.Reason != tc.reason || r.log["reason"] != tc.reason {
			t.Errorf("%s: exit %d, reason %q (log %v), want exit 1 and %s: %s", tc.name, r.code, res.Reason, r.log["reason"], tc.reason, res.Error)
		}
		for _, want := range tc.says {
			if !strings.Contains(res.Error, want) {
				t.Errorf("%s: message %q lacks %q", tc.name, res.Error, want)
			}
		}
		leftovers(tc.name)
	}
	if dbs := scratchDatabases(t, pg); len(dbs) != 0 {
		t.Errorf("stale scratch database not dropped: %v", dbs)
	}
}

// noCreateDBRole makes a login role without CREATEDB that may connect to db,
// and returns db's URL for it.
func noCreateDBRole(t *testing.T, pg *testservers.PostgresServer, db string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pg.AdminURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	role := "drill_nocreatedb_" + servers.RandomSecret(4)
	role = strings.ToLower(role)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN NOCREATEDB PASSWORD 'pw-%s'", role, role)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin2, _ := pgx.Connect(ctx, pg.AdminURL("postgres"))
		admin2.Exec(ctx, "DROP ROLE "+role)
		admin2.Close(ctx)
	})
	u, _ := url.Parse(db)
	u.User = url.UserPassword(role, "pw-"+role)
	return u.String()
}

// The result line round-trips the drill's facts.
func TestDrillResultLine(t *testing.T) {
	in := result.Result{Kind: result.KindVerify, Reason: result.ReasonRowCountMismatch, Object: "p/postgres/x.dump.gz.gpg",
		BackupTime: "2026-11-28T03:00:00Z", RestoreMS: 1200, Tables: 9, Rows: 321, Error: "x"}
	out, ok := result.Parse(string(in.Line()))
	b, _ := json.Marshal(out)
	if !ok || out != in {
		t.Fatalf("round trip: %s", b)
	}
}

// TestDrillCancelledMidRestoreLeavesNothing: a drill stopped while pg_restore
// runs (SIGTERM at the Job's deadline cancels the context) still drops its
// scratch database and removes the decrypted dump.
func TestDrillCancelledMidRestoreLeavesNothing(t *testing.T) {
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	seed(t, src, 5)
	writeCanary(t, src, drillPepper)
	s3, key := newStorage(t)
	e := s3Env(s3, "backups", "", key).with("DATABASE_URL", src, "AUTH_PEPPER", drillPepper)
	if r := runCLI(t, e, "backup", "postgres"); r.code != 0 {
		t.Fatalf("backup: exit %d", r.code)
	}
	// A pg_restore that reads the archive's list, then hangs in the restore.
	dir := t.TempDir()
	mark := filepath.Join(dir, "restoring")
	fake := filepath.Join(dir, "pg_restore")
	script := "#!/bin/sh\nfor a; do [ \"$a\" = --list ] && exec pg_restore \"$@\"; done\ntouch " + mark + "\nexec sleep 600\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	cfg := loadRestore(t, e.with("PG_RESTORE", fake))
	key0, _ := config.ParsePepper(drillPepper)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Verify(ctx, cfg, []config.Pepper{{ID: config.PepperID(key0), Key: key0}})
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pg_restore never started")
		}
		time.Sleep(20 * time.Millisecond) // polling for the mark, not ordering
	}
	if dbs := scratchDatabases(t, pg); len(dbs) != 1 {
		t.Fatalf("while restoring: scratch databases %v, want one", dbs)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled drill succeeded")
	}
	if dbs := scratchDatabases(t, pg); len(dbs) != 0 {
		t.Errorf("scratch databases left: %v", dbs)
	}
	if files, _ := os.ReadDir(tmp); len(files) != 0 {
		t.Errorf("%d temp files left", len(files))
	}
}
