package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/leanauth/authstack/authserver/app"
	"github.com/leanauth/authstack/authserver/internal/authtest"
)

// A session stolen within AUTH_STEPUP_WINDOW of its login, on an account
// without a second factor, enrols the thief's TOTP and ends the owner's
// sessions. The owner's password reset does not remove factors (a reset
// proves the mailbox, not the authenticators: docs/security.md), so the
// owner's login stops at a challenge only the thief answers. The way out is
// the administrator's: `authserver factors-reset EMAIL` removes every factor
// and session, and the owner logs in with the new password.
func TestAdminResetsFactorsAThiefEnrolled(t *testing.T) {
	t.Parallel()
	e := authtest.Start(t, authtest.Options{})
	owner, newPw := "fresh-session-owner@example.com", "the owners new passphrase"
	stolen := e.SignupVerifyLogin(t, owner, "the owners passphrase")
	enrollTOTP(t, e, stolen)
	if r := e.Do(t, "POST", "/auth/logout-all", nil, authtest.Bearer(stolen)...); r.Status != 204 {
		t.Fatalf("logout-all: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/password/forgot", map[string]string{"email": owner}); r.Status != 202 {
		t.Fatalf("forgot: %d %s", r.Status, r.Body)
	}
	if r := e.Do(t, "POST", "/auth/password/reset", map[string]string{"token": resetToken(t, e, owner), "password": newPw}); r.Status != 204 {
		t.Fatalf("reset: %d %s", r.Status, r.Body)
	}
	passwordStep(t, e, owner, newPw, "mfa_required") // the thief's factor: the documented limit

	getenv := databaseEnv(e)
	ctx := context.Background()
	for _, bad := range []string{"not-an-address", "nobody@example.com"} {
		var out bytes.Buffer
		if err := app.FactorsResetCommand(ctx, getenv, bad, &out); err == nil || out.Len() > 0 || strings.Contains(err.Error(), bad) {
			t.Fatalf("factors-reset %q: %v, printed %q (want an error that does not repeat the input)", bad, err, out.String())
		}
	}
	var out bytes.Buffer
	if err := app.FactorsResetCommand(ctx, getenv, " Fresh-Session-Owner@Example.com", &out); err != nil {
		t.Fatal(err)
	}
	var res app.FactorsReset
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || !res.TOTP || res.RecoveryCodes == 0 || res.UserID == "" ||
		strings.Contains(out.String(), "example.com") {
		t.Fatalf("factors-reset printed %q (%v)", out.String(), err)
	}
	if auditCount(t, e, "MFA_RESET") != 1 {
		t.Fatalf("no MFA_RESET audit row")
	}
	r := e.Do(t, "POST", "/auth/login", creds(owner, newPw))
	if r.Status != 200 || r.JSON["token"] == nil {
		t.Fatalf("the owner after factors-reset: %d %s", r.Status, r.Body)
	}
	// The thief's recovery codes went with the factor.
	out.Reset()
	if err := app.FactorsResetCommand(ctx, getenv, owner, &out); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.TOTP || res.RecoveryCodes != 0 || res.Passkeys != 0 || res.SessionsEnded != 1 {
		t.Fatalf("second factors-reset: %q (%v); want nothing left but the owner's new session", out.String(), err)
	}
}
