// Package service holds the rules of the authserver: signup, verification,
// login, sessions and password recovery. Handlers decode, call one method
// and encode; everything that matters happens here.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/leanauth/authstack/authserver/audit"
	"github.com/leanauth/authstack/authserver/config"
	"github.com/leanauth/authstack/authserver/mail"
	"github.com/leanauth/authstack/authserver/password"
	"github.com/leanauth/authstack/authserver/ratelimit"
	"github.com/leanauth/authstack/authserver/session"
	"github.com/leanauth/authstack/authserver/store"
)

// Client is who made a request.
type Client = audit.Client

// Notifier is told when an email was queued (the mail worker).
type Notifier interface{ Notify() }

// EmailCounter counts email events.
type EmailCounter interface{ EmailEvent(kind string) }

// Service implements the auth rules.
type Service struct {
	store    *store.Store
	hasher   *password.Hasher
	sessions *session.Manager
	limiter  *ratelimit.Limiter
	audit    *audit.Recorder
	mailer   Notifier
	emails   EmailCounter
	links    mail.Links
	limits   config.RateLimits
	verify   time.Duration
	reset    time.Duration
	log      *slog.Logger
}

// Deps are the parts a Service is built from.
type Deps struct {
	Store    *store.Store
	Hasher   *password.Hasher
	Sessions *session.Manager
	Limiter  *ratelimit.Limiter
	Audit    *audit.Recorder
	Mailer   Notifier
	Emails   EmailCounter
	Config   *config.Config
	Logger   *slog.Logger
}

// New returns a Service.
func New(d Deps) *Service {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Service{
		store: d.Store, hasher: d.Hasher, sessions: d.Sessions, limiter: d.Limiter, audit: d.Audit,
		mailer: d.Mailer, emails: d.Emails, links: mail.Links{Base: d.Config.FrontendURL},
		limits: d.Config.RateLimits, verify: d.Config.VerifyTokenTTL, reset: d.Config.ResetTokenTTL, log: d.Logger,
	}
}

// allow applies rate limits; Redis trouble fails open (logged).
func (s *Service) allow(ctx context.Context, lockAccount string, rules ...ratelimit.Rule) error {
	wait, err := s.limiter.Allow(ctx, lockAccount, rules...)
	if err != nil {
		s.log.Warn("rate limiter unavailable, allowing request", "error", err.Error())
		return nil
	}
	if wait > 0 {
		return tooMany(wait)
	}
	return nil
}

func hashErr(err error) error {
	if errors.Is(err, password.ErrBusy) {
		return ErrBusy
	}
	return err
}

// queue renders and stores an email in the outbox within q.
func (s *Service) queue(ctx context.Context, q store.DBTX, kind, to string, data mail.Data) error {
	r, err := mail.Render(kind, data)
	if err != nil {
		return err
	}
	_, err = store.InsertOutbox(ctx, q, store.OutboxMessage{Kind: kind, To: to, Subject: r.Subject, Text: r.Text, HTML: r.HTML})
	if err != nil {
		return fmt.Errorf("queueing %s email: %w", kind, err)
	}
	return nil
}

func (s *Service) queued() {
	if s.emails != nil {
		s.emails.EmailEvent("QUEUED")
	}
	if s.mailer != nil {
		s.mailer.Notify()
	}
}

// newEmailToken stores a fresh single-use token for user and returns it.
func (s *Service) newEmailToken(ctx context.Context, q store.DBTX, userID, purpose string, ttl time.Duration) (string, error) {
	tok, h := session.NewToken()
	if err := store.InsertEmailToken(ctx, q, userID, purpose, h[:], ttl); err != nil {
		return "", fmt.Errorf("storing %s token: %w", purpose, err)
	}
	return tok, nil
}

func (s *Service) queueVerify(ctx context.Context, q store.DBTX, c Client, u store.User) error {
	tok, err := s.newEmailToken(ctx, q, u.ID, store.PurposeVerify, s.verify)
	if err != nil {
		return err
	}
	if err := s.queue(ctx, q, mail.KindVerify, u.Email, mail.Data{Link: s.links.Verify(tok), ValidFor: mail.HumanDuration(s.verify)}); err != nil {
		return err
	}
	return s.audit.Record(ctx, q, audit.VerifySent, u.ID, c, nil)
}

// Signup registers an account and queues a verification email. For an
// address that already has an account it does the same work (including the
// password hash) and queues an "account exists" email instead, so the
// response and its timing do not tell whether the address is registered.
func (s *Service) Signup(ctx context.Context, c Client, emailIn, pw string) error {
	email, ok := NormalizeEmail(emailIn)
	if !ok {
		return ErrInvalidEmail
	}
	if err := password.Validate(pw); err != nil {
		return invalidPassword(err)
	}
	if err := s.allow(ctx, "",
		ratelimit.Rule{Name: "signup-ip", Key: c.IP, Limit: s.limits.SignupIP},
		ratelimit.Rule{Name: "signup-account", Key: ratelimit.AccountKey(email), Limit: s.limits.SignupAccount}); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return hashErr(err)
	}
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		u, inserted, err := store.InsertUser(ctx, tx, email, hash)
		if err != nil {
			return err
		}
		if inserted {
			if err := s.audit.Record(ctx, tx, audit.Signup, u.ID, c, nil); err != nil {
				return err
			}
			return s.queueVerify(ctx, tx, c, u)
		}
		if !u.EmailVerified {
			// Never verified: the owner may have lost the first email.
			// The stored password is kept; a reset can change it.
			return s.queueVerify(ctx, tx, c, u)
		}
		if err := s.audit.Record(ctx, tx, audit.Signup, u.ID, c, map[string]any{"existing_account": true}); err != nil {
			return err
		}
		return s.queue(ctx, tx, mail.KindAccountExists, u.Email, mail.Data{LoginLink: s.links.Login(), ResetLink: s.links.ForgotPassword()})
	})
	if err != nil {
		return fmt.Errorf("signing up: %w", err)
	}
	s.queued()
	return nil
}

// VerifyEmail consumes a verification token and marks the address verified.
func (s *Service) VerifyEmail(ctx context.Context, c Client, tok string) error {
	h, ok := session.HashToken(tok)
	if !ok {
		return ErrInvalidToken
	}
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
		uid, err := store.ConsumeEmailToken(ctx, tx, store.PurposeVerify, h[:])
		if err != nil {
			return err
		}
		if err := store.MarkEmailVerified(ctx, tx, uid); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.EmailVerified, uid, c, nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("verifying email: %w", err)
	}
	return nil
}

func (s *Service) emailLimits(ctx context.Context, c Client, email string) error {
	return s.allow(ctx, "",
		ratelimit.Rule{Name: "email-ip", Key: c.IP, Limit: s.limits.EmailIP},
		ratelimit.Rule{Name: "email-account", Key: ratelimit.AccountKey(email), Limit: s.limits.EmailAccount})
}

// ResendVerification queues a new verification email if the address has an
// unverified account; the caller answers the same either way.
func (s *Service) ResendVerification(ctx context.Context, c Client, emailIn string) error {
	email, ok := NormalizeEmail(emailIn)
	if !ok {
		return ErrInvalidEmail
	}
	if err := s.emailLimits(ctx, c, email); err != nil {
		return err
	}
	sent := false
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
		u, err := store.UserByEmail(ctx, tx, email)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.EmailVerified) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := store.InvalidateEmailTokens(ctx, tx, u.ID, store.PurposeVerify); err != nil {
			return err
		}
		sent = true
		return s.queueVerify(ctx, tx, c, u)
	})
	if err != nil {
		return fmt.Errorf("resending verification: %w", err)
	}
	if sent {
		s.queued()
	}
	return nil
}

// LoginResult is a new session.
type LoginResult struct {
	Token   string
	Session session.Info
}

// Login checks credentials and opens a session. An unknown address costs
// the same as a wrong password (a dummy hash is verified) and both answer
// ErrInvalidCredentials; ErrEmailNotVerified comes only after a correct
// password.
func (s *Service) Login(ctx context.Context, c Client, emailIn, pw string) (LoginResult, error) {
	email, ok := NormalizeEmail(emailIn)
	if !ok {
		return LoginResult{}, ErrInvalidEmail
	}
	acct := ratelimit.AccountKey(email)
	if err := s.allow(ctx, acct,
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
		if err != nil && !errors.Is(err, password.ErrBusy) && !errors.Is(err, context.Canceled) {
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
		return LoginResult{}, s.loginFailed(ctx, c, acct, u.ID)
	}
	if err := s.limiter.RecordSuccess(ctx, acct); err != nil {
		s.log.Warn("resetting login failures", "error", err.Error())
	}
	if !u.EmailVerified {
		return LoginResult{}, ErrEmailNotVerified
	}
	if res.NeedsRehash {
		s.rehash(ctx, u, pw)
	}
	var out LoginResult
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
		tok, info, err := s.sessions.Create(ctx, tx, u, c.IP, c.UserAgent)
		if err != nil {
			return err
		}
		out = LoginResult{Token: tok, Session: info}
		return s.audit.Record(ctx, tx, audit.LoginSuccess, u.ID, c, map[string]any{"session_id": info.ID})
	})
	if err != nil {
		return LoginResult{}, fmt.Errorf("creating session: %w", err)
	}
	s.sessions.Cache(ctx, out.Token, out.Session)
	return out, nil
}

// rehash replaces a hash made with an old pepper or old parameters. A
// failure is logged, not fatal: the old hash still works.
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

func (s *Service) loginFailed(ctx context.Context, c Client, acct, userID string) error {
	locked, err := s.limiter.RecordFailure(ctx, acct)
	if err != nil {
		s.log.Warn("recording login failure", "error", err.Error())
	}
	var details map[string]any
	if userID == "" {
		details = map[string]any{"reason": "unknown_account"}
	} else {
		details = map[string]any{"reason": "wrong_password"}
	}
	if err := s.audit.Record(ctx, s.store.Pool, audit.LoginFail, userID, c, details); err != nil {
		s.log.Error("writing audit log", "kind", audit.LoginFail, "error", err.Error())
	}
	if locked > 0 {
		if err := s.audit.Record(ctx, s.store.Pool, audit.Lockout, userID, c, map[string]any{"locked_seconds": int(locked / time.Second)}); err != nil {
			s.log.Error("writing audit log", "kind", audit.Lockout, "error", err.Error())
		}
	}
	return ErrInvalidCredentials
}

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
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
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
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
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

// ListSessions returns the current user's sessions.
func (s *Service) ListSessions(ctx context.Context, cur session.Info) ([]store.Session, error) {
	ss, err := store.ListSessions(ctx, s.store.Pool, cur.UserID)
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
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
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
	err := s.store.InTx(ctx, func(tx pgx.Tx) error {
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
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
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
		if err := s.limiter.RecordSuccess(ctx, ratelimit.AccountKey(u.Email)); err != nil {
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
	if err := s.allow(ctx, acct, ratelimit.Rule{Name: "login-account", Key: acct, Limit: s.limits.LoginAccount}); err != nil {
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
		return s.loginFailed(ctx, c, acct, u.ID)
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return hashErr(err)
	}
	var revoked [][]byte
	err = s.store.InTx(ctx, func(tx pgx.Tx) error {
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
