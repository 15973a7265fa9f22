package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/leanauth/authstack/authserver/service"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// verifiedUser signs up, verifies and returns a logged-in session.
func verifiedUser(t *testing.T, f *fixture, email, pw string) service.LoginResult {
	t.Helper()
	ctx := context.Background()
	if err := f.svc.Signup(ctx, cl, email, pw); err != nil {
		t.Fatal(err)
	}
	msgs := outbox(t, f.st)
	if err := f.svc.VerifyEmail(ctx, cl, tokenOf(t, msgs[len(msgs)-1].Text)); err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Login(ctx, cl, email, pw)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// resetToken requests a reset and returns the token of its email.
func resetToken(t *testing.T, f *fixture, email string) string {
	t.Helper()
	if err := f.svc.ForgotPassword(context.Background(), cl, email); err != nil {
		t.Fatal(err)
	}
	msgs := outbox(t, f.st)
	if msgs[len(msgs)-1].Kind != "reset" {
		t.Fatalf("last email is %q, not a reset", msgs[len(msgs)-1].Kind)
	}
	return tokenOf(t, msgs[len(msgs)-1].Text)
}

// pause makes the flow at point stop between its check and its write until
// the returned release is called; reached is closed when it got there.
func pause(f *fixture, point string) (reached <-chan struct{}, release func()) {
	r, g := make(chan struct{}), make(chan struct{})
	service.SetHook(f.svc, func(p string) {
		if p == point {
			close(r)
			<-g
		}
	})
	return r, func() { close(g) }
}

func sessionsOf(t *testing.T, f *fixture, email string) int {
	t.Helper()
	var n int
	if err := f.st.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = $1", email).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A login that verified the old password must not leave a session behind
// once a reset committed between its check and its write.
func TestLoginRacingResetLeavesNoSession(t *testing.T) {
	t.Parallel()
	f := setup(t, 2, time.Second)
	ctx := context.Background()
	email := "race-login@example.com"
	verifiedUser(t, f, email, "old password 123")
	tok := resetToken(t, f, email)

	reached, release := pause(f, "login")
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Login(ctx, cl, email, "old password 123")
		done <- err
	}()
	<-reached // the old password is verified; the session is not written yet
	if err := f.svc.ResetPassword(ctx, cl, tok, "new password 456"); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; !errors.Is(err, service.ErrInvalidCredentials) {
		t.Fatalf("login that verified the replaced password: %v, want invalid credentials", err)
	}
	if n := sessionsOf(t, f, email); n != 0 {
		t.Fatalf("%d sessions after the reset, want 0", n)
	}
}

// A change authenticated by a session that a reset revoked in between fails,
// and the reset's password stands.
func TestChangeRacingResetFails(t *testing.T) {
	t.Parallel()
	f := setup(t, 2, time.Second)
	ctx := context.Background()
	email := "race-change@example.com"
	cur := verifiedUser(t, f, email, "old password 123")
	tok := resetToken(t, f, email)

	reached, release := pause(f, "change")
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.ChangePassword(ctx, cl, cur.Session, "old password 123", "changed password 789")
		done <- err
	}()
	<-reached
	if err := f.svc.ResetPassword(ctx, cl, tok, "reset password 456"); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; !errors.Is(err, service.ErrUnauthorized) {
		t.Fatalf("change with a revoked session: %v, want unauthorized", err)
	}
	if _, err := f.svc.Login(ctx, cl, email, "changed password 789"); !errors.Is(err, service.ErrInvalidCredentials) {
		t.Fatalf("the racing change's password works: %v", err)
	}
	if _, err := f.svc.Login(ctx, cl, email, "reset password 456"); err != nil {
		t.Fatalf("the reset's password: %v", err)
	}
}

// A login racing a password change loses too (compare-and-set on the hash).
func TestLoginRacingChangeLeavesNoSession(t *testing.T) {
	t.Parallel()
	f := setup(t, 2, time.Second)
	ctx := context.Background()
	email := "race-login-change@example.com"
	cur := verifiedUser(t, f, email, "old password 123")

	reached, release := pause(f, "login")
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Login(ctx, cl, email, "old password 123")
		done <- err
	}()
	<-reached
	service.SetHook(f.svc, nil) // the change below must not stop at a hook
	res, err := f.svc.ChangePassword(ctx, cl, cur.Session, "old password 123", "new password 456")
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; !errors.Is(err, service.ErrInvalidCredentials) {
		t.Fatalf("login that verified the replaced password: %v", err)
	}
	if n := sessionsOf(t, f, email); n != 1 {
		t.Fatalf("%d sessions, want only the change's new one", n)
	}
	if _, err := f.svc.Authenticate(ctx, res.Token); err != nil {
		t.Fatalf("the change's new session: %v", err)
	}
}

// A change ends every old credential: reset links mailed before it, every
// session (the one it was made with too, whose token is replaced).
func TestChangeEndsOldCredentials(t *testing.T) {
	t.Parallel()
	f := setup(t, 2, time.Second)
	ctx := context.Background()
	email := "change@example.com"
	cur := verifiedUser(t, f, email, "old password 123")
	other, err := f.svc.Login(ctx, cl, email, "old password 123")
	if err != nil {
		t.Fatal(err)
	}
	tok := resetToken(t, f, email)
	res, err := f.svc.ChangePassword(ctx, cl, cur.Session, "old password 123", "new password 456")
	if err != nil {
		t.Fatal(err)
	}
	if res.Token == "" || res.Token == cur.Token || res.Session.ID == cur.Session.ID {
		t.Fatalf("the change did not rotate the session: %+v", res.Session)
	}
	for _, old := range []string{cur.Token, other.Token} {
		if _, err := f.svc.Authenticate(ctx, old); !errors.Is(err, service.ErrUnauthorized) {
			t.Fatalf("a session from before the change still works: %v", err)
		}
	}
	if _, err := f.svc.Authenticate(ctx, res.Token); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ResetPassword(ctx, cl, tok, "attacker password 1"); !errors.Is(err, service.ErrInvalidToken) {
		t.Fatalf("a reset link mailed before the change: %v, want invalid token", err)
	}
}

// A made-up reset token is refused before the password is hashed: it never
// takes a hashing slot.
func TestMadeUpResetTokenIsNotHashed(t *testing.T) {
	t.Parallel()
	f := setup(t, 1, time.Second)
	before, _, _ := f.hasher.Work()
	tok, _ := session.NewToken()
	if err := f.svc.ResetPassword(context.Background(), cl, tok, "some new password 1"); !errors.Is(err, service.ErrInvalidToken) {
		t.Fatalf("made-up token: %v", err)
	}
	if after, _, _ := f.hasher.Work(); after != before {
		t.Fatalf("a made-up reset token cost %d argon2 derivations", after-before)
	}
}

// A rehash of the same password (a background rehash of another login)
// that commits between a login's check and its write does not refuse the
// correct password.
func TestLoginRacingRehashSucceeds(t *testing.T) {
	t.Parallel()
	f := setup(t, 2, time.Second)
	ctx := context.Background()
	email := "race-rehash@example.com"
	pw := "the right password 1"
	verifiedUser(t, f, email, pw)

	reached, release := pause(f, "login")
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Login(ctx, cl, email, pw)
		done <- err
	}()
	<-reached // the password is verified; the session is not written yet
	var id, old string
	if err := f.st.Pool.QueryRow(ctx, "SELECT id::text, password_hash FROM users WHERE email = $1", email).Scan(&id, &old); err != nil {
		t.Fatal(err)
	}
	rehashed, err := f.hasher.Hash(ctx, pw) // a new salt: another hash of the same password
	if err != nil {
		t.Fatal(err)
	}
	if err := store.UpdatePasswordHashIf(ctx, f.st.Pool, id, old, rehashed); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("a correct password refused after a rehash committed: %v", err)
	}
	if n := sessionsOf(t, f, email); n != 2 {
		t.Fatalf("%d sessions, want 2 (verifiedUser's and this login's)", n)
	}
}

// A verification token that outlives the verification of its account (a
// second signer's signup statement that read the account as unverified
// while the owner's verify or reset committed) activates nothing: the
// account's password is the owner's from then on.
func TestVerifyTokenOfVerifiedAccountActivatesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t, 2, time.Second)
	ctx := context.Background()
	email := "late-token@example.com"
	owner := verifiedUser(t, f, email, "owners own password 1")
	planted, err := f.hasher.Hash(ctx, "attackers password 1")
	if err != nil {
		t.Fatal(err)
	}
	tok, th := session.NewToken()
	if _, err := f.st.Pool.Exec(ctx, `INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at, password_hash)
		SELECT $1, id, 'verify', now() + interval '1 hour', $2 FROM users WHERE email = $3`, th[:], planted, email); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.VerifyEmail(ctx, cl, tok); !errors.Is(err, service.ErrInvalidToken) {
		t.Errorf("verifying a verified account: %v, want invalid token", err)
	}
	if _, err := f.svc.Login(ctx, cl, email, "attackers password 1"); !errors.Is(err, service.ErrInvalidCredentials) {
		t.Fatalf("the late token's password works: %v", err)
	}
	if _, err := f.svc.Login(ctx, cl, email, "owners own password 1"); err != nil {
		t.Fatalf("the owner's password: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, owner.Token); err != nil {
		t.Fatalf("the owner's session: %v", err)
	}
}

// The same for a password change: a rehash of the current password (by a
// login on another device) committing between the check and the write
// does not refuse the change.
func TestChangeRacingRehashSucceeds(t *testing.T) {
	t.Parallel()
	f := setup(t, 2, time.Second)
	ctx := context.Background()
	email := "race-change-rehash@example.com"
	cur := verifiedUser(t, f, email, "old password 123")

	reached, release := pause(f, "change")
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.ChangePassword(ctx, cl, cur.Session, "old password 123", "new password 456")
		done <- err
	}()
	<-reached
	var id, old string
	if err := f.st.Pool.QueryRow(ctx, "SELECT id::text, password_hash FROM users WHERE email = $1", email).Scan(&id, &old); err != nil {
		t.Fatal(err)
	}
	rehashed, err := f.hasher.Hash(ctx, "old password 123")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.UpdatePasswordHashIf(ctx, f.st.Pool, id, old, rehashed); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("a change with the correct password refused after a rehash committed: %v", err)
	}
	service.SetHook(f.svc, nil)
	if _, err := f.svc.Login(ctx, cl, email, "new password 456"); err != nil {
		t.Fatalf("the changed password: %v", err)
	}
}
