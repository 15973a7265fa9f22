package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/mfa"
	"github.com/leanauth/authstack/authserver/service"
)

// enrolled makes a verified user with TOTP and returns its secret.
func enrolled(t *testing.T, f *fixture, email, pw string) string {
	t.Helper()
	ctx := context.Background()
	res := verifiedUser(t, f, email, pw)
	k, err := f.svc.EnrollTOTP(ctx, res.Session)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := mfa.Code(k.Secret, time.Now().Add(-mfa.Period*time.Second))
	if _, _, err := f.svc.ConfirmTOTP(ctx, cl, res.Session, code); err != nil {
		t.Fatal(err)
	}
	return k.Secret
}

// A password reset committed between the two steps of a login ends the
// challenge: the second factor alone never opens a session for a password
// that is no longer the account's. The reset happens at the hook between
// the code check and the session write.
func TestResetBetweenStepsEndsChallenge(t *testing.T) {
	t.Parallel()
	f := setup(t, 2, time.Second)
	ctx := context.Background()
	email, pw := "steps@example.com", "the first password"
	secret := enrolled(t, f, email, pw)
	res, err := f.svc.Login(ctx, cl, email, pw)
	if err != nil || res.Challenge == nil || res.Token != "" {
		t.Fatalf("password step: %+v %v", res, err)
	}
	tok := resetToken(t, f, email)
	service.SetHook(f.svc, func(point string) {
		if point == "complete-login" {
			if err := f.svc.ResetPassword(ctx, cl, tok, "the second password"); err != nil {
				t.Error(err)
			}
		}
	})
	code, _ := mfa.Code(secret, time.Now())
	if _, err := f.svc.LoginWithCode(ctx, cl, res.Challenge.Token, service.MethodTOTP, code); !errors.Is(err, service.ErrInvalidChallenge) {
		t.Fatalf("second step after a reset: %v", err)
	}
}
