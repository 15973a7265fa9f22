package backup

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/leanauth/authstack/internal/testservers"
)

// TestFailuresReportedToSentry: with SENTRY_DSN, a backup that fails (exit 1)
// arrives in Sentry through the SDK's real transport, as the release, with the
// error and scrubbed (no password, no S3 secret, no email); a configuration the
// caller got wrong (exit 2) sends nothing.
func TestFailuresReportedToSentry(t *testing.T) {
	pg := testservers.Postgres(t)
	src := pg.NewDatabase(t)
	s3, key := newStorage(t)
	rec := testservers.Sentry(t)
	e := s3Env(s3, "backups", "p", key).with("SENTRY_DSN", rec.DSN()).with("SENTRY_ENVIRONMENT", "backup-test")

	if r := runCLI(t, env{"DATABASE_URL": src, "SENTRY_DSN": rec.DSN()}, "backup", "postgres"); r.code != 2 {
		t.Fatalf("missing settings: exit %d, want 2", r.code)
	}
	// A role named like an email with a wrong password: the server's refusal quotes it.
	const email = "alice.backup@example.com"
	u, err := url.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(email, "wrong-password")
	badRole := u.String()
	if r := runCLI(t, e.with("DATABASE_URL", badRole), "backup", "postgres"); r.code != 1 {
		t.Fatalf("wrong password: exit %d, want 1", r.code)
	}
	ev := rec.Next(t, 0)
	raw := rec.All()
	if ev["message"] != "backup failed" || ev["release"] != "v0.0.0-test" || ev["environment"] != "backup-test" ||
		!strings.Contains(raw, "password authentication failed") || !strings.Contains(fmt.Sprint(ev), `user "<email>"`) {
		t.Fatalf("event %v; envelopes:\n%s", ev, raw)
	}
	for _, secret := range []string{"wrong-password", pg.Server().Password(), s3.SecretKey(), email} {
		if strings.Contains(raw, secret) {
			t.Errorf("Sentry got %q:\n%s", secret, raw)
		}
	}
	if n := rec.Events(); n != 1 {
		t.Errorf("%d events, want 1 (the exit 2 run reports nothing)", n)
	}
}
