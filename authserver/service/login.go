package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// LoginResult is a new session or, when Challenge is set, no session yet:
// the password was right and a second factor (or its enrolment) must follow.
type LoginResult struct {
	Token     string
	Session   session.Info
	Challenge *Challenge
}

// Challenge is the state between a correct password and a second factor
// (challenge.go).
type Challenge struct {
	Token     string    // 43 characters, like a session token; only its SHA-256 is stored
	Purpose   string    // store.ChallengeMFA or store.ChallengeEnroll
	Methods   []string  // mfa: the user's factors; enroll: the methods offered
	ExpiresAt time.Time // AUTH_MFA_CHALLENGE_TTL after the password step
}

// Login checks credentials and opens a session. An unknown address costs
// the same as a wrong password (a dummy hash is verified) and both answer
// ErrInvalidCredentials; ErrEmailNotVerified comes only after a correct
// password. A password that breaks the length rules is refused before any
// lookup or hash. The session is written only while the password hash is
// still the one verified; when it changed in between, the password is
// verified once more against the new hash (a reset or change wins, a
// rehash of the same password does not refuse it). Whether the user has a
// second factor is read only after the password verified (in the
// transaction that opens the session or the challenge), so a wrong
// password answers and costs the same with or without one.
func (s *Service) Login(ctx context.Context, c Client, emailIn, pw string) (LoginResult, error) {
	email, ok := NormalizeEmail(emailIn)
	if !ok {
		return LoginResult{}, ErrInvalidEmail
	}
	if err := password.CheckLength(pw); err != nil {
		return LoginResult{}, invalidPassword(err)
	}
	acct := ratelimit.AccountKey(email)
	// Failures lock this client out of this account; across clients the
	// account has only the short login-account limit (docs/security.md).
	lock := ratelimit.Pair(acct, c.IP)
	if err := s.allow(ctx, lock,
		ratelimit.Rule{Name: "login-ip", Key: c.IP, Limit: s.limits.LoginIP},
		ratelimit.Rule{Name: "login-account", Key: acct, Limit: s.limits.LoginAccount}); err != nil {
		return LoginResult{}, err
	}
	u, err := store.UserByEmail(ctx, s.store.Pool, email)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return LoginResult{}, fmt.Errorf("logging in: %w", err)
	}
	known := err == nil
	var res password.Result
	if known {
		res, err = s.hasher.Verify(ctx, pw, u.PasswordHash)
		switch {
		case errors.Is(err, password.ErrUnknownPepper):
			// Answered like a wrong password (no account enumeration); the
			// forgot-password flow sets a hash with the current pepper.
			s.log.Warn("password hash uses a retired pepper: the user must reset their password", "user_id", u.ID)
			err = nil
		case err != nil && !errors.Is(err, password.ErrBusy) && !errors.Is(err, context.Canceled):
			s.log.Error("stored password hash unusable", "user_id", u.ID, "error", err.Error())
			err = nil
		}
	} else {
		err = s.hasher.VerifyDummy(ctx, pw)
	}
	if err != nil {
		return LoginResult{}, hashErr(err)
	}
	if !res.OK {
		return LoginResult{}, s.loginFailed(ctx, c, lock, u.ID)
	}
	if !u.EmailVerified {
		s.loginSucceeded(ctx, lock)
		return LoginResult{}, ErrEmailNotVerified
	}
	s.hook("login")
	out, now, err := s.openPasswordSession(ctx, c, u)
	if errors.Is(err, store.ErrHashChanged) {
		// The hash changed since it was verified: a rehash of the same
		// password (a correct password is never refused for it) or a reset
		// or change (whose new password this one must match). Verify once
		// more against the hash now stored.
		u = now
		res, err = s.hasher.Verify(ctx, pw, u.PasswordHash)
		if errors.Is(err, password.ErrBusy) || ctx.Err() != nil {
			return LoginResult{}, hashErr(err)
		}
		if err != nil || !res.OK {
			return LoginResult{}, ErrInvalidCredentials
		}
		if !u.EmailVerified {
			return LoginResult{}, ErrEmailNotVerified
		}
		out, _, err = s.openPasswordSession(ctx, c, u)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrHashChanged) {
		return LoginResult{}, ErrInvalidCredentials
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("creating session: %w", err)
	}
	// The client's failure count is reset only when a session opens: were
	// it reset by the password step, someone holding the password could
	// guess second-factor codes without end, a fresh challenge at a time.
	if out.Challenge == nil {
		s.loginSucceeded(ctx, lock)
		s.sessions.Cache(ctx, out.Token, out.Session)
	}
	if res.NeedsRehash {
		// Off the response path: an extra hash only for accounts with an
		// old pepper or old parameters would show in the response time.
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			s.rehash(rctx, u, pw)
		}()
	}
	return out, nil
}

// openPasswordSession is openSession in one statement
// (store.OpenPasswordSession) for the common case, a user without a second
// factor on a stack that does not require one; the others go through
// openSession, which writes their challenge.
func (s *Service) openPasswordSession(ctx context.Context, c Client, u store.User) (LoginResult, store.User, error) {
	if s.mfa.Required {
		return s.openSession(ctx, c, u)
	}
	now := u
	tok, info, err := s.sessions.CreateWith(u, c.IP, c.UserAgent, session.LevelPassword, func(ss *store.Session) error {
		var err error
		now, err = store.OpenPasswordSession(ctx, s.store.Pool, u.PasswordHash, ss, audit.LoginSuccess)
		ss.Email, ss.EmailVerified = now.Email, now.EmailVerified
		return err
	})
	switch {
	case errors.Is(err, store.ErrHasFactor):
		return s.openSession(ctx, c, u)
	case err != nil:
		return LoginResult{}, now, err
	}
	s.audit.Count(audit.LoginSuccess)
	return LoginResult{Token: tok, Session: info}, now, nil
}

// openSession writes, while u's password hash is still the one verified, a
// session for u, or a challenge when u has a second factor or must enrol
// one; otherwise it returns store.ErrHashChanged and the user as stored.
func (s *Service) openSession(ctx context.Context, c Client, u store.User) (LoginResult, store.User, error) {
	var out LoginResult
	var now store.User
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		var err error
		if now, err = store.LockUser(ctx, tx, u.ID); err != nil {
			return err
		}
		if now.PasswordHash != u.PasswordHash {
			return store.ErrHashChanged
		}
		f, err := store.UserFactors(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if f.Any() || s.mfa.Required {
			ch, err := s.newChallenge(ctx, tx, c, now, f)
			out = LoginResult{Challenge: ch}
			return err
		}
		out, err = s.createSession(ctx, tx, c, now, session.LevelPassword, "password")
		return err
	})
	return out, now, err
}

// createSession opens a session for u at level (inside tx) and audits the
// login with the method that completed it.
func (s *Service) createSession(ctx context.Context, tx store.DBTX, c Client, u store.User, level, method string) (LoginResult, error) {
	tok, info, err := s.sessions.Create(ctx, tx, u, c.IP, c.UserAgent, level)
	if err != nil {
		return LoginResult{}, err
	}
	err = s.audit.Record(ctx, tx, audit.LoginSuccess, u.ID, c, map[string]any{"session_id": info.ID, "method": method})
	return LoginResult{Token: tok, Session: info}, err
}

// loginSucceeded resets this client's failure count on the account.
func (s *Service) loginSucceeded(ctx context.Context, lock string) {
	if err := s.limiter.RecordSuccess(ctx, lock); err != nil {
		s.log.Warn("resetting login failures", "error", err.Error())
	}
}

// rehash replaces a hash made with an old pepper, old parameters or from the
// password before normalisation. A failure is logged, not fatal: the old
// hash still works.
func (s *Service) rehash(ctx context.Context, u store.User, pw string) {
	h, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		err = store.UpdatePasswordHashIf(ctx, s.store.Pool, u.ID, u.PasswordHash, h)
	}
	if err != nil {
		s.log.Warn("rehashing password", "user_id", u.ID, "error", err.Error())
		return
	}
	s.log.Info("password rehashed with current pepper and parameters", "user_id", u.ID)
}

func (s *Service) loginFailed(ctx context.Context, c Client, lock, userID string) error {
	reason := "wrong_password"
	if userID == "" {
		reason = "unknown_account"
	}
	s.failed(ctx, c, lock, userID, audit.LoginFail, map[string]any{"reason": reason})
	return ErrInvalidCredentials
}

// failed counts a failed authentication (a password or a second factor)
// towards this client's lockout of the account and audits it as kind.
func (s *Service) failed(ctx context.Context, c Client, lock, userID, kind string, details map[string]any) {
	locked, err := s.limiter.RecordFailure(ctx, lock)
	if err != nil {
		s.log.Warn("recording login failure", "error", err.Error())
	}
	if err := s.audit.Record(ctx, s.store.Pool, kind, userID, c, details); err != nil {
		s.log.Error("writing audit log", "kind", kind, "error", err.Error())
	}
	if locked > 0 {
		if err := s.audit.Record(ctx, s.store.Pool, audit.Lockout, userID, c, map[string]any{"locked_seconds": int(locked / time.Second)}); err != nil {
			s.log.Error("writing audit log", "kind", audit.Lockout, "error", err.Error())
		}
	}
}
