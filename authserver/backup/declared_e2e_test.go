package backup_test

// The declared restore's command end to end (docs/backup-and-restore.md,
// "Declare a restore"): a real authserver over real PostgreSQL, pgbouncer and
// Redis, backed up by `authserver backup postgres` to a real S3 server, then
// restored the way the operator's restore Job runs it.

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/leanauth/authstack/authserver/backup"
	"github.com/leanauth/authstack/authserver/backup/result"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/internal/authtest"
	"github.com/leanauth/authstack/internal/testservers"
)

// keyPair writes an armored OpenPGP key pair and returns the two file names.
func keyPair(t *testing.T) (public, private string) {
	t.Helper()
	ent, err := openpgp.NewEntity("AuthStack backups", "", "ops@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, kind string, serialize func(w *bytes.Buffer) error) string {
		var buf bytes.Buffer
		aw, err := armor.Encode(&buf, kind, nil)
		if err != nil {
			t.Fatal(err)
		}
		var raw bytes.Buffer
		if err := serialize(&raw); err != nil {
			t.Fatal(err)
		}
		aw.Write(raw.Bytes())
		aw.Close()
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	public = write("public.asc", openpgp.PublicKeyType, func(w *bytes.Buffer) error { return ent.Serialize(w) })
	private = write("private.asc", openpgp.PrivateKeyType, func(w *bytes.Buffer) error { return ent.SerializePrivate(w, nil) })
	return public, private
}

// cli runs `authserver args...` with env added to the process environment
// (each run sets every variable it reads) and returns the exit code, the last
// log line and the result file's line.
func cli(t *testing.T, env map[string]string, args ...string) (int, map[string]any, result.Result) {
	t.Helper()
	resultFile := filepath.Join(t.TempDir(), "termination-log")
	env["BACKUP_RESULT_FILE"] = resultFile
	for k, v := range env {
		t.Setenv(k, v)
	}
	var stdout, stderr bytes.Buffer
	code := backup.Main(args, "test", &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	var log map[string]any
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &log)
	b, _ := os.ReadFile(resultFile)
	res, _ := result.Parse(string(b))
	t.Logf("authserver %s: exit %d: %s", strings.Join(args, " "), code, lines[len(lines)-1])
	return code, log, res
}

func relations(t *testing.T, url string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func sessionKeys(t *testing.T, url string) []string {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	keys, err := c.Keys(context.Background(), "authstack:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, "authstack:session") || strings.HasPrefix(k, "authstack:revoked:") {
			out = append(out, k)
		}
	}
	return out
}

func TestDeclaredRestoreEndToEnd(t *testing.T) {
	// The stack before the disaster: users with sessions.
	old := authtest.Start(t, authtest.Options{})
	pepper := old.Vars["AUTH_PEPPER"]
	const pwAlice, pwBob, pwBobNew = "correct horse battery staple", "tr0ub4dor&3 but longer", "a brand new password 42"
	tokAliceOld := old.SignupVerifyLogin(t, "alice@example.com", pwAlice)
	tokBob := old.SignupVerifyLogin(t, "bob@example.com", pwBob)

	s3 := testservers.S3(t)
	s3.CreateBucket(t, "backups")
	pub, priv := keyPair(t)
	signing, verify := backup.WriteSigningKey(t, t.TempDir())
	s3env := map[string]string{
		"S3_ENDPOINT": s3.Endpoint(), "S3_BUCKET": "backups", "S3_PREFIX": "prod/team-a", "S3_REGION": s3.Region(),
		"S3_FORCE_PATH_STYLE": "true", "AWS_ACCESS_KEY_ID": s3.AccessKey(), "AWS_SECRET_ACCESS_KEY": s3.SecretKey(),
		"BACKUP_SIGNING_KEY_FILE": signing, "BACKUP_VERIFY_KEY_FILE": verify,
	}
	with := func(kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range s3env {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	if code, _, res := cli(t, with("DATABASE_URL", old.DirectURL, "BACKUP_PUBLIC_KEY_FILE", pub), "backup", "postgres"); code != 0 || !res.OK {
		t.Fatalf("backup: exit %d", code)
	}

	// After the backup: Alice logs out (a revocation the backup does not know),
	// Bob changes his password (which revokes his sessions), and Alice signs in
	// again: a session only the old stack's Redis cache and database know.
	if r := old.Do(t, "POST", "/auth/logout", nil, authtest.Bearer(tokAliceOld)...); r.Status/100 != 2 {
		t.Fatalf("logout: %d %s", r.Status, r.Body)
	}
	if r := old.Do(t, "POST", "/auth/password/change", map[string]string{"current_password": pwBob, "new_password": pwBobNew}, authtest.Bearer(tokBob)...); r.Status != 200 {
		t.Fatalf("password change: %d %s", r.Status, r.Body)
	}
	r := old.Do(t, "POST", "/auth/login", map[string]string{"email": "alice@example.com", "password": pwAlice})
	if r.Status != 200 {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	tokAliceNew := r.JSON["token"].(string)
	if r := old.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tokAliceNew)...); r.Status != 200 {
		t.Fatalf("new session: %d", r.Status)
	}
	if len(sessionKeys(t, old.Redis.URL())) == 0 {
		t.Fatal("the old stack cached no session: the flush below would prove nothing")
	}
	if err := old.Stop(t); err != nil {
		t.Fatal(err)
	}

	// The new stack: an empty database, the same Redis (an external one that
	// survived), and the restore Job's environment.
	target := testservers.Postgres(t).NewDatabase(t)
	restoreEnv := func(pepperHex string) map[string]string {
		return with("DATABASE_URL", target, "BACKUP_PRIVATE_KEY_FILE", priv, "REDIS_URL", old.Redis.URL(),
			"AUTH_PEPPER", pepperHex, "AUTH_PEPPER_SOURCE", "demo-pepper")
	}

	// A stack that generated a fresh pepper: refused before anything is written,
	// naming the Secret and both pepper ids (never a value).
	wrong := authtest.Pepper()
	code, log, res := cli(t, restoreEnv(wrong), "restore", "postgres", "--once")
	key, _ := config.ParsePepper(pepper)
	wrongKey, _ := config.ParsePepper(wrong)
	msg, _ := log["error"].(string)
	if code != 4 || res.Reason != result.RestorePepperMismatch || res.OK ||
		!strings.Contains(msg, `Secret "demo-pepper"`) || !strings.Contains(msg, config.PepperID(key)) || !strings.Contains(msg, config.PepperID(wrongKey)) {
		t.Fatalf("wrong pepper: exit %d, reason %q, message %q", code, res.Reason, msg)
	}
	if strings.Contains(msg, wrong) || strings.Contains(msg, pepper) {
		t.Fatal("a pepper value is in the message")
	}
	if n := relations(t, target); n != 0 {
		t.Fatalf("a refused restore wrote %d tables", n)
	}

	// The right pepper: restored, every restored session revoked, the cache flushed.
	code, _, res = cli(t, restoreEnv(pepper), "restore", "postgres", "--once")
	if code != 0 || !res.OK || !strings.HasPrefix(res.Object, "prod/team-a/postgres/") || res.Reason != "" {
		t.Fatalf("restore: exit %d, %+v", code, res)
	}
	if keys := sessionKeys(t, old.Redis.URL()); len(keys) != 0 {
		t.Errorf("session cache entries survived the restore: %v", keys)
	}
	// Run again (a lost status): the marker says it is done; nothing changes.
	code, _, again := cli(t, restoreEnv(pepper), "restore", "postgres", "--once")
	if code != 0 || again.Reason != result.RestoreAlreadyRestored || again.Object != res.Object {
		t.Fatalf("second run: exit %d, %+v", code, again)
	}
	// Without --once a non-empty target is refused (exit 4, TargetNotEmpty).
	if code, _, res := cli(t, restoreEnv(pepper), "restore", "postgres"); code != 4 || res.Reason != result.RestoreTargetNotEmpty {
		t.Fatalf("non-empty target: exit %d, %+v", code, res)
	}

	// The restored stack serves with the pepper of the data.
	restored := authtest.Start(t, authtest.Options{DirectURL: target, Redis: old.Redis, Vars: map[string]string{"AUTH_PEPPER": pepper}})
	for name, tok := range map[string]string{"revoked after the backup": tokAliceOld, "created after the backup": tokAliceNew, "revoked by a later password change": tokBob} {
		if r := restored.Do(t, "GET", "/auth/session", nil, authtest.Bearer(tok)...); r.Status != 401 {
			t.Errorf("session %s: %d after the restore, want 401", name, r.Status)
		}
	}
	if r := restored.Do(t, "POST", "/auth/login", map[string]string{"email": "alice@example.com", "password": pwAlice}); r.Status != 200 {
		t.Fatalf("login after the restore: %d %s", r.Status, r.Body)
	}
	// Bob's password change came after the backup: the data-loss window. His old
	// password is the one restored (documented); the new one does not work.
	if r := restored.Do(t, "POST", "/auth/login", map[string]string{"email": "bob@example.com", "password": pwBob}); r.Status != 200 {
		t.Fatalf("bob's password at backup time: %d %s", r.Status, r.Body)
	}
}
