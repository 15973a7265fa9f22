package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/mail"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// ForgotPassword queues a reset email when the address has an account. Every
// branch renders the email and runs the same one statement (an audit row is
// written for unknown addresses too) so the answer and its timing match.
func (s *Service) ForgotPassword(ctx context.Context, c Client, emailIn string) error {
	email, th, m, err := s.linkEmail(ctx, c, emailIn, mail.KindReset, s.links.Reset, s.reset)
	if err != nil {
		return err
	}
	known, err := store.RequestReset(ctx, s.store.Pool, email, th[:], s.reset, m, who(c))
	if err != nil {
		return fmt.Errorf("requesting password reset: %w", err)
	}
	s.audit.Count(audit.PasswordResetRequested)
	if known {
		s.queued()
	}
	return nil
}

// ResetPassword sets a new password with a reset token: it ends every
// session and every other email link of the user and lifts the account's
// login lock. It also proves the address, so it is marked verified. The
// token is checked (and the client limited) before the password is hashed.
func (s *Service) ResetPassword(ctx context.Context, c Client, tok, pw string) error {
	h, ok := session.HashToken(tok)
	if !ok {
		return ErrInvalidToken
	}
	if err := password.Validate(pw); err != nil {
		return invalidPassword(err)
	}
	if err := s.tokenLimit(ctx, c); err != nil {
		return err
	}
	uid, err := store.EmailTokenUser(ctx, s.store.Pool, store.PurposeReset, h[:])
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("resetting password: %w", err)
	}
	// Hash before consuming: a busy server must not burn the single-use token.
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return hashErr(err)
	}
	s.hook("reset")
	var revoked [][]byte
	var email string
	err = s.store.InTx(ctx, func(tx store.DBTX) error {
		u, err := store.LockUser(ctx, tx, uid)
		if err != nil {
			return err
		}
		email = u.Email
		if _, err := store.ConsumeEmailToken(ctx, tx, store.PurposeReset, h[:], uid); err != nil {
			return err
		}
		if err := store.UpdatePasswordHash(ctx, tx, uid, hash); err != nil {
			return err
		}
		if err := store.MarkEmailVerified(ctx, tx, uid); err != nil {
			return err
		}
		if err := store.EndEmailTokens(ctx, tx, uid); err != nil {
			return err
		}
		if revoked, err = store.DeleteUserSessions(ctx, tx, uid, ""); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.PasswordReset, uid, c, map[string]any{"sessions_revoked": len(revoked)})
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("resetting password: %w", err)
	}
	s.sessions.Forget(ctx, revoked...)
	// The owner proved the mailbox: whoever kept the account locked is not
	// the owner, so the lock and the failure count go.
	if err := s.limiter.ClearAccount(ctx, ratelimit.AccountKey(email)); err != nil {
		s.log.Warn("clearing the login lock after a reset", "error", err.Error())
	}
	return nil
}

// ChangePassword replaces the password of the current user after checking
// the current one. It ends every session of the user, the current one
// included, and every email link, and returns a new session for the client
// (its token replaces the one the change was made with). It fails with
// ErrUnauthorized when the session ended or the password changed between
// the check and the write (a concurrent reset, change or logout); a rehash
// of the same password in between does not refuse it. The current password
// is the step-up of a user without a second factor; a user with one must
// also have used it recently (ErrReauthRequired, before any hash). The new
// session keeps the level of the one the change was made with.
func (s *Service) ChangePassword(ctx context.Context, c Client, cur session.Info, current, next string) (LoginResult, error) {
	if err := password.Validate(next); err != nil {
		return LoginResult{}, invalidPassword(err)
	}
	if err := password.CheckLength(current); err != nil {
		return LoginResult{}, invalidPassword(err)
	}
	if err := s.requireFactorLevel(ctx, cur); err != nil {
		return LoginResult{}, err
	}
	acct := ratelimit.AccountKey(cur.Email)
	lock := ratelimit.Pair(acct, c.IP) // as at login
	if err := s.allow(ctx, lock,
		ratelimit.Rule{Name: "login-ip", Key: c.IP, Limit: s.limits.LoginIP},
		ratelimit.Rule{Name: "login-account", Key: acct, Limit: s.limits.LoginAccount}); err != nil {
		return LoginResult{}, err
	}
	u, err := store.UserByID(ctx, s.store.Pool, cur.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return LoginResult{}, ErrUnauthorized
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("changing password: %w", err)
	}
	res, err := s.hasher.Verify(ctx, current, u.PasswordHash)
	if errors.Is(err, password.ErrBusy) {
		return LoginResult{}, ErrBusy
	}
	if err != nil && ctx.Err() != nil {
		return LoginResult{}, ctx.Err()
	}
	if !res.OK {
		return LoginResult{}, s.loginFailed(ctx, c, lock, u.ID)
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return LoginResult{}, hashErr(err)
	}
	s.hook("change")
	out, revoked, now, err := s.change(ctx, c, cur, u, hash)
	if errors.Is(err, store.ErrHashChanged) {
		// The session survived, so no reset or change committed: the hash
		// changed by a rehash of the same password (another login's).
		// Verify once more against the hash now stored, as Login does.
		res, err = s.hasher.Verify(ctx, current, now.PasswordHash)
		if errors.Is(err, password.ErrBusy) || ctx.Err() != nil {
			return LoginResult{}, hashErr(err)
		}
		if err != nil || !res.OK {
			return LoginResult{}, ErrUnauthorized
		}
		out, revoked, _, err = s.change(ctx, c, cur, now, hash)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrUnauthorized) || errors.Is(err, store.ErrHashChanged) {
		return LoginResult{}, ErrUnauthorized
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("changing password: %w", err)
	}
	s.sessions.Forget(ctx, revoked...)
	s.sessions.Cache(ctx, out.Token, out.Session)
	return out, nil
}

// change writes the new password hash of u while the session cur still
// exists (ErrUnauthorized) and u's hash is still the one verified
// (store.ErrHashChanged, with the user as stored); it ends every session and
// email link and opens a new session.
func (s *Service) change(ctx context.Context, c Client, cur session.Info, u store.User, hash string) (LoginResult, [][]byte, store.User, error) {
	var revoked [][]byte
	var out LoginResult
	var now store.User
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		var err error
		if now, err = store.LockUser(ctx, tx, u.ID); err != nil {
			return err
		}
		alive, err := store.SessionExists(ctx, tx, u.ID, cur.ID)
		if err != nil {
			return err
		}
		if !alive {
			return ErrUnauthorized
		}
		if now.PasswordHash != u.PasswordHash {
			return store.ErrHashChanged
		}
		if err := store.UpdatePasswordHash(ctx, tx, u.ID, hash); err != nil {
			return err
		}
		if err := store.EndEmailTokens(ctx, tx, u.ID); err != nil {
			return err
		}
		if revoked, err = store.DeleteUserSessions(ctx, tx, u.ID, ""); err != nil {
			return err
		}
		tok, info, err := s.sessions.Create(ctx, tx, now, c.IP, c.UserAgent, cur.Level)
		if err != nil {
			return err
		}
		out = LoginResult{Token: tok, Session: info}
		return s.audit.Record(ctx, tx, audit.PasswordChanged, u.ID, c, map[string]any{"sessions_revoked": len(revoked), "session_id": info.ID})
	})
	return out, revoked, now, err
}
