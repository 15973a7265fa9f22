package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/pepperusage"
	"github.com/leanauth/authstack/internal/testservers"
)

const (
	pepperA = "6a1f0c3e9b2d4f5a7c8e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a"
	pepperB = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

// runMigrate runs `authserver migrate` as the process would, with env set, and
// returns its exit code and termination message.
func runMigrate(t *testing.T, env map[string]string) (int, string) {
	t.Helper()
	for _, k := range []string{"DATABASE_URL", "DATABASE_DIRECT_URL", "AUTH_PEPPER", "AUTH_OLD_PEPPERS", "AUTH_PEPPER_SOURCE", "AUTH_RETIRED_PEPPER_IDS", "SENTRY_DSN"} {
		t.Setenv(k, env[k])
		if env[k] == "" {
			os.Unsetenv(k)
		}
	}
	tl := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(tl, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := terminationLog
	terminationLog = tl
	defer func() { terminationLog = old }()
	var stderr strings.Builder
	code := Main([]string{"migrate"}, &strings.Builder{}, &stderr)
	msg, err := os.ReadFile(tl)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 && code != ExitPepperMismatch {
		t.Logf("migrate stderr: %s", stderr.String())
	}
	return code, string(msg)
}

// TestMigrateRefusesAnotherPepper: the restore scenario on a real PostgreSQL. A new
// database passes with any pepper; once users exist, migrate fails (exit 3, a
// termination message naming the Secret and both pepper ids) with a pepper none of
// their hashes uses, and passes with theirs (current or old) or with none configured.
func TestMigrateRefusesAnotherPepper(t *testing.T) {
	url := testservers.Postgres(t).NewDatabase(t)
	ctx := context.Background()

	// Failures are reported to Sentry; a migration that succeeds reports nothing.
	rec := testservers.Sentry(t)

	// A new stack: no users yet, so no pepper can be wrong.
	if code, msg := runMigrate(t, map[string]string{"DATABASE_URL": url, "AUTH_PEPPER": pepperA, "SENTRY_DSN": rec.DSN()}); code != 0 || msg != "" {
		t.Fatalf("migrate of a new database: exit %d, message %q", code, msg)
	}

	// A user signs up with pepper A.
	keyA, _ := config.ParsePepper(pepperA)
	keyB, _ := config.ParsePepper(pepperB)
	idA, idB := config.PepperID(keyA), config.PepperID(keyB)
	h, err := password.New(config.Argon2{MemoryKiB: 64, Iterations: 1, Parallelism: 1},
		[]config.Pepper{{ID: idA, Key: keyA}}, 1, -1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO users (email, password_hash) VALUES ('a@example.com', $1)`, hash); err != nil {
		t.Fatal(err)
	}

	// The restore: the same data, a freshly generated pepper B.
	code, msg := runMigrate(t, map[string]string{"DATABASE_URL": url, "AUTH_PEPPER": pepperB, "AUTH_PEPPER_SOURCE": "demo-pepper", "SENTRY_DSN": rec.DSN()})
	if code != ExitPepperMismatch {
		t.Fatalf("migrate with another pepper: exit %d, want %d", code, ExitPepperMismatch)
	}
	// The first event is the refusal's: the successful run before sent none.
	if ev := rec.Next(t, 0); ev["message"] != "migrate failed" || !strings.Contains(rec.All(), "pepper mismatch") {
		t.Errorf("Sentry event %v, want the refusal", ev)
	}
	if strings.Contains(rec.All(), pepperA) || strings.Contains(rec.All(), pepperB) {
		t.Error("a pepper reached Sentry")
	}
	for _, want := range []string{"pepper mismatch", `Secret "demo-pepper"`, idA, idB, "docs/backup-and-restore.md"} {
		if !strings.Contains(msg, want) {
			t.Errorf("termination message %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, pepperA) || strings.Contains(msg, pepperB) {
		t.Errorf("termination message %q holds a pepper", msg)
	}

	for name, env := range map[string]map[string]string{
		"the right pepper":           {"DATABASE_URL": url, "AUTH_PEPPER": pepperA},
		"a rotated pepper, old kept": {"DATABASE_URL": url, "AUTH_PEPPER": pepperB, "AUTH_OLD_PEPPERS": pepperA},
		"no pepper configured":       {"DATABASE_URL": url},
		// spec.pepperRotation.force retired pepper A before anyone logged in again:
		// its users must reset, but the pods must still start.
		"A retired by force": {"DATABASE_URL": url, "AUTH_PEPPER": pepperB, "AUTH_RETIRED_PEPPER_IDS": idA},
	} {
		if code, msg := runMigrate(t, env); code != 0 || msg != "" {
			t.Errorf("%s: exit %d, message %q", name, code, msg)
		}
	}
}

// TestPeppersCommandCounts: `authserver peppers` on a real PostgreSQL counts what each
// pepper id still protects (user hashes, pending hashes of live verification tokens,
// TOTP secrets) into its termination message, with only DATABASE_URL: no pepper.
func TestPeppersCommandCounts(t *testing.T) {
	url := testservers.Postgres(t).NewDatabase(t)
	ctx := context.Background()
	if code, _ := runMigrate(t, map[string]string{"DATABASE_URL": url}); code != 0 {
		t.Fatalf("migrate: exit %d", code)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	phc := func(id string) string { return "$argon2id$v=19$m=8192,t=1,p=1,keyid=" + id + "$c2FsdA$aGFzaA" }
	for i, id := range []string{"AAAAAAAA", "AAAAAAAA", "BB+/BBBB"} {
		var uid string
		if err := conn.QueryRow(ctx, `INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id`,
			fmt.Sprintf("u%d@example.com", i), phc(id)).Scan(&uid); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := conn.Exec(ctx, `INSERT INTO user_totp (user_id, secret_enc, key_id) VALUES ($1, 'x', 'BB+/BBBB')`, uid); err != nil {
				t.Fatal(err)
			}
			// A live verification token's pending hash counts; a used or expired one does not.
			for _, q := range []string{
				`INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at, password_hash) VALUES ('a', $1, 'verify', now() + interval '1 hour', $2)`,
				`INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at, password_hash) VALUES ('b', $1, 'verify', now() - interval '1 hour', $2)`,
				`INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at, password_hash, used_at) VALUES ('c', $1, 'verify', now() + interval '1 hour', $2, now())`,
			} {
				if _, err := conn.Exec(ctx, q, uid, phc("CCCCCCCC")); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	t.Setenv("DATABASE_URL", url)
	os.Unsetenv("DATABASE_DIRECT_URL")
	os.Unsetenv("AUTH_PEPPER")
	tl := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(tl, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := terminationLog
	terminationLog = tl
	defer func() { terminationLog = old }()
	var out, stderr strings.Builder
	if code := Main([]string{"peppers"}, &out, &stderr); code != 0 {
		t.Fatalf("peppers: exit %d: %s", code, stderr.String())
	}
	msg, _ := os.ReadFile(tl)
	u, err := pepperusage.Parse(string(msg))
	if err != nil {
		t.Fatal(err)
	}
	want := pepperusage.Usage{PasswordHashes: map[string]int64{"AAAAAAAA": 2, "BB+/BBBB": 1, "CCCCCCCC": 1}, TOTPSecrets: map[string]int64{"BB+/BBBB": 1}}
	if !reflect.DeepEqual(u, want) || out.String() != string(msg) {
		t.Fatalf("counts %+v (stdout %q), want %+v", u, out.String(), want)
	}
}
