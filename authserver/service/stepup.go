package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// RequireRecent is the step-up check before a change of credentials or
// factors: the session must have authenticated within AUTH_STEPUP_WINDOW
// and, when the user has a second factor, with one (session.LevelMFA or
// LevelPasskey). ErrReauthRequired tells the client to call
// Reauthenticate and retry. The cached session may carry an older
// authentication time than PostgreSQL (a failed re-cache): that refuses,
// it never lets through.
func (s *Service) RequireRecent(ctx context.Context, cur session.Info) error {
	if time.Since(cur.AuthAt) > s.mfa.StepUpWindow {
		return ErrReauthRequired
	}
	return s.requireFactorLevel(ctx, cur)
}

// requireFactorLevel: a session of a user with a second factor must have
// used one (and recently); password-only users pass.
func (s *Service) requireFactorLevel(ctx context.Context, cur session.Info) error {
	if session.Satisfies(cur.Level, session.LevelMFA) && time.Since(cur.AuthAt) <= s.mfa.StepUpWindow {
		return nil
	}
	f, err := store.UserFactors(ctx, s.store.Pool, cur.UserID)
	if err != nil {
		return fmt.Errorf("reading factors: %w", err)
	}
	if f.Any() {
		return ErrReauthRequired
	}
	return nil
}

// lockUserAndSession locks cur's user row, then checks (and share-locks)
// that cur's session still exists: every change of factors made on a
// session's authority runs after it inside its transaction, so that one
// ending the user's sessions (logout-all, a reset, factors-reset) is never
// outrun by a request that passed authentication just before.
// store.ErrNotFound: the user is gone; session.ErrInvalid: the session is.
func lockUserAndSession(ctx context.Context, tx store.DBTX, cur session.Info) error {
	if _, err := store.LockUser(ctx, tx, cur.UserID); err != nil {
		return err
	}
	if err := store.LockSession(ctx, tx, cur.UserID, cur.ID); errors.Is(err, store.ErrNotFound) {
		return session.ErrInvalid
	} else if err != nil {
		return err
	}
	return nil
}

// ReauthRequest is a re-authentication: the password (a user without a
// second factor) or a second factor (a user with one).
type ReauthRequest struct {
	Password string
	Method   string // MethodTOTP or MethodRecoveryCode
	Code     string
}

// Reauthenticate makes the current session authenticate again now. A user
// with a second factor must use it (ErrMFARequired for a password alone):
// else a stolen session and password would pass a step-up meant to ask for
// the factor. Failures count towards the lockout like login's.
func (s *Service) Reauthenticate(ctx context.Context, c Client, cur session.Info, req ReauthRequest) (session.Info, error) {
	f, err := store.UserFactors(ctx, s.store.Pool, cur.UserID)
	if err != nil {
		return session.Info{}, fmt.Errorf("reading factors: %w", err)
	}
	if f.Any() {
		if req.Method == "" {
			return session.Info{}, ErrMFARequired
		}
		if !contains(methodsOf(f), req.Method) {
			return session.Info{}, ErrMethodNotAllowed
		}
		verify, err := s.verifier(c, req.Method, req.Code)
		if err != nil {
			return session.Info{}, err
		}
		return s.ReauthenticateWith(ctx, c, cur, req.Method, session.LevelMFA, verify)
	}
	if req.Method != "" {
		return session.Info{}, ErrMethodNotAllowed
	}
	if err := password.CheckLength(req.Password); err != nil {
		return session.Info{}, invalidPassword(err)
	}
	lock, err := s.loginLimits(ctx, c, cur.Email)
	if err != nil {
		return session.Info{}, err
	}
	u, err := store.UserByID(ctx, s.store.Pool, cur.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return session.Info{}, ErrUnauthorized
	}
	if err != nil {
		return session.Info{}, fmt.Errorf("re-authenticating: %w", err)
	}
	res, err := s.hasher.Verify(ctx, req.Password, u.PasswordHash)
	if errors.Is(err, password.ErrBusy) || ctx.Err() != nil {
		return session.Info{}, hashErr(err)
	}
	if err != nil || !res.OK {
		s.failed(ctx, c, lock, u.ID, audit.LoginFail, map[string]any{"reason": "wrong_password", "reauthentication": true})
		return session.Info{}, ErrInvalidCredentials
	}
	s.loginSucceeded(ctx, lock)
	return s.reauthenticated(ctx, c, cur, session.LevelPassword, "password")
}

// ReauthenticateWith re-authenticates the current session with a second
// factor that verify checks (ErrInvalidCode when wrong; counted towards the
// lockout), at level. The passkeys flow calls it with its assertion check.
func (s *Service) ReauthenticateWith(ctx context.Context, c Client, cur session.Info, method, level string, verify func(ctx context.Context, userID string) error) (session.Info, error) {
	lock, err := s.loginLimits(ctx, c, cur.Email)
	if err != nil {
		return session.Info{}, err
	}
	err = verify(ctx, cur.UserID)
	s.factorChecked(method, err)
	if err != nil {
		if errors.Is(err, ErrInvalidCode) {
			s.failed(ctx, c, lock, cur.UserID, audit.MFAFail, map[string]any{"method": method, "reauthentication": true})
		}
		return session.Info{}, err
	}
	s.loginSucceeded(ctx, lock)
	return s.reauthenticated(ctx, c, cur, level, method)
}

func (s *Service) reauthenticated(ctx context.Context, c Client, cur session.Info, level, method string) (session.Info, error) {
	var info session.Info
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		var err error
		if info, err = s.sessions.Reauthenticated(ctx, tx, cur, level); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Reauthenticated, cur.UserID, c, map[string]any{"session_id": cur.ID, "method": method})
	})
	if errors.Is(err, session.ErrInvalid) {
		return session.Info{}, ErrUnauthorized
	}
	if err != nil {
		return session.Info{}, fmt.Errorf("re-authenticating: %w", err)
	}
	s.sessions.Recache(ctx, info)
	return info, nil
}
