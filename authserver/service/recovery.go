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

// ForgotPassword queues a reset email when the address has an account. The
// same statements run either way (an audit row is written for unknown
// addresses too) so the answer and its timing match.
func (s *Service) ForgotPassword(ctx context.Context, c Client, emailIn string) error {
	email, ok := NormalizeEmail(emailIn)
	if !ok {
		return ErrInvalidEmail
	}
	if err := s.emailLimits(ctx, c, email); err != nil {
		return err
	}
	sent := false
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		u, err := store.UserByEmail(ctx, tx, email)
		if errors.Is(err, store.ErrNotFound) {
			return s.audit.Record(ctx, tx, audit.PasswordResetRequested, "", c, map[string]any{"account": "unknown"})
		}
		if err != nil {
			return err
		}
		if err := store.InvalidateEmailTokens(ctx, tx, u.ID, store.PurposeReset); err != nil {
			return err
		}
		tok, err := s.newEmailToken(ctx, tx, u.ID, store.PurposeReset, s.reset)
		if err != nil {
			return err
		}
		if err := s.queue(ctx, tx, mail.KindReset, u.Email, mail.Data{Link: s.links.Reset(tok), ValidFor: mail.HumanDuration(s.reset)}); err != nil {
			return err
		}
		sent = true
		return s.audit.Record(ctx, tx, audit.PasswordResetRequested, u.ID, c, nil)
	})
	if err != nil {
		return fmt.Errorf("requesting password reset: %w", err)
	}
	if sent {
		s.queued()
	}
	return nil
}

// ResetPassword sets a new password with a reset token and revokes every
// session of the user. It also proves the address, so it is marked verified.
func (s *Service) ResetPassword(ctx context.Context, c Client, tok, pw string) error {
	h, ok := session.HashToken(tok)
	if !ok {
		return ErrInvalidToken
	}
	if err := password.Validate(pw); err != nil {
		return invalidPassword(err)
	}
	// Hash first: a busy server must not burn the single-use token.
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return hashErr(err)
	}
	var revoked [][]byte
	var uid string
	err = s.store.InTx(ctx, func(tx store.DBTX) error {
		var err error
		if uid, err = store.ConsumeEmailToken(ctx, tx, store.PurposeReset, h[:]); err != nil {
			return err
		}
		if err := store.UpdatePasswordHash(ctx, tx, uid, hash); err != nil {
			return err
		}
		if err := store.MarkEmailVerified(ctx, tx, uid); err != nil {
			return err
		}
		if err := store.InvalidateEmailTokens(ctx, tx, uid, store.PurposeReset); err != nil {
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
	u, err := store.UserByID(ctx, s.store.Pool, uid)
	if err == nil {
		if err := s.limiter.ClearAccount(ctx, ratelimit.AccountKey(u.Email)); err != nil {
			s.log.Warn("clearing login failures after reset", "error", err.Error())
		}
	}
	return nil
}

// ChangePassword replaces the password of the current user after checking
// the current one, and revokes the user's other sessions.
func (s *Service) ChangePassword(ctx context.Context, c Client, cur session.Info, current, next string) error {
	if err := password.Validate(next); err != nil {
		return invalidPassword(err)
	}
	acct := ratelimit.AccountKey(cur.Email)
	lock := ratelimit.Pair(acct, c.IP)
	if err := s.allow(ctx, lock, ratelimit.Rule{Name: "login-account", Key: acct, Limit: s.limits.LoginAccount}); err != nil {
		return err
	}
	u, err := store.UserByID(ctx, s.store.Pool, cur.UserID)
	if err != nil {
		return fmt.Errorf("changing password: %w", err)
	}
	res, err := s.hasher.Verify(ctx, current, u.PasswordHash)
	if errors.Is(err, password.ErrBusy) {
		return ErrBusy
	}
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if !res.OK {
		return s.loginFailed(ctx, c, lock, u.ID)
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return hashErr(err)
	}
	var revoked [][]byte
	err = s.store.InTx(ctx, func(tx store.DBTX) error {
		if err := store.UpdatePasswordHash(ctx, tx, u.ID, hash); err != nil {
			return err
		}
		var err error
		if revoked, err = store.DeleteUserSessions(ctx, tx, u.ID, cur.ID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.PasswordChanged, u.ID, c, map[string]any{"sessions_revoked": len(revoked)})
	})
	if err != nil {
		return fmt.Errorf("changing password: %w", err)
	}
	s.sessions.Forget(ctx, revoked...)
	return nil
}
