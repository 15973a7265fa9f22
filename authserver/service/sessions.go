package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// Authenticate validates a session token.
func (s *Service) Authenticate(ctx context.Context, tok string) (session.Info, error) {
	info, err := s.sessions.Validate(ctx, tok)
	if errors.Is(err, session.ErrInvalid) {
		return info, ErrUnauthorized
	}
	if err != nil {
		s.log.Error("validating session", "error", err.Error())
		return info, ErrUnavailable
	}
	return info, nil
}

// Logout revokes the current session.
func (s *Service) Logout(ctx context.Context, c Client, cur session.Info) error {
	var h []byte
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		var err error
		h, err = store.DeleteSession(ctx, tx, cur.UserID, cur.ID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Logout, cur.UserID, c, map[string]any{"session_id": cur.ID})
	})
	if err != nil {
		return fmt.Errorf("logging out: %w", err)
	}
	if h != nil {
		s.sessions.Forget(ctx, h)
	}
	return nil
}

// LogoutAll revokes every session of the current user.
func (s *Service) LogoutAll(ctx context.Context, c Client, cur session.Info) error {
	var hs [][]byte
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		var err error
		if hs, err = store.DeleteUserSessions(ctx, tx, cur.UserID, ""); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Logout, cur.UserID, c, map[string]any{"all": true, "sessions": len(hs)})
	})
	if err != nil {
		return fmt.Errorf("logging out everywhere: %w", err)
	}
	s.sessions.Forget(ctx, hs...)
	return nil
}

// ListSessions returns the current user's sessions (not those ended by the
// idle timeout, which no longer work).
func (s *Service) ListSessions(ctx context.Context, cur session.Info) ([]store.Session, error) {
	ss, err := store.ListSessions(ctx, s.store.Pool, cur.UserID, s.sessions.IdleWindow())
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	return ss, nil
}

// RevokeSession revokes one of the current user's sessions.
func (s *Service) RevokeSession(ctx context.Context, c Client, cur session.Info, id string) error {
	if !isUUID(id) {
		return ErrSessionNotFound
	}
	var h []byte
	err := s.store.InTx(ctx, func(tx store.DBTX) error {
		var err error
		if h, err = store.DeleteSession(ctx, tx, cur.UserID, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.SessionRevoked, cur.UserID, c, map[string]any{"session_id": id})
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrSessionNotFound
	}
	if err != nil {
		return fmt.Errorf("revoking session: %w", err)
	}
	s.sessions.Forget(ctx, h)
	return nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
