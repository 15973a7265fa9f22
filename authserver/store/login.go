package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"
)

// ErrHashChanged: the user's password hash is no longer the one verified.
var ErrHashChanged = errors.New("password hash changed since it was verified")

// ErrHasFactor: the user has a second factor; no session was opened.
var ErrHasFactor = errors.New("the user has a second factor")

// OpenPasswordSession opens s, a session of the user s.UserID, in ONE statement
// (the function open_password_session of migrations/0007_open_password_session.sql):
// it locks the user, and only while the user's password hash is still
// verifiedHash and the user has no second factor (Factors.Any) inserts s (filling
// in its id and times) and an audit row of auditKind. It returns the user as
// locked, and: ErrNotFound when the user is gone; ErrHashChanged when the hash
// changed; ErrHasFactor when the user has a second factor. s.AuthMethod must be
// set. The statement commits by itself unless q is a transaction.
func OpenPasswordSession(ctx context.Context, q DBTX, verifiedHash string, s *Session, auditKind string) (User, error) {
	// Its SHA-256, not the hash itself: a statement log with parameters
	// (log_min_duration_statement, log_statement) never holds a password hash.
	verified := sha256.Sum256([]byte(verifiedHash))
	var u struct {
		ID, Email, PasswordHash *string
		EmailVerified           *bool
		SessionID               *string
		CreatedAt, SessionAt    *time.Time // the user's, the session's
		LastSeenAt, AuthAt      *time.Time
	}
	err := q.QueryRow(ctx, `SELECT user_id, email, password_hash, email_verified, user_created_at,
		session_id, created_at, last_seen_at, auth_at
		FROM open_password_session($1::uuid, $2::bytea, $3::bytea, $4::timestamptz, $5::text, $6::text, $7::text, $8::text)`,
		s.UserID, verified[:], s.TokenHash, s.ExpiresAt, s.IP, truncate(s.UserAgent, 512), s.AuthMethod, auditKind).
		Scan(&u.ID, &u.Email, &u.PasswordHash, &u.EmailVerified, &u.CreatedAt,
			&u.SessionID, &u.SessionAt, &u.LastSeenAt, &u.AuthAt)
	if err != nil {
		return User{}, fmt.Errorf("opening a session: %w", err)
	}
	if u.ID == nil {
		return User{}, ErrNotFound
	}
	now := User{ID: *u.ID, Email: *u.Email, PasswordHash: *u.PasswordHash, EmailVerified: *u.EmailVerified, CreatedAt: *u.CreatedAt}
	switch {
	case now.PasswordHash != verifiedHash:
		return now, ErrHashChanged
	case u.SessionID == nil:
		return now, ErrHasFactor
	}
	s.ID, s.CreatedAt, s.LastSeenAt, s.AuthAt = *u.SessionID, *u.SessionAt, *u.LastSeenAt, *u.AuthAt
	return now, nil
}
